"""An evaluation folder changes as a whole or not at all: an interrupt, a kill or a full disk while the new one
is written leaves the earlier evaluation as it was (no mix of two runs), and a rerun gives an undisturbed
run's files."""

from __future__ import annotations

import os
import subprocess
import sys

from test_evaluate import dirs, evaluate, fake_metrics  # noqa: F401 -- the module's fixtures

from vitmusic import atomic
from vitmusic.evaluation import report


def _contents(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_an_interrupt_while_writing_leaves_the_earlier_evaluation_whole(dirs, fake_metrics, monkeypatch):  # noqa: F811
    rc, out = evaluate(dirs)
    assert rc == 0
    before = _contents(out)
    (dirs / "gen" / "same.wav").unlink()  # the second run would score differently

    def interrupted(out_dir, result):  # after per_clip.csv and summary.json are written: the worst moment
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", interrupted)
    rc, _ = evaluate(dirs)
    assert rc == 130
    assert _contents(out) == before
    assert sorted(p.name for p in dirs.iterdir()) == ["gen", "out", "ref"]  # no temporary folder left


def test_a_killed_evaluation_leaves_nothing_a_rerun_does_not_clean(dirs, fake_metrics):  # noqa: F811
    rc, out = evaluate(dirs)
    before = _contents(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = dirs / f".out.p{dead.pid}h{atomic._host_tag()}-abcd1234.tmp"  # what SIGKILL leaves
    stale.mkdir()
    (stale / "summary.json").write_text("{half")
    (stale / ".summary.p1h000000-x.tmp.json").write_text("half")
    rc, out = evaluate(dirs)
    assert rc == 0 and not stale.exists()
    assert _contents(out) == before  # byte-equal


def test_out_holding_other_files_is_refused_before_scoring(dirs, fake_metrics, capsys):  # noqa: F811
    (dirs / "out").mkdir()
    (dirs / "out" / "notes.txt").write_text("mine")
    rc, out = evaluate(dirs)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert err.startswith(f"vitmusic evaluate: error: --out {out} holds 'notes.txt', which evaluate did not write")
    assert _contents(out) == {"notes.txt": b"mine"}


def test_a_full_disk_leaves_the_earlier_evaluation_and_a_rerun_matches(dirs, fake_metrics, capsys):  # noqa: F811
    from fault_helpers import fill, small_disk

    rc, reference = evaluate(dirs, "--plot-clips", "2")
    assert rc == 0
    ref = _contents(reference)
    with small_disk(dirs / "disk", "4m") as disk:
        argv = ["evaluate", "--ref", str(dirs / "ref"), "--gen", str(dirs / "gen"), "--out", str(disk / "out"),
                "--quiet", "--sample-rate", "16000", "--n-boot", "200", "--plot-clips", "2"]
        from vitmusic import cli

        assert cli.main(argv) == 0
        before = _contents(disk / "out")
        capsys.readouterr()
        fill(disk, leave_bytes=8 << 10)
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"vitmusic evaluate: error: no space left on device while writing {disk}"), err
        assert len(err.splitlines()) == 1
        assert _contents(disk / "out") == before
        assert sorted(p.name for p in disk.iterdir()) == [".filler", "out"]  # no temporary left
        os.remove(disk / ".filler")
        assert cli.main(argv) == 0
        assert _contents(disk / "out") == ref  # byte-equal to an undisturbed run
