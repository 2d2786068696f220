"""Add-on preferences, keyed by the package name (extensions live under bl_ext.<repo>.<id>)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

from joker_core.client import DEFAULT_URL

QUALITY_ITEMS = (
    ("preview", "Preview", "Fast CPU-sized distillation for checking pose and framing"),
    ("standard", "Standard", "Balanced quality for final renders on a GPU"),
    ("high", "High", "More views and iterations; slow"),
    ("published", "Published", "The paper's exact schedule (~40k prior evaluations)"),
)


class JokerPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    server_url: StringProperty(
        name="Server URL", default=DEFAULT_URL,
        description="Address of the local Joker engine (start it with `joker serve`)")
    token: StringProperty(
        name="Access token", subtype="PASSWORD", default="",
        description="The server's access token; left empty, it is read from the local server's token file")
    flame_model_path: StringProperty(
        name="FLAME model", subtype="FILE_PATH", default="",
        description="Your FLAME 2020/2023 .pkl (or a Joker .npz head model); empty uses the built-in demo head")
    default_quality: EnumProperty(
        name="Default quality", items=QUALITY_ITEMS, default="preview",
        description="Quality preset new generations start with")
    results_dir: StringProperty(
        name="Results folder", subtype="DIR_PATH", default="//joker_results",
        description="Where downloaded results are kept (// is relative to the .blend file)")

    def draw(self, context):
        layout = self.layout
        for name in ("server_url", "token", "flame_model_path", "default_quality", "results_dir"):
            layout.prop(self, name)


def get(context=None) -> JokerPreferences:
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences


def register() -> None:
    bpy.utils.register_class(JokerPreferences)


def unregister() -> None:
    bpy.utils.unregister_class(JokerPreferences)
