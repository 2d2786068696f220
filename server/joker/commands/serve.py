"""`joker serve`: the local inference server the Blender add-on talks to."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

from joker_core.errors import JokerError

from joker.service.config import DEFAULT_HOST, DEFAULT_JOB_FUNCTION, DEFAULT_PORT, ServiceConfig

HELP = "Run the local inference server (HTTP API under /v1) that owns the device."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServiceConfig()
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to bind (default {DEFAULT_HOST}: this computer only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--data-dir", type=Path, default=defaults.data_dir,
                        help=f"job database and files (default {defaults.data_dir})")
    parser.add_argument("--token-file", type=Path, default=defaults.token_file,
                        help=f"access token, created on first start (default {defaults.token_file})")
    parser.add_argument("--device", default="auto", help="device the worker owns: auto, cpu, cuda, cuda:N, mps")
    parser.add_argument("--joker-weights", type=Path, default=None, help="weights of the joker prior, for /v1/info")
    parser.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_bytes / 2**20,
                        help="largest accepted request body in MiB (default %(default)g)")
    parser.add_argument("--max-view-megapixels", type=float, default=defaults.max_view_pixels / 2**20,
                        help="largest views x pixels per view a job may ask for, in Mi-pixels (default %(default)g; "
                             "the published rig is 100)")
    parser.add_argument("--retention-days", type=float, default=defaults.retention_days,
                        help="delete ended jobs older than this (default %(default)g; kept jobs never)")
    parser.add_argument("--retention-gb", type=float, default=defaults.retention_bytes / 2**30,
                        help="then delete the oldest ended jobs until all fit in this (default %(default)g)")
    parser.add_argument("--job-function", default=DEFAULT_JOB_FUNCTION,
                        help="module:function the worker runs per job (default %(default)s)")
    parser.add_argument("--sequence-function", default=None,
                        help="module:function the worker runs per sequence job (default: the job function's "
                             "module's generate_sequence if it has one, else joker.sequence:generate_sequence)")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local: one worker process on this machine (default); ray: jobs run on a Ray cluster, "
                             "one per GPU (docs/cluster.md)")
    parser.add_argument("--ray-address", default=None,
                        help="with --executor ray: the cluster to join (auto, ray://HOST:PORT); default: start Ray here")
    parser.add_argument("--ray-slots", type=int, default=None,
                        help="with --executor ray: jobs at once (default: one per GPU of the cluster, else one per CPU)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from joker.service.app import create_app

    config = ServiceConfig(host=args.host, port=args.port, data_dir=args.data_dir, token_file=args.token_file,
                           device=args.device, job_function=args.job_function,
                           sequence_function=args.sequence_function,
                           max_upload_bytes=int(args.max_upload_mb * 2**20),
                           max_view_pixels=int(args.max_view_megapixels * 2**20), retention_days=args.retention_days,
                           retention_bytes=int(args.retention_gb * 2**30), joker_weights=args.joker_weights,
                           executor=args.executor, ray_address=args.ray_address, ray_slots=args.ray_slots)
    if config.executor == "ray":
        from joker.service.ray_executor import connect

        connect(config.ray_address)  # before the server listens: a wrong address is a one-line error
    elif args.ray_address is not None or args.ray_slots is not None:
        raise JokerError("--ray-address and --ray-slots only apply to the Ray executor", "add --executor ray")
    if not _is_loopback(config.host):
        print(f"joker serve: WARNING: listening on {config.host} lets other computers reach the server over "
              "plain HTTP (the token and the photos cross the network unencrypted: use it on a trusted network, "
              "or behind a TLS proxy); anyone with the token can run jobs and read results", file=sys.stderr)
    _check_port_free(config.host, config.port)
    app = create_app(config)
    print(f"joker serve: listening on http://{config.host}:{config.port}/v1", flush=True)
    print(f"joker serve: access token in {config.token_file}; jobs in {config.data_dir}", flush=True)
    # Open event streams never end by themselves: give them 3 s, then stop anyway.
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", timeout_graceful_shutdown=3)
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise JokerError(f"cannot listen on {host}:{port} ({error.strerror})",
                             "stop what uses that port (another joker serve?) or pass --port") from None
