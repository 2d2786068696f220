"""A one-line progress display for long jobs on the terminal (plain lines when piped)."""

from __future__ import annotations

import sys
from typing import TextIO

from joker_core.protocol import ProgressEvent

BAR_WIDTH = 24


class ProgressLine:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr  # looked up now: a redirected stderr is followed
        self.interactive = self.stream.isatty()
        self.last_stage = ""

    def __call__(self, event: ProgressEvent) -> None:
        filled = int(round(event.progress * BAR_WIDTH))
        eta = f"  ~{_duration(event.eta_s)} left" if event.eta_s is not None else ""
        line = (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {event.progress:4.0%} {event.stage}"
                f"  prior evals {event.prior_evaluations}  steps {event.nerf_steps}{eta}")
        if self.interactive:
            self.stream.write("\r" + line.ljust(100)[:120])
            if event.stage == "done":
                self.stream.write("\n")
        elif event.stage != self.last_stage:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last_stage = event.stage


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
