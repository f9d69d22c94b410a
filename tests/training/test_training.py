"""The generic accelerate loop on a toy regression task: learning, schedule, accumulation, clipping,
freezing, checkpoints and exact resumption."""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import TensorDataset

from vitmusic import cli
from vitmusic.config import load_config
from vitmusic.errors import ConfigError
from vitmusic.training.checkpoint import list_checkpoints, resolve_resume
from vitmusic.training.loop import Task, check_frozen, train
from vitmusic.training.optim import build_optimizer, build_scheduler, lr_factor


class ToyTask:
    """y = x @ w_true through a frozen random feature layer and a trainable head (with dropout)."""

    def __init__(self, n=64, dim=8, seed=0, dropout=0.1):
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.frozen_layer = nn.Linear(dim, dim)
        with torch.no_grad():
            self.frozen_layer.weight.copy_(torch.eye(dim) + 0.1 * torch.randn(dim, dim, generator=g))
        self.frozen_layer.requires_grad_(False).eval()
        torch.manual_seed(seed)
        self.model = nn.ModuleDict({"head": nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, 1))})
        x = torch.randn(n, dim, generator=g)
        self.x, self.y = x, x @ torch.randn(dim, 1, generator=g)
        self.losses = []

    def trainable(self):
        return self.model

    def frozen(self):
        return {"features": self.frozen_layer}

    def train_dataset(self):
        return TensorDataset(self.x[:48], self.y[:48])

    def val_dataset(self):
        return TensorDataset(self.x[48:], self.y[48:])

    def collate(self, items):
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    def loss(self, model, batch):
        x, y = batch
        out = model["head"](self.frozen_layer(x))
        loss = nn.functional.mse_loss(out, y)
        self.losses.append(float(loss.detach()))
        return loss

    def to(self, device):
        self.frozen_layer.to(device)
        return self

    def describe(self):
        return {"features": "toy"}

    def save_pretrained(self, model, out_dir, meta):
        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            str(Path(out_dir) / "model.safetensors"),
        )
        (Path(out_dir) / "config.json").write_text(json.dumps(meta))


def toy_config(tmp_path, *overrides):
    return load_config(
        overrides=[
            f"train.output_dir={tmp_path / 'run'}",
            "train.lr=0.05",
            "train.batch_size=8",
            "train.max_steps=24",
            "train.warmup_steps=2",
            "train.eval_every=8",
            "train.save_every=8",
            "train.log_every=1",
            "train.log_with=none",
            "train.weight_decay=0.0",
            *overrides,
        ]
    )


def test_toy_task_is_a_task():
    assert isinstance(ToyTask(), Task)


def test_loss_goes_down_and_outputs(tmp_path):
    task = ToyTask()
    cfg = toy_config(tmp_path)
    final = train(cfg, task, progress=False)
    run = tmp_path / "run"
    hist = json.loads((run / "history.json").read_text())
    train_losses = [h["loss"] for h in hist if "loss" in h]
    val_losses = [h["val_loss"] for h in hist if "val_loss" in h]
    assert len(val_losses) == 3  # steps 8, 16, 24
    assert train_losses[-1] < 0.5 * train_losses[0]
    assert val_losses[-1] < val_losses[0]
    assert (run / "config.yaml").is_file() and (run / "loss.png").stat().st_size > 0
    assert load_config(run / "config.yaml") == cfg  # the resolved config reloads to the same thing
    assert sorted(p.name for p in final.iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((final / "config.json").read_text())
    assert meta["config"]["train"]["lr"] == 0.05 and meta["frozen_models"] == {"features": "toy"}
    assert meta["vitmusic_version"] and meta["step"] == 24


def test_checkpoint_contents(tmp_path):
    train(toy_config(tmp_path), ToyTask(), progress=False)
    ckpts = list_checkpoints(tmp_path / "run")
    assert [c.name for c in ckpts] == ["step_8", "step_16", "step_24"]
    top = sorted(p.name for p in ckpts[0].iterdir())
    assert top == ["accelerate", "config.json", "model.safetensors", "trainer_state.json"]
    # the exported weights are safetensors; pickles only inside accelerate's own resume state
    assert not [p for p in ckpts[0].iterdir() if p.suffix in (".bin", ".pkl", ".pt")]
    assert load_file(str(ckpts[0] / "model.safetensors")).keys() == {"head.1.weight", "head.1.bias"}
    assert not list((tmp_path / "run" / "checkpoints").glob(".*tmp"))


def test_only_trainable_params_change_and_all_get_grads(tmp_path):
    task = ToyTask()
    frozen_before = {k: v.clone() for k, v in task.frozen_layer.state_dict().items()}
    head_before = {k: v.clone() for k, v in task.model.state_dict().items()}
    train(toy_config(tmp_path, "train.max_steps=1", "train.warmup_steps=0"), task, progress=False)
    for k, v in task.frozen_layer.state_dict().items():
        assert torch.equal(v, frozen_before[k]), k
    for k, v in task.model.state_dict().items():
        assert not torch.equal(v, head_before[k]), k
    # every trainable parameter receives a gradient
    loss = task.loss(task.model, task.collate(list(task.train_dataset())[:4]))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in task.model.parameters())
    assert all(p.grad is None for p in task.frozen_layer.parameters())


