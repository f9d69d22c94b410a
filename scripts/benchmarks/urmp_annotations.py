"""Benchmark: reading/writing URMP annotation files of realistic size (~30k-line F0s files).

Run: ``python scripts/benchmarks/urmp_annotations.py`` — prints milliseconds per call.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from vitmusic.data.urmp import read_f0, read_notes, write_f0, write_notes


def _best_ms(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> None:
    rng = np.random.default_rng(0)
    n_frames, n_notes = 30_000, 2_000
    times_s = np.arange(n_frames) * 256 / 44100
    f0_hz = np.where(rng.random(n_frames) < 0.2, 0.0, rng.uniform(100, 1000, n_frames))
    onsets = np.sort(rng.uniform(0, 170, n_notes))
    notes = np.stack([onsets, rng.uniform(100, 1000, n_notes), rng.uniform(0.05, 2, n_notes)], axis=1)
    with tempfile.TemporaryDirectory() as d:
        f0_path, notes_path = Path(d) / "F0s.txt", Path(d) / "Notes.txt"
        print(f"write_f0   {n_frames} lines: {_best_ms(lambda: write_f0(f0_path, times_s, f0_hz)):7.1f} ms")
        print(f"read_f0    {n_frames} lines: {_best_ms(lambda: read_f0(f0_path)):7.1f} ms")
        print(f"write_notes {n_notes} lines: {_best_ms(lambda: write_notes(notes_path, notes)):7.1f} ms")
        print(f"read_notes  {n_notes} lines: {_best_ms(lambda: read_notes(notes_path)):7.1f} ms")


if __name__ == "__main__":
    main()
