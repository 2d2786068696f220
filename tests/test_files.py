import pytest

from joker_core.errors import JokerError
from joker_core.files import atomic_directory, atomic_write_bytes


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = atomic_write_bytes(tmp_path / "a" / "out.bin", b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_writing_below_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(JokerError, match="Fix:"):
        atomic_write_bytes(blocker / "out.bin", b"x")
    with pytest.raises(JokerError, match="Fix:"):
        with atomic_directory(blocker / "folder"):
            pass


def test_atomic_directory_appears_only_on_success(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "result") as staging:
            (staging / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(tmp_path / "result") as staging:
        (staging / "whole.txt").write_text("whole")
    assert (tmp_path / "result" / "whole.txt").read_text() == "whole"
    with pytest.raises(JokerError, match="not empty"):
        with atomic_directory(tmp_path / "result"):
            pass


def test_a_failed_block_can_be_kept_for_inspection(tmp_path):
    kept = tmp_path / "result.failed"
    kept.mkdir()
    (kept / "older.txt").write_text("an earlier failure")
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "result", keep_failed_at=kept) as staging:
            (staging / "log.txt").write_text("what happened")
            raise RuntimeError("boom")
    assert not (tmp_path / "result").exists()
    assert sorted(p.name for p in kept.iterdir()) == ["log.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["result.failed"]  # no staging folder left
