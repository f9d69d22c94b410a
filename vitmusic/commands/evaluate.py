"""``vitmusic evaluate``: score generated audio against the paired ground truth (see docs/evaluation.md)."""

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
                        help="dataset root (URMP, Bach10 or another layout, detected; docs/data.md): a clip named "
                        "like a piece folder takes its f0/notes annotations")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="manifest.jsonl (or its folder): a clip named like a clip_id takes its annotations")
    from vitmusic.evaluation.registry import metric_groups

    groups = metric_groups()
    parser.add_argument("--metrics", default=None,
                        help="comma-separated metric groups or metric names (e.g. notes.f1); default: all. "
                        "Groups: " + "; ".join(f"{g.name} ({g.doc})" if g.doc else g.name for g in groups.values()))
    parser.add_argument("--sample-rate", type=int, default=22050, help="common analysis rate in Hz")
    parser.add_argument("--pitch-backend", default="swift",
                        help="single-voice f0 tracker of the pitch metrics: pyin, swift, pesto or crepe")
    parser.add_argument("--notes-backend", choices=("auto", "basic-pitch", "mono"), default="auto",
                        help="note transcriber: auto = basic-pitch for ensembles, the f0-based one for one voice")
    parser.add_argument("--voice-ceilings", action=argparse.BooleanOptionalAction, default=True,
                        help="per-voice referee ceilings: the note transcriber on each stem's own audio vs its "
                        "annotations, rows 'referee' of per_part.csv (default on when stems have audio; one more "
                        "referee run per stem)")
    parser.add_argument("--emotion-model", default=None, metavar="ID_OR_DIR",
                        help="transformers audio model with a 2-value (valence, arousal) head replacing the proxy")
    from vitmusic.evaluation.schema import (
        DEFAULT_BEAT_REFEREE,
        DEFAULT_CHORD_REFEREE,
        DEFAULT_EMOTION_REFEREE,
    )
    from vitmusic.metrics.beat_trackers import BEAT_REFEREES
    from vitmusic.metrics.chords import CHORD_REFEREES
    from vitmusic.metrics.mood import EMOTION_REFEREES

    parser.add_argument("--beat-referee", choices=BEAT_REFEREES, default=DEFAULT_BEAT_REFEREE,
                        help="beat tracker of the rhythm metrics: librosa (ISC; default, no downbeats), beatnet "
                        "(BeatNet, CC BY 4.0: attribution; extra referees-ccby) or madmom (models CC BY-NC-SA 4.0: "
                        "non-commercial only; extra referees-nc). Measured: docs/evaluation.md 'Trained referees'")
    parser.add_argument("--chord-referee", choices=CHORD_REFEREES, default=DEFAULT_CHORD_REFEREE,
                        help="chord and key recogniser of the harmony metrics: template (chroma triad templates + "
                        "Viterbi, MIT; default) or madmom (CNN/CRF chords, CNN key; models CC BY-NC-SA 4.0: "
                        "non-commercial only; extra referees-nc)")
    parser.add_argument("--emotion-referee", choices=EMOTION_REFEREES, default=DEFAULT_EMOTION_REFEREE,
                        help="valence/arousal estimator of the emotion metrics: proxy (hand-weighted features, "
                        "MIT; default, labelled PROXY) or vibenet (trained valence/energy model, GPL-3.0; extra "
                        "referees-gpl)")
    parser.add_argument("--annotations", choices=("solo", "always", "never"), default="solo",
                        help="when URMP/manifest f0 and notes replace the tracked reference: solo pieces only "
                        "(default; a monophonic tracker on an ensemble mix follows the loudest voice), always "
                        "(ensembles: top-voice f0, union of notes) or never")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the intervals over pieces (docs/statistics.md)")
    parser.add_argument("--fad-embedding", default="mel-stats", metavar="NAME_OR_ID",
                        help="embedding of kid / fad / fad_inf: mel-stats (default, offline), a fadtk name "
                        "(clap-laion-audio, clap-laion-music, encodec-emb, MERT-v1-95M[-LAYER], w2v2-base, "
                        "hubert-base, ...), a transformers hub id or a local folder (docs/fad.md)")
    parser.add_argument("--fad-layer", type=int, default=None,
                        help="hidden-state layer of a transformers --fad-embedding (default: its own)")
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
    if args.n_boot < 1:
        raise ConfigError(f"--n-boot must be >= 1, got {args.n_boot}")
    cfg = EvalConfig(
        gen_dir=args.gen, ref_dir=args.ref, metrics=resolve_metrics(args.metrics), sample_rate=args.sample_rate,
        videos_dir=args.videos, urmp_root=args.urmp, manifest=args.manifest, pitch_backend=args.pitch_backend,
        notes_backend=args.notes_backend, voice_ceilings=args.voice_ceilings, emotion_model=args.emotion_model,
        beat_referee=args.beat_referee,
        chord_referee=args.chord_referee, emotion_referee=args.emotion_referee, fad_embedding=args.fad_embedding,
        fad_layer=args.fad_layer, annotations=args.annotations,
        n_boot=args.n_boot, seed=args.seed, n_plot_clips=max(0, args.plot_clips), strict=args.strict,
    )
    result = run_evaluation(cfg, args.out, progress=not args.quiet)  # failures.json too, in the same folder swap
    # as generate does: one stderr line per failed clip, and the list in a file
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
            emb = f"  [{m['embedding']['name']}]" if m.get("embedding") else ""
            print(f"  {name:28s} {m['mean']:.4g}{ci} (n={m['n']}{flag}){ceil}{emb}")
    referees = {r for m in result.summary["metrics"].values() for r in (m.get("referee") or {})}
    for r in sorted(referees):  # each licence named with the result that used it
        print(f"  referee: {r}")
    return 0
