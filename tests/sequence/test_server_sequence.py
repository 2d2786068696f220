"""Sequence jobs through a real `joker serve` running the real engine at test size: they
share the queue, report progress per frame, publish each frame's head as soon as it is
finished, and a cancel keeps the finished frames."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from joker_core.png import encode_png
from joker_core.protocol import JobState, SequenceSpec
from service.service_harness import Server, wait_until

SPEC = SequenceSpec.from_dict({"job": {"quality": "preview"},
                               "frames": [{"preset": "neutral"}, {"preset": "crooked_smile"},
                                          {"preset": "puffed_cheeks"}]})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), path])  # sequence_engine
    try:
        running = Server(tmp_path_factory.mktemp("sequence-server"), "--job-function", "sequence_engine:generate",
                         "--device", "cpu").start()
    finally:
        os.environ["PYTHONPATH"] = path
    yield running
    running.stop()


@pytest.mark.slow  # the add-on's sequence test covers frames published through the server in make test
def test_each_frame_is_published_while_the_sequence_runs_and_a_cancel_keeps_it(server, photo, tmp_path):
    client = server.client()
    job = client.submit(SPEC, encode_png(photo))
    first = "frames/frame_0001/head.glb"
    wait_until(lambda: first in client.status(job.id).artifacts, timeout=240)
    running = client.status(job.id)
    assert running.state is JobState.RUNNING and 0.3 <= running.progress < 1.0
    assert running.stage.startswith(("frame 1 finished", "frame 2"))
    assert not any(name.startswith("frames/frame_0002/") or "/." in name for name in running.artifacts)  # staging
    assert client.download(job.id, first, tmp_path / "frame1.glb").read_bytes()[:4] == b"glTF"

    client.cancel(job.id)
    wait_until(lambda: client.status(job.id).state.finished, timeout=5)
    ended = client.status(job.id)
    assert ended.state is JobState.CANCELLED
    assert first in ended.artifacts and "sequence.json" in ended.artifacts
    assert "frames/frame_0003/head.glb" not in ended.artifacts
