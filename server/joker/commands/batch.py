"""`joker batch SPEC`: many heads from one JSON/YAML spec, resumable (see joker.batch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Generate many heads (references x expressions x prompts) from a JSON/YAML spec; re-run to resume."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="batch spec (.json or .yaml): references, expressions, prompts, job, items")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder, one sub-folder per item (default: <spec name>_out beside the spec)")


def run(args: argparse.Namespace) -> int:
    from joker.batch import STATE_NAME, read_batch, run_batch

    from ._progress import ProgressLine

    items = read_batch(args.spec)
    out = args.out or args.spec.with_name(f"{args.spec.stem}_out")
    lines = ProgressLine()
    print(f"{len(items)} items -> {out}/ (progress in {STATE_NAME})")

    def show(outcome) -> None:
        if outcome.state == "failed":
            print(f"FAILED {outcome.name}: {outcome.error}", file=sys.stderr)
        else:
            print(f"{outcome.state:7} {outcome.name}")

    outcomes = run_batch(items, out, progress=lambda name, event: lines(event), on_outcome=show)
    failed = sum(outcome.state == "failed" for outcome in outcomes)
    print(f"{len(outcomes) - failed} of {len(outcomes)} items finished" + (f", {failed} failed" if failed else ""))
    return 1 if failed else 0
