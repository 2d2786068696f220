"""A small, real job function for the add-on's server tests (`joker serve --job-function
posed_head_job:generate`): it poses the demo head with the job's rig parameters, textures it
with the reference photo through the head's UVs and writes `head.glb` with the engine's
exporter, so where the add-on puts the result and which texture it shows can be checked
exactly. `joker.api.generate` replaces it once that lands.

Words in the prompt steer it: steps=N progress events (default 4) of step_s=S seconds
(default 0.02); fail=1 ends the job with a JokerError.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from joker.mesh.export import TexturedMesh, write_glb
from joker_core.demo_head import load_demo_head
from joker_core.errors import JobCancelled, JokerError
from joker_core.lbs import numpy_rig, pose
from joker_core.protocol import JobSpec, ProgressEvent
from joker_core.rig_params import RigParams

TEXTURE_SIZE = 64


def posed_textured_head(rig_params: dict | None, photo: Image.Image) -> TexturedMesh:
    """The demo head posed by `rig_params`, split at UV seams, with `photo` as its texture."""
    model = load_demo_head()
    params = RigParams.from_dict(rig_params) if rig_params else RigParams()
    vertices = pose(numpy_rig(model), params).vertices
    corners = np.stack([model.faces.reshape(-1), model.uv_faces.reshape(-1)], axis=1)
    pairs, corner_to_vertex = np.unique(corners, axis=0, return_inverse=True)
    normals = np.zeros_like(vertices)  # area-weighted: enough for shading a test result
    face_normals = np.cross(vertices[model.faces[:, 1]] - vertices[model.faces[:, 0]],
                            vertices[model.faces[:, 2]] - vertices[model.faces[:, 0]])
    for corner in range(3):
        np.add.at(normals, model.faces[:, corner], face_normals)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True).clip(min=1e-12)
    texture = np.asarray(photo.convert("RGB").resize((TEXTURE_SIZE, TEXTURE_SIZE)))
    return TexturedMesh(vertices=vertices[pairs[:, 0]], faces=corner_to_vertex.reshape(-1, 3),
                        uvs=model.uv_coords[pairs[:, 1]], normals=normals[pairs[:, 0]], texture=texture)


def generate(reference, *, spec: JobSpec, out_dir: Path,
             progress: Callable[[ProgressEvent], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> Path:
    options = dict(word.split("=", 1) for word in spec.prompt.split() if "=" in word)
    steps, step_s = int(options.get("steps", 4)), float(options.get("step_s", 0.02))
    photo = Image.open(reference)
    for step in range(steps):
        if should_cancel is not None and should_cancel():
            raise JobCancelled()
        if progress is not None:
            progress(ProgressEvent(stage="distill", progress=step / steps, message=f"step {step + 1}/{steps}",
                                   eta_s=(steps - step) * step_s))
        time.sleep(step_s)
    if options.get("fail") == "1":
        raise JokerError("the test job was told to fail", "leave fail=1 out of the prompt")
    write_glb(posed_textured_head(spec.rig, photo), Path(out_dir) / "head.glb")
    return out_dir
