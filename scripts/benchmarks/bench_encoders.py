"""Throughput of the vision encoders and projections (prints figures; never imported by vitmusic).

Encoders are random-init (no hub access) at the tiny preset size and at the real "base" sizes
(ViT-B/16 224, CLIP ViT-B/32 224, VideoMAE-B 16 frames 224), so the figures are the cost of the real
architectures on this machine. Preprocessing (the checkpoint's Pil image processor) and model forward
are timed separately.

    python scripts/benchmarks/bench_encoders.py --sizes tiny,base --frames 32 --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def base_encoder(kind: str):
    import transformers as tf

    from vitmusic.encoders.hf import ENCODER_CLASSES

    torch.manual_seed(0)
    if kind == "vit":
        model, proc = tf.ViTModel(tf.ViTConfig(), add_pooling_layer=False), tf.ViTImageProcessorPil()
    elif kind == "clip":
        model = tf.CLIPVisionModelWithProjection(tf.CLIPVisionConfig(patch_size=32))
        proc = tf.CLIPImageProcessorPil()
    else:
        model = tf.VideoMAEModel(tf.VideoMAEConfig())
        proc = tf.VideoMAEImageProcessorPil()
    return ENCODER_CLASSES[kind](model.eval(), proc, name_or_path=f"bench-base-{kind}")


def tiny_encoder(kind: str):
    from vitmusic.encoders import load_encoder

    return load_encoder(f"tiny-{kind}")


def time_encoder(enc, frames: np.ndarray, repeats: int) -> dict[str, float]:
    enc.encode_frames(frames[:, : max(enc.frames_per_step * 8, 2)])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        embeds, _ = enc.encode_frames(frames)
        best = min(best, time.perf_counter() - t0)
    flat = list(frames.reshape(-1, *frames.shape[2:]))
    t0 = time.perf_counter()
    if enc.kind == "videomae":
        f = enc.clip_frames
        enc.processor([flat[i : i + f] for i in range(0, len(flat) - f + 1, f)], return_tensors="pt")
    else:
        enc.processor(flat, return_tensors="pt")
    prep = time.perf_counter() - t0
    n = frames.shape[0] * frames.shape[1]
    return {"s": best, "fps": n / best, "prep_share": min(prep / best, 1.0), "steps": embeds.shape[1]}


def time_projection(kind: str, in_dim: int, out_dim: int, batch: int, steps: int, repeats: int) -> float:
    from vitmusic.projection import build_projection

    kw = {"d_model": 512, "num_layers": 2, "num_heads": 8, "rate_hz": 4.0} if kind == "transformer" else {}
    proj = build_projection(kind, in_dim, out_dim, **kw).train()
    x = torch.randn(batch, steps, in_dim)
    mask = torch.ones(batch, steps, dtype=torch.bool)
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        tokens, m = proj(x, mask)
        tokens[m].pow(2).mean().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="tiny,base")
    parser.add_argument("--kinds", default="vit,clip,videomae")
    parser.add_argument("--frames", type=int, default=32, help="frames per clip (batch of 2 clips)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    frames = np.random.default_rng(0).integers(0, 256, (2, args.frames, 240, 320, 3), dtype=np.uint8)
    print(f"torch {torch.__version__}, {args.threads} threads, input 2 x {args.frames} frames of 240x320")
    print(f"{'encoder':<16}{'D':>5}{'steps':>7}{'seconds':>10}{'frames/s':>10}{'preproc':>9}")
    with torch.no_grad():
        for size in args.sizes.split(","):
            for kind in args.kinds.split(","):
                enc = tiny_encoder(kind) if size == "tiny" else base_encoder(kind)
                r = time_encoder(enc, frames, args.repeats)
                print(
                    f"{size + '-' + kind:<16}{enc.embed_dim:>5}{r['steps']:>7}{r['s']:>10.3f}"
                    f"{r['fps']:>10.1f}{r['prep_share']:>8.0%}"
                )
    print("\nprojection train step (forward + backward), batch 8 x 120 tokens (30 s at 4 Hz), 768 -> 768")
    for kind in ("linear", "mlp", "transformer"):
        print(f"  {kind:<12}{time_projection(kind, 768, 768, 8, 120, args.repeats) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
