"""`joker batch`: a spec of many items, one error line per bad item, and a batch that is
interrupted halfway resumes without redoing its finished items."""

import json
import subprocess
import sys

import pytest
from skimage import data

from joker.batch import STATE_NAME, read_batch, run_batch
from joker_core.errors import JokerError
from joker_core.png import encode_png
from tiny_engine import TINY

SPEC = """
references: [ada.png]
expressions: [neutral, crooked_smile]
job: {quality: preview, device: cpu, seed: 2}
items:
  - {reference: missing.png, name: lost, spec: {preset: wink}}
  - {reference: ada.png, name: typo, spec: {preset: no_such_face}}
"""


@pytest.fixture(scope="module")
def photo():
    return data.astronaut()


@pytest.fixture
def batch_file(tmp_path, photo):
    (tmp_path / "ada.png").write_bytes(encode_png(photo))
    path = tmp_path / "heads.yaml"
    path.write_text(SPEC)
    return path


def test_a_spec_crosses_references_with_expressions_and_lists_items(batch_file):
    items = read_batch(batch_file)
    assert [item.name for item in items] == ["ada_neutral", "ada_crooked_smile", "lost", "typo"]
    assert items[1].spec == {"quality": "preview", "device": "cpu", "seed": 2, "preset": "crooked_smile", "prompt": ""}
    assert items[0].reference == batch_file.parent / "ada.png"


@pytest.mark.parametrize("text, problem", [
    ("references: [a.png\n", "not valid"),
    ("referenses: [a.png]\n", "'referenses' is not a known field"),
    ("items: [{reference: a.png, name: x}, {reference: b.png, name: x}]\n", "both named 'x'"),
    ("job: {quality: preview}\n", "names no items"),
])
def test_a_bad_spec_file_is_refused_in_one_line_with_its_fix(tmp_path, text, problem):
    path = tmp_path / "batch.yaml"
    path.write_text(text)
    with pytest.raises(JokerError, match=problem) as error:
        read_batch(path)
    assert error.value.fix and "\n" not in str(error.value)


def test_an_interrupted_batch_resumes_without_redoing_finished_items(batch_file, tmp_path):
    items, out = read_batch(batch_file), tmp_path / "out"

    def interrupt_the_second(name, event):
        if name == "ada_crooked_smile" and event.stage == "prepare":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(items, out, tuning=TINY, progress=interrupt_the_second)
    first = out / "ada_neutral" / "head.glb"
    before = first.stat()
    assert not (out / "ada_crooked_smile").exists()  # the interrupted item left no half-made result
    assert json.loads((out / STATE_NAME).read_text())["items"]["ada_neutral"]["state"] == "done"

    seen = set()
    outcomes = run_batch(items, out, tuning=TINY, progress=lambda name, event: seen.add(name))
    assert [(o.name, o.state) for o in outcomes] == [("ada_neutral", "skipped"), ("ada_crooked_smile", "done"),
                                                     ("lost", "failed"), ("typo", "failed")]
    assert "ada_neutral" not in seen and first.stat().st_mtime_ns == before.st_mtime_ns
    assert (out / "ada_crooked_smile" / "head.glb").is_file()
    assert not list(out.glob("*.failed")) and not list(out.glob(".*.part"))
    state = json.loads((out / STATE_NAME).read_text())["items"]
    assert "missing.png does not exist" in state["lost"]["error"] and "no_such_face" in state["typo"]["error"]


def test_the_command_prints_one_line_per_bad_item_and_fails(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"items": [{"reference": "nowhere.png", "name": "a"},
                                          {"reference": "bad.json", "name": "b", "spec": {"quality": "ultra"}}]}))
    run = subprocess.run([sys.executable, "-m", "joker.cli", "batch", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1
    failures = [line for line in run.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failures) == 2 and all("Fix:" in line for line in failures)
    assert "b.spec.quality" in failures[1] and "0 of 2 items finished, 2 failed" in run.stdout
    assert (tmp_path / "bad_out" / STATE_NAME).is_file()
