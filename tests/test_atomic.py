import pytest

from vitmusic.atomic import atomic_path, atomic_write_text


def test_atomic_file_renamed_on_success(tmp_path):
    out = tmp_path / "a" / "x.txt"
    atomic_write_text(out, "hello")
    assert out.read_text() == "hello"
    assert [p.name for p in out.parent.iterdir()] == ["x.txt"]


def test_atomic_file_untouched_on_failure(tmp_path):
    out = tmp_path / "x.wav"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            assert tmp.suffix == ".wav"
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]


def test_atomic_dir_replaces(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "old").write_text("1")
    with atomic_path(out, is_dir=True) as tmp:
        (tmp / "new").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_atomic_outputs_get_umask_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        f = atomic_write_text(tmp_path / "r.csv", "x")
        with atomic_path(tmp_path / "d", is_dir=True) as d:
            (d / "x").write_text("1")
    finally:
        os.umask(mask)
    assert (f.stat().st_mode & 0o777) == 0o644
    assert ((tmp_path / "d").stat().st_mode & 0o777) == 0o755


def test_unwritable_destination_is_a_user_error(tmp_path, monkeypatch):
    from pathlib import Path

    from vitmusic.errors import VitmusicError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(VitmusicError, match="cannot write"):
        atomic_write_text(tmp_path / "afile" / "out.txt", "y")

    def refuse(self, *a, **k):  # a read-only parent (the tests may run as root, who may write anywhere)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(VitmusicError, match="Permission denied"):
        with atomic_path(tmp_path / "ro" / "x", is_dir=True):
            pass
    monkeypatch.undo()
    (tmp_path / "dir.txt").mkdir()
    with pytest.raises(VitmusicError, match="cannot write"):  # a folder where the file should go
        atomic_write_text(tmp_path / "dir.txt", "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "dir.txt"]


def test_leftover_temporary_folders_are_removed_on_the_next_run(tmp_path):
    """A kill during the final export leaves ``.final.<random>.tmp``; the next export removes it."""
    (tmp_path / ".final.abc123.tmp").mkdir()
    (tmp_path / ".final.abc123.tmp" / "model.safetensors").write_bytes(b"half")
    (tmp_path / ".other.abc.tmp").mkdir()  # another output's: left alone
    with atomic_path(tmp_path / "final", is_dir=True) as tmp:
        (tmp / "model.safetensors").write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.abc.tmp", "final"]
