"""A small, real job function for the add-on's server tests (`joker serve --job-function
posed_head_job:generate`): it poses the demo head with the job's rig parameters, textures it
with the reference photo through the head's UVs and writes `head.glb` with the engine's
exporter, so where the add-on puts the result and which texture it shows can be checked
exactly; `generate_sequence` does the same for every frame of a sequence job, and writes
each frame's head in the rig's topology too (head_rig.glb: the same posed head) and the
animated object (sequence.glb) with the engine's own writer, as the engine does.

Words in the prompt steer it: steps=N progress events (default 4) of step_s=S seconds
(default 0.02); fail=1 ends the job with a JokerError; mesh_psnr=A rig_psnr=B write them
into metrics.json as the engine records the two meshes' held-out PSNR. A job that asks for
the rig's topology also gets head_rig.glb (the same posed head).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from joker.generation.output import job_folder
from joker.mesh.animated import write_sequence_glb
from joker.mesh.export import TexturedMesh, write_glb
from joker.sequence.manifest import MANIFEST_NAME, Manifest, frame_folder_name
from joker_core.demo_head import load_demo_head
from joker_core.errors import JobCancelled, JokerError
from joker_core.lbs import numpy_rig, pose
from joker_core.protocol import HEAD_GLB, RIG_HEAD_GLB, SEQUENCE_GLB, JobSpec, ProgressEvent, SequenceSpec
from joker_core.rig_params import RigParams

TEXTURE_SIZE = 64


def posed_textured_head(params: RigParams | None, photo: Image.Image) -> TexturedMesh:
    """The demo head posed by `rig_params`, split at UV seams, with `photo` as its texture."""
    model = load_demo_head()
    vertices = pose(numpy_rig(model), params or RigParams()).vertices
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


def _options(prompt: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in prompt.split() if "=" in word)


def _work(options: dict[str, str], progress, should_cancel, stage: str = "distill", share=(0.0, 1.0)) -> None:
    """steps=N progress events of step_s=S seconds, over `share` of the job's progress."""
    steps, step_s = int(options.get("steps", 4)), float(options.get("step_s", 0.02))
    for step in range(steps):
        if should_cancel is not None and should_cancel():
            raise JobCancelled()
        if progress is not None:
            progress(ProgressEvent(stage=stage, progress=share[0] + (share[1] - share[0]) * step / steps,
                                   message=f"step {step + 1}/{steps}", eta_s=(steps - step) * step_s))
        time.sleep(step_s)


def generate(reference, *, spec: JobSpec, out_dir: Path,
             progress: Callable[[ProgressEvent], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> Path:
    options = _options(spec.prompt)
    photo = Image.open(reference)
    _work(options, progress, should_cancel)
    if options.get("fail") == "1":
        raise JokerError("the test job was told to fail", "leave fail=1 out of the prompt")
    head = posed_textured_head(spec.rig, photo)
    for name in (HEAD_GLB, RIG_HEAD_GLB) if spec.rig_topology else (HEAD_GLB,):
        write_glb(head, Path(out_dir) / name)
    if "mesh_psnr" in options:
        (Path(out_dir) / "metrics.json").write_text(json.dumps({
            "mesh_psnr_db": float(options["mesh_psnr"]), "registration": {"mesh_psnr_db": float(options["rig_psnr"])}}))
    return out_dir


def generate_sequence(reference, *, spec: SequenceSpec, out_dir: Path,
                      progress: Callable[[ProgressEvent], None] | None = None,
                      should_cancel: Callable[[], bool] | None = None) -> Path:
    """Each frame's posed head, published as the engine publishes them: frames/frame_NNNN/
    written whole, one after the other, and sequence.json. Besides the words above,
    wait_for=PATH holds every frame after the first until PATH exists (up to 60 s), so a
    test can see the first frame arrive while the job still runs; every frame must come
    with its own normal maps when the spec has any."""
    options = _options(spec.job.prompt)
    photo, folder = Image.open(reference), Path(out_dir)
    manifest = Manifest(folder / MANIFEST_NAME, spec)
    count, heads = len(spec.frames), {}
    try:
        for index in range(count):
            if index > 0 and "wait_for" in options:
                _wait_for(Path(options["wait_for"]), should_cancel)
            _work(options, progress, should_cancel, f"frame {spec.frame_number(index)}",
                  (index / count, (index + 1) / count))
            job = spec.frame_job(index)
            if spec.blender_views and not all(Path(view.normal_map).is_file() for view in job.blender_views):
                raise JokerError(f"frame {spec.frame_number(index)} came without its normal maps", "upload them")
            head = posed_textured_head(job.rig, photo)
            with job_folder(folder / "frames" / frame_folder_name(spec.frame_number(index))) as staging:
                for name in (HEAD_GLB, RIG_HEAD_GLB):
                    write_glb(head, staging / name)
            manifest.add_frame(index, {"prior_evaluations": 0, "nerf_steps": 0, "distill_seconds": 0.0})
            heads[spec.frame_number(index)] = head  # sequence.glb: a morph target per frame so far
            write_sequence_glb(folder / SEQUENCE_GLB, list(heads.items()))
            if progress is not None:
                progress(ProgressEvent(f"frame {spec.frame_number(index)} finished", (index + 1) / count))
    except JobCancelled:
        manifest.end("cancelled")
        raise
    manifest.end("finished")
    return folder


def _wait_for(path: Path, should_cancel, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if should_cancel is not None and should_cancel():
            raise JobCancelled()
        if time.monotonic() > deadline:
            raise JokerError(f"{path} did not appear within {timeout_s:g} s", "create it from the test")
        time.sleep(0.02)
