"""The `joker` command line. Each sub-command is a module in `joker.commands` with
`HELP`, `add_arguments(parser)` and `run(args) -> int`; they are discovered, not listed."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from joker_core.errors import JokerError

from . import __version__, commands
from .generation.output import record_engine_info


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield info.name.replace("_", "-"), importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="joker", description="Joker for Blender engine.")
    parser.add_argument("--version", action="version", version=f"joker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _command_modules():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    record_engine_info()
    try:
        return args.run(args)
    except JokerError as error:
        print(f"joker {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"joker {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
