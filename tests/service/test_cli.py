"""`joker serve` says where it listens; `joker jobs` drives a running server from a terminal."""

from __future__ import annotations

import json
import subprocess
import sys

from service_harness import ROOT, png_bytes, wait_until
from joker_core.protocol import JobState


def _jobs(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "joker.cli", "jobs", "--url", server.url,
                           "--token-file", str(server.token_file), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_serve_prints_its_address_and_token_file(server):
    log = open(server.log.name).read()
    assert f"listening on http://127.0.0.1:{server.port}/v1" in log
    assert f"access token in {server.token_file}" in log


def test_jobs_list_show_cancel_and_errors(server):
    client = server.client()
    done = client.wait(client.submit({"prompt": "steps=1"}, png_bytes()).id)
    long = client.submit({"prompt": "steps=300 step_s=0.05"}, png_bytes())

    listing = _jobs(server, "list")
    assert listing.returncode == 0 and done.id in listing.stdout and long.id in listing.stdout
    assert listing.stdout.splitlines()[0].split() == ["ID", "STATE", "STAGE", "PROGRESS", "CREATED", "ERROR"]
    assert json.loads(_jobs(server, "show", done.id).stdout)["state"] == "succeeded"

    wait_until(lambda: client.status(long.id).state is JobState.RUNNING)
    assert _jobs(server, "cancel", long.id).returncode == 0
    wait_until(lambda: client.status(long.id).state is JobState.CANCELLED)

    again = _jobs(server, "cancel", long.id)
    assert again.returncode == 2 and "only queued or running jobs can be cancelled" in again.stderr
    missing = _jobs(server, "show", "nope")
    assert missing.returncode == 2 and "job_id: no job 'nope'" in missing.stderr


def test_serve_refuses_a_port_in_use_and_a_data_folder_in_use(server, tmp_path):
    for args in (["--port", str(server.port), "--data-dir", str(tmp_path)],
                 ["--port", "0", "--data-dir", str(server.data_dir)]):
        result = subprocess.run([sys.executable, "-m", "joker.cli", "serve", "--host", "127.0.0.1",
                                 "--token-file", str(tmp_path / "token"), *args],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "Fix:" in result.stderr and ("pass --port" in result.stderr or "--data-dir" in result.stderr)
