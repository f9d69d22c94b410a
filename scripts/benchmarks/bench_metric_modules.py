"""Time each metric module's ``evaluate`` on one reference/generated pair (default 60 s at 22050 Hz).

Goal (2 CPU cores): the whole suite <= 0.5x real time, i.e. <= 30 s for a 60 s pair. One f0 pass per
signal is shared between pitch and notes through ``pitch.track_f0`` / ``est_f0=`` / ``f0=``, as a runner
should do. The first librosa beat-tracking call pays ~10 s of numba JIT once per process; it is run (and
reported) separately as warm-up so the figures are steady-state. Usage:

    python scripts/benchmarks/bench_metric_modules.py [--duration-s 60] [--sample-rate 22050]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def melody(duration_s: float, sr: int, transpose: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out, total = [], 0.0
    while total < duration_s:
        note_s = float(rng.choice([0.25, 0.5, 0.5, 1.0]))
        f = 220.0 * 2 ** ((int(rng.integers(0, 15)) + transpose) / 12)
        t = np.arange(int(note_s * sr)) / sr
        env = np.clip(np.minimum(t / 0.01, (note_s - t) / 0.05), 0, 1)
        out.append(env * sum(0.3 / k * np.sin(2 * np.pi * k * f * t) for k in (1, 2, 3, 4)))
        total += note_s
    return np.concatenate(out)[: int(duration_s * sr)].astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--sample-rate", type=int, default=22050)
    args = ap.parse_args()

    from vitmusic.metrics import chroma, emotion, fad, notes, pitch, sync, tempo

    sr, dur = args.sample_rate, args.duration_s
    ref, est = melody(dur, sr, 0.0, 0), melody(dur, sr, 2.0, 1)
    fps = 30.0
    frames = np.random.default_rng(0).integers(0, 255, (int(dur * fps), 64, 64, 3), dtype=np.uint8)

    t0 = time.perf_counter()
    tempo.beat_times(ref[: 5 * sr], sr)
    print(f"warm-up (numba JIT, once per process): {time.perf_counter() - t0:6.2f} s")

    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name, fn):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        timings[name] = time.perf_counter() - t
        cpu[name] = time.process_time() - c
        return out

    timed("tempo", lambda: tempo.evaluate(ref, est, sr))
    ref_f0 = timed("f0 ref (pyin)", lambda: pitch.track_f0(ref, sr))
    est_f0 = timed("f0 est (pyin)", lambda: pitch.track_f0(est, sr))
    timed("pitch (shared f0)", lambda: pitch.evaluate(None, est, sr, ref_f0=ref_f0, est_f0=est_f0))
    timed(
        "notes (shared f0)",
        lambda: notes.evaluate(notes.transcribe(ref, sr, f0=ref_f0), notes.transcribe(est, sr, f0=est_f0)),
    )
    timed("chroma/key", lambda: chroma.evaluate(ref, est, sr))
    timed("emotion (proxy)", lambda: emotion.evaluate(ref, est, sr))
    timed("fad embed (mel stats)", lambda: (fad.embed(ref, sr), fad.embed(est, sr)))
    timed("sync", lambda: sync.evaluate(sync.motion_envelope(frames, fps), fps, est, sr))

    # CPU time is reported too: on a shared machine wall time mostly measures the other tenants.
    total, total_cpu = sum(timings.values()), sum(cpu.values())
    print(f"{'':24s} {'wall':>8s} {'cpu':>8s}")
    for name, seconds in timings.items():
        print(f"{name:24s} {seconds:7.2f}s {cpu[name]:7.2f}s")
    print(
        f"{'total':24s} {total:7.2f}s {total_cpu:7.2f}s for a {dur:.0f} s pair -> "
        f"{total / dur:.2f}x real time wall, {total_cpu / dur:.2f}x cpu (goal <= 0.5x)"
    )


if __name__ == "__main__":
    main()
