"""Encoder LoRA adapters trained end to end: split preprocessing, the frame cache, training through the one
loop (adapters only), exact resume, save -> load -> generate, the CLI and the ablation (tiny models, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from media_helpers import moving_square_video
from safetensors.torch import load_file

from vitmusic import cli
from vitmusic.config import load_config
from vitmusic.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
KINDS = ("tiny-vit", "tiny-clip", "tiny-videomae")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Two short videos with a soundtrack each, cut into 6 clips (4 train, 2 val) in a manifest."""
    root = tmp_path_factory.mktemp("lora")
    from vitmusic.data.audio import write_audio
    from vitmusic.generators.musicgen.model import load_generator

    sample_rate = load_generator("tiny-musicgen").sample_rate
    rng = np.random.default_rng(0)
    clips = []
    for v in range(2):
        video = moving_square_video(root / f"v{v}.mp4", 60, 30, seed=v)
        mix = root / f"v{v}.wav"
        write_audio(mix, (0.1 * rng.standard_normal(2 * sample_rate)).astype(np.float32), sample_rate)
        for i in range(3):
            clips.append({"clip_id": f"v{v}_{i}", "piece": f"v{v}", "split": ["train", "train", "val"][i],
                          "start_s": 0.5 * i, "end_s": 0.5 * i + 1.0, "video": str(video), "mix": str(mix)})
    (root / "manifest.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clips))
    yield {"root": root, "clips": clips, "video": moving_square_video(root / "in.mp4", 40, 30, seed=5)}


def lora_config(env, run: Path, *overrides: str):
    return load_config(CONFIGS / "tiny.yaml", [
        f"data.manifest={env['root']}", f"extract.cache_dir={env['root'] / 'cache'}", f"train.output_dir={run}",
        "train.log_with=none", "train.batch_size=2", "train.max_steps=3", "train.warmup_steps=0",
        "train.eval_every=3", "train.save_every=2", "encoder.lora.rank=4", *overrides,
    ])


def lora_task(config):
    from vitmusic.training.tasks.musicgen import build_task

    return build_task(config, progress=False)


def _frames(b: int, t: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (b, t, 40, 56, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------- encoder: two public steps
@pytest.mark.parametrize("name", KINDS)
def test_split_preprocessing_is_the_old_processor_path(name):
    """preprocess_frames + encode_preprocessed == the processor's full call + the model (bit for bit)."""
    from vitmusic.encoders import load_encoder

    enc = load_encoder(name)
    frames = _frames(2, 8, seed=1)
    mask = np.ones((2, 8), bool)
    mask[1, 5:] = False
    pixels = enc.preprocess_frames(frames, mask)
    assert pixels.dtype == torch.uint8 and pixels.shape == (2, 8, 3, 32, 32)
    assert not pixels[1, 5:].any()  # masked frames are not processed
    # the exact model input of the old code path: the processor with rescale + normalize on
    video = name == "tiny-videomae"
    full = enc.processor([list(frames[0])] if video else list(frames[0]), return_tensors="pt")["pixel_values"]
    assert torch.equal(enc._pixel_values(pixels[0]), full.reshape(8, 3, 32, 32))
    with torch.no_grad():
        embeds, out_mask = enc.encode_frames(frames, mask)
        again = enc.encode_preprocessed(pixels, mask)
        ref = enc.model(pixel_values=full).last_hidden_state
    assert torch.equal(again[0], embeds) and torch.equal(again[1], out_mask)
    if video:  # 4 temporal slots of 16 patches each, mean-pooled
        expected = ref[0].reshape(4, 16, -1).mean(1)
    elif name == "tiny-vit":
        expected = ref[:, 0]
    else:
        expected = enc.model.vision_model(pixel_values=full).pooler_output
    torch.testing.assert_close(embeds[0], expected, rtol=0, atol=0)


# ---------------------------------------------------------------------------- frame cache
def test_frame_cache_contents_and_key(env, tmp_path):
    from vitmusic.encoders import load_encoder
    from vitmusic.generators.musicgen.model import load_generator
    from vitmusic.training.features import cache_key, extract_features, frame_cache_fingerprint, load_cache

    gen = load_generator("tiny-musicgen")
    r4 = load_encoder("tiny-vit", rate_hz=4.0, lora={"r": 4})
    r8 = load_encoder("tiny-vit", rate_hz=4.0, lora={"r": 8, "alpha": 3.0})
    clips = env["clips"]
    opts = {"store": "frames", "rate_hz": 4.0, "progress": False}
    a = extract_features(clips, r4, gen, tmp_path, **opts)
    assert extract_features(clips, r8, gen, tmp_path, **opts) == a  # the rank plays no part
    assert extract_features(clips, load_encoder("tiny-vit"), gen, tmp_path, **opts) == a  # nor do adapters
    b = extract_features(clips, r4, gen, tmp_path, **{**opts, "rate_hz": 8.0})  # another frame rate
    assert b != a and sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name])
    fp = json.loads((a / "fingerprint.json").read_text())
    assert cache_key(fp) == a.name and fp["sample_fps"] == 4.0
    assert set(fp) == {"version", "content", "preprocess", "sample_fps", "codec", "clips"}  # no weights
    smaller = load_encoder("tiny-vit", rate_hz=4.0, lora={"r": 4})
    smaller.processor.size = {"height": 24, "width": 24}  # another model input size: another key
    other = frame_cache_fingerprint(clips, smaller.preprocess_fingerprint(), gen.fingerprint(), 4.0)
    assert cache_key(other) != a.name
    normalised = load_encoder("tiny-vit")
    normalised.processor.image_mean = [0.1, 0.2, 0.3]  # applied after the cache: same frames, same key
    same = frame_cache_fingerprint(clips, normalised.preprocess_fingerprint(), gen.fingerprint(), 4.0)
    assert cache_key(same) == a.name

    # rows: the preprocessed frames of the decoded clip, and the same codes as the feature cache
    from vitmusic.data.video import VideoReader

    row = load_cache(a)[4]
    clip = clips[4]
    with VideoReader(clip["video"]) as reader:
        frames = reader.read(clip["start_s"], clip["end_s"], fps=4.0).data
    assert row["pixels"].shape == (4, 3, 32, 32)
    assert np.array_equal(row["pixels"], r4.preprocess_frames(frames[None])[0].numpy())
    feats = load_cache(extract_features(clips, load_encoder("tiny-vit"), gen, tmp_path, rate_hz=4.0,
                                        progress=False))
    assert np.array_equal(row["codes"], feats[4]["codes"])
    with torch.no_grad():  # adapters start at B = 0: encoding the stored frames gives the cached embeddings
        embeds, _ = r4.encode_preprocessed(torch.from_numpy(row["pixels"].astype(np.uint8))[None])
    torch.testing.assert_close(embeds[0], torch.from_numpy(feats[4]["embeds"]), rtol=1e-5, atol=1e-6)


def test_frame_cache_resumes_from_finished_shards(env, tmp_path):
    from vitmusic.encoders import load_encoder
    from vitmusic.encoders.video import read_clip_frames
    from vitmusic.generators.musicgen.model import load_generator
    from vitmusic.training.features import extract_features

    enc, gen = load_encoder("tiny-vit", rate_hz=4.0, lora={"r": 4}), load_generator("tiny-musicgen")
    calls, resumed = [], False

    class Interrupted(Exception):
        pass

    def failing(path, t0, t1, fps):
        calls.append(path)
        if len(calls) == 3 and not resumed:
            raise Interrupted  # inside the second shard
        return read_clip_frames(path, t0, t1, fps)

    with pytest.raises(Interrupted):
        extract_features(env["clips"], enc, gen, tmp_path, rate_hz=4.0, store="frames", shard_size=2,
                         batch_size=1, progress=False, read_frames=failing)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]  # no final folder yet
    calls.clear()
    resumed = True
    folder = extract_features(env["clips"], enc, gen, tmp_path, rate_hz=4.0, store="frames", shard_size=2,
                              batch_size=1, progress=False, read_frames=failing)
    assert len(calls) == 4 and (folder / "fingerprint.json").is_file()  # shard 0 was not decoded again


