"""``vitmusic ablate``: run every variant of an experiment file and tabulate them against its baseline."""

from __future__ import annotations

import argparse
import sys

HELP = "run an experiment file (experiments/*.yaml): train, generate and evaluate every variant; results.md/csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # one positional list: argparse cannot take the file and the overrides as two positionals when options
    # stand between them (`ablate X.yaml --only a,b data.manifest=...`)
    parser.add_argument("experiment", nargs="+", metavar="EXPERIMENT.yaml [key.sub=value ...]",
                        help="experiment file (its name is the run name), then config overrides for every "
                        "variant, applied last (e.g. data.manifest=prepared/; evaluate.metrics=chroma sets the evaluation); give them "
                        "right after the file")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default runs/ablate/<experiment name>); rerun to resume")
    parser.add_argument("--only", default=None, metavar="V1,V2", help="run only these variants")
    parser.add_argument("--seeds", default=None, metavar="0,1,2",
                        help="run every variant once per seed k (train.seed = generate.seed = k) into "
                        "OUT/<variant>/seed<k>/ and aggregate across seeds (default: the file's seeds:, else one run)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from vitmusic.errors import ConfigError
    from vitmusic.workflow.ablate import run_experiment
    from vitmusic.workflow.experiments import load_experiment, select_variants

    path, *overrides = args.experiment
    if "=" in path:
        raise ConfigError(f"the first argument must be the experiment file, got {path!r}")
    exp = load_experiment(path, overrides)
    select_variants(exp, args.only)  # an unknown --only name fails before anything runs
    from vitmusic.workflow.experiments import parse_seeds, split_overrides

    seeds = parse_seeds(args.seeds, "--seeds") if args.seeds is not None else None
    results, failures = run_experiment(exp, args.out, only=args.only, extra=split_overrides(overrides)[1],
                                       progress=not args.no_progress, seeds=seeds)
    for name, err in failures.items():
        print(f"vitmusic ablate: variant {name} failed: {err}", file=sys.stderr)
    if results is not None:
        print(results)
    return 2 if failures else 0
