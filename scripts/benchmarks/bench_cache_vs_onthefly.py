"""One training epoch from the feature cache vs decoding + encoding every clip on the fly.

Both paths run the same optimizer steps on the same batches (projection + frozen generator loss); the
on-the-fly path additionally decodes the video frames, runs the vision encoder, loads + resamples the audio
and runs Encodec for every batch, which is what the cache saves. Goal: the cached epoch >= 20x faster.

    python scripts/benchmarks/bench_cache_vs_onthefly.py                 # synthetic data, tiny preset
    python scripts/benchmarks/bench_cache_vs_onthefly.py --base-size-encoder     # random-init VideoMAE-base size
    python scripts/benchmarks/bench_cache_vs_onthefly.py --config configs/vit-base.yaml --manifest prep/

Prints the figures; writes nothing outside --work (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def make_data(work: Path, pieces: int, duration_s: float, clip_s: float) -> Path:
    from vitmusic import cli

    urmp, prep = work / "urmp", work / "prep"
    if not (prep / "manifest.jsonl").is_file():
        cli.main(["synth-data", "--out", str(urmp), "--pieces", str(pieces), "--duration", str(duration_s),
                  "--no-progress"])
        cli.main(["prepare", "--urmp", str(urmp), "--out", str(prep), "--clip-seconds", str(clip_s),
                  "--ratios", "1,0,0"])
    return prep


def base_size_videomae(work: Path) -> Path:
    """A random-init VideoMAE with the base architecture (what MCG-NJU/videomae-base costs), saved locally."""
    from transformers import VideoMAEConfig, VideoMAEImageProcessorPil, VideoMAEModel

    folder = work / "videomae-base-random"
    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        VideoMAEModel(VideoMAEConfig()).save_pretrained(folder)
        VideoMAEImageProcessorPil().save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--manifest", default=None, help="prepared folder; default: synthesize a small one")
    ap.add_argument("--work", default=None, help="working folder (data, cache); default: a temp folder")
    ap.add_argument("--pieces", type=int, default=4)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--clip-seconds", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--base-size-encoder", action="store_true",
                    help="use a random-init VideoMAE-base-sized encoder instead of the config's")
    ap.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    args = ap.parse_args(argv)

    from vitmusic.config import load_config
    from vitmusic.training.features import (
        FeatureDataset,
        audio_source,
        collate_features,
        encode_audio_batch,
        encode_video_batch,
        load_cache,
        read_clip_audio,
        read_clip_frames,
    )
    from vitmusic.training.tasks import VideoMusicGenTask, build_cache, load_frozen_models, read_clips

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_cache_"))
    manifest = args.manifest or make_data(work, args.pieces, args.duration, args.clip_seconds)
    cfg = load_config(args.config, [f"data.manifest={manifest}", f"extract.cache_dir={work / 'cache'}",
                                    f"train.batch_size={args.batch_size}", "generator.cond_dropout=0.0",
                                    *args.overrides])
    if args.base_size_encoder:
        cfg.encoder.name, cfg.encoder.kind = str(base_size_videomae(work)), "videomae"
    encoder, generator = load_frozen_models(cfg)
    t = time.perf_counter()
    cache = build_cache(cfg, encoder, generator, progress=False)
    extract_s = time.perf_counter() - t
    task = VideoMusicGenTask(cfg, generator, cache, encoder.fingerprint())
    clips = [c for c in read_clips(cfg) if c["split"] == cfg.data.train_split]
    n, bs = len(clips), args.batch_size
    opt = torch.optim.AdamW(task.projection.parameters(), lr=1e-4)

    def step(batch: dict) -> None:
        loss = task.loss(task.projection, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    ds = FeatureDataset(load_cache(cache, cfg.data.train_split))
    loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=False, collate_fn=collate_features)
    t = time.perf_counter()
    for batch in loader:
        step(batch)
    cached_s = time.perf_counter() - t

    fps = encoder.sample_fps(cfg.encoder.rate_hz)
    t = time.perf_counter()
    for b in range(0, n, bs):
        chunk = clips[b : b + bs]
        frames = [read_clip_frames(c["video"], c["start_s"], c["end_s"], fps) for c in chunk]
        audio = [read_clip_audio(audio_source(c), c["start_s"], c["end_s"], generator.sample_rate) for c in chunk]
        video = encode_video_batch(encoder, frames)
        codes = encode_audio_batch(generator, audio)
        items = [{"clip_id": c["clip_id"], "embeds": torch.from_numpy(e), "mask": torch.from_numpy(m),
                  "codes": torch.from_numpy(k.T.astype("int64"))} for c, (e, m), k in zip(chunk, video, codes)]
        step(collate_features(items))
    onthefly_s = time.perf_counter() - t

    print(f"config: {args.config}  encoder: {cfg.encoder.name}  generator: {cfg.generator.name}")
    print(f"clips in epoch: {n}  batch size: {bs}  threads: {torch.get_num_threads()}")
    print(f"one-off extraction (or cache hit): {extract_s:8.2f} s")
    print(f"epoch from cache:                  {cached_s:8.2f} s  ({cached_s / n * 1e3:.1f} ms/clip)")
    print(f"epoch decoding + encoding:         {onthefly_s:8.2f} s  ({onthefly_s / n * 1e3:.1f} ms/clip)")
    print(f"speed-up:                          {onthefly_s / cached_s:8.1f}x  (goal >= 20x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
