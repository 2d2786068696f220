"""`joker fit PHOTO`: read the person from a photo (landmarks -> the rig fitted to them)
and print the ReferenceFit as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "Fit the head rig to a photo's face (shape, expression, jaw, pose, camera) and print it as JSON."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photo", type=Path, help="a portrait photo (PNG, JPEG, TIFF, WebP)")
    parser.add_argument("--model", help="head model file (FLAME .pkl or Joker .npz); default: the demo head")
    parser.add_argument("--embedding", help="FLAME landmark embedding (flame_static_embedding.pkl or DECA's "
                                            "landmark_embedding.npy), for FLAME models")
    parser.add_argument("--landmarks", choices=("68", "5"), default="68",
                        help="landmark model: 68 (default; iBUG 300-W data, non-commercial) or 5 (CC0 data, "
                             "pose and camera only)")
    parser.add_argument("--fov", type=float, default=25.0, help="the focal prior: field of view across the "
                                                                "photo's longer side, degrees (default 25)")
    parser.add_argument("--out", type=Path, help="write the JSON here instead of standard output")


def run(args: argparse.Namespace) -> int:
    from joker.fit.solve import FitSettings, fit_photo
    from joker.generation.job import load_model
    from joker.prior.projection.photo import load_photo
    from joker_core.files import atomic_write_bytes

    settings = FitSettings(landmark_model=args.landmarks, embedding_path=args.embedding, fov_deg=args.fov)
    fit = fit_photo(load_photo(args.photo), load_model(args.model), settings)
    text = json.dumps(fit.to_dict(), indent=1) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        atomic_write_bytes(args.out, text.encode())
    print(f"joker fit: landmark residual {fit.residual_px:.2f} px, confidence {fit.confidence:.2f}", file=sys.stderr)
    return 0
