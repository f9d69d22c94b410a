"""``vitmusic compare``: systems x metrics with paired differences against the first system."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("Compare evaluation folders: means, paired differences with CIs and sign-flip p against the first "
        "system, pieces as the unit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="`vitmusic evaluate` output folders; the first is the baseline")
    parser.add_argument("--out", type=Path, action="append", default=[],
                        help="also write the table to this .md or .csv file, or a .png plot of the paired "
                        "differences (repeatable)")
    parser.add_argument("--metrics", default=None, help="comma-separated metric names (default: every metric the folders hold)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the intervals of the differences (docs/statistics.md)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def run(args: argparse.Namespace) -> int:
    from vitmusic.atomic import atomic_write_text
    from vitmusic.errors import ConfigError
    from vitmusic.evaluation.compare import compare_markdown, compare_runs, plot_compare, write_compare_csv

    for out in args.out:
        if out.suffix.lower() not in (".md", ".csv", ".png"):
            raise ConfigError(f"--out must end in .md, .csv or .png, got {out}")
    if args.n_boot < 1:
        raise ConfigError(f"--n-boot must be >= 1, got {args.n_boot}")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    rows = compare_runs(args.runs, metrics=metrics, n_boot=args.n_boot, seed=args.seed)
    table = compare_markdown(rows)
    print(table, end="")
    for out in args.out:
        if out.suffix.lower() == ".csv":
            write_compare_csv(out, rows)
        elif out.suffix.lower() == ".png":
            if plot_compare(rows, out) is None:
                print(f"vitmusic compare: no shared clips to plot; {out} not written", file=sys.stderr)
        else:
            atomic_write_text(out, table)
    return 0
