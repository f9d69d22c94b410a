"""Benchmark: ``prepare_manifest`` on a URMP-sized fake root (44 pieces x ~3 min, 1-5 stems, 5.8 ms F0 hop).

Run: ``python scripts/benchmarks/prepare_manifest.py [--pieces 44] [--clip-seconds 10]`` — prints the time
to build the root, the time to prepare, and the manifest size. Audio files are silent (only their headers
are read); annotation files have real URMP sizes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from vitmusic.data.manifest import prepare_manifest
from vitmusic.data.urmp import (
    INSTRUMENTS,
    mix_file_name,
    piece_folder_name,
    stem_file_name,
    write_f0,
    write_notes,
)


def build_root(root: Path, n_pieces: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    codes = sorted(INSTRUMENTS)
    sample_rate = 8000  # headers are all prepare reads from the audio
    for number in range(1, n_pieces + 1):
        insts = list(rng.choice(codes, size=int(rng.integers(1, 6))))
        duration_s = float(rng.uniform(60, 300))
        folder = root / piece_folder_name(number, f"Piece{number}", insts)
        folder.mkdir(parents=True)
        sf.write(folder / mix_file_name(folder), np.zeros(int(duration_s * sample_rate), np.int16), sample_rate)
        times_s = np.arange(0, duration_s, 256 / 44100)
        for k, code in enumerate(insts, start=1):
            f0_hz = np.where(rng.random(times_s.size) < 0.3, 0.0, rng.uniform(100, 800, times_s.size))
            write_f0(folder / stem_file_name("F0s", k, code, number, f"Piece{number}"), times_s, f0_hz)
            onsets = np.sort(rng.uniform(0, duration_s - 2, int(duration_s * 2)))
            notes = np.stack([onsets, rng.uniform(100, 800, onsets.size), rng.uniform(0.1, 2, onsets.size)], 1)
            write_notes(folder / stem_file_name("Notes", k, code, number, f"Piece{number}"), notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pieces", type=int, default=44)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--hop-seconds", type=float, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        build_root(Path(d) / "urmp", args.pieces)
        t1 = time.perf_counter()
        result = prepare_manifest(Path(d) / "urmp", Path(d) / "out", args.clip_seconds, args.hop_seconds,
                                  progress=False)
        t2 = time.perf_counter()
        n_clips = sum(result.clips_per_split.values())
        size_mb = result.manifest.stat().st_size / 1e6
        print(f"build fake root ({args.pieces} pieces): {t1 - t0:.1f} s")
        print(f"prepare: {t2 - t1:.2f} s for {n_clips} clips ({1e3 * (t2 - t1) / n_clips:.1f} ms/clip), "
              f"manifest {size_mb:.1f} MB")


if __name__ == "__main__":
    main()
