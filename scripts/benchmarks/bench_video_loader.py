"""Benchmark: vitmusic's VideoReader vs raw decord for 16 uniformly spaced frames of a 60 s 720p clip.

Generates the clip into a temp dir with write_video (veryfast preset), then times, interleaved, a fresh
``decord.VideoReader(path).get_batch(indices)`` against a fresh ``VideoReader(path).read(num_frames=16)``
(auto backend = decord, plus the pts table our loader builds) and the PyAV backend. Prints medians and the
ratio (goal: ours / raw decord <= 1.1).

    python scripts/benchmarks/bench_video_loader.py [--duration 60] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vitmusic.data.video import VideoReader
from vitmusic.data.videowriter import write_video


def _frames(n: int, height: int, width: int):
    yy, xx = np.mgrid[0:height, 0:width]
    base = ((xx[..., None] * [1, 2, 3] + yy[..., None] * [3, 1, 2]) % 256).astype(np.uint8)
    for i in range(n):
        f = np.roll(base, 7 * i, axis=1)
        f[(i * 4) % height : (i * 4) % height + 40, 100:300] = 255  # a moving bar
        yield f


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--num-frames", type=int, default=16)
    args = ap.parse_args()
    import decord

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip720p.mp4"
        n = int(args.duration * 30)
        t = time.perf_counter()
        write_video(path, _frames(n, 720, 1280), 30, preset="veryfast")
        print(
            f"generated {args.duration:.0f} s 1280x720 30 fps clip ({path.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - t:.1f} s"
        )
        indices = np.linspace(0, n - 1, args.num_frames).round().astype(int).tolist()

        def raw():
            vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
            return vr.get_batch(indices).asnumpy()

        def ours(backend="auto"):
            with VideoReader(path, backend=backend) as r:
                return r.read(num_frames=args.num_frames).data

        a, b = raw(), ours()  # warm-up, and the same frames
        assert np.array_equal(a, b), "loader and raw decord disagree"
        assert np.array_equal(a, ours("pyav")), "backends disagree"
        times: dict[str, list[float]] = {
            "raw decord": [],
            "vitmusic (auto=decord)": [],
            "vitmusic (pyav)": [],
        }
        for _ in range(args.runs):
            for name, fn in [
                ("raw decord", raw),
                ("vitmusic (auto=decord)", ours),
                ("vitmusic (pyav)", lambda: ours("pyav")),
            ]:
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in med.items():
            print(f"{k:24s} median {v * 1000:8.1f} ms over {args.runs} runs")
        print(
            f"ratio vitmusic/raw decord: {med['vitmusic (auto=decord)'] / med['raw decord']:.3f} (goal <= 1.1)"
        )
        print(f"ratio pyav/raw decord:     {med['vitmusic (pyav)'] / med['raw decord']:.3f}")


if __name__ == "__main__":
    main()
