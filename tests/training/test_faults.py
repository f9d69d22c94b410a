"""Faults during training: a second training into the same run folder, a loss or weights that become
non-finite, checkpoints whose files changed after they were written, a full disk while saving one."""

from __future__ import annotations

import errno
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_training import ToyTask, toy_config

from vitmusic import runs
from vitmusic.errors import ConfigError, DiskFullError
from vitmusic.training.checkpoint import list_checkpoints
from vitmusic.training.loop import Diverged, train

REPO = Path(__file__).resolve().parents[2]


class NanAtTask(ToyTask):
    """The toy task whose loss becomes NaN from the ``at``-th loss evaluation on."""

    def __init__(self, at: int, **kw):
        super().__init__(**kw)
        self.at, self.calls = at, 0

    def loss(self, model, batch):
        self.calls += 1
        loss = super().loss(model, batch)
        return loss * float("nan") if self.calls >= self.at and model.training else loss


def test_a_nan_loss_stops_training_in_one_line_keeping_the_last_good_checkpoint(tmp_path):
    cfg = toy_config(tmp_path, "train.save_every=4", "train.eval_every=100")
    with pytest.raises(Diverged) as e:
        train(cfg, NanAtTask(at=7), progress=False)
    msg = str(e.value)
    assert msg.startswith("training stopped at step 7: the loss became nan") and "\n" not in msg
    assert f"the last checkpoint, {tmp_path / 'run' / 'checkpoints' / 'step_4'}, is from before" in msg
    assert [c.name for c in list_checkpoints(tmp_path / "run")] == ["step_4"]
    assert not (tmp_path / "run" / "final").exists()
    assert isinstance(e.value, ConfigError)  # the CLI prints it in one line, exit 2


def test_weights_blown_up_by_an_absurd_lr_are_never_saved(tmp_path):
    """The config refuses lr=1e30; set on the object behind its back, training stops before saving inf/NaN."""
    cfg = toy_config(tmp_path, "train.save_every=1", "train.max_grad_norm=0")
    cfg.train.lr = 1e30
    with pytest.raises(Diverged, match="became"):
        train(cfg, ToyTask(), progress=False)
    for ckpt in list_checkpoints(tmp_path / "run"):
        for name in ("model.safetensors", "accelerate/model.safetensors"):
            assert all(bool(torch.isfinite(t).all()) for t in load_file(str(ckpt / name)).values())
    assert not (tmp_path / "run" / "final").exists()


def test_a_second_training_into_the_same_run_folder_is_refused(tmp_path):
    """Two trainings started together: the one that finds the folder locked says so; nothing is lost silently."""
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        from vitmusic import runs
        with runs.run_lock(sys.argv[1]):
            print("locked", flush=True)
            time.sleep(60)
        """), str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError) as e:
            train(toy_config(tmp_path), ToyTask(), progress=False)
        assert str(e.value) == (f"run folder {run} is in use by another training (process {holder.pid}): wait for "
                                "it to end or choose another train.output_dir")
        assert not (run / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    train(toy_config(tmp_path, "train.max_steps=2"), ToyTask(), progress=False)  # the lock died with its holder
    assert (run / "final").is_dir() and not (run / runs.LOCK_NAME).exists()


_RACER = textwrap.dedent(f"""
    import sys
    sys.path.insert(0, {str(REPO / 'tests' / 'training')!r})
    from pathlib import Path
    from test_training import ToyTask, toy_config
    from vitmusic.errors import ConfigError
    from vitmusic.training.loop import train
    try:
        train(toy_config(Path(sys.argv[1]), "train.lr=" + sys.argv[2], "train.max_steps=40"), ToyTask(),
              progress=False)
        print("trained", sys.argv[2])
    except ConfigError as e:
        print("refused", e)
    """)


def race_two_trainings(folder: Path) -> None:
    """Start two toy trainings (lr 0.01 and 0.05) into ``folder/run`` at once; assert that one trained and said
    so, the other was refused in one line, and ``final/`` is the one that trained (also used by
    scripts/adversarial_faults.py)."""
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(folder), lr], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for lr in ("0.01", "0.05")]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    trained = [o for o in outs if o.startswith("trained")]
    refused = [o for o in outs if o.startswith("refused")]
    # one trains; the other is refused: by the lock, or (started after the first ended) told to --resume
    assert len(trained) == 1 and len(refused) == 1, outs
    assert "in use by another training" in refused[0] or "already holds checkpoints" in refused[0], outs
    meta = json.loads((folder / "run" / "final" / "config.json").read_text())
    assert trained[0] == f"trained {meta['config']['train']['lr']}", outs  # final/ is the run that said so


def test_two_trainings_started_together_one_wins_one_is_refused(tmp_path):
    """The race of the issue: both pass the 'already holds checkpoints' check; the lock decides."""
    race_two_trainings(tmp_path)


def _alter(path: Path) -> None:
    state = load_file(str(path))
    save_file({k: v + 0.5 for k, v in state.items()}, str(path))


@pytest.mark.parametrize("name", ["accelerate/model.safetensors", "model.safetensors"])
def test_resume_refuses_a_checkpoint_whose_weights_changed(tmp_path, name):
    from vitmusic.training.checkpoint import check_checkpoint

    cfg = toy_config(tmp_path, "train.max_steps=8", "train.save_every=4")
    train(cfg, ToyTask(), progress=False, stop_after=4)
    ckpt = tmp_path / "run" / "checkpoints" / "step_4"
    assert set(json.loads((ckpt / "trainer_state.json").read_text())["files"]) >= {
        "model.safetensors", "config.json", "accelerate/model.safetensors", "accelerate/optimizer.bin"}
    _alter(ckpt / name)
    with pytest.raises(ConfigError) as e:
        train(cfg, ToyTask(), resume=True, progress=False)
    assert f"{ckpt / name}: its content differs from the sha256 recorded" in str(e.value)
    assert not (tmp_path / "run" / "final").exists()
    with runs.accept_changed_weights():  # --accept-changed-weights
        check_checkpoint(ckpt)
        train(cfg, ToyTask(), resume=True, progress=False)
    assert (tmp_path / "run" / "final").is_dir()


def test_a_full_disk_while_saving_a_checkpoint_leaves_no_temporary(tmp_path, monkeypatch):
    from accelerate import Accelerator

    def full(self, output_dir, **kw):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "optimizer.bin").write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed") from OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Accelerator, "save_state", full)
    with pytest.raises(DiskFullError, match="no space left on device while writing .*step_4"):
        train(toy_config(tmp_path, "train.save_every=4"), ToyTask(), progress=False)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == []
    assert not (tmp_path / "run" / runs.LOCK_NAME).exists()


def test_the_history_shows_the_losses_up_to_the_stop(tmp_path):
    with pytest.raises(Diverged):
        train(toy_config(tmp_path, "train.save_every=100"), NanAtTask(at=5), progress=False)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["step"] for h in hist if "loss" in h] == [1, 2, 3, 4]
    assert all(math.isfinite(h["loss"]) for h in hist if "loss" in h)
