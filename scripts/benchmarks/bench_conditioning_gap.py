"""Does the video -> MusicGen path learn? Held-out teacher-forced CE with the true vs a shuffled video.

The synthetic benchmark (seeded) -> prepare (fixed piece-level split) -> extract the feature cache -> train the
projection on the train pieces -> :func:`vitmusic.evaluation.conditioning.conditioning_gap` on the held-out val and test
pieces: cross-entropy of each clip's audio codes with its own video vs with another piece's video, through
the same trained model. Also prints how informative the tiny preset's codec is (codes per codebook).

    python scripts/benchmarks/bench_conditioning_gap.py                     # configs/tiny.yaml, seeds 10-14
    python scripts/benchmarks/bench_conditioning_gap.py --seeds 10 11 12 13 14 15 16 17   # data + training seeds
    python scripts/benchmarks/bench_conditioning_gap.py train.max_steps=200 projection.kind=linear

Writes nothing outside --work (default: a temporary folder). The tiny preset's protocol (lr, steps, decoder
width) was tuned on data seeds 0-9, so the default seeds are fresh ones (>= 10): the figure to report. It
prints the gap per split (val, test) with a 95 % t-interval across the seeds, and how many seeds are positive.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TUNED_SEEDS = range(10)  # the seeds the tiny preset's protocol was chosen on
FRESH_SEEDS = (10, 11, 12, 13, 14)
# Piece i gets SPLITS[i % 12]: 36 pieces -> 24 train, 6 val, 6 test; no held-out piece is seen in training.
SPLITS = ("train",) * 4 + ("val", "test") + ("train",) * 4 + ("val", "test")


def make_data(work: Path, seed: int, pieces: int, duration_s: float, clip_s: float) -> Path:
    """Synthetic benchmark + manifest with the fixed split of :data:`SPLITS`; returns the manifest folder."""
    from vitmusic.atomic import atomic_write_text
    from vitmusic.data.manifest import prepare_manifest
    from vitmusic.data.synth import generate_benchmark
    from vitmusic.data.urmp import discover_pieces

    urmp, prep = work / "urmp", work / "prepared"
    if not (prep / "manifest.jsonl").is_file():
        generate_benchmark(urmp, pieces, seed, duration_s=duration_s, source="melodies", progress=False,
                           plot=False, width_per_player=96, height=128)
        ids = [p.id for p in discover_pieces(urmp)]
        split = atomic_write_text(work / "split.csv", "piece,split\n" + "".join(
            f"{p},{SPLITS[i % len(SPLITS)]}\n" for i, p in enumerate(ids)))
        prepare_manifest(urmp, prep, clip_s, split_file=split, progress=False, plot=False)
    return prep


def measure(work: Path, seed: int, *, config: Path, overrides: list[str], pieces: int = 36,
            duration_s: float = 8.0, clip_s: float = 2.0) -> dict[str, float]:
    """One seeded run: data, cache, training; returns CE true/shuffled on the val and test splits."""
    from vitmusic.config import load_config
    from vitmusic.evaluation.conditioning import conditioning_gap
    from vitmusic.training.tasks.musicgen import build_task, run_training

    prep = make_data(work, seed, pieces, duration_s, clip_s)
    cfg = load_config(config, [f"data.manifest={prep}", f"train.seed={seed}", "train.log_with=none",
                               f"train.output_dir={tempfile.mkdtemp(prefix='run', dir=work)}",
                               f"extract.cache_dir={work / 'cache'}", *overrides])
    t0 = time.perf_counter()
    task = build_task(cfg, progress=False)
    t1 = time.perf_counter()
    run_training(cfg, task, progress=False)
    t2 = time.perf_counter()
    out = {"extract_s": t1 - t0, "train_s": t2 - t1}
    for split in ("val", "test"):
        gap = conditioning_gap(task, split, seed=seed)
        out.update({f"{split}_true": gap["true"], f"{split}_shuffled": gap["shuffled"], f"{split}_clips": gap["clips"]})
    return out


def codec_usage(name: str = "tiny-musicgen") -> None:
    """Distinct codes and usage entropy per codebook of the tiny codec on a few instruments and pitches."""
    from vitmusic.data.synth import render_notes
    from vitmusic.generators.musicgen.model import load_generator

    gen = load_generator(name)
    sr = gen.sample_rate
    wavs = [render_notes(np.array([[0.0, 440 * 2 ** ((m - 69) / 12), 0.9]]), inst, sr, duration_s=1.0)
            for inst in ("vn", "vc", "fl", "cl", "tpt", "tba") for m in (50, 62, 74)]
    codes = gen.encode_audio(np.stack(wavs)).numpy()  # [B, K, T]
    for k in range(codes.shape[1]):
        p = np.bincount(codes[:, k].ravel(), minlength=gen.model.config.audio_encoder.codebook_size)
        p = p[p > 0] / p.sum()
        print(f"codec codebook {k}: {len(p)} distinct codes, usage entropy {-(p * np.log(p)).sum():.2f} nats "
              f"(max {np.log(gen.model.config.audio_encoder.codebook_size):.2f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(FRESH_SEEDS))
    ap.add_argument("--pieces", type=int, default=36)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per piece")
    ap.add_argument("--clip-seconds", type=float, default=2.0)
    ap.add_argument("--work", default=None, help="keep data and runs here (default: a temporary folder)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    codec_usage()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.work) if args.work else Path(tmp)
        for seed in args.seeds:
            r = measure(root / f"seed{seed}", seed, config=Path(args.config), overrides=args.overrides,
                        pieces=args.pieces, duration_s=args.duration, clip_s=args.clip_seconds)
            rows.append(r)
            r["gap"] = np.mean([r[f"{s}_shuffled"] - r[f"{s}_true"] for s in ("val", "test")])
            print(f"seed {seed}: val CE true {r['val_true']:.4f} vs shuffled {r['val_shuffled']:.4f} "
                  f"({r['val_clips']} clips); test CE true {r['test_true']:.4f} vs shuffled "
                  f"{r['test_shuffled']:.4f} ({r['test_clips']} clips); held-out gap {r['gap']:+.4f}; "
                  f"extract {r['extract_s']:.0f} s, train {r['train_s']:.0f} s", flush=True)
    tuned = [s for s in args.seeds if s in TUNED_SEEDS]
    if tuned:
        print(f"note: seed(s) {', '.join(map(str, tuned))} are among those the preset was tuned on (0-9); "
              "report fresh seeds (>= 10)")
    for name, values in (("val", [r["val_shuffled"] - r["val_true"] for r in rows]),
                         ("test", [r["test_shuffled"] - r["test_true"] for r in rows]),
                         ("mean of val and test", [r["gap"] for r in rows])):
        print(gap_line(name, np.array(values)))
    return 0


def gap_line(name: str, gaps: np.ndarray) -> str:
    """One split's gap across seeds: mean, 95 % t-interval (n - 1 degrees of freedom), range, positive seeds."""
    from scipy import stats

    n = len(gaps)
    if n > 1:
        half = stats.t.ppf(0.975, n - 1) * gaps.std(ddof=1) / np.sqrt(n)
        ci = f" [95 % CI {gaps.mean() - half:+.4f}, {gaps.mean() + half:+.4f}]"
    else:
        ci = " (one seed: no CI)"
    return (f"held-out gap (shuffled - true), {name}, over {n} seed(s): mean {gaps.mean():+.4f}{ci}, min "
            f"{gaps.min():+.4f}, max {gaps.max():+.4f}; positive for {int((gaps > 0).sum())} of {n}")


if __name__ == "__main__":
    raise SystemExit(main())
