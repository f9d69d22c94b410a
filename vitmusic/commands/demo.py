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
    parser.add_argument("--seeds", default=None, metavar="0,1,2",
                        help="train and evaluate both paths once per training seed; the headline gives the mean, "
                        "spread and a t interval across them (default: one run)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars and stage banners")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from vitmusic.workflow import demo
    from vitmusic.workflow.experiments import parse_seeds

    settings = demo.DEFAULT_SETTINGS
    if args.seeds is not None:
        settings = dataclasses.replace(settings, seeds=tuple(parse_seeds(args.seeds, "--seeds")))
    t0 = time.perf_counter()
    report = demo.run_demo(args.out, config=args.config, settings=settings, progress=not args.no_progress)
    print(f"demo finished in {time.perf_counter() - t0:.0f} s; report: {report}")
    return 0
