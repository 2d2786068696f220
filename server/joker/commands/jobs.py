"""`joker jobs`: list, inspect, cancel, re-queue or delete jobs of a running server."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from joker_core.client import DEFAULT_URL, JokerClient
from joker_core.protocol import JobState, JobStatus

HELP = "List, inspect, cancel, re-queue or delete jobs of a running `joker serve`."
ACTIONS = {"show": "status of one job (JSON)", "cancel": "cancel a queued or running job",
           "requeue": "run an interrupted, failed or cancelled job again", "delete": "delete an ended job and its files"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help="server address (default %(default)s)")
    parser.add_argument("--token-file", type=Path, default=None, help="the server's token file (default: the user's)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="jobs, newest first")
    listing.add_argument("--state", choices=[state.value for state in JobState], help="only jobs in this state")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default %(default)s)")
    for action, text in ACTIONS.items():
        actions.add_parser(action, help=text).add_argument("job_id")


def run(args: argparse.Namespace) -> int:
    client = JokerClient(args.url, token_file=args.token_file)
    if args.action == "list":
        print(_table(client.jobs(args.state, args.limit)))
        return 0
    if args.action == "delete":
        client.delete(args.job_id)
        print(f"deleted {args.job_id}")
        return 0
    calls = {"show": client.status, "cancel": client.cancel, "requeue": client.requeue}
    print(json.dumps(calls[args.action](args.job_id).to_dict(), indent=2))
    return 0


def _table(jobs: list[JobStatus]) -> str:
    if not jobs:
        return "no jobs"
    rows = [("ID", "STATE", "STAGE", "PROGRESS", "CREATED", "ERROR")]
    for job in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created_at))
        rows.append((job.id, job.state.value, job.stage, f"{job.progress:.0%}", created, (job.error or "")[:60]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
