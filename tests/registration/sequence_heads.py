"""Three registered heads with known vertices (the demo head posed neutral, smiling and
screaming, textured in its own UV layout) and their sequence.glb: ground truth for the
animated object's writer and importers, without running the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from joker.mesh.animated import AnimationSettings, write_sequence_glb
from joker.mesh.export import TexturedMesh
from joker.mesh.rig_uv import rig_uv_layout
from joker_core.demo_head import load_demo_head
from joker_core.lbs import numpy_rig, pose
from joker_core.presets import get_preset

FRAMES = (10, 12, 14)
EXPRESSIONS = ("neutral", "crooked_smile", "scream")


def textured_heads(texture_size: int = 32) -> list[TexturedMesh]:
    """One head per expression, each with its own random texture."""
    model = load_demo_head()
    layout = rig_uv_layout(model, texture_size)
    rng = np.random.default_rng(0)
    rig, heads = numpy_rig(model), []
    for name in EXPRESSIONS:
        posed = pose(rig, get_preset(name).params_for(model)).vertices
        normals = np.asarray(trimesh.Trimesh(posed, model.faces, process=False).vertex_normals)
        texture = rng.integers(0, 256, (texture_size, texture_size, 3), dtype=np.uint8)
        heads.append(TexturedMesh.from_uv_mesh(layout.uv_mesh(posed), normals, texture))
    return heads


def write_sequence(folder: Path, settings: AnimationSettings = AnimationSettings()
                   ) -> tuple[Path, list[TexturedMesh]]:
    heads = textured_heads()
    return write_sequence_glb(folder / "sequence.glb", list(zip(FRAMES, heads)), settings), heads
