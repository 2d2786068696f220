"""A small, real job function for the service tests: the executor runs it by import path
("demo_job:generate") exactly as it runs joker.api.generate. It reads the reference photo,
reports progress, writes previews and real output files atomically, and honours cancel.

Its behaviour comes from `key=value` words in the spec's prompt:
steps=N progress events (default 5), step_s=S seconds per step (default 0.02),
preview_every=K (a preview every K steps, default 1),
fail=user|bug|oom|host_oom|crash (a JokerError, a plain bug, the engine's out-of-memory
error, torch's CPU allocation failure, or the process dying at the middle step), ignore_cancel=1 (never checks should_cancel).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from PIL import Image

from joker_core.errors import JobCancelled, JokerError
from joker_core.files import atomic_directory
from joker_core.protocol import JobSpec, ProgressEvent

from joker.service.tasks import OutOfMemory

TETRAHEDRON_OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"


def generate(reference, *, spec: JobSpec, out_dir: Path,
             progress: Callable[[ProgressEvent], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> Path:
    options = dict(word.split("=", 1) for word in spec.prompt.split() if "=" in word)
    steps, step_s = int(options.get("steps", 5)), float(options.get("step_s", 0.02))
    fail, ignore_cancel = options.get("fail"), options.get("ignore_cancel") == "1"
    preview_every = int(options.get("preview_every", 1))
    photo = Image.open(reference).convert("RGB")
    if progress is not None:
        progress(ProgressEvent(stage="prepare", message="reference loaded"))
    with atomic_directory(out_dir) as staging:
        for step in range(steps):
            if should_cancel is not None and should_cancel() and not ignore_cancel:
                raise JobCancelled()
            if fail == "crash" and step == steps // 2:
                os._exit(3)
            time.sleep(step_s)
            preview = None
            if step % preview_every == 0:
                preview = staging / "previews" / f"step_{step:03d}.png"
                preview.parent.mkdir(exist_ok=True)
                photo.resize((16, 16)).save(preview)
            if progress is not None:
                progress(ProgressEvent(stage="distill", progress=(step + 1) / steps, nerf_steps=step + 1,
                                       prior_evaluations=4 * (step + 1), message=f"step {step + 1}/{steps}",
                                       preview=preview and str(preview)))
        if fail == "user":
            raise JokerError("the demo job was told to fail", "do not put fail=user in the prompt")
        if fail == "bug":
            raise ZeroDivisionError("demo bug")
        if fail == "oom":
            raise OutOfMemory("CUDA out of memory. Tried to allocate 20.00 GiB")
        if fail == "host_oom":
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                               "can't allocate memory: you tried to allocate 68719476736 bytes.")
        (staging / "head.obj").write_text(TETRAHEDRON_OBJ)
        (staging / "metrics.json").write_text(json.dumps({"steps": steps, "seed": spec.seed,
                                                          "reference_size": photo.size,
                                                          "views": len(spec.blender_views)}))
    return out_dir
