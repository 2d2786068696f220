"""A real `joker serve` on a loopback port, running the demo job function in its worker.
(Not named conftest: other test folders have a conftest module too.)"""

from __future__ import annotations

import base64
import contextlib
import errno
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from PIL import Image

from joker_core.client import JokerClient
from joker_core.errors import JokerError

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

    def __init__(self, data_dir: Path, *extra: str, log_dir: Path | None = None):
        self.data_dir = data_dir
        self.log_dir = log_dir or data_dir
        self.token_file = data_dir / "token"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.process: subprocess.Popen | None = None

    def start(self) -> "Server":
        # tests/service for its job functions, tests/ for tiny_engine (the real engine, test-sized)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent),
                                                            os.environ.get("PYTHONPATH", "")])}
        self.log = open(self.log_dir / f"server-{time.monotonic_ns()}.log", "wb")
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


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "8m") -> Iterator[Path]:
    """A real, small file system (tmpfs) at `path`; the test is skipped unless it can mount one (root)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def fill_disk(folder: Path) -> Path:
    """Write into `folder` until its file system is full; the filler file."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as handle:
        for size in (2**20, 2**16, 2**12, 2**9):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def noise_submission(side: int) -> bytes:
    """A submit body whose photo is a side x side PNG of noise (it does not compress)."""
    import numpy as np

    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return json.dumps({"spec": {"prompt": "steps=1"}, "reference": b64(buffer.getvalue())}).encode()


def _memory(pid: int, field: str) -> int:
    """VmRSS or VmHWM (the peak) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def peak_rss_rise(server: Server, body: bytes, at_once: int = 1) -> int:
    """How far the server process's peak RSS rises over its RSS before while `at_once`
    clients submit `body` (each must be accepted; the jobs are then cancelled). Linux only:
    the peak is reset through /proc/PID/clear_refs."""
    pid = server.process.pid
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    except OSError as error:
        pytest.skip(f"cannot reset the server's peak RSS ({error})")
    before = _memory(pid, "VmRSS")
    token = server.token_file.read_text().strip()
    answers: list[httpx.Response] = []

    def submit() -> None:
        answers.append(httpx.post(f"{server.url}/v1/jobs", content=body, timeout=300, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"}))

    threads = [threading.Thread(target=submit) for _ in range(at_once)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rise = _memory(pid, "VmHWM") - before
    assert [answer.status_code for answer in answers] == [201] * at_once, [answer.text[:200] for answer in answers]
    client = server.client()
    for answer in answers:
        with contextlib.suppress(JokerError):  # it may have ended already
            client.cancel(answer.json()["id"])
    return rise
