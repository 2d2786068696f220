"""The `joker` command line. Each sub-command is a module in `joker.commands` with
`HELP`, `add_arguments(parser)` and `run(args) -> int`; they are discovered, not listed."""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import signal
import sys
import threading

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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds as Ctrl-C does: a job's
    staging folder becomes <out>.failed with its inputs and log, nothing is left half-made."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    record_engine_info()
    in_main_thread = threading.current_thread() is threading.main_thread()  # only there can it set handlers
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return args.run(args)
    except JokerError as error:
        print(f"joker {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"joker {args.command}: error: the disk is full ({error}). Fix: free some disk space, "
              "or write to another disk.", file=sys.stderr)
        return 2
    except Terminated:
        print(f"joker {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"joker {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