def test_unfrozen_frozen_module_is_refused():
    task = ToyTask()
    task.frozen_layer.weight.requires_grad_(True)
    with pytest.raises(RuntimeError, match="frozen module 'features'"):
        check_frozen(task)
    task = ToyTask()
    assert check_frozen(task) == (9, 72)


def test_schedule_shape():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0)
    assert lr_factor(100, 10, 100, min_lr_ratio=0.1) == pytest.approx(0.1)
    opt = build_optimizer([nn.Parameter(torch.zeros(2, 2))], lr=1.0, weight_decay=0.0)
    sched = build_scheduler(opt, 4, 20)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))  # monotone cosine decay after warmup
    assert lrs[12] == pytest.approx(0.5 * (1 + math.cos(math.pi * 8 / 16)))


def test_weight_decay_skips_biases():
    opt = build_optimizer(list(nn.Linear(3, 2).parameters()), lr=0.1, weight_decay=0.3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.3, 0.0]
    assert [len(g["params"]) for g in opt.param_groups] == [1, 1]


def test_grad_accumulation_equals_big_batch(tmp_path):
    """batch 4 x accum 2 == batch 8 x accum 1 on a dropout-free task (same samples per optimizer step)."""
    a, b = ToyTask(dropout=0.0), ToyTask(dropout=0.0)
    train(toy_config(tmp_path / "a", "train.max_steps=6", "train.max_grad_norm=0"), a, progress=False)
    train(
        toy_config(
            tmp_path / "b",
            "train.max_steps=6",
            "train.max_grad_norm=0",
            "train.batch_size=4",
            "train.grad_accum=2",
        ),
        b,
        progress=False,
    )
    assert len(b.losses) == 2 * len(a.losses)  # half-size batches: twice the forward passes
    for k, v in a.model.state_dict().items():
        torch.testing.assert_close(v, b.model.state_dict()[k], rtol=1e-5, atol=1e-6)


def test_gradient_clipping(tmp_path):
    """With a tiny clip norm and plain SGD-like first Adam step the grad_norm logged is pre-clip, and the
    update magnitude is the same as without clipping for Adam; so check the clip through the logged norm."""
    task = ToyTask(dropout=0.0)
    train(toy_config(tmp_path, "train.max_steps=3", "train.max_grad_norm=1e-3"), task, progress=False)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    norms = [h["grad_norm"] for h in hist if "grad_norm" in h]
    assert len(norms) == 3 and all(n > 1e-3 for n in norms)  # norm before clipping, so clipping was active

    # what the optimizer is handed, whichever function accelerate uses to clip (it changed between releases)
    seen = []

    def before_step(optimizer, args, kwargs):
        grads = [p.grad.norm() for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack(grads))))

    handle = register_optimizer_step_pre_hook(before_step)
    try:
        train(
            toy_config(tmp_path / "b", "train.max_steps=2", "train.max_grad_norm=0.01"),
            ToyTask(),
            progress=False,
        )
    finally:
        handle.remove()
    assert len(seen) == 2 and all(n == pytest.approx(0.01, rel=1e-4) for n in seen)


def test_resume_is_exact(tmp_path):
    straight = ToyTask()
    train(toy_config(tmp_path / "a", "train.max_steps=20", "train.save_every=5", "train.log_every=4"), straight,
          progress=False)

    first = ToyTask()
    cfg = toy_config(tmp_path / "b", "train.max_steps=20", "train.save_every=5", "train.log_every=4")
    train(cfg, first, progress=False, stop_after=9)  # stops mid-epoch (6 batches per epoch)
    assert not (tmp_path / "b" / "run" / "final").exists()
    assert [c.name for c in list_checkpoints(tmp_path / "b" / "run")] == ["step_5", "step_9"]
    second = ToyTask(seed=0)
    with torch.no_grad():  # a fresh process would start from other weights: resume must restore them
        for p in second.model.parameters():
            p.add_(1.0)
    train(cfg, second, resume=True, progress=False)
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, second.model.state_dict()[k]), k
    ha = json.loads((tmp_path / "a" / "run" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "run" / "history.json").read_text())
    assert ha == hb


