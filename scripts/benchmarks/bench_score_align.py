"""How well does the score aligner place a piece's score, given onset/activity curves as good as a head could give?

No model: for every test clip of a prepared benchmark, the clip's *annotated* (performed) notes are turned into
the curves a perfect transcription head would output (a 3-frame onset peak per note, activity while it sounds,
``--noise`` uniform noise, ``--drop`` of the onsets removed), and the piece's score (``Sco_*.mid``) is aligned to
them (:func:`vitmusic.generators.score.align.align_score`, the kind's settings). The placed notes, the score read
deadpan (written tempo, from the clip's start) and the annotation itself are scored against the annotation with
the decoded-notes rule of the MIDI path (:func:`vitmusic.metrics.parts.score_clip_parts`): the ceiling of the
score-informed system on this benchmark's timing (tempo drift, fermata ritardandi), separate from how well a head
reads the video. Intervals over pieces (:func:`vitmusic.metrics.stats.summarize`).

    python scripts/benchmarks/bench_score_align.py PREPARED [--split test] [--noise 0.1] [--drop 0.2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

RATE_HZ = 30.0
METRICS = ("notes.f1_no_offset", "notes.f1")


def head_like_curves(parts: list[np.ndarray], duration_s: float, rng: np.random.Generator, noise: float,
                     drop: float) -> tuple[np.ndarray, np.ndarray]:
    """``[P, T]`` onset and activity curves at ``RATE_HZ`` of notes ``(onset_s, f0_hz, duration_s)``."""
    T = int(round(duration_s * RATE_HZ))
    onset, activity = np.zeros((len(parts), T)), np.zeros((len(parts), T))
    for k, p in enumerate(parts):
        for on_s, _, dur_s in p:
            i = int(round(on_s * RATE_HZ))
            if i >= T:
                continue
            activity[k, i:int(round((on_s + dur_s) * RATE_HZ))] = 0.9
            if rng.random() < drop:
                continue
            for d, h in ((-1, 0.4), (0, 0.9), (1, 0.4)):
                if 0 <= i + d < T:
                    onset[k, i + d] = max(onset[k, i + d], h)
    return onset + rng.uniform(0, noise, onset.shape), np.clip(activity + rng.uniform(0, noise, onset.shape), 0, 1)


def main(argv: list[str] | None = None) -> int:
    from vitmusic.data.manifest import read_manifest
    from vitmusic.generators.score.align import align_score
    from vitmusic.generators.score.score_file import read_score, score_slice
    from vitmusic.metrics.parts import score_clip_parts
    from vitmusic.metrics.stats import summarize
    from vitmusic.workflow.kinds.score_informed import ScoreInformedOptions
    from vitmusic.workflow.kinds.transcription import annotated_parts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prepared", help="folder (or manifest.jsonl) written by 'vitmusic prepare'")
    parser.add_argument("--split", default="test")
    parser.add_argument("--noise", type=float, default=0.1, help="uniform noise added to the curves")
    parser.add_argument("--drop", type=float, default=0.2, help="fraction of onsets the 'head' misses")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--anywhere", dest="search", action="store_false",
                        help="look for each clip anywhere in the score (default: near its own span, as the kind)")
    args = parser.parse_args(argv)
    opts, rng = ScoreInformedOptions(), np.random.default_rng(args.seed)
    rows, pieces = {s: {m: [] for m in METRICS} for s in ("aligned", "deadpan", "oracle")}, []
    for clip in read_manifest(args.prepared, split=args.split):
        duration_s = float(clip["end_s"]) - float(clip["start_s"])
        ref = annotated_parts(clip, len(clip["instruments"]), duration_s)
        score = read_score(clip["score"], clip["instruments"])
        onset, activity = head_like_curves(ref, duration_s, rng, args.noise, args.drop)
        al = align_score(score, onset, activity, RATE_HZ, min_peak=opts.min_peak, snap_s=opts.snap_s,
                         activity_weight=opts.activity_weight, min_velocity=opts.min_velocity,
                         search_s=opts.search(float(clip["start_s"]), float(clip["end_s"])) if args.search else None)
        est = {"aligned": al.parts, "deadpan": score_slice(score, float(clip["start_s"]), float(clip["end_s"])),
               "oracle": ref}
        carried = float(clip["start_s"]) > 0
        for system, parts in est.items():
            s = score_clip_parts(clip["notes"], parts, carried_over=carried)
            for m in METRICS:
                rows[system][m].append(s[m])
        pieces.append(clip["piece"])
    print(f"{len(pieces)} clips of {len(set(pieces))} pieces ({args.split} split of {args.prepared}); curves: "
          f"noise {args.noise}, {args.drop:.0%} of onsets dropped; mean [95 % interval over pieces]")
    for system, per in rows.items():
        cells = []
        for m in METRICS:
            s = summarize(np.array(per[m], float), groups=pieces, bounds=(0.0, 1.0))
            cells.append(f"{m} {s['mean']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]")
        print(f"{system:8s} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
