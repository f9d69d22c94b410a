"""Score-informed generation vs its baselines from a trained run: the systems' written notes against the annotation.

Runs every system of the ``score-informed`` kind (``model``, ``shuffled``, ``deadpan``, ``oracle``,
``transcription``; :func:`vitmusic.workflow.kinds.score_informed.run_systems`) on the test split of a prepared
benchmark with a trained run (``score-informed`` or ``transcription``; e.g. ``RUN = OUT/model/seed0/run`` of
``vitmusic ablate experiments/score_bench.yaml``), then scores each clip's written MIDI against its annotated
notes (``transcription.notes.*``, the MIDI path's rule) and prints mean [95 % interval over pieces] per system,
with the number of clips each system refused (``failures.json``).

    python scripts/benchmarks/bench_score_informed.py PREPARED RUN --out OUT [--min-peak 0.01]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from vitmusic.data.manifest import read_manifest
    from vitmusic.runs import read_run
    from vitmusic.workflow.kinds import score_informed as si

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prepared")
    parser.add_argument("run")
    parser.add_argument("--out", required=True)
    parser.add_argument("--systems", default=",".join(si.SYSTEMS))
    parser.add_argument("--min-peak", type=float, default=None, help="kind_options.min_peak (default: the run's)")
    parser.add_argument("--onset-threshold", type=float, default=None,
                        help="transcription.onset_threshold of the transcription system (default: the run's)")
    parser.add_argument("--prior-weight", type=float, default=None, help="kind_options.prior_weight")
    parser.add_argument("--split", default=None, help="score this split instead of the test split (e.g. val)")
    args = parser.parse_args(argv)
    _, config, _ = read_run(args.run)
    if args.min_peak is not None:
        config.kind_options = {**config.kind_options, "min_peak": args.min_peak}
    if args.prior_weight is not None:
        config.kind_options = {**config.kind_options, "prior_weight": args.prior_weight}
    if args.split is not None:
        config.data.test_split = args.split
    if args.onset_threshold is not None:
        config.transcription.onset_threshold = args.onset_threshold
    folders = si.run_systems(args.prepared, args.run, args.out, systems=tuple(args.systems.split(",")),
                             config=config, progress=False)
    test = read_manifest(args.prepared, split=config.data.test_split)
    pieces = {c["piece"] for c in test}
    print(f"{len(test)} {config.data.test_split} clips of {len(pieces)} pieces; mean [95 % interval over pieces]")
    for name, row in si.summarize_systems(config, folders).items():
        cells = [f"{m.split('.', 1)[1]} {row[m]['mean']:.3f} [{row[m]['ci95'][0]:.3f}, {row[m]['ci95'][1]:.3f}]"
                 for m in si.REPORT_METRICS]
        print(f"{name:14s} n={row['n']:3d} refused={row['refused']:3d}  " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
