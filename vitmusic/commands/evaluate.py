"""``vitmusic evaluate``: score generated audio against the paired ground truth (see eval/README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("Score generated audio against paired references: per_clip.csv, summary.json, report.md with plots, "
        "failures.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ref", type=Path, default=None,
                        help="folder of reference audio (optional with --urmp / --manifest: their mixes)")
    parser.add_argument("--gen", type=Path, required=True, help="folder of generated audio")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--videos", type=Path, default=None,
                        help="folder of performance videos named like the clips (for the sync metrics)")
    parser.add_argument("--urmp", type=Path, default=None,
                        help="URMP root: a clip named like a piece folder takes its f0/notes annotations")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="manifest.jsonl (or its folder): a clip named like a clip_id takes its annotations")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated groups (tempo,pitch,notes,chroma,emotion,fad,sync) or metric "
                        "names; default: all")
    parser.add_argument("--sample-rate", type=int, default=22050, help="common analysis rate in Hz")
    parser.add_argument("--pitch-backend", default="swift",
                        help="single-voice f0 tracker of the pitch metrics: pyin, swift, pesto or crepe")
    parser.add_argument("--notes-backend", choices=("auto", "basic-pitch", "mono"), default="auto",
                        help="note transcriber: auto = basic-pitch for ensembles, the f0-based one for one voice")
    parser.add_argument("--emotion-model", default=None, metavar="ID_OR_DIR",
                        help="transformers audio model with a 2-value (valence, arousal) head replacing the proxy")
    parser.add_argument("--annotations", choices=("solo", "always", "never"), default="solo",
                        help="when URMP/manifest f0 and notes replace the tracked reference: solo pieces only "
                        "(default; a monophonic tracker on an ensemble mix follows the loudest voice), always "
                        "(ensembles: top-voice f0, union of notes) or never")
    parser.add_argument("--n-boot", type=int, default=1000, help="unused: CIs are Student-t intervals now (kept so scripts keep working)")
    parser.add_argument("--fad-boot", type=int, default=100,
                        help="unused: FAD is reported without a CI (a clip bootstrap biases it upward)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--plot-clips", type=int, default=3, help="clips drawn in report.md")
    parser.add_argument("--strict", action="store_true", help="stop on the first metric failure")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from vitmusic.errors import ConfigError
    from vitmusic.evaluation.runner import EvalConfig, resolve_metrics, run_evaluation
    from vitmusic.outputs import check_output_dir

    check_output_dir(args.out, "--out")  # before any scoring, not after it

    if args.sample_rate < 4000:
        raise ConfigError(f"--sample-rate must be >= 4000 Hz, got {args.sample_rate}")
    if args.fad_boot < 0:
        raise ConfigError(f"--fad-boot must be >= 0, got {args.fad_boot}")
    if args.n_boot < 1:
        raise ConfigError(f"--n-boot must be >= 1, got {args.n_boot}")
    cfg = EvalConfig(
        gen_dir=args.gen, ref_dir=args.ref, metrics=resolve_metrics(args.metrics), sample_rate=args.sample_rate,
        videos_dir=args.videos, urmp_root=args.urmp, manifest=args.manifest, pitch_backend=args.pitch_backend,
        notes_backend=args.notes_backend, emotion_model=args.emotion_model,
        annotations=args.annotations,
        n_boot=args.n_boot, set_n_boot=args.fad_boot, seed=args.seed, n_plot_clips=max(0, args.plot_clips), strict=args.strict,
    )
    result = run_evaluation(cfg, args.out, progress=not args.quiet)
    import json

    from vitmusic.atomic import atomic_write_text

    # as generate does: one stderr line per failed clip, and the list in a file
    atomic_write_text(args.out / "failures.json", json.dumps(result.failures, indent=1) + "\n")
    for f in result.failures:
        print(f"vitmusic evaluate: skipped {f['clip_id']}: {f['reason']}", file=sys.stderr)
    for w in result.warnings:
        print(f"vitmusic evaluate: warning: {w}", file=sys.stderr)
    if result.missing_gen or result.missing_ref:
        print(f"vitmusic evaluate: {len(result.missing_gen)} reference(s) without generated file, "
              f"{len(result.missing_ref)} generated file(s) without reference (see report.md)", file=sys.stderr)
    print(f"evaluated {len(result.rows)} clip(s) -> {args.out}/per_clip.csv, summary.json, report.md")
    for name, m in result.summary["metrics"].items():
        if m["mean"] is not None:
            lo, hi = m["ci95"]
            ci = f" [{lo:.4g}, {hi:.4g}]" if lo is not None else ""
            flag = " n<10" if m.get("small_n") else ""
            ceiling = (m.get("referee_ceiling") or {}).get("mean")
            ceil = f"  referee ceiling {ceiling:.4g}" if ceiling is not None else ""
            print(f"  {name:28s} {m['mean']:.4g}{ci} (n={m['n']}{flag}){ceil}")
    return 0
