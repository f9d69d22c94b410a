"""Benchmark: peak RSS of streaming a 10-minute vs a 1-minute video through VideoReader.iter_windows.

Generates both videos (320x240, 30 fps, ultrafast) into a temp dir, then in a fresh subprocess per
measurement iterates 2 s windows sampled at 8 fps and reports ``ru_maxrss``. Goal: 10-min / 1-min <= 1.2.

    python scripts/benchmarks/bench_stream_memory.py [--long-min 10] [--short-min 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vitmusic.data.videowriter import write_video

_CHILD = r"""
import json, resource, sys, time
from vitmusic.data.video import VideoReader
path, backend = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
n = windows = 0
with VideoReader(path, backend=backend) as r:
    for w in r.iter_windows(2.0, fps=8):
        n += len(w)
        windows += 1
print(json.dumps({"backend": r.backend, "frames": n, "windows": windows, "seconds": time.perf_counter() - t,
                  "base_kb": base, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _frames(n: int, height: int = 240, width: int = 320):
    yy, xx = np.mgrid[0:height, 0:width]
    base = ((xx[..., None] * [1, 2, 3] + yy[..., None] * [3, 1, 2]) % 256).astype(np.uint8)
    for i in range(n):
        f = np.roll(base, 3 * i, axis=1)
        f[(2 * i) % height : (2 * i) % height + 16] = 255  # a moving bar, so frames differ
        yield f


def _measure(path: Path, backend: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), backend], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long-min", type=float, default=10.0)
    ap.add_argument("--short-min", type=float, default=1.0)
    ap.add_argument("--backends", default="pyav,decord")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for label, minutes in [("short", args.short_min), ("long", args.long_min)]:
            p = Path(tmp) / f"{label}.mp4"
            t = time.perf_counter()
            write_video(p, _frames(int(minutes * 60 * 30)), 30, preset="ultrafast")
            paths[label] = (p, minutes)
            print(
                f"generated {minutes:g} min 320x240 video ({p.stat().st_size / 1e6:.0f} MB) in "
                f"{time.perf_counter() - t:.0f} s"
            )
        for backend in args.backends.split(","):
            res = {label: _measure(p, backend) for label, (p, _) in paths.items()}
            for label, (_, minutes) in paths.items():
                r = res[label]
                print(
                    f"[{r['backend']:6s}] {minutes:5g} min: {r['windows']} windows, {r['frames']} frames in "
                    f"{r['seconds']:.1f} s, peak RSS {r['peak_kb'] / 1024:.0f} MiB "
                    f"(after imports {r['base_kb'] / 1024:.0f} MiB)"
                )
            ratio = res["long"]["peak_kb"] / res["short"]["peak_kb"]
            print(f"[{backend:6s}] peak RSS ratio long/short: {ratio:.3f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
