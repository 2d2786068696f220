"""The sequence manifest (sequence.json): which frames are finished, where their files
are and what each cost. Rewritten atomically after every frame, so a reader (the add-on,
the server's artifact list, a resumed script) always sees a whole, current list."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from joker_core.protocol import SEQUENCE_MANIFEST, SequenceSpec, frame_artifact, frame_folder_name

from ..generation.output import write_json

MANIFEST_NAME = SEQUENCE_MANIFEST
FORMAT_VERSION = 1
__all__ = ["MANIFEST_NAME", "Manifest", "frame_folder_name"]


@dataclass
class Manifest:
    path: Path
    spec: SequenceSpec
    state: str = "running"       # running -> finished | cancelled | failed
    error: str | None = None
    frames: list[dict] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add_frame(self, index: int, figures: dict) -> None:
        number = self.spec.frame_number(index)
        self.frames.append({"index": index, "frame": number, "folder": f"frames/{frame_folder_name(number)}",
                            "glb": frame_artifact(number), "obj": frame_artifact(number, "head.obj"),
                            "texture": frame_artifact(number, "head.png"), **figures})
        self.write()

    def end(self, state: str, error: str | None = None) -> None:
        self.state, self.error = state, error
        self.write()

    def write(self) -> Path:
        return write_json(self.path, {
            "format_version": FORMAT_VERSION, "state": self.state, "error": self.error,
            "frame_start": self.spec.frame_start, "frame_step": self.spec.frame_step,
            "frame_count": len(self.spec.frames), "texture": "baked per frame from the warm-started field",
            "started_at": self.started, "updated_at": time.time(), "frames": self.frames,
            "totals": {key: sum(frame[key] for frame in self.frames)
                       for key in ("prior_evaluations", "nerf_steps", "distill_seconds")},
        })
