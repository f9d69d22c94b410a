"""More than one process: work split between processes, one cache, N x B equals 1 x N*B, resume, generation.

The fast tests simulate the ranks in one process (``process_info`` patched); the slow ones run the CLI in 2 CPU
processes (gloo) under ``accelerate launch`` (torchrun), as users run it on GPUs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vitmusic import cli
from vitmusic.errors import ConfigError
from vitmusic.training import distributed

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "configs" / "tiny.yaml")


# ------------------------------------------------------------------------------------------ helpers (fast)
def test_split_and_check_divisible(monkeypatch):
    assert distributed.process_info() == (0, 1)
    assert distributed.split_for_process(list(range(5)), "clips") == [0, 1, 2, 3, 4]
    monkeypatch.setattr(distributed, "process_info", lambda: (1, 3))
    assert distributed.split_for_process(list(range(7)), "clips") == [1, 4]
    with pytest.raises(ConfigError, match="3 processes but only 2 clips to extract") as info:
        distributed.check_divisible(2, "clips to extract")
    assert "--num_processes 2 or fewer" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="needs 4 each"):
        distributed.check_divisible(10, "clips", per_process=4)


def test_alone_acts_as_one_process(monkeypatch):
    monkeypatch.setattr(distributed, "accelerate_state", lambda: pytest.fail("must not ask accelerate"))
    with distributed.on_this_process_only():
        assert distributed.process_info() == (0, 1)
        distributed.wait_for_everyone()
        assert distributed.gather_objects([1]) == [1]


class _Encoder:
    """Per-clip constant embeddings: enough to see which clip went where."""

    name_or_path, embed_dim, is_trainable = "fake", 3, False

    def sample_fps(self, rate_hz):
        return rate_hz

    def fingerprint(self):
        return {"fake": 1}

    def encode_frames(self, batch, mask):
        import torch

        e = torch.from_numpy(batch[..., 0, 0, :].astype(np.float32))  # [b, T, 3]
        return e, torch.from_numpy(mask)


class _Generator:
    sample_rate = 100

    def fingerprint(self):
        return {"id": "fake"}

    def encode_audio(self, y):
        return (y[:, None, ::10] * 100).round().long().repeat(1, 2, 1)  # [b, K=2, T_a]


def _clips(n):
    return [{"clip_id": f"c{i}", "piece": f"p{i}", "split": "train", "start_s": 0.0, "end_s": 1.0,
             "video": f"v{i}", "mix": f"a{i}"} for i in range(n)]


def _frames(path, t0, t1, fps):
    i = int(path[1:])
    return np.full((3 + i % 2, 2, 2, 3), i, np.uint8)


def _audio(path, t0, t1, sr):
    return np.full(sr, int(path[1:]) / 100, np.float32)


@pytest.mark.parametrize("n_clips, shard_size", [(7, 2), (3, 64)])
def test_extract_ranks_write_the_single_process_cache(tmp_path, monkeypatch, n_clips, shard_size):
    from vitmusic.training import features
    from vitmusic.training.features import extract_features, load_cache

    kw = dict(rate_hz=2.0, batch_size=2, shard_size=shard_size, progress=False, read_frames=_frames,
              read_audio=_audio)
    one = extract_features(_clips(n_clips), _Encoder(), _Generator(), tmp_path / "one", **kw)
    for rank in (1, 0):  # rank 1 finishes first; rank 0 joins every shard (the barriers are no-ops here)
        monkeypatch.setattr(features, "process_info", lambda rank=rank: (rank, 2))
        monkeypatch.setattr(features, "wait_for_everyone", lambda: None)
        two = extract_features(_clips(n_clips), _Encoder(), _Generator(), tmp_path / "two", **kw)
    assert two.name == one.name  # the same key
    a, b = load_cache(one), load_cache(two)
    assert a["clip_id"] == b["clip_id"] == [f"c{i}" for i in range(n_clips)]
    for col in ("embeds", "mask", "codes"):
        for x, y in zip(a[col], b[col]):
            np.testing.assert_array_equal(x, y)
    assert not list((tmp_path / "two").glob(".*.partial"))
    monkeypatch.setattr(features, "process_info", lambda: (0, 8))
    with pytest.raises(ConfigError, match=f"8 processes but only {n_clips} clips to extract"):
        extract_features(_clips(n_clips), _Encoder(), _Generator(), tmp_path / "three", **kw)


# ------------------------------------------------------------------------------------------ accelerate launch
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], env: dict[str, str], nproc: int = 2, timeout: int = 600) -> subprocess.CompletedProcess:
    """``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N -m vitmusic.cli ARGS``: N CPU
    processes with gloo. (``accelerate launch --cpu --num_processes N`` starts ONE process unless MPI is set up.)"""
    env = {**env, "ACCELERATE_USE_CPU": "true"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(nproc),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "vitmusic.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """6 synthetic pieces of 4 s in 2 s clips (4 train pieces = 8 clips, 1 val, 1 test) and a launch env."""
    from bench_helpers import tiny_prepared

    root = tmp_path_factory.mktemp("distributed")
    tiny_prepared(root, seed=2, duration_s=4.0, clip_s=2.0, splits=("train",) * 4 + ("val", "test"))
    env = {**os.environ, "VITMUSIC_CACHE": str(root / "presets"), "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    # the tiny presets exist before any launch, as real checkpoints do (the processes only read them)
    from vitmusic.encoders import materialize_tiny_preset
    from vitmusic.generators.musicgen.presets import materialize_tiny_generator

    materialize_tiny_preset("tiny-vit", root=root / "presets" / "presets")
    materialize_tiny_generator("tiny-musicgen", root=root / "presets" / "presets")
    return root, env


def _train_args(root: Path, out: Path, batch: int, *extra: str) -> list[str]:
    # no dropout of any kind: one process and two must see the same function
    return ["train", "--config", TINY, f"data.manifest={root / 'prepared'}", f"extract.cache_dir={root / 'cache'}",
            f"train.output_dir={out}", f"train.batch_size={batch}", "train.max_steps=6", "train.save_every=3",
            "train.eval_every=3", "train.log_every=1", "train.warmup_steps=0", "train.log_with=none",
            "generator.cond_dropout=0.0", "projection.dropout=0.0", "--no-progress", *extra]


def _losses(run: Path) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in json.loads((run / "history.json").read_text()) if "loss" in h}


@pytest.mark.slow
def test_extract_under_accelerate_equals_one_process(world, monkeypatch):
    from vitmusic.training.features import load_cache

    root, env = world
    monkeypatch.setenv("VITMUSIC_CACHE", env["VITMUSIC_CACHE"])
    common = ["--config", TINY, f"data.manifest={root / 'prepared'}", "extract.shard_size=4"]
    assert cli.main(["extract", *common, f"extract.cache_dir={root / 'cache1'}", "--no-progress"]) == 0
    r = launch(["extract", *common, f"extract.cache_dir={root / 'cache'}", "--no-progress"], env)
    assert r.returncode == 0, r.stderr[-8000:]
    (one,), (two,) = (list((root / c).iterdir()) for c in ("cache1", "cache"))
    assert one.name == two.name and r.stdout.count(str(two)) == 1  # one cache, printed once
    a, b = load_cache(one), load_cache(two)
    assert a["clip_id"] == b["clip_id"] and len(a) == 12
    for col in ("embeds", "codes", "mask"):
        for x, y in zip(a[col], b[col]):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_train_two_processes_match_one_with_the_global_batch_and_resume(world, monkeypatch):
    root, env = world
    monkeypatch.setenv("VITMUSIC_CACHE", env["VITMUSIC_CACHE"])
    one, two = root / "run1x4", root / "run2x2"
    assert cli.main(_train_args(root, one, 4)) == 0
    r = launch(_train_args(root, two, 2), env)
    assert r.returncode == 0, r.stderr[-8000:]
    l1, l2 = _losses(one), _losses(two)
    assert sorted(l1) == sorted(l2) == [1, 2, 3, 4, 5, 6]
    for step in l1:  # tolerance: float sums in another order (DDP's all-reduce), nothing else differs
        assert l2[step] == pytest.approx(l1[step], rel=1e-4, abs=1e-5), (step, l1, l2)
    assert l1[6] < l1[1]  # it trained
    # checkpoints written once, by one process
    names = sorted(p.name for p in (two / "checkpoints").iterdir())
    assert names == ["step_3", "step_6"], names
    assert not [p for p in two.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]
    assert (two / "final" / "model.safetensors").is_file()

    # --resume with 2 processes: drop the last checkpoint, continue from step 3, same losses as uninterrupted
    import shutil

    last = sorted((two / "checkpoints").iterdir())[-1]
    shutil.rmtree(last)
    shutil.rmtree(two / "final")
    r = launch(_train_args(root, two, 2, "--resume"), env)
    assert r.returncode == 0, r.stderr[-8000:]
    resumed = _losses(two)
    for step in (4, 5, 6):
        assert resumed[step] == pytest.approx(l2[step], rel=1e-5, abs=1e-6), (step, resumed, l2)
    assert (two / "final" / "model.safetensors").is_file()


@pytest.mark.slow
def test_generate_manifest_is_split_between_processes(world, monkeypatch):
    import soundfile as sf

    root, env = world
    monkeypatch.setenv("VITMUSIC_CACHE", env["VITMUSIC_CACHE"])
    run = root / "run1x4"
    if not (run / "final").is_dir():
        assert cli.main(_train_args(root, run, 4)) == 0
    args = ["generate", "--manifest", str(root / "prepared"), "--split", "train", "--checkpoint", str(run),
            "--guidance", "1", "--no-progress"]
    r = launch([*args, "--out-dir", str(root / "gen2")], env)
    assert r.returncode == 0, r.stderr[-8000:]
    assert cli.main([*args, "--out-dir", str(root / "gen1")]) == 0
    summary = json.loads((root / "gen2" / "generate.json").read_text())
    names = [i["name"] for i in summary["items"]]
    assert len(names) == 8 and names == [i["name"] for i in json.loads((root / "gen1" / "generate.json")
                                                                          .read_text())["items"]]
    for name in names:  # per-item seeds: the process an item ran on does not matter
        a, _ = sf.read(root / "gen1" / f"{name}.wav")
        b, _ = sf.read(root / "gen2" / f"{name}.wav")
        np.testing.assert_allclose(a, b, atol=1e-4)
    # more processes than items: one line from each process, exit code 2, nothing loaded
    r = launch([*args, "--split", "test", "--out-dir", str(root / "gen3")], env, nproc=3)
    assert r.returncode != 0
    assert "vitmusic generate: error: 3 processes but only 2 items to generate" in r.stderr


@pytest.mark.slow
def test_ablate_under_accelerate(world):
    root, env = world
    out = root / "abl"
    args = ["ablate", str(ROOT / "experiments" / "tiny_projection.yaml"), f"data.manifest={root / 'prepared'}",
            "train.max_steps=2", "train.warmup_steps=0", "evaluate.metrics=chroma", "evaluate.n_boot=20",
            "--out", str(out), "--no-progress", "--only", "mlp,retrieval"]
    r = launch(args, env)
    assert r.returncode == 0, r.stderr[-8000:]
    for v in ("mlp", "retrieval"):
        assert (out / v / "seed0" / "DONE").is_file()
        assert len(list((out / v / "seed0" / "generated").glob("*.wav"))) == 2
        clips = json.loads((out / v / "seed0" / "systems.json").read_text())["clips"]
        assert sorted(c["process"] for c in clips) == [0, 1]  # the 2 test clips were split between the processes
    assert (out / "results.md").is_file()
