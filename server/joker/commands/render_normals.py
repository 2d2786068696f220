"""`joker render-normals`: normal maps of a posed head from a view rig, as PNGs + cameras.json."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

from joker_core.errors import JokerError
from joker_core.files import atomic_directory
from joker_core.head_model import HeadModel, load_model
from joker_core.png import encode_png
from joker_core.presets import get_preset
from joker_core.rig_params import RigParams

from joker.render.view_sets import VIEW_SET_HELP, view_set

HELP = "Render normal maps (and masks) of a posed head from a set of views into a folder."


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", type=Path, default=None,
                        help="head model file: official FLAME .pkl or Joker .npz (default: the built-in demo head)")


def add_pose_arguments(parser: argparse.ArgumentParser) -> None:
    """--preset, --params, --jaw, --expression: read back by `rig_params_from_args`."""
    pose = parser.add_argument_group("pose (applied in this order; later ones override)")
    pose.add_argument("--preset", help="a named expression preset (see `joker info`)")
    pose.add_argument("--params", type=Path, help="JSON file of rig parameters, e.g. {\"jaw_pose\": [0.3, 0, 0]}")
    pose.add_argument("--jaw", type=float, metavar="DEGREES", help="open the jaw by this angle")
    pose.add_argument("--expression", metavar="VALUES",
                      help="expression coefficients: comma-separated numbers, or NAME=VALUE pairs "
                           "with the model's expression names (e.g. smile=1,blink_left=0.5)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    add_pose_arguments(parser)
    views = parser.add_argument_group("views")
    views.add_argument("--views", default="grid:3x3", help=f"{VIEW_SET_HELP} (default: grid:3x3)")
    views.add_argument("--azimuth-range", type=float, default=45.0, metavar="DEG",
                       help="grid/random azimuths span +-DEG (default: 45)")
    views.add_argument("--elevation-range", type=float, default=20.0, metavar="DEG",
                       help="grid/random elevations span +-DEG (default: 20)")
    views.add_argument("--fov", type=float, default=30.0, metavar="DEG", help="field of view (default: 30)")
    views.add_argument("--size", type=int, default=512, help="image width and height in pixels (default: 512)")
    views.add_argument("--seed", type=int, default=0, help="seed of random view sets (default: 0)")
    parser.add_argument("--mode", choices=("full", "face"), default="full",
                        help="full head, or the face region only, as the official prior was trained (default: full)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument("--contact-sheet", type=int, default=None, metavar="COLUMNS",
                        help="also write contact_sheet.png with all views, highest on top")
    parser.add_argument("--out", type=Path, required=True, help="output folder (must be new or empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    if args.contact_sheet is not None and args.contact_sheet < 1:
        raise JokerError(f"contact sheet with {args.contact_sheet} columns", "use --contact-sheet 1 or more")
    written = render_to_folder(args, args.contact_sheet)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def render_to_folder(args: argparse.Namespace, contact_sheet_columns: int | None = None) -> list[Path]:
    """Everything `run` does, with a contact sheet (highest views on top) when columns are
    given. Returns the written paths, once the folder is in place."""
    from joker_core.framing import head_view_rig
    from joker.render.head_views import contact_sheet, render_head, write_views

    if not 16 <= args.size <= 4096:
        raise JokerError(f"image size {args.size} is out of range", "use --size between 16 and 4096")
    model = load_model(args.model)
    params = rig_params_from_args(args, model)
    rig = head_view_rig(model, fov_deg=args.fov, size=args.size)
    views = view_set(rig, args.views, args.azimuth_range, args.elevation_range, args.seed)
    from joker.devices import choose_device

    device = str(choose_device(args.device))
    description = {"model": model.name, "mode": args.mode, "preset": args.preset, "params": params.to_dict(),
                   "rig": {"center": list(rig.center), "distance": rig.distance, "fov_deg": rig.fov_deg,
                           "size": rig.size}}
    try:
        with atomic_directory(args.out, overwrite=args.overwrite) as staging:  # checked before rendering
            maps = render_head(model, params, [v.camera for v in views], mode=args.mode, device=device)
            written = write_views(staging, views, maps, description)
            if contact_sheet_columns:
                order = sorted(range(len(views)), key=lambda i: (-views[i].elevation, views[i].azimuth))
                sheet = contact_sheet([maps[i] for i in order], contact_sheet_columns)
                written.append(staging / "contact_sheet.png")
                written[-1].write_bytes(encode_png(sheet))
    except OSError as exc:  # the staging folder is gone; nothing half-written remains
        raise JokerError(f"cannot write the output folder {args.out}: {exc.strerror or exc}",
                         "choose an output folder on a writable disk with free space") from exc
    return [args.out / path.relative_to(staging) for path in written]


def rig_params_from_args(args: argparse.Namespace, model: HeadModel) -> RigParams:
    """RigParams from --preset, then --params, then --jaw / --expression, checked against
    the model."""
    params = get_preset(args.preset).params_for(model) if args.preset else RigParams()
    if args.params:
        params = _merge(params, _read_params_file(args.params))
    if args.jaw is not None:
        if not math.isfinite(args.jaw) or not -90.0 <= args.jaw <= 90.0:
            raise JokerError(f"jaw angle {args.jaw} is not between -90 and 90 degrees",
                             "give --jaw in degrees, e.g. --jaw 20")
        params = replace(params, jaw_pose=[math.radians(args.jaw), 0.0, 0.0])
    if args.expression:
        params = replace(params, expression=_parse_expression(args.expression, model))
    return params.validated(model)


def _read_params_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise JokerError(f"cannot read parameter file {path}: {exc.strerror}",
                         "pass --params a readable JSON file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JokerError(f"parameter file {path} is not valid JSON ({exc})",
                         "write it as a JSON object, e.g. {\"jaw_pose\": [0.3, 0, 0]}") from exc


def _merge(params: RigParams, overrides: dict) -> RigParams:
    given = RigParams.from_dict(overrides)  # names and values checked here
    return replace(params, **{name: getattr(given, name) for name in overrides})


def _parse_expression(text: str, model: HeadModel) -> list[float]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not any("=" in item for item in items):
        try:
            return [float(item) for item in items]
        except ValueError:
            raise JokerError(f"--expression '{text}' is not a list of numbers",
                             "write numbers separated by commas, or NAME=VALUE pairs") from None
    names = list(model.expression_names)
    if not names:
        raise JokerError(f"model '{model.name}' has no expression names",
                         "give --expression as comma-separated numbers")
    values = [0.0] * model.n_expr
    for item in items:
        name, _, value = (part.strip() for part in item.partition("="))
        if name not in names:
            raise JokerError(f"unknown expression name '{name}'", f"use one of {', '.join(names)}")
        try:
            values[names.index(name)] = float(value)
        except ValueError:
            raise JokerError(f"expression value '{value}' for '{name}' is not a number",
                             "write NAME=NUMBER, e.g. smile=0.8") from None
    return values
