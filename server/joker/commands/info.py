"""`joker info`: what a head model holds, which presets it can take, and what this engine runs on."""

from __future__ import annotations

import argparse

from joker_core import __version__
from joker_core.head_model import JOINT_NAMES
from joker_core.presets import list_presets

from .render_normals import add_model_argument, load_model

HELP = "Describe a head model (or the built-in demo head), the expression presets and this engine."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    source = "built-in; a demo head, not FLAME" if args.model is None else str(args.model)
    names = ", ".join(model.expression_names) if model.expression_names else "none (unnamed PCA components)"
    if model.face_region is not None:
        region = f"{int(model.face_region.sum())} vertices, from the model"
    else:
        region = "none in the file; face mode uses the eye-based heuristic"
    rows = [
        ("model", f"{model.name} ({source})"),
        ("vertices", model.n_vertices),
        ("faces", len(model.faces)),
        ("joints", f"{model.n_joints} ({', '.join(JOINT_NAMES)})"),
        ("shape components", model.n_shape),
        ("expression components", model.n_expr),
        ("expression names", names),
        ("UV coordinates", "yes" if model.uv_coords is not None else "no"),
        ("face region", region),
        ("presets", ", ".join(list_presets())),
        *_engine_rows(),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label + ':':<{width + 1}} {value}")
    return 0


def _engine_rows() -> list[tuple[str, str]]:
    import torch

    devices = ["cpu"]
    devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return [("engine", f"joker {__version__}"), ("torch", torch.__version__), ("devices", ", ".join(devices)),
            ("slots", _slots(torch.cuda.device_count()))]


def _slots(gpus: int) -> str:
    """Jobs at once under each executor (without starting Ray: a cluster says its own)."""
    import os

    from joker.service.ray_executor import plan_slots

    here, _ = plan_slots({"GPU": gpus, "CPU": os.cpu_count() or 1}, None, "auto")
    per = "GPU" if gpus else "CPU"
    return (f"1 (joker serve); {here} with --executor ray on this machine (one per {per}); "
            "a Ray cluster: see joker serve's /v1/health")