# ---------------------------------------------------------------------------- training
def test_lora_run_trains_adapters_only(env, tmp_path):
    from vitmusic.training.loop import check_frozen
    from vitmusic.training.tasks.musicgen import LoraConditioner, run_training

    config = lora_config(env, tmp_path / "run", "train.max_steps=2")
    task = lora_task(config)
    enc, gen = task.encoder, task.generator
    assert isinstance(task.trainable(), LoraConditioner) and "pixels" in task.train_dataset()[0]
    adapters = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert adapters and all("lora_" in n for n in adapters)
    base_before = {k: v.clone() for k, v in enc.state_dict().items() if k not in adapters}
    lora_before = {k: v.clone() for k, v in enc.state_dict().items() if k in adapters}
    gen_before = {k: v.clone() for k, v in gen.state_dict().items()}
    n_trainable, n_frozen = check_frozen(task)
    n_adapters = sum(p.numel() for p in enc.trainable_parameters())
    assert n_trainable == n_adapters + sum(p.numel() for p in task.projection.parameters())
    assert n_frozen == sum(p.numel() for p in gen.parameters()) + sum(
        p.numel() for p in enc.parameters() if not p.requires_grad)

    final = run_training(config, task, progress=False)
    state = enc.state_dict()
    assert all(torch.equal(state[k], v) for k, v in base_before.items())  # base weights bit for bit
    assert all(torch.equal(gen.state_dict()[k], v) for k, v in gen_before.items())
    assert all(not torch.equal(state[k], v) for k, v in lora_before.items())  # every adapter moved
    # every adapter and projection parameter receives a gradient; nothing frozen does
    model = task.trainable()
    loss = task.loss(model, task.collate([task.train_dataset()[i] for i in range(2)]))["loss"]
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert all(p.grad is None for p in enc.parameters() if not p.requires_grad)
    assert all(p.grad is None for p in gen.parameters())

    assert sorted(p.name for p in final.iterdir()) == ["config.json", "encoder_adapters.safetensors",
                                                       "model.safetensors"]
    saved = load_file(str(final / "encoder_adapters.safetensors"))
    assert set(saved) == adapters and all(torch.equal(saved[k], state[k]) for k in saved)
    extra = json.loads((final / "config.json").read_text())["extra"]
    assert extra["encoder_adapters"]["lora"]["r"] == 4 and extra["config"]["encoder"]["lora"]["rank"] == 4
    assert extra["parameters"] == {"trainable": n_trainable, "frozen": n_frozen}
    step = tmp_path / "run" / "checkpoints" / "step_2"
    assert (step / "encoder_adapters.safetensors").is_file() and (step / "model.safetensors").is_file()

    # the loop's check proves the base weights frozen: a leak is refused
    next(p for p in enc.parameters() if not p.requires_grad).requires_grad_(True)
    with pytest.raises(RuntimeError, match="frozen module 'encoder'"):
        check_frozen(task)


