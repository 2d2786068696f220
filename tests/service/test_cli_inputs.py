"""Paths a user gets wrong on the command line and in the client (issue 16, items 14 and 15):
each is one line naming the fix, found before the file's content is read."""

from __future__ import annotations

import os
import re
import tracemalloc

import pytest

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
