"""A real `joker serve` on a loopback port, running the demo job function in its worker.
(Not named conftest: other test folders have a conftest module too.)"""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

from joker_core.client import JokerClient

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(size=(32, 32), color=(200, 120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class Server:
    """`joker serve` in a subprocess; restartable on the same data dir."""

    def __init__(self, data_dir: Path, *extra: str):
        self.data_dir = data_dir
        self.token_file = data_dir / "token"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.process: subprocess.Popen | None = None

    def start(self) -> "Server":
        # tests/service for its job functions, tests/ for tiny_engine (the real engine, test-sized)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent),
                                                            os.environ.get("PYTHONPATH", "")])}
        self.log = open(self.data_dir / f"server-{time.monotonic_ns()}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "joker.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--token-file", str(self.token_file),
             "--job-function", "demo_job:generate", *self.extra],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, Path(self.log.name).read_text()  # why it did not start
            try:
                httpx.get(f"{self.url}/v1/health", timeout=5).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("server did not start within 30 s")

    def client(self, **kwargs) -> JokerClient:
        return JokerClient(self.url, token_file=self.token_file, **kwargs)

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(15)
        self.log.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