def test_resume_gives_identical_projection_and_adapters(env, tmp_path):
    from vitmusic.training.loop import train

    straight = lora_task(lora_config(env, tmp_path / "a", "train.max_steps=4", "train.save_every=1"))
    train(straight.config, straight, progress=False)
    cfg = lora_config(env, tmp_path / "b", "train.max_steps=4", "train.save_every=1")
    first = lora_task(cfg)
    train(cfg, first, progress=False, stop_after=2)
    second = lora_task(cfg)  # a fresh process: fresh adapters and projection, restored by --resume
    train(cfg, second, resume=True, progress=False)
    a, b = straight.trainable().state_dict(), second.trainable().state_dict()
    assert set(a) == set(b) and any(k.startswith("adapters.") for k in a)
    for k, v in a.items():
        assert torch.equal(v, b[k]), k
    sa, sb = straight.encoder.trainable_state_dict(), second.encoder.trainable_state_dict()
    assert all(torch.equal(v, sb[k]) for k, v in sa.items())
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    assert ha == json.loads((tmp_path / "b" / "history.json").read_text())


def test_conditioning_gap_and_pca_refusal(env, tmp_path):
    from vitmusic.evaluation.conditioning import conditioning_gap

    task = lora_task(lora_config(env, tmp_path / "run"))
    gap = conditioning_gap(task, "val")
    assert gap["clips"] == 2 and np.isfinite(gap["true"]) and np.isfinite(gap["shuffled"])
    assert task.trainable() is task.trainable()
    from vitmusic.projection import build_projection

    task.projection = build_projection("linear", task.encoder.embed_dim, task.generator.cond_dim)
    assert task.trainable().projection is task.projection  # a swapped-in (e.g. loaded) projection is used
    with pytest.raises(ConfigError, match="pca"):
        lora_task(lora_config(env, tmp_path / "pca", "projection.kind=pca"))


# ---------------------------------------------------------------------------- generation
@pytest.fixture(scope="module")
def trained(env, tmp_path_factory):
    from vitmusic.training.tasks.musicgen import run_training

    run = tmp_path_factory.mktemp("lora_run") / "run"
    config = lora_config(env, run)
    task = lora_task(config)
    run_training(config, task, progress=False)
    yield {"run": run, "task": task, "config": config}


