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


# ------------------------------------------------------------------------------------------ faults
import errno  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from vitmusic import atomic  # noqa: E402
from vitmusic.errors import DiskFullError  # noqa: E402


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left" })'),
])
def test_a_full_disk_is_one_error_naming_the_path_and_leaves_nothing(tmp_path, error):
    out = tmp_path / "x.safetensors"
    out.write_text("old")
    with pytest.raises(DiskFullError, match=f"no space left on device while writing {out}"):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise error
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


def test_a_library_that_hides_the_cause_is_judged_by_the_free_space(tmp_path, monkeypatch):
    """libsndfile says only 'System error.': with (almost) no space left on that disk it is a full disk."""
    def fail():
        with atomic_path(tmp_path / "a.wav") as tmp:
            tmp.write_text("half")
            raise RuntimeError("System error.")

    with pytest.raises(RuntimeError, match="System error"):  # plenty of space: not a full disk, a bug
        fail()
    monkeypatch.setattr(atomic, "free_bytes", lambda path: 0)
    with pytest.raises(DiskFullError):
        fail()
    assert list(tmp_path.iterdir()) == []


def test_a_real_full_disk(tmp_path):
    from fault_helpers import small_disk

    with small_disk(tmp_path / "disk", "1m") as disk:
        (disk / "keep.bin").write_bytes(b"old")
        with pytest.raises(DiskFullError, match="keep.bin"):
            with atomic_path(disk / "keep.bin") as tmp:
                tmp.write_bytes(b"\1" * (2 << 20))
        with pytest.raises(DiskFullError, match="d"):
            with atomic_path(disk / "d", is_dir=True) as tmp:
                (tmp / "big").write_bytes(b"\1" * (2 << 20))
        assert sorted(p.name for p in disk.iterdir()) == ["keep.bin"]
        assert (disk / "keep.bin").read_bytes() == b"old"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write_and_a_live_ones_are_not(tmp_path):
    host = atomic._host_tag()
    dead, alive = _dead_pid(), os.getppid()
    names = [f".summary.p{dead}h{host}-abc.tmp.json", f".summary.p{alive}h{host}-def.tmp.json",
             f".summary.p{dead}h000000-ghi.tmp.json",  # another machine's: not judged
             f".f0_01.p{dead}h{host}-jkl.tmp.png",  # another output's
             f".summary.x.p{dead}h{host}-mno.tmp.json"]  # of 'summary.x.json'
    for n in names:
        (tmp_path / n).write_text("half")
    (tmp_path / f".eval.p{dead}h{host}-xyz.tmp").mkdir()
    atomic_write_text(tmp_path / "summary.json", "{}")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*names[1:], f".eval.p{dead}h{host}-xyz.tmp", "summary.json"])
    with atomic_path(tmp_path / "eval", is_dir=True):
        pass
    assert f".eval.p{dead}h{host}-xyz.tmp" not in {p.name for p in tmp_path.iterdir()}


def test_temporary_names_carry_the_writer(tmp_path):
    with atomic_path(tmp_path / "a.wav") as tmp:
        assert tmp.name.startswith(f".a.p{os.getpid()}h") and tmp.name.endswith(".tmp.wav")
        assert atomic._owner_is_gone(tmp.name) is False


@pytest.mark.parametrize("exchange", [True, False])
def test_a_folder_is_replaced_as_a_whole(tmp_path, monkeypatch, exchange):
    if not exchange:  # a system without renameat2: two renames
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    out = tmp_path / "eval"
    out.mkdir()
    (out / "report.md").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(out, is_dir=True) as tmp:
            (tmp / "summary.json").write_text("new")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]
    with atomic_path(out, is_dir=True) as tmp:
        (tmp / "summary.json").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]


def test_a_kill_between_the_two_renames_is_undone(tmp_path):
    """Without renameat2 the old folder is moved to .<name>.old first; found so, it is put back."""
    (tmp_path / ".eval.old").mkdir()
    (tmp_path / ".eval.old" / "report.md").write_text("old")
    atomic.remove_stale_temporaries(tmp_path / "eval")
    assert (tmp_path / "eval" / "report.md").read_text() == "old"
