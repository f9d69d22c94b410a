"""Time the full `vitmusic evaluate` metric suite on one 60 s reference/generated pair.

Goal (on 2 CPU cores): the whole suite at <= 0.5x real time with the default backends, i.e. <= 30 s for
a 60 s pair. Prints per-group wall times and the real-time factor. Usage:

    python scripts/benchmarks/bench_metrics.py [--duration-s 60] [--sample-rate 22050]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_metric_modules import melody  # same folder: the script's own directory is on sys.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--sample-rate", type=int, default=22050)
    args = ap.parse_args()

    from vitmusic.data.audio import write_audio
    from vitmusic.data.videowriter import write_video
    from vitmusic.evaluation import runner

    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_audio(root / "ref" / "pair.wav", melody(args.duration_s, 44100, 0, 0), 44100)
        write_audio(root / "gen" / "pair.wav", melody(args.duration_s, 32000, 2, 1), 32000)
        fps = 30
        n = int(args.duration_s * fps)
        frames = (np.random.default_rng(0).integers(0, 255, (n, 1, 1, 3)) * np.ones((1, 64, 64, 1))).astype(np.uint8)
        write_video(root / "videos" / "pair.mp4", frames, fps)

        # warm-up on a short clip so numba/librosa compilation is not billed to the timed run
        write_audio(root / "warm_ref" / "w.wav", melody(3.0, 22050, 0, 0), 22050)
        write_audio(root / "warm_gen" / "w.wav", melody(3.0, 22050, 0, 1), 22050)
        runner.evaluate_dirs(runner.EvalConfig(gen_dir=root / "warm_gen", ref_dir=root / "warm_ref",
                                               sample_rate=args.sample_rate, n_plot_clips=0), progress=False)

        timings = {}
        for name in list(runner.METRICS):
            cfg = runner.EvalConfig(gen_dir=root / "gen", ref_dir=root / "ref", metrics=(name,),
                                    sample_rate=args.sample_rate, videos_dir=root / "videos", n_plot_clips=0)
            t0, c0 = time.perf_counter(), time.process_time()
            res = runner.evaluate_dirs(cfg, progress=False)
            timings[name] = (time.perf_counter() - t0, time.process_time() - c0)
            for w in res.warnings:
                print(f"  warning: {w}")
        suite = {}
        for n_plot in (0, 1):  # with plot material kept: the plots reuse the scored f0 tracks, notes, beats
            cfg = runner.EvalConfig(gen_dir=root / "gen", ref_dir=root / "ref", sample_rate=args.sample_rate,
                                    videos_dir=root / "videos", n_plot_clips=n_plot)
            t0, c0 = time.perf_counter(), time.process_time()
            res = runner.evaluate_dirs(cfg, progress=False)
            suite[n_plot] = (time.perf_counter() - t0, time.process_time() - c0)
        total, total_cpu = suite[0]

    print(f"full metric suite on one {args.duration_s:.0f} s pair at {args.sample_rate} Hz "
          "(each group alone includes loading; the suite shares the f0 tracks):")
    # on a shared machine wall time includes waiting for a core; process CPU time is what the work costs
    print(f"  load average before: {load[0]:.1f}, after: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print("  group      wall s   cpu s")
    for name, (sec, cpu) in timings.items():
        print(f"  {name:8s} {sec:8.2f} {cpu:7.2f}")
    print(f"  suite    {total:8.2f} {total_cpu:7.2f}  -> {total / args.duration_s:.2f}x real time wall, "
          f"{total_cpu / args.duration_s:.2f}x CPU (goal <= 0.50x)")
    print(f"  +plots   {suite[1][0]:8.2f} {suite[1][1]:7.2f}  (suite keeping plot material for the clip)")
    defined = {k: v["mean"] for k, v in res.summary["metrics"].items() if v["mean"] is not None}
    print(f"  {len(defined)}/{len(res.summary['metrics'])} metrics defined")


if __name__ == "__main__":
    main()
