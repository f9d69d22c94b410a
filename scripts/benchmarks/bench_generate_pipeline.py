"""``vitmusic generate`` pipeline stages on a short vs a 4x longer video (tiny models, CPU).

Prints, per 640x480 30 fps video: seconds to stream + encode the frames (``embed_video``), to project
(``project``), to generate and decode (``generate_long``), and how far the resident memory grows while
embedding (sampled at every window, in a fresh process, from its level after loading the models).
Goals: every stage linear in the duration (long / short time ratio <= 4.4) and embedding memory that does
not grow with the video's length (long / short RSS growth <= 1.2; frames are streamed, only the
embeddings are kept).

    python scripts/benchmarks/bench_generate_pipeline.py [--short-s 10] [--factor 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, os, sys, torch
torch.set_num_threads(int(sys.argv[3]))
from vitmusic.config import load_config
from vitmusic.inference.models import load_run_models
from vitmusic.inference.musicgen import MusicGenPipeline
from vitmusic.projection import build_projection

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

config = load_config(sys.argv[2])
encoder, generator = load_run_models(config)
pipe = MusicGenPipeline(config, encoder, build_projection("mlp", encoder.embed_dim, generator.cond_dim,
                                                          hidden_dim=64), generator)
samples, encode = [], encoder.encode_frames

def sampled(frames, *a, **kw):  # current RSS while each window's frames are held
    samples.append(rss_mb())
    return encode(frames, *a, **kw)

encoder.encode_frames = sampled
base = rss_mb()
emb = pipe.embed_video(sys.argv[1])
print(json.dumps({"steps": emb.embeds.shape[1], "rss_growth_mb": max(samples) - base}))
"""


def _write_video(path: Path, duration_s: float, fps: int = 30, size: tuple[int, int] = (480, 640)) -> Path:
    from vitmusic.data.videowriter import write_video

    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((xx[..., None] * [1, 2, 3] + yy[..., None] * [3, 1, 2]) % 256).astype(np.uint8)

    def frames():
        for i in range(int(duration_s * fps)):
            f = np.roll(base, 3 * i, axis=1)
            f[(2 * i) % h:(2 * i) % h + 16] = 255
            yield f

    return write_video(path, frames(), fps)


def _child_rss(video: Path, config: Path, threads: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(video), str(config), str(threads)], check=True,
                         capture_output=True, text=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short-s", type=float, default=10.0)
    parser.add_argument("--factor", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the project machines have 2 cores)")
    args = parser.parse_args(argv)

    import torch

    from vitmusic.config import load_config
    from vitmusic.inference.models import load_run_models
    from vitmusic.inference.musicgen import MusicGenPipeline
    from vitmusic.projection import build_projection

    torch.set_num_threads(args.threads)
    config_path = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"
    config = load_config(config_path)
    encoder, generator = load_run_models(config)
    torch.manual_seed(0)
    projection = build_projection("mlp", encoder.embed_dim, generator.cond_dim, hidden_dim=64)
    pipe = MusicGenPipeline(config, encoder, projection, generator)
    print(f"tiny run: {config.encoder.name} at {config.encoder.rate_hz} Hz -> mlp -> {config.generator.name}, "
          f"windows {config.generate.window_s} s (context {config.generate.context_s} s), "
          f"guidance {config.generate.guidance_scale}, {args.threads} thread(s)")
    rows = []

    def timed(fn, *a, **kw):
        # CPU time next to wall time: on the shared 2-core machines wall time mostly measures the neighbours
        w, c = time.perf_counter(), time.process_time()
        out = fn(*a, **kw)
        return out, time.perf_counter() - w, time.process_time() - c

    with tempfile.TemporaryDirectory() as tmp:
        for duration_s in (args.short_s, args.short_s * args.factor):
            video = _write_video(Path(tmp) / f"v{duration_s:g}.mp4", duration_s)
            emb, w_embed, c_embed = timed(pipe.embed_video, video)
            _, w_project, c_project = timed(pipe.project, emb.embeds, emb.mask, emb.times_s)
            wav, w_gen, c_gen = timed(pipe.generate_from_embeddings, emb.embeds, emb.mask, emb.times_s,
                                      emb.duration_s, seed=0)
            w_gen, c_gen = w_gen - w_project, c_gen - c_project  # generate_from_embeddings projects again
            assert wav.shape[0] == round(emb.duration_s * pipe.sample_rate)
            rss = _child_rss(video, config_path, args.threads)["rss_growth_mb"]
            rows.append((c_embed, c_project, c_gen, rss))
            print(f"{duration_s:6.1f} s video ({emb.embeds.shape[1]} steps), seconds wall/CPU: embed "
                  f"{w_embed:.2f}/{c_embed:.2f}, project {w_project:.3f}/{c_project:.3f}, generate+decode "
                  f"{w_gen:.2f}/{c_gen:.2f} ({c_gen / duration_s:.2f} CPU s per s of music); "
                  f"embedding RSS growth {rss:.1f} MiB")
    (e0, p0, g0, m0), (e1, p1, g1, m1) = rows
    print(f"long/short CPU-time ratios (x{args.factor:g} duration): embed {e1 / e0:.2f}, project {p1 / p0:.2f}, "
          f"generate {g1 / g0:.2f}; embedding RSS growth ratio {m1 / max(m0, 1e-9):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
