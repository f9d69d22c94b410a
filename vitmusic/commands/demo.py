"""``vitmusic demo``: synthetic benchmark -> prepare -> extract -> train -> generate -> evaluate -> report."""

from __future__ import annotations

import argparse
import logging

HELP = "run the whole pipeline offline on a small synthetic benchmark and write a report (no arguments needed)"
LOG_LEVEL = logging.WARNING  # progress bars carry the news


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", metavar="DIR",
                        help="output folder (default demo_out); a rerun reuses the finished stages")
    parser.add_argument("--config", default=None, metavar="YAML",
                        help="model preset (default: configs/tiny.yaml, the tiny offline preset)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars and stage banners")


def run(args: argparse.Namespace) -> int:
    import time

    from vitmusic.workflow.demo import run_demo

    t0 = time.perf_counter()
    report = run_demo(args.out, config=args.config, progress=not args.no_progress)
    print(f"demo finished in {time.perf_counter() - t0:.0f} s; report: {report}")
    return 0
