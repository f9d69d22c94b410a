import pytest

from vitmusic import cli
from vitmusic.errors import VitmusicError


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    assert "vitmusic" in capsys.readouterr().out


def test_no_command_exits_2(capsys):
    assert cli.main([]) == 2


def test_user_error_is_one_line_exit_2(monkeypatch, capsys):
    def boom(args):
        raise VitmusicError("bad thing happened")

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    p = sub.add_parser("boom")
    p.set_defaults(_run=boom)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "vitmusic boom: error: bad thing happened"
    assert "Traceback" not in err


def test_argparse_errors_are_one_line(capsys):
    """No usage block: one line naming the problem and the --help to read, exit 2."""
    for argv in (["synth-data", "--pieces", "many", "--out", "x"], ["prepare"], ["nope"], ["evaluate", "--gen"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "usage:" not in err and "--help" in err, err


@pytest.mark.parametrize("seed", ["-1", str(2**80)])
def test_out_of_range_seed_is_one_line(tmp_path, capsys, seed):
    assert cli.main(["synth-data", "--out", str(tmp_path / "s"), "--seed", seed]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vitmusic synth-data: error: --seed must be in 0..4294967295, got {seed}"
    assert not (tmp_path / "s").exists()


def _command(monkeypatch, run):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.add_parser("boom").set_defaults(_run=run)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)


def test_a_full_disk_in_a_library_writer_is_one_line(monkeypatch, capsys, tmp_path):
    import errno

    def run(args):  # e.g. tensorboard or a library writing its own file
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "events.out"))
        except OSError as e:
            raise RuntimeError("writer failed") from e

    _command(monkeypatch, run)
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"vitmusic boom: error: no space left on device while writing {tmp_path / 'events.out'}"


def test_a_full_disk_in_an_atomic_write_is_one_line(monkeypatch, capsys, tmp_path):
    import errno

    from vitmusic.atomic import atomic_path

    def run(args):
        with atomic_path(tmp_path / "a.wav"):
            raise OSError(errno.ENOSPC, "No space left on device")

    _command(monkeypatch, run)
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vitmusic boom: error: no space left on device while writing {tmp_path / 'a.wav'}")
    assert "\n" not in err and list(tmp_path.iterdir()) == []


def test_other_errors_keep_their_traceback(monkeypatch):
    def run(args):
        raise RuntimeError("a bug")

    _command(monkeypatch, run)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["boom"])


def test_sigterm_removes_the_temporaries_and_exits_143(monkeypatch, capsys, tmp_path):
    import os
    import signal

    from vitmusic.atomic import atomic_path

    def run(args):
        with atomic_path(tmp_path / "summary.json") as tmp:
            tmp.write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("not reached: SIGTERM raises here")

    _command(monkeypatch, run)
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["boom"]) == 143
    assert capsys.readouterr().err.strip() == "vitmusic boom: terminated"
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before  # restored for the caller
