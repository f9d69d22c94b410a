"""Feature cache (keys, reuse, invalidation, resumable extraction) and the MusicGen task trained from it."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vitmusic.config import load_config
from vitmusic.errors import DataError
from vitmusic.training.features import (
    FeatureDataset,
    cache_fingerprint,
    cache_key,
    collate_features,
    extract_features,
    find_cache,
    load_cache,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RATE_HZ = 4.0


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Tiny encoder + generator (presets materialised in a temp cache) and two short videos with audio."""
    root = tmp_path_factory.mktemp("features")
    from vitmusic.data.audio import write_audio
    from vitmusic.data.videowriter import write_video
    from vitmusic.encoders import load_encoder
    from vitmusic.generators.musicgen.model import load_generator

    encoder = load_encoder("tiny-vit", rate_hz=RATE_HZ)
    generator = load_generator("tiny-musicgen")
    rng = np.random.default_rng(0)
    clips = []
    for v in range(2):
        video, mix = root / f"v{v}.mp4", root / f"v{v}.wav"
        # a bright square moving differently per video, so embeddings differ between clips
        frames = np.full((60, 48, 64, 3), 20, np.uint8)
        for t in range(60):
            x = (t * (v + 1) * 2) % 48
            frames[t, 10:30, x : x + 16] = 230
        write_video(video, frames, 30)
        write_audio(mix, (0.1 * rng.standard_normal(2 * generator.sample_rate)).astype(np.float32),
                    generator.sample_rate)
        for i in range(4):
            clips.append({
                "clip_id": f"v{v}_{i:04d}", "piece": f"v{v}", "split": ["train", "train", "val", "test"][i],
                "start_s": 0.5 * i, "end_s": 0.5 * i + 0.5, "video": str(video), "mix": str(mix),
            })
    yield {"root": root, "encoder": encoder, "generator": generator, "clips": clips}


class Counting:
    """Wraps an encoder and counts encode_frames calls."""

    def __init__(self, encoder):
        self.encoder, self.calls = encoder, 0

    def __getattr__(self, name):
        return getattr(self.encoder, name)

    def encode_frames(self, *a, **kw):
        self.calls += 1
        return self.encoder.encode_frames(*a, **kw)


def rows(folder):
    ds = load_cache(folder)
    return [{k: (np.asarray(v).tolist()) for k, v in ds[i].items()} for i in range(len(ds))]


def test_cache_contents_match_direct_encoding(env, tmp_path):
    enc, gen = env["encoder"], env["generator"]
    folder = extract_features(env["clips"], enc, gen, tmp_path, rate_hz=RATE_HZ, batch_size=3, progress=False)
    assert find_cache(tmp_path, folder.name) == folder
    fp = json.loads((folder / "fingerprint.json").read_text())
    assert cache_key(fp) == folder.name and fp["sample_fps"] == enc.sample_fps(RATE_HZ)
    ds = load_cache(folder)
    assert len(ds) == 8 and list(ds["clip_id"]) == [c["clip_id"] for c in env["clips"]]
    assert len(load_cache(folder, "train")) == 4 and len(load_cache(folder, "test")) == 2

    from vitmusic.data.audio import load_audio
    from vitmusic.data.video import VideoReader

    clip = env["clips"][5]  # v1, 0.5-1.0 s
    with VideoReader(clip["video"]) as r:
        frames = r.read(clip["start_s"], clip["end_s"], fps=enc.sample_fps(RATE_HZ)).data
    emb, mask = enc.encode_frames(frames[None])
    item = FeatureDataset(ds)[5]
    assert item["embeds"].shape == (2, enc.embed_dim) == tuple(emb[0].shape)  # 0.5 s at 4 Hz
    torch.testing.assert_close(item["embeds"], emb[0].float(), rtol=1e-4, atol=1e-5)
    assert item["mask"].all()
    y, _ = load_audio(clip["mix"], sample_rate=gen.sample_rate, t0=clip["start_s"], t1=clip["end_s"])
    codes = gen.encode_audio(torch.from_numpy(y)[None])[0]
    assert item["codes"].shape == (gen.num_codebooks, int(0.5 * gen.frame_rate))
    assert torch.equal(item["codes"], codes)


