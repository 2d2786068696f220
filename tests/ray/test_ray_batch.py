"""`joker batch` on a real local Ray instance: the items run on Ray workers, their folders
come back as bytes, and a batch interrupted halfway resumes without redoing finished items."""

from __future__ import annotations

import json

import pytest
from skimage import data

from joker.batch import STATE_NAME, read_batch, run_batch
from joker_core.png import encode_png
from tiny_engine import TINY

SPEC = """
references: [ada.png]
expressions: [neutral, wink]
job: {quality: preview, device: cpu, seed: 2}
items:
  - {reference: missing.png, name: lost}
"""


@pytest.mark.slow  # `make test-slow`: over the suite's 5-minute budget on CI's 2 cores
def test_a_batch_on_ray_resumes_after_an_interrupt_without_redoing_items(ray_cluster, tmp_path):
    (tmp_path / "ada.png").write_bytes(encode_png(data.astronaut()))
    (tmp_path / "heads.yaml").write_text(SPEC)
    items, out = read_batch(tmp_path / "heads.yaml"), tmp_path / "out"
    finished = []

    def interrupt_after_the_first_head(outcome):
        if outcome.state == "done":
            finished.append(outcome.name)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(items, out, tuning=TINY, on_outcome=interrupt_after_the_first_head, ray_address=ray_cluster)
    [first] = finished
    before = (out / first / "head.glb").stat()
    assert json.loads((out / STATE_NAME).read_text())["items"][first]["state"] == "done"
    assert len([item for item in items if (out / item.name).exists()]) == 1  # the others left nothing half-made

    outcomes = run_batch(items, out, tuning=TINY, ray_address=ray_cluster)
    states = {o.name: o.state for o in outcomes}
    assert states == {**{item.name: "done" for item in items[:2]}, first: "skipped", "lost": "failed"}
    assert (out / first / "head.glb").stat().st_mtime_ns == before.st_mtime_ns
    assert all((out / item.name / "head.glb").is_file() and (out / item.name / "metrics.json").is_file()
               for item in items[:2])
    assert not list(out.glob("*.failed")) and not list(out.glob(".*.part"))
    assert "missing.png does not exist" in json.loads((out / STATE_NAME).read_text())["items"]["lost"]["error"]