def test_tensorboard_logs_through_accelerate(tmp_path):
    pytest.importorskip("tensorboard")
    train(toy_config(tmp_path, "train.log_with=tensorboard", "train.max_steps=4"), ToyTask(), progress=False)
    events = list((tmp_path / "run" / "logs").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


def test_fresh_run_refuses_a_folder_with_checkpoints(tmp_path):
    cfg = toy_config(tmp_path, "train.max_steps=8")
    train(cfg, ToyTask(), progress=False)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train(cfg, ToyTask(), progress=False)


def test_resume_path_errors(tmp_path):
    assert resolve_resume(tmp_path, "latest") is None
    with pytest.raises(ConfigError, match="no checkpoint"):
        resolve_resume(tmp_path, tmp_path / "nowhere")


def test_train_cli_bad_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  lrr: 1\n")
    assert cli.main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vitmusic train: error: unknown config key 'train.lrr'")
    assert "\n" not in err


def test_bad_mixed_precision_is_config_error(tmp_path):
    with pytest.raises(ConfigError):
        load_config(overrides=["train.mixed_precision=fp8"])


# ---------------------------------------------------------------------------- end to end, tiny models
@pytest.mark.slow
def test_synth_prepare_extract_train_end_to_end(tmp_path, monkeypatch, capsys):
    """synth-data -> prepare -> extract -> train (tiny, CLI in-process) -> held-out teacher-forced CE."""
    from vitmusic.evaluation.conditioning import conditioning_gap
    from vitmusic.training.features import find_cache
    from vitmusic.training.tasks.musicgen import VideoMusicGenTask, load_frozen_models

    urmp, prep, cache, run = (tmp_path / n for n in ("urmp", "prep", "cache", "run"))
    assert cli.main(["synth-data", "--out", str(urmp), "--pieces", "6", "--duration", "4.5", "--source", "mixed",
                     "--seed", "0", "--no-progress"]) == 0
    assert cli.main(["prepare", "--urmp", str(urmp), "--out", str(prep), "--clip-seconds", "1.5",
                     "--ratios", "0.5,0.17,0.33"]) == 0
    configs = Path(__file__).resolve().parents[2] / "configs"
    common = ["--config", str(configs / "tiny.yaml"), f"data.manifest={prep}", f"extract.cache_dir={cache}"]
    assert cli.main(["extract", *common, "--no-progress"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1].rsplit("/", 1)[-1]
    assert find_cache(cache, key) is not None

    overrides = [f"train.output_dir={run}", "train.log_with=none", "train.max_steps=24", "train.lr=0.03",
                 "train.eval_every=12", "train.save_every=12", "train.log_every=4"]
    assert cli.main(["train", *common, *overrides, "--no-progress"]) == 0
    assert (run / "final" / "model.safetensors").is_file() and (run / "config.yaml").is_file()
    assert sorted(p.name for p in cache.iterdir()) == [key]  # training reused the cache: no second key

    cfg = load_config(configs / "tiny.yaml", common[2:] + overrides)
    encoder, generator = load_frozen_models(cfg)
    untrained = VideoMusicGenTask(cfg, generator, cache / key, encoder.fingerprint())
    before = conditioning_gap(untrained, "test")
    from vitmusic.projection import load_projection

    trained = VideoMusicGenTask(cfg, generator, cache / key, encoder.fingerprint())
    trained.projection = load_projection(run / "final")
    after = conditioning_gap(trained, "test")
    print(f"held-out CE before training: true {before['true']:.4f}  shuffled {before['shuffled']:.4f}")
    print(f"held-out CE after training:  true {after['true']:.4f}  shuffled {after['shuffled']:.4f} "
          f"({after['clips']} clips)")
    assert after["clips"] > 0 and math.isfinite(after["true"]) and math.isfinite(after["shuffled"])
    assert after["true"] < before["true"]  # what was learned carries over to unseen pieces


# ---------------------------------------------------------------------- bad checkpoints and inputs (issue 14)
def _stopped_run(tmp_path):
    cfg = toy_config(tmp_path, "train.max_steps=8", "train.save_every=4")
    train(cfg, ToyTask(), progress=False, stop_after=4)
    return cfg, tmp_path / "run" / "checkpoints" / "step_4"


def _evil_pickle() -> bytes:
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    return pickle.dumps(Evil(), protocol=2)


@pytest.mark.parametrize("damage", ["no accelerate", "optimizer garbage", "scheduler truncated",
                                    "optimizer evil pickle", "rng evil pickle", "rng missing", "state garbage",
                                    "state no step"])
def test_resume_from_a_damaged_checkpoint_is_one_config_error(tmp_path, damage, capsys):
    import shutil
    import zipfile

    cfg, ckpt = _stopped_run(tmp_path)
    acc = ckpt / "accelerate"
    if damage == "no accelerate":
        shutil.rmtree(acc)
    elif damage == "optimizer garbage":
        (acc / "optimizer.bin").write_bytes(b"\x00garbage" * 10)
    elif damage == "scheduler truncated":
        data = (acc / "scheduler.bin").read_bytes()
        (acc / "scheduler.bin").write_bytes(data[: len(data) // 2])
    elif damage == "optimizer evil pickle":  # a valid torch.save archive whose pickle runs code
        with zipfile.ZipFile(acc / "optimizer.bin") as z:
            names = z.namelist()
            items = {n: z.read(n) for n in names}
        pkl = next(n for n in names if n.endswith("data.pkl"))
        items[pkl] = _evil_pickle()
        with zipfile.ZipFile(acc / "optimizer.bin", "w") as z:
            for n, data in items.items():
                z.writestr(n, data)
    elif damage == "rng evil pickle":
        (acc / "random_states_0.pkl").write_bytes(_evil_pickle())
    elif damage == "rng missing":
        (acc / "random_states_0.pkl").unlink()
    elif damage == "state garbage":
        (ckpt / "trainer_state.json").write_text("{not json")
    elif damage == "state no step":
        (ckpt / "trainer_state.json").write_text('{"step": "four"}')
    with pytest.raises(ConfigError, match="checkpoint"):
        train(cfg, ToyTask(), resume=True, progress=False)
    assert "pwned" not in capsys.readouterr().out
    assert not (tmp_path / "run" / "final").exists()


def test_fp16_on_cpu_says_what_ran(tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="vitmusic"):
        train(toy_config(tmp_path, "train.max_steps=2", "train.mixed_precision=fp16"), ToyTask(), progress=False)
    assert any("fp16 is not available on cpu" in r.getMessage() and "fp32" in r.getMessage()
               for r in caplog.records)
    meta = json.loads((tmp_path / "run" / "final" / "config.json").read_text())
    assert meta["mixed_precision"] == {"requested": "fp16", "ran": "no", "device": "cpu"}


def test_train_checks_resume_and_manifest_before_loading_models(tmp_path, capsys, monkeypatch):
    """A bad --resume or a manifest whose videos are gone fails in one line, before any model is loaded."""
    import time

    from vitmusic.training.tasks import musicgen as musicgen_task

    def no_models(*a, **k):
        raise AssertionError("models loaded before the checks")

    monkeypatch.setattr(musicgen_task, "load_models", no_models)
    prep = tmp_path / "prep"
    prep.mkdir()
    clip = {"clip_id": "a_0000", "piece": "a", "split": "train", "start_s": 0.0, "end_s": 1.0,
            "video": str(tmp_path / "gone.mp4"), "mix": None}
    (prep / "manifest.jsonl").write_text(json.dumps(clip) + "\n")
    configs = Path(__file__).resolve().parents[2] / "configs"
    common = ["train", "--config", str(configs / "tiny.yaml"), f"data.manifest={prep}",
              f"train.output_dir={tmp_path / 'run'}", "--no-progress"]
    t = time.perf_counter()
    cases = [(["--resume", str(tmp_path / "nowhere")], "no checkpoint to resume from"),
             ([], "1 clip file(s) missing or empty, first")]
    cfg, ckpt = _stopped_run(tmp_path / "toy")
    import shutil

    shutil.rmtree(ckpt / "accelerate")
    cases.append((["--resume", str(ckpt)], "no accelerate/ folder"))
    capsys.readouterr()  # the toy run's own log lines
    for extra, fragment in cases:
        assert cli.main([*common[:1], *extra, *common[1:]]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and fragment in err, err
    assert cli.main(["extract", *common[1:5], "--no-progress"]) == 2  # extract checks the same, as early
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "1 clip file(s) missing or empty" in err, err
    assert time.perf_counter() - t < 20
