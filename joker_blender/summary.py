"""A result at a glance: its turntable and key figures, as the Results panel shows them.

The figures are read once, when the head is imported, from the job's `metrics.json` and
kept on the head (so they survive saving the .blend); the turntable is a picture of the
session (panel_images), one tile per turntable frame: shown when a single head arrives,
on request for a sequence's frames and after the file is reopened.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import bpy

from joker_core.errors import JokerError

from . import panel_images
from .results import JOB_FOLDER_KEY, METRICS

FIGURES_KEY = "joker_figures"
TURNTABLE = "turntable.png"
# metrics.json key -> label and format, in the order the panel lists them
KEY_FIGURES = {
    "prior_evaluations": ("Prior evaluations", "{:.0f}"),
    "wall_seconds": ("Time", "{:.0f} s"),
    "held_out_psnr_db": ("Held-out PSNR", "{:.1f} dB"),
    "identity_distance": ("Identity distance", "{:.2f} (same person < 0.6)"),  # dlib's descriptor threshold
}


def attach(head: bpy.types.Object, turntable: bool = True) -> None:
    """Keep the key figures of the head's job on it and, if asked, show its turntable (what
    the job folder has of them: a job without metrics or turntable has none to show, and
    an unreadable turntable is left for *Show Turntable* to report)."""
    folder = Path(head[JOB_FOLDER_KEY])
    head[FIGURES_KEY] = _key_figures(folder / METRICS)
    if turntable:
        try:
            show_turntable(folder)
        except JokerError:
            pass


def _key_figures(path: Path) -> dict[str, float]:
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(metrics, dict):
        return {}
    return {name: float(metrics[name]) for name in KEY_FIGURES
            if isinstance(metrics.get(name), (int, float)) and math.isfinite(metrics[name])}


def figure_lines(head: bpy.types.Object) -> list[tuple[str, str]]:
    """(label, value) of each key figure the head's job recorded."""
    figures = head.get(FIGURES_KEY, {})
    return [(label, fmt.format(figures[name])) for name, (label, fmt) in KEY_FIGURES.items() if name in figures]


def show_turntable(folder: str | Path) -> list[bpy.types.ImagePreview]:
    """The turntable of the job in `folder` as pictures, one per turntable frame."""
    path = Path(folder) / TURNTABLE
    if not path.is_file():
        raise JokerError(f"{path} is missing", "re-generate; the job folder was emptied")
    return panel_images.show_tiles(panel_images.turntable_key(folder), path)


def turntable_icons(head: bpy.types.Object) -> list[int]:
    """Icon ids of the head's turntable frames (empty until it is shown)."""
    return panel_images.tile_icons(panel_images.turntable_key(head[JOB_FOLDER_KEY]))


def shown_head(context) -> bpy.types.Object | None:
    """The result the Results panel sums up: the active one, else the scene's last."""
    active = context.active_object
    if active is not None and JOB_FOLDER_KEY in active:
        return active
    last = bpy.data.objects.get(context.scene.joker.last_result)
    return last if last is not None and JOB_FOLDER_KEY in last else None
