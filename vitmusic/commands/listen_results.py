"""``vitmusic listen-results``: unblind a listening test and summarise it (see eval/listening/README.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "unblind listening-test ratings: per-system means with 95 percent intervals, method named (csv, md, png)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="the stimuli folder (with ratings.sqlite from 'vitmusic listen')")
    parser.add_argument("--results", type=Path, default=None, help="output folder (default: OUT/results)")
    parser.add_argument("--no-screening", action="store_true",
                        help="MUSHRA: keep participants the BS.1534 post-screening would exclude")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the intervals (docs/statistics.md)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def run(args: argparse.Namespace) -> int:
    from vitmusic.errors import ConfigError
    from vitmusic.listening.results import summary_markdown, write_results

    if args.n_boot < 1:
        raise ConfigError(f"--n-boot must be >= 1, got {args.n_boot}")
    result = write_results(args.out, args.results, screening=not args.no_screening, n_boot=args.n_boot,
                           seed=args.seed)
    print(summary_markdown(result), end="")
    return 0
