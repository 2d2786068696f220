"""The command line under faults (issue 16, items 13 to 15): a full disk, SIGTERM, a folder
given as the photo, a huge model file. Each ends in one line naming the fix (or saying
what happened) and an exit code; a job's staging folder becomes <out>.failed with its
inputs and log, never a half-made <out> or a hidden .part folder."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import tracemalloc

import pytest
from PIL import Image
from skimage import data

from service_harness import fill_disk, small_filesystem
from joker.cli import main
from joker_core.errors import JokerError
from joker_core.head_model import load_model

GiB = 2**30


def _sparse(path, size: int, start: bytes = b""):
    """A file of `size` bytes that takes no disk space (a hole after `start`)."""
    with open(path, "wb") as handle:
        handle.write(start)
        handle.truncate(size)
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "Fix:" in err, err
    return err



# -- 15: a folder given as the photo ---------------------------------------------------------

def test_generate_with_a_folder_as_the_photo_says_it_is_a_folder_and_names_a_photo_in_it(tmp_path, capsys):
    folder = tmp_path / "shoot"
    folder.mkdir()
    (folder / "me.jpg").write_bytes(b"not read")
    assert main(["generate", str(folder), "--out", str(tmp_path / "out")]) == 2
    err = _one_error_line(capsys)
    assert f"photo {folder} is a folder, not a file" in err and f"e.g. {folder / 'me.jpg'}" in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.failed").exists()  # told before any work


# -- 14: a huge or wrong model file ----------------------------------------------------------

@pytest.mark.parametrize("name, size, start, problem", [
    ("huge.pkl", GiB, b"\x80\x02}q\x00", "is 1024 MiB, more than any head model"),
    ("huge.npz", GiB, b"PK\x03\x04", "is 1024 MiB, more than any head model"),
    ("zeros.pkl", 400 * 2**20, b"", "does not start like a pickle file"),
    ("zeros.npz", 400 * 2**20, b"", "does not start like a zip (.npz) file"),
])
def test_a_wrong_model_file_is_refused_from_its_size_or_first_bytes_without_reading_it(tmp_path, name, size, start,
                                                                                       problem):
    """16.14: `joker info` (and a job's spec.model) read the whole file first: 1 GiB of RSS."""
    path = _sparse(tmp_path / name, size, start)
    tracemalloc.start()
    try:
        with pytest.raises(JokerError, match=re.escape(problem)):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak} bytes allocated to refuse it"


def test_joker_info_on_a_huge_model_file_is_one_line(tmp_path, capsys):
    path = _sparse(tmp_path / "huge.pkl", GiB, b"\x80\x02")
    assert main(["info", str(path)]) == 2
    assert "Fix: pass an official FLAME" in _one_error_line(capsys)
    assert os.stat(path).st_blocks * 512 < 2**20  # the test itself wrote no gigabyte


# -- 13: a full disk and SIGTERM during `joker generate` ---------------------------------------

@pytest.fixture
def astronaut(tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def _when(condition, then, timeout: float = 120.0) -> threading.Thread:
    """Run `then` once `condition` holds, from a helper thread (the job runs in this one)."""
    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return then()
            time.sleep(0.01)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _inputs_written(parent):
    return lambda: any(parent.glob(".out.*.part/versions.json"))  # written after the inputs


def test_generate_onto_a_full_disk_is_one_line_and_keeps_its_log(tmp_path, astronaut, capsys):
    """16.13: onto a disk with 0 bytes free, a 107-line traceback (the log's close raising
    ENOSPC hid the clear error)."""
    with small_filesystem(tmp_path / "disk", "1m") as disk:
        fill_disk(disk)
        assert main(["generate", str(astronaut), "--out", str(disk / "out")]) == 2
        err = capsys.readouterr().err
        assert "Logging error" not in err and "Traceback" not in err, err
        line = err.strip().splitlines()[-1]
        assert line.startswith("joker generate: error: cannot write") and "No space left" in line, err
        assert line.endswith("Fix: free some disk space or choose another folder."), err
        assert sorted(path.name for path in disk.iterdir()) == ["filler.bin", "out.failed"]
        assert (disk / "out.failed" / "log.txt").exists()


def test_sigterm_ends_generate_as_ctrl_c_does(tmp_path, astronaut, capsys):
    """16.13: SIGTERM left the hidden .OUT.xxxx.part staging folder behind."""
    before = signal.getsignal(signal.SIGTERM)  # SIG_DFL, or e.g. Ray's when its tests ran first
    watcher = _when(_inputs_written(tmp_path), lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert main(["generate", str(astronaut), "--out", str(tmp_path / "out")]) == 128 + signal.SIGTERM
    watcher.join()
    assert capsys.readouterr().err.strip().splitlines()[-1] == "joker generate: terminated (SIGTERM)"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["astronaut.png", "out.failed"]  # no .out.*.part
    failed = tmp_path / "out.failed"
    assert {"reference.png", "spec.json"} <= {path.name for path in (failed / "inputs").iterdir()}
    assert "job failed" in (failed / "log.txt").read_text()  # the log says where it stopped
    assert signal.getsignal(signal.SIGTERM) is before  # restored for the rest of the process
