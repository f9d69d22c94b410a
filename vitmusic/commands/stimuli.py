"""``vitmusic stimuli``: blinded, loudness-matched listening-test stimuli (see eval/listening/README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "make blinded, loudness-matched MUSHRA or A/B listening-test stimuli (mp4 per stimulus) and their design"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", action="append", default=[], metavar="NAME=DIR", required=True,
                        help="a system's generated audio folder (repeatable; files paired by name)")
    parser.add_argument("--videos", type=Path, required=True, help="folder of performance videos")
    parser.add_argument("--ref", type=Path, default=None,
                        help="folder of reference audio (default: the videos' own soundtracks)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (public/ is served, private/ not)")
    parser.add_argument("--design", choices=("mushra", "ab"), default="mushra", help="test design")
    parser.add_argument("--baseline", default=None,
                        help="A/B: compare every system against this one (default: all pairs)")
    parser.add_argument("--participants", type=int, default=20, help="participant orders to draw")
    parser.add_argument("--excerpt-seconds", type=float, default=10.0, help="excerpt length in seconds")
    parser.add_argument("--lufs", type=float, default=-23.0, help="target integrated loudness (LUFS)")
    parser.add_argument("--peak-dbfs", type=float, default=-1.0,
                        help="sample-peak ceiling after the gain; items that would exceed it are lowered as a whole")
    parser.add_argument("--sample-rate", type=int, default=48000, help="stimulus audio sample rate in Hz")
    parser.add_argument("--seed", type=int, default=0, help="seed of the participant orders")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_systems(specs: list[str]) -> dict[str, Path]:
    """``["A=dir1", "B=dir2"]`` -> {"A": Path("dir1"), ...}, in the given order."""
    from vitmusic.errors import ConfigError

    systems: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise ConfigError(f"--system expects NAME=DIR, got {spec!r}")
        if name.strip() in systems:
            raise ConfigError(f"system {name.strip()!r} is given twice")
        systems[name.strip()] = Path(folder.strip())
    return systems


def run(args: argparse.Namespace) -> int:
    from vitmusic.listening.stimuli import StimuliConfig, build_stimuli

    cfg = StimuliConfig(
        systems=parse_systems(args.system), videos=args.videos, ref=args.ref, out=args.out, design=args.design,
        participants=args.participants, excerpt_s=args.excerpt_seconds, lufs=args.lufs, peak_dbfs=args.peak_dbfs,
        seed=args.seed, sample_rate=args.sample_rate, baseline=args.baseline, overwrite=args.overwrite,
    )
    result = build_stimuli(cfg, progress=not args.quiet)
    for name, where in result.missing.items():
        print(f"vitmusic stimuli: {name}: missing in {', '.join(where)}", file=sys.stderr)
    for item, level in result.lowered.items():
        print(f"vitmusic stimuli: {item}: played at {level:.1f} LUFS (below {args.lufs} to avoid clipping)",
              file=sys.stderr)
    print(f"vitmusic stimuli: {result.n_stimuli} stimuli for {len(result.items)} item(s) in {result.out} "
          f"({len(result.missing)} unpaired name(s), {len(result.skipped)} skipped item(s)); participant login "
          f"tokens in {Path(result.out) / 'private' / 'participants.csv'}")
    return 0
