"""The service tests' demo job, plus what the Ray tests need to see from inside a worker:
the process that ran it (first progress message) and when it ran (interval.json, written
into its outputs, so it also proves the output files come back from the cluster)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import demo_job
from joker_core.protocol import ProgressEvent


def generate(reference, *, spec, out_dir: Path, progress=None, should_cancel=None) -> Path:
    started = time.time()
    if progress is not None:
        progress(ProgressEvent(stage="prepare", message=f"pid={os.getpid()}"))
    demo_job.generate(reference, spec=spec, out_dir=out_dir, progress=progress, should_cancel=should_cancel)
    (Path(out_dir) / "interval.json").write_text(json.dumps({"pid": os.getpid(), "start": started,
                                                             "end": time.time()}))
    return Path(out_dir)
