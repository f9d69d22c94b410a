"""Time the full `vitmusic evaluate` metric suite, referees included, on one 60 s four-voice pair.

The pair is a synthetic four-voice Bach chorale in the URMP layout (``vitmusic synth-data``; FluidSynth + a GM
soundfont when available, else the builtin synthesizer) scored through ``--urmp`` so that the ensemble metrics
run against the stems' annotations: multipitch and polyphonic notes with basic-pitch, their referee ceilings
(basic-pitch on the reference too), the default single-voice f0 tracker, tempo, chroma, emotion, sync, FAD.
The generated side is the mix with its top voice removed. Goal (2 CPU cores): the whole suite at <= 0.5x real
time. Prints per-group wall and CPU times and the real-time factors. Usage:

    python scripts/benchmarks/bench_metrics.py [--duration-s 60] [--renderer fluidsynth]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--sample-rate", type=int, default=22050)
    ap.add_argument("--renderer", default="fluidsynth" if shutil.which("fluidsynth") else "builtin")
    args = ap.parse_args()

    import soundfile as sf

    from vitmusic.data import urmp
    from vitmusic.data.synth import generate_benchmark
    from vitmusic.evaluation import runner

    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, dur in (("warm", 4.0), ("bench", args.duration_s)):
            # seed 0: the first piece is a four-voice chorale (flute, clarinet, saxophone, bassoon)
            generate_benchmark(root / name, 1, 0, duration_s=dur, source="chorales", renderer=args.renderer,
                               sample_rate=args.sample_rate, width_per_player=64, height=96, progress=False,
                               plot=False)
            piece = urmp.discover_pieces(root / name)[0]
            stems = [sf.read(s.audio, dtype="float32")[0] for s in piece.stems]
            (root / f"{name}_gen").mkdir()
            sf.write(root / f"{name}_gen" / f"{piece.id}.wav", np.sum(stems[1:], axis=0), args.sample_rate)
        print(f"piece: {piece.id} ({len(piece.stems)} voices, {args.renderer})")

        def cfg(name: str, metrics=tuple(runner.metric_groups()), n_plot=0):
            return runner.EvalConfig(gen_dir=root / f"{name}_gen", urmp_root=root / name, metrics=metrics,
                                     sample_rate=args.sample_rate, n_plot_clips=n_plot)

        # warm-up: numba compilation, model loading (ONNX sessions) are not billed to the timed runs
        runner.evaluate_dirs(cfg("warm"), progress=False)
        timings = {}
        for name in runner.metric_groups():
            t0, c0 = time.perf_counter(), time.process_time()
            res = runner.evaluate_dirs(cfg("bench", (name,)), progress=False)
            timings[name] = (time.perf_counter() - t0, time.process_time() - c0)
        suite = {}
        for n_plot in (0, 1):
            t0, c0 = time.perf_counter(), time.process_time()
            res = runner.evaluate_dirs(cfg("bench", n_plot=n_plot), progress=False)
            suite[n_plot] = (time.perf_counter() - t0, time.process_time() - c0)
        total, total_cpu = suite[0]

    print(f"full metric suite on one {args.duration_s:.0f} s four-voice pair at {args.sample_rate} Hz "
          f"(pitch backend {runner.DEFAULT_PITCH_BACKEND}, notes/multipitch basic-pitch + ceilings):")
    # on a shared machine wall time includes waiting for a core; process CPU time is what the work costs
    print(f"  load average before: {load[0]:.1f}, after: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print("  group        wall s   cpu s")
    for name, (sec, cpu) in timings.items():
        print(f"  {name:10s} {sec:8.2f} {cpu:7.2f}")
    print(f"  suite      {total:8.2f} {total_cpu:7.2f}  -> {total / args.duration_s:.2f}x real time wall, "
          f"{total_cpu / args.duration_s:.2f}x CPU (goal <= 0.50x)")
    print(f"  +plots     {suite[1][0]:8.2f} {suite[1][1]:7.2f}  (suite keeping plot material for the clip)")
    m = res.summary["metrics"]
    defined = {k: v["mean"] for k, v in m.items() if v["mean"] is not None}
    print(f"  {len(defined)}/{len(m)} metrics defined; top voice removed: multipitch recall "
          f"{m['multipitch.recall']['mean']:.3f} (ceiling {m['multipitch.recall']['referee_ceiling']['mean']:.3f})")
    for w in res.warnings:
        print(f"  warning: {w}")


if __name__ == "__main__":
    main()
