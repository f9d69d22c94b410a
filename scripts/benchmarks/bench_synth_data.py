"""Time ``generate_benchmark``: the goal is 10 pieces of 20 s in under a minute on 2 cores.

Usage: python scripts/benchmarks/bench_synth_data.py [--pieces 10] [--duration 20] [--renderer builtin] [--workers 1]
Prints the wall time in total and per piece, plus where a piece's time goes (score, synthesis, video).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces", type=int, default=10)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--renderer", default="builtin")
    ap.add_argument("--source", default="chorales")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    from vitmusic.data.synth import generate_benchmark
    from vitmusic.data.synth.performer import Stage, player_state, render_frames
    from vitmusic.data.synth.scores import make_performance
    from vitmusic.data.synth.writer import render_stems
    from vitmusic.data.urmp import INSTRUMENTS

    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        generate_benchmark(tmp, args.pieces, args.seed, duration_s=args.duration, renderer=args.renderer,
                           source=args.source, progress=False, workers=args.workers)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"synth-data: {args.pieces} pieces x {args.duration:g} s ({args.renderer}, {args.source}, "
          f"{args.workers} worker(s)): "
          f"{total:.1f} s wall, {total / args.pieces:.2f} s/piece, {cpu:.1f} CPU s in this process (goal: 10 x 20 s < 60 s wall); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    # breakdown on one piece (the chorale parse is cached by now, so 'score' is the warm cost)
    rng = np.random.default_rng([args.seed, 1])
    t0 = time.perf_counter()
    perf = make_performance(rng, args.source, args.duration)
    t1 = time.perf_counter()
    render_stems(perf, 48000, args.renderer, seed=0)
    t2 = time.perf_counter()
    times = np.arange(int(round(args.duration * 30))) / 30.0
    infos = [INSTRUMENTS[c] for c in perf.instruments]
    states = [player_state(p.notes, p.midi, p.velocities, i.low_midi, i.high_midi, times)
              for p, i in zip(perf.parts, infos)]
    stage = Stage(perf.instruments, [i.family for i in infos])
    n = sum(1 for _ in render_frames(stage, states))
    t3 = time.perf_counter()
    print(f"one piece ({len(perf.parts)} parts): score+performance {t1 - t0:.2f} s, synthesis {t2 - t1:.2f} s, "
          f"drawing {n} frames {t3 - t2:.2f} s (the rest is H.264/AAC encoding and file writing)")


if __name__ == "__main__":
    main()
