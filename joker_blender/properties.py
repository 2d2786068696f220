"""Scene-level settings of a generation: reference, prompt, views, quality, job state."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

from .preferences import QUALITY_ITEMS

PRIOR_ITEMS = (
    ("projection", "Projection (no weights)", "Weight-free default: projects the photo onto the rig"),
    ("joker", "Joker diffusion", "The published diffusion prior; needs its weights on the server machine"),
)
NORMAL_MODE_ITEMS = (
    ("face", "Face region", "Face only, as the official checkpoint was trained (BFM face region)"),
    ("full", "Full head", "Whole head, ears, neck and eyes"),
)
HEAD_MESH_ITEMS = (
    ("closest", "Closest to targets", "The rig's topology when the job measures its mesh at least as close to "
                                      "the targets as the marching-cubes mesh (held-out PSNR), else marching cubes"),
    ("rig", "Rig topology", "The rig's own vertices and UV layout fitted to the generated surface (head_rig.glb)"),
    ("marching_cubes", "Marching cubes", "The surface's own mesh, unwrapped and baked (head.glb)"),
)
SEQUENCE_RESULT_ITEMS = (
    ("frames", "Per-frame meshes", "One head per generated frame (marching cubes), each shown on its frames"),
    ("animated", "Animated object", "One head in the rig's topology with a shape key per generated frame, "
                                    "blending linearly between them, parented to the rig"),
)


class JokerPrompt(bpy.types.PropertyGroup):
    text: StringProperty(name="Prompt", default="", description="This prompt, for the frames the track gives it")


class JokerSettings(bpy.types.PropertyGroup):
    reference_path: StringProperty(name="Reference photo", subtype="FILE_PATH",
                                   description="Photo of the person (JPEG/PNG); the face should be clearly visible")
    prompt: StringProperty(name="Prompt", default="",
                           description="What the rig cannot say: emotion nuances, tongue, teeth")
    negative_prompt: StringProperty(name="Negative", default="", description="What to avoid")
    quality: EnumProperty(name="Quality", items=QUALITY_ITEMS, default="preview",
                          description="Distillation effort; preview runs on a laptop CPU")
    prior: EnumProperty(name="Prior", items=PRIOR_ITEMS, default="projection",
                        description="Which 2D prior the server distils from")
    prior_weights: StringProperty(name="Weights", default="",
                                  description="Path of the Joker checkpoint on the server machine")
    seed: IntProperty(name="Seed", default=0, min=0, description="Same seed, same result")
    views_azimuth: IntProperty(name="Azimuth views", default=4, min=1, max=64,
                               description="Views across azimuth in the view grid")
    views_elevation: IntProperty(name="Elevation views", default=3, min=1, max=64,
                                 description="Views across elevation in the view grid")
    azimuth_range: FloatProperty(name="Azimuth ±", default=45.0, min=0.0, max=180.0,
                                 description="Half range of camera azimuth, degrees")
    elevation_range: FloatProperty(name="Elevation ±", default=20.0, min=0.0, max=89.0,
                                   description="Half range of camera elevation, degrees")
    view_size: IntProperty(name="Size", default=256, min=32, max=1024,
                           description="Normal-map size in pixels (512 for the diffusion prior)")
    normal_mode: EnumProperty(name="Normal maps", items=NORMAL_MODE_ITEMS, default="face",
                              description="Region of the head the normal maps show")
    send_normal_maps: BoolProperty(name="Send Blender normal maps", default=True,
                                   description="A single head: render its normal maps here and send them; "
                                               "off lets the server render them")
    sequence_normal_maps: BoolProperty(name="Blender normal maps per frame", default=False,
                                       description="Render every frame's normal maps here before sending the "
                                                   "sequence (Blender is busy about 0.3 s per view and frame); "
                                                   "off: send each frame's rig parameters, the server renders")
    head_mesh: EnumProperty(name="Head mesh", items=HEAD_MESH_ITEMS, default="closest",
                            description="Which mesh of a single head is imported")
    sequence_prompts: CollectionProperty(type=JokerPrompt, name="Sequence prompts")
    sequence_prompts_index: IntProperty(name="Selected prompt", default=0, min=0)
    prompt_track: IntProperty(name="Prompt track", default=0, min=0,
                              description="The prompt a sequence frame uses: 0 the Prompt panel's, N the Nth of the "
                                          "Sequence panel's list. Key it like any property (Key Prompt holds it)")
    sequence_use_scene_range: BoolProperty(name="Scene frame range", default=True,
                                           description="Generate the scene's frame range with its frame step; "
                                                       "off: the start, end and step below")
    sequence_start: IntProperty(name="Start", default=1, description="First frame of the sequence")
    sequence_end: IntProperty(name="End", default=24, description="Last frame of the sequence (included)")
    sequence_step: IntProperty(name="Step", default=1, min=1,
                               description="Generate every Nth frame; each head holds until the next")
    sequence_result: EnumProperty(name="Sequence result", items=SEQUENCE_RESULT_ITEMS, default="frames",
                                  description="What a new sequence becomes in the scene")
    sequence: StringProperty(name="Sequence", default="",
                             description="Collection of the scene's generated sequence (Regenerate Frame works on it)")
    # Job state, written only on the main thread by the job watcher.
    job_id: StringProperty(name="Job", default="")
    job_state: StringProperty(name="State", default="")
    job_stage: StringProperty(name="Stage", default="")
    job_progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    job_eta: FloatProperty(name="ETA", default=-1.0)
    job_preview: StringProperty(name="Preview", default="",
                                description="The job's newest preview the Generate panel shows (its file)")
    job_preview_frame: IntProperty(name="Preview frame", default=-1,
                                   description="The scene frame a sequence job's preview belongs to (-1: none)")
    last_error: StringProperty(name="Last error", default="")
    last_result: StringProperty(name="Last result", default="", description="Object the last job imported")


def settings(context) -> JokerSettings:
    return context.scene.joker


def register() -> None:
    bpy.utils.register_class(JokerPrompt)
    bpy.utils.register_class(JokerSettings)
    bpy.types.Scene.joker = PointerProperty(type=JokerSettings)


def unregister() -> None:
    del bpy.types.Scene.joker
    bpy.utils.unregister_class(JokerSettings)
    bpy.utils.unregister_class(JokerPrompt)