def test_same_config_reuses_cache_without_encoding(env, tmp_path):
    first = Counting(env["encoder"])
    a = extract_features(env["clips"], first, env["generator"], tmp_path, rate_hz=RATE_HZ, progress=False)
    assert first.calls > 0
    again = Counting(env["encoder"])
    b = extract_features(env["clips"], again, env["generator"], tmp_path, rate_hz=RATE_HZ, progress=False)
    assert a == b and again.calls == 0


def test_changes_give_a_new_key(env, tmp_path):
    enc, gen, clips = env["encoder"], env["generator"], env["clips"]
    a = extract_features(clips, enc, gen, tmp_path, rate_hz=RATE_HZ, progress=False)
    # another frame rate: new key, and the new cache has other time lengths
    b = extract_features(clips, enc, gen, tmp_path, rate_hz=8.0, progress=False)
    assert a != b
    assert FeatureDataset(load_cache(b))[0]["embeds"].shape[0] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name])

    base = cache_fingerprint(clips, enc.fingerprint(), gen.fingerprint(), RATE_HZ, enc.sample_fps(RATE_HZ))
    key = cache_key(base)
    other_encoder = {**enc.fingerprint(), "weights_sha256": "0" * 64}
    assert cache_key(cache_fingerprint(clips, other_encoder, gen.fingerprint(), RATE_HZ, 4.0)) != key
    other_codec = {**gen.fingerprint(), "config_sha256": "x"}
    assert cache_key(cache_fingerprint(clips, enc.fingerprint(), other_codec, RATE_HZ, 4.0)) != key
    # the conditioning entry does not change the audio codes: same key
    same_codec = {**gen.fingerprint(), "entry": "inputs_embeds"}
    assert cache_key(cache_fingerprint(clips, enc.fingerprint(), same_codec, RATE_HZ, 4.0)) == key
    moved = [dict(c, end_s=c["end_s"] + 0.1) if i == 0 else c for i, c in enumerate(clips)]
    assert cache_key(cache_fingerprint(moved, enc.fingerprint(), gen.fingerprint(), RATE_HZ, 4.0)) != key
    # a re-written source file (new mtime) invalidates too
    st = os.stat(clips[0]["mix"])
    os.utime(clips[0]["mix"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert cache_key(cache_fingerprint(clips, enc.fingerprint(), gen.fingerprint(), RATE_HZ, 4.0)) != key
    finally:
        os.utime(clips[0]["mix"], ns=(st.st_atime_ns, st.st_mtime_ns))


def test_two_jobs_building_one_cache_build_it_once(env, tmp_path):
    """Two jobs that need the same cache at once (parallel evaluations, a benchmark started twice): one builds
    it, the other waits and reuses it. Without the lock both wrote one ``.partial`` folder and the first to
    finish removed it under the other (FileNotFoundError)."""
    import threading
    import time

    from vitmusic.encoders.video import read_clip_frames

    def slow(path, t0, t1, fps):  # widen the window in which the builds overlap
        time.sleep(0.05)
        return read_clip_frames(path, t0, t1, fps)

    single = Counting(env["encoder"])
    reference = extract_features(env["clips"], single, env["generator"], tmp_path / "ref", rate_hz=RATE_HZ,
                                 shard_size=2, batch_size=1, progress=False)
    jobs = [Counting(env["encoder"]) for _ in range(2)]
    got, errors = [None, None], []

    def job(k):
        try:
            got[k] = extract_features(env["clips"], jobs[k], env["generator"], tmp_path / "c", rate_hz=RATE_HZ,
                                      shard_size=2, batch_size=1, progress=False, read_frames=slow)
        except BaseException as e:  # noqa: BLE001 -- reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=job, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert got[0] == got[1] and got[0].name == reference.name
    assert sorted(j.calls for j in jobs) == [0, single.calls]
    assert rows(got[0]) == rows(reference)
    assert not (tmp_path / "c" / f".{reference.name}.partial").exists()


def test_extract_resumes_after_interrupt(env, tmp_path):
    enc, gen, clips = env["encoder"], env["generator"], env["clips"]
    reference = extract_features(clips, enc, gen, tmp_path / "ref", rate_hz=RATE_HZ, shard_size=3,
                                 batch_size=2, progress=False)
    from vitmusic.encoders.video import read_clip_frames

    seen = []

    def interrupted(path, t0, t1, fps):
        if len(seen) == 4:  # in the second shard (clips 3..5)
            raise KeyboardInterrupt
        seen.append(t0)
        return read_clip_frames(path, t0, t1, fps)

    with pytest.raises(KeyboardInterrupt):
        extract_features(clips, enc, gen, tmp_path / "c", rate_hz=RATE_HZ, shard_size=3, batch_size=2,
                         progress=False, read_frames=interrupted)
    partial = tmp_path / "c" / f".{reference.name}.partial"
    assert sorted(p.name for p in partial.iterdir() if p.is_dir()) == ["shard_00000"]
    assert find_cache(tmp_path / "c", reference.name) is None
    counting = Counting(enc)
    done = extract_features(clips, counting, gen, tmp_path / "c", rate_hz=RATE_HZ, shard_size=3, batch_size=2,
                            progress=False)
    assert done.name == reference.name and not partial.exists()
    assert counting.calls == 3  # shards 2 and 3 only: batches of 2+1 and 2 clips
    assert rows(done) == rows(reference)


def test_collate_pads_time_and_crops_codes():
    items = [
        {"clip_id": "a", "embeds": torch.ones(3, 2), "mask": torch.ones(3, dtype=torch.bool),
         "codes": torch.arange(8).reshape(2, 4)},
        {"clip_id": "b", "embeds": torch.ones(2, 2), "mask": torch.ones(2, dtype=torch.bool),
         "codes": torch.arange(6).reshape(2, 3)},
    ]
    b = collate_features(items)
    assert b["embeds"].shape == (2, 3, 2) and b["embeds"][1, 2].abs().sum() == 0
    assert b["mask"].tolist() == [[True, True, True], [True, True, False]]
    assert b["codes"].tolist() == [[[0, 1, 2], [4, 5, 6]], [[0, 1, 2], [3, 4, 5]]]
    assert b["clip_id"] == ["a", "b"]


def test_clips_without_video(env, tmp_path):
    with pytest.raises(DataError, match="no clip with a video"):
        extract_features([dict(env["clips"][0], video=None)], env["encoder"], env["generator"], tmp_path,
                         rate_hz=RATE_HZ, progress=False)
    with pytest.raises(DataError, match="no such file"):
        extract_features([dict(env["clips"][0], video=str(tmp_path / "gone.mp4"))], env["encoder"],
                         env["generator"], tmp_path, rate_hz=RATE_HZ, progress=False)


# ---------------------------------------------------------------------------- the MusicGen task on the cache
def task_config(tmp_path, *overrides):
    return load_config(CONFIGS / "tiny.yaml", [f"train.output_dir={tmp_path / 'run'}", "train.log_with=none",
                                               "train.batch_size=2", *overrides])


def make_task(env, tmp_path, *overrides):
    from vitmusic.training.tasks.musicgen import VideoMusicGenTask

    cfg = task_config(tmp_path, *overrides)
    folder = extract_features(env["clips"], env["encoder"], env["generator"], env["root"] / "cache",
                              rate_hz=RATE_HZ, progress=False)
    return cfg, VideoMusicGenTask(cfg, env["generator"], folder, env["encoder"].fingerprint())


def test_musicgen_task_trains_only_the_projection(env, tmp_path):
    from vitmusic.training.loop import check_frozen, train

    cfg, task = make_task(env, tmp_path, "train.max_steps=2", "train.warmup_steps=0", "train.eval_every=2",
                          "train.save_every=2")
    n_train, n_frozen = check_frozen(task)
    assert n_train == sum(p.numel() for p in task.projection.parameters()) and n_frozen > 0
    gen_before = {k: v.clone() for k, v in env["generator"].state_dict().items()}
    proj_before = {k: v.clone() for k, v in task.projection.state_dict().items()}

    # every projection parameter receives a gradient through the frozen generator
    task.projection.train()
    out = task.loss(task.projection, task.collate([task.train_dataset()[i] for i in range(2)]))
    loss = out["loss"]  # the mean of the per-codebook cross-entropies, logged next to it
    K = env["generator"].num_codebooks
    assert set(out) == {"loss", *(f"ce_codebook_{k}" for k in range(K))}
    assert torch.allclose(loss, torch.stack([out[f"ce_codebook_{k}"] for k in range(K)]).mean())
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in task.projection.parameters())
    assert all(p.grad is None for p in env["generator"].parameters())
    task.projection.zero_grad(set_to_none=True)

    final = train(cfg, task, progress=False)
    for k, v in env["generator"].state_dict().items():
        assert torch.equal(v, gen_before[k]), k
    assert any(not torch.equal(v, proj_before[k]) for k, v in task.projection.state_dict().items())

    from vitmusic.projection import load_projection

    loaded = load_projection(final)
    for k, v in task.projection.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    meta = json.loads((final / "config.json").read_text())["extra"]
    assert meta["frozen_models"]["generator"]["id"] == "tiny-musicgen"
    assert meta["frozen_models"]["encoder"]["kind"] == "vit" and meta["config"]["projection"]["kind"] == "mlp"
    ckpt = tmp_path / "run" / "checkpoints" / "step_2"
    assert {"model.safetensors", "config.json", "accelerate", "trainer_state.json"} <= {p.name for p in ckpt.iterdir()}
    assert load_file(str(ckpt / "model.safetensors")).keys() == load_file(str(final / "model.safetensors")).keys()


@pytest.mark.parametrize("kind", ["linear", "transformer", "pca"])
def test_other_projection_kinds(env, tmp_path, kind):
    from vitmusic.training.tasks.musicgen import run_training

    cfg, task = make_task(env, tmp_path, f"projection.kind={kind}", "projection.hidden_dim=32",
                          "train.max_steps=1", "train.warmup_steps=0", "projection.n_components=4")
    final = run_training(cfg, task, progress=False)
    assert {p.name for p in final.iterdir()} == {"model.safetensors", "config.json"}
    assert json.loads((final / "config.json").read_text())["kind"] == kind
    if kind == "pca":
        assert not (tmp_path / "run" / "checkpoints").exists()  # fitted, not trained


def test_lora_config_loads_trainable_adapters_and_a_frame_cache_kind():
    """encoder.lora.rank > 0: training gets fresh trainable adapters (a frame cache, tests/test_lora_training.py);
    load_frozen_models still gives the plain frozen encoder (feature caches, baselines)."""
    from vitmusic.training.tasks.musicgen import load_frozen_models, load_models

    cfg = load_config(CONFIGS / "tiny.yaml", ["encoder.lora.rank=4"])
    encoder, _ = load_models(cfg)
    assert encoder.is_trainable and encoder.lora_config["r"] == 4
    assert encoder.lora_config["seed"] == cfg.train.seed
    frozen, _ = load_frozen_models(cfg)
    assert not frozen.is_trainable and frozen.lora_config is None


def test_training_learns_a_video_dependent_target(env, tmp_path):
    """Sanity of the whole chain (cache -> projection -> frozen generator -> loop): when the audio codes
    depend on the video (two 'pieces', each with its own look and its own constant code), the trained
    projection gives a lower held-out cross-entropy with the true video than with the other piece's."""
    from datasets import Dataset

    from vitmusic.evaluation.conditioning import conditioning_gap
    from vitmusic.training.features import DATA_DIR, FINGERPRINT_NAME, _features, embed_features
    from vitmusic.training.loop import train
    from vitmusic.training.tasks.musicgen import VideoMusicGenTask

    gen = env["generator"]
    g = torch.Generator().manual_seed(0)
    # a pattern across features (a constant offset would vanish in the projection's input LayerNorm)
    look = torch.cat([torch.ones(8), -torch.ones(8)])
    rows = {k: [] for k in ("clip_id", "piece", "split", "start_s", "end_s", "embeds", "mask", "codes")}
    for piece in range(2):
        for i in range(6):
            rows["clip_id"].append(f"p{piece}_{i}")
            rows["piece"].append(f"p{piece}")
            rows["split"].append("train" if i < 4 else "test")
            rows["start_s"].append(float(i))
            rows["end_s"].append(float(i + 1))
            rows["embeds"].append((0.3 * torch.randn(4, 16, generator=g) + (look if piece else -look)).numpy())
            rows["mask"].append([True] * 4)
            rows["codes"].append(np.full((25, gen.num_codebooks), 3 + 4 * piece, np.int32))
    cache = tmp_path / "cache" / "synthetic"
    features = _features(embed_features({"embeds": rows["embeds"][0]}), gen.num_codebooks)
    Dataset.from_dict(rows, features=features).save_to_disk(str(cache / DATA_DIR))
    (cache / FINGERPRINT_NAME).write_text("{}")
    cfg = task_config(tmp_path, "train.lr=0.05", "train.max_steps=30", "train.warmup_steps=0", "train.max_grad_norm=0",
                      "train.batch_size=8", "train.min_lr_ratio=1.0", "generator.cond_dropout=0.0",
                      "data.val_split=test")
    task = VideoMusicGenTask(cfg, gen, cache, {"kind": "synthetic"})
    before = conditioning_gap(task, "test")
    train(cfg, task, progress=False)
    after = conditioning_gap(task, "test")
    print(f"CE true {after['true']:.3f} vs mismatched {after['shuffled']:.3f} (before: {before['true']:.3f})")
    assert abs(before["true"] - before["shuffled"]) < 0.01
    assert after["shuffled"] - after["true"] > 0.1


@pytest.mark.parametrize("name", ["tiny-vit", "tiny-videomae"])
def test_cached_embeddings_equal_embed_video_of_the_span(env, tmp_path, name):
    """The cache and generation encode through the same code: a cached clip's rows are embed_video's
    embeddings of its span, cut after the last valid step (clips of different lengths share a batch)."""
    from vitmusic.encoders import load_encoder
    from vitmusic.encoders.video import embed_video

    enc = load_encoder(name, rate_hz=RATE_HZ)
    base = env["clips"]
    # 4, 5, 5, 8 steps at 4 Hz (embed_video refuses spans under one VideoMAE clip: 8 frames = 1 s)
    spans = [(0.0, 1.0), (0.25, 1.5), (0.5, 1.75), (0.0, 2.0)]
    clips = [{**base[v * 4], "clip_id": f"c{v}_{i}", "start_s": a, "end_s": b}
             for v in range(2) for i, (a, b) in enumerate(spans)]
    ds = load_cache(extract_features(clips, enc, env["generator"], tmp_path, rate_hz=RATE_HZ, batch_size=4,
                                     progress=False))
    for c, row in zip(clips, ds):
        emb = embed_video(enc, c["video"], t0_s=c["start_s"], t1_s=c["end_s"])
        cached, mask = np.asarray(row["embeds"]), np.asarray(row["mask"], bool)
        n = round((c["end_s"] - c["start_s"]) * RATE_HZ)
        assert cached.shape == (n, enc.embed_dim) and mask.all()
        # exact: the same frames through the same encoder, batching only adds masked frames that never
        # reach the model; VideoMAE's trailing padding slots (masked) are what the cache cuts
        np.testing.assert_array_equal(cached, emb.embeds[0, :n].numpy())
        assert emb.mask[0, :n].all() and not emb.mask[0, n:].any()
