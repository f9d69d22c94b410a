"""Real Bach10 pieces through ``prepare`` and ``evaluate``, with checks of the importer's conventions.

1. Annotation checks: each part's audio against each row of ``-GTF0s.mat`` (librosa YIN, raw pitch accuracy
   within 50 cents on the annotated voiced frames): the diagonal confirms the row order violin, clarinet,
   saxophone, bassoon; the note onsets read from ``-GTNotes.mat`` against the score-to-audio alignment
   (``.txt``: onset_ms, offset_ms, MIDI, voice) confirm the frame-time convention.
2. ``vitmusic prepare --data BACH10 --out OUT/prepared --clip-seconds S`` (layout detected).
3. "Generated" audio = each clip's own mix segment, written as ``OUT/gen/<clip_id>.wav``; ``vitmusic evaluate
   --manifest OUT/prepared --gen OUT/gen`` with the default annotation policy (ensembles: single-voice pitch undefined)
   and with ``--annotations always`` (the annotated top voice and the union of the parts' notes). A copy of
   the reference scores the metrics' ceiling on real recordings: 1 where both sides run the same analysis,
   below 1 where an annotation is the reference (the analysis against the annotation).

Run: ``PYTHONPATH=. python scripts/benchmarks/bach10_evaluate.py --bach10 ../shared/real/bach10-dev --out /tmp/b10``
(about 10 min on 2 cores; ``--metrics`` narrows it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def annotation_checks(root: Path) -> None:
    import librosa
    import soundfile as sf

    from vitmusic.data.layouts import discover_pieces

    diag, off, onset_diffs = [], [], []
    for piece in discover_pieces(root, "bach10"):
        f0s = [s.load_f0() for s in piece.stems]
        for k, stem in enumerate(piece.stems):
            y, sr = sf.read(str(stem.audio), dtype="float32")
            est = librosa.yin(y, fmin=60, fmax=1100, sr=sr, frame_length=2048, hop_length=int(sr * 0.01))
            t = np.arange(len(est)) * int(sr * 0.01) / sr + 1024 / sr
            for j, (times, hz) in enumerate(f0s):
                ref = np.interp(t, times, hz, left=0, right=0)
                v = ref > 0
                acc = float(np.mean(np.abs(1200 * np.log2(est[v] / ref[v])) < 50))
                (diag if j == k else off).append(acc)
        align = piece.folder / f"{piece.id}.txt"
        if align.is_file():
            rows = np.loadtxt(align, ndmin=2)
            for k, stem in enumerate(piece.stems):
                onsets = rows[rows[:, 3] == k + 1, 0] / 1000.0
                for on in stem.load_notes()[:, 0]:
                    onset_diffs.append(on - onsets[np.argmin(np.abs(onsets - on))])
    print(f"row order: YIN on a part vs its own GTF0s row: raw pitch accuracy mean {np.mean(diag):.3f} "
          f"(min {np.min(diag):.3f}); vs the other rows: mean {np.mean(off):.3f} (max {np.max(off):.3f})")
    d = 1000 * np.asarray(onset_diffs)
    print(f"GTNotes onsets minus alignment onsets over {len(d)} notes: median {np.median(d):+.1f} ms, IQR "
          f"{np.percentile(d, 25):+.1f}..{np.percentile(d, 75):+.1f} ms, within 50 ms {np.mean(np.abs(d) < 50):.3f}")


def write_mix_copies(prepared: Path, gen: Path) -> int:
    import soundfile as sf

    from vitmusic.data.manifest import read_manifest

    gen.mkdir(parents=True, exist_ok=True)
    clips = read_manifest(prepared)
    for c in clips:
        sr = sf.info(c["mix"]).samplerate
        y, _ = sf.read(c["mix"], start=int(round(c["start_s"] * sr)), stop=int(round(c["end_s"] * sr)))
        sf.write(gen / f"{c['clip_id']}.wav", y, sr)
    return len(clips)


def main() -> None:
    from vitmusic.cli import main as cli

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bach10", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--metrics", default=None)
    ap.add_argument("--skip-checks", action="store_true")
    args = ap.parse_args()
    if not args.skip_checks:
        annotation_checks(args.bach10)
    prepared = args.out / "prepared"
    if not (prepared / "manifest.jsonl").is_file():
        assert cli(["prepare", "--data", str(args.bach10), "--out", str(prepared), "--clip-seconds",
                    str(args.clip_seconds)]) == 0
    print(f"{write_mix_copies(prepared, args.out / 'gen')} clips, generated = the clip's own mix")
    for policy in ("solo", "always"):
        out = args.out / f"eval_{policy}"
        argv = ["evaluate", "--manifest", str(prepared), "--gen", str(args.out / "gen"), "--out", str(out),
                "--annotations", policy, "--quiet"] + (["--metrics", args.metrics] if args.metrics else [])
        assert cli(argv) == 0
        summary = json.loads((out / "summary.json").read_text())
        print(f"--annotations {policy}:")
        for name, m in summary["metrics"].items():
            if m.get("mean") is not None:
                print(f"  {name:28s} {m['mean']:.4f} (n={m.get('n')})")


if __name__ == "__main__":
    main()