def test_save_load_round_trip_reproduces_generation(env, trained):
    from vitmusic.inference.musicgen import MusicGenPipeline, load_pipeline

    task = trained["task"]
    memory = MusicGenPipeline(trained["config"], task.encoder, task.projection, task.generator)
    loaded = load_pipeline(trained["run"])
    mine, theirs = task.encoder.trainable_state_dict(), dict(loaded.encoder.named_parameters())
    assert all(torch.equal(theirs[k], v) for k, v in mine.items())
    assert not loaded.encoder.is_trainable and not loaded.encoder.training  # frozen after loading
    assert loaded.encoder.fingerprint()["adapters_sha256"]  # its features key on the trained adapters
    a = memory.generate_video(env["video"], seed=3)
    b = loaded.generate_video(env["video"], seed=3)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    # the trained adapters matter: the frozen encoder gives other embeddings
    from vitmusic.training.tasks.musicgen import load_frozen_models

    frozen, _ = load_frozen_models(trained["config"])
    pixels = torch.from_numpy(np.asarray(task.train_dataset()[0]["pixels"]))[None]
    with torch.no_grad():
        assert not torch.allclose(frozen.encode_preprocessed(pixels)[0], loaded.encoder.encode_preprocessed(pixels)[0])


def test_missing_adapter_file_is_one_config_error(trained, tmp_path):
    import shutil

    from vitmusic.inference.models import load_run_models
    from vitmusic.inference.musicgen import load_pipeline

    copy = tmp_path / "final"
    shutil.copytree(trained["run"] / "final", copy)
    (copy / "encoder_adapters.safetensors").unlink()
    with pytest.raises(ConfigError) as info:
        load_pipeline(copy)
    assert "encoder_adapters.safetensors not found" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="trained encoder LoRA adapters"):
        load_run_models(trained["config"])


def test_cli_train_then_generate(env, tmp_path, capsys):
    run, out = tmp_path / "run", tmp_path / "music.wav"
    common = ["--config", str(CONFIGS / "tiny.yaml"), f"data.manifest={env['root']}",
              f"extract.cache_dir={env['root'] / 'cache'}"]
    assert cli.main(["train", *common, f"train.output_dir={run}", "train.log_with=none", "train.max_steps=2",
                     "train.batch_size=2", "train.warmup_steps=0", "encoder.lora.rank=4", "--no-progress"]) == 0
    assert (run / "final" / "encoder_adapters.safetensors").is_file()
    assert cli.main(["generate", "--video", str(env["video"]), "--checkpoint", str(run), "--out", str(out),
                     "--no-progress"]) == 0
    import soundfile as sf

    info = sf.info(str(out))
    assert info.frames > 0
    (run / "final" / "encoder_adapters.safetensors").unlink()
    capsys.readouterr()
    assert cli.main(["generate", "--video", str(env["video"]), "--checkpoint", str(run), "--out",
                     str(tmp_path / "x.wav"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "encoder_adapters.safetensors not found" in err and "\n" not in err


# ---------------------------------------------------------------------------- ablation
@pytest.mark.slow
def test_ablate_lora_variant_runs(env, tmp_path, capsys):
    exp = tmp_path / "lora_tiny.yaml"
    exp.write_text(
        f"base: {CONFIGS / 'tiny.yaml'}\nbaseline: frozen\n"
        "overrides: [train.max_steps=2, train.warmup_steps=0, train.log_with=none, generate.guidance_scale=1.0]\n"
        "evaluate: {metrics: chroma, n_boot: 20, plot_clips: 0}\n"
        "variants:\n  frozen: []\n  lora: [encoder.lora.rank=4, encoder.lora.alpha=8]\n"
    )
    out = tmp_path / "abl"
    assert cli.main(["ablate", str(exp), f"data.manifest={env['root']}", "data.test_split=val", "--out",
                     str(out), "--no-progress"]) == 0
    for v in ("frozen", "lora"):
        folder = out / v / "seed0"
        assert (folder / "DONE").is_file() and len(list((folder / "generated").glob("*.wav"))) == 2
    assert (out / "lora" / "seed0" / "run" / "final" / "encoder_adapters.safetensors").is_file()
    assert "lora" in (out / "results.md").read_text()
