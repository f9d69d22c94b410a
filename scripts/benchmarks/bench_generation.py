"""Generation time for 20 s vs 5 s of audio with the tiny MusicGen (goal: ratio <= 4.4, i.e. linear).

Prints wall-clock seconds for one-shot ``generate`` and for windowed ``generate_long`` (which keeps the cost
linear in the duration whatever the model's context), and the 20 s / 5 s ratios.

    python scripts/benchmarks/bench_generation.py [--preset tiny-musicgen] [--guidance 3.0] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from vitmusic.generators.musicgen.model import load_generator
from vitmusic.generators.musicgen.presets import materialize_tiny_generator


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-musicgen", choices=["tiny-musicgen", "tiny-musicgen-melody"])
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--window-s", type=float, default=5.0)
    parser.add_argument("--context-s", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the project machines have 2 cores)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        gen = load_generator(materialize_tiny_generator(args.preset, root=root))
    cond = torch.randn(1, 40, gen.cond_dim)
    print(f"{args.preset}: {gen.frame_rate:g} frames/s, {gen.num_codebooks} codebooks, guidance {args.guidance:g}, "
          f"{torch.get_num_threads()} thread(s)")
    results: dict[str, dict[float, float]] = {"generate": {}, "generate_long": {}}
    gen.generate(cond, None, duration_s=0.5, guidance_scale=args.guidance, seed=0)  # warm-up
    for duration_s in (5.0, 20.0):
        results["generate"][duration_s] = _best_of(
            lambda d=duration_s: gen.generate(cond, None, duration_s=d, guidance_scale=args.guidance, seed=0),
            args.repeats)
        times = torch.linspace(0, duration_s, cond.shape[1])
        results["generate_long"][duration_s] = _best_of(
            lambda d=duration_s, t=times: gen.generate_long(
                cond, None, t, duration_s=d, window_s=args.window_s, context_s=args.context_s,
                guidance_scale=args.guidance, seed=0, progress=False),
            args.repeats)
    for name, res in results.items():
        ratio = res[20.0] / res[5.0]
        verdict = "OK" if ratio <= 4.4 else "ABOVE GOAL"
        print(f"{name:14s} 5 s: {res[5.0]:7.2f} s   20 s: {res[20.0]:7.2f} s   ratio {ratio:5.2f} "
              f"(goal <= 4.4: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
