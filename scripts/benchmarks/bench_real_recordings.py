"""Metamorphic benchmark of the evaluation on real recordings (issue 18.6).

PATH is a folder of real multi-part recordings with per-part annotations, in the Bach10 layout (or any layout
``vitmusic prepare`` reads: :mod:`vitmusic.data.layouts`). For every piece the true mix is altered in ways
whose effect on each metric is known in advance, and each altered set is scored against the untouched pieces
with ``vitmusic evaluate``'s own code (``--urmp PATH``: notes and multi-pitch against every part's
annotations):

- ``identity`` (the mix itself: every metric at its best; the notes and multi-pitch figures are the referee
  ceilings), ``-6dB`` (level must not matter), ``+1st`` / ``+1oct`` (pitch-shifted: pitch metrics must
  collapse, chroma too for a semitone), ``-top`` and ``-<instrument>`` (the highest part, then each part,
  removed: note and multi-pitch recall must fall by about that part's share), ``bass only`` (the lowest
  part alone), ``silence``.

It prints one table per metric group (rows: metrics, columns: the variants; mean over pieces; ``ceiling`` =
the referee's own score on the reference), the per-voice referee ceilings (the referee on each part's own
recording vs its annotations), the removal check (each voice's share of the notes next to the relative
drops of ``notes.voice_recall``, ``notes.recall`` and ``multipitch.recall``) and the wall time per variant.
The reference side's basic-pitch transcription is the same in every variant, so it is computed once per
piece (memoized on the audio bytes); everything else runs as in ``vitmusic evaluate``. Usage:

    python scripts/benchmarks/bench_real_recordings.py ../shared/real/bach10-dev [--metrics notes,multipitch]
        [--json out.json]

About 2 min per 30 s piece for all metrics on one CPU core (basic-pitch ~3.6 s per 10 s of audio).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050


def load_bach10(path: str | Path) -> list:
    """The pieces under ``path`` (:class:`vitmusic.data.urmp.Piece`, through ``prepare``'s dataset importers;
    Bach10 and URMP layouts are detected). Swap this function to benchmark another collection."""
    from vitmusic.data.layouts import discover_pieces

    return discover_pieces(path)


def variants(piece, sample_rate: int = SAMPLE_RATE, each_voice: bool = True) -> dict[str, tuple[np.ndarray, int]]:
    """The altered mixes of one piece: name -> (mono audio at ``sample_rate``, index of the removed part or -1).

    ``-top`` removes the highest part (median annotated pitch), ``-<code>`` each part in turn
    (``each_voice``; ``-<code><k>`` when two parts play the same instrument).
    """
    import librosa

    from vitmusic.evaluation.inputs import load_mono

    mix = load_mono(piece.mix, sample_rate)
    stems = [load_mono(s.audio, sample_rate) for s in piece.stems]
    n = min(len(mix), *(len(s) for s in stems))
    mix, stems = mix[:n], [s[:n] for s in stems]

    def without(k: int) -> np.ndarray:
        return np.sum([x for j, x in enumerate(stems) if j != k], axis=0)

    out = {"identity": (mix, -1), "-6dB": (mix * 10 ** (-6 / 20), -1),
           "+1st": (librosa.effects.pitch_shift(mix, sr=sample_rate, n_steps=1), -1),
           "+1oct": (librosa.effects.pitch_shift(mix, sr=sample_rate, n_steps=12), -1)}
    order = _by_register(piece)
    out["-top"] = (without(order[-1]), order[-1])
    codes = [s.instrument for s in piece.stems]
    for k, code in enumerate(codes if each_voice else []):
        out[f"-{code}" if codes.count(code) == 1 else f"-{code}{k + 1}"] = (without(k), k)
    out["bass only"] = (stems[order[0]], -1)
    out["silence"] = (np.zeros_like(mix), -1)
    return out


def _by_register(piece) -> list[int]:
    """Part indices from the lowest to the highest median annotated pitch (unannotated parts first)."""
    medians = []
    for s in piece.stems:
        try:
            notes = s.load_notes()
            medians.append(float(np.median(notes[:, 1])) if len(notes) else -math.inf)
        except Exception:  # noqa: BLE001 - an unannotated part is simply not the bass
            medians.append(-math.inf)
    return [int(k) for k in np.argsort(medians, kind="stable")]


def note_shares(piece) -> tuple[list[float], list[float]]:
    """Each part's share of the piece's annotated notes, and of the notes no other part doubles in unison (the
    share ``notes.voice_recall`` must lose when the part is removed: :func:`ensemble.unison_doubled`)."""
    from vitmusic.metrics.ensemble import unison_doubled

    voices = [s.load_notes() for s in piece.stems]
    counts = [len(v) for v in voices]
    alone = [int(len(d) - d.sum()) for d in unison_doubled(voices)]
    return [c / max(1, sum(counts)) for c in counts], [a / max(1, sum(alone)) for a in alone]


def _memoize_reference_transcriptions() -> None:
    """basic-pitch on identical audio gives identical outputs: remember them by the audio's bytes (the
    reference side is the same audio in every variant)."""
    from vitmusic.metrics.referees import BasicPitch

    analyze = BasicPitch.analyze
    memo: dict[str, tuple] = {}

    @functools.wraps(analyze)
    def cached(self, audio, sample_rate):
        a = np.ascontiguousarray(audio, dtype=np.float32)
        key = hashlib.sha1(a.tobytes()).hexdigest() + f"/{sample_rate}"
        if key not in memo:
            memo[key] = analyze(self, a, sample_rate)
        return memo[key]

    BasicPitch.analyze = cached


def _fmt(x) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path, help="a folder of pieces in the Bach10 (or URMP) layout")
    ap.add_argument("--metrics", default="all", help="metric groups (comma-separated) or all")
    ap.add_argument("--pieces", type=int, default=0, help="only the first N pieces (0: all)")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    ap.add_argument("--no-onset-selection", action="store_true",
                    help="the referee's notes from basic-pitch's own note creation (the figures before the onset "
                    "selection of vitmusic.metrics.referees.select_onsets)")
    ap.add_argument("--no-each-voice", action="store_true",
                    help="remove only the top part (-top), not each part in turn (collections of mixed ensembles)")
    args = ap.parse_args()

    import soundfile as sf

    from vitmusic.evaluation import runner
    from vitmusic.evaluation.registry import metric_groups

    groups = tuple(metric_groups()) if args.metrics == "all" else tuple(args.metrics.split(","))
    pieces = load_bach10(args.path)[: args.pieces or None]
    _memoize_reference_transcriptions()
    if args.no_onset_selection:
        from vitmusic.metrics.referees import basic_pitch

        referee = basic_pitch()  # the shared instance every metric uses
        referee.reonset_threshold, referee.onset_nms_ms = None, 0.0
    shares = {p.id: note_shares(p) for p in pieces}
    results: dict[str, dict] = {}
    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        per_piece = {p.id: variants(p, each_voice=not args.no_each_voice) for p in pieces}
        wall["(variants)"] = time.perf_counter() - t
        names = list(dict.fromkeys(v for d in per_piece.values() for v in d))
        for name in names:
            gen = Path(tmp) / name.replace(" ", "_")
            gen.mkdir()
            for pid, d in per_piece.items():
                if name in d:
                    sf.write(gen / f"{pid}.wav", d[name][0], SAMPLE_RATE)
            cfg = runner.EvalConfig(gen_dir=gen, urmp_root=args.path, metrics=groups, sample_rate=SAMPLE_RATE,
                                    n_plot_clips=0, voice_ceilings=name == "identity")
            t = time.perf_counter()
            res = runner.evaluate_dirs(cfg, progress=False)
            wall[name] = time.perf_counter() - t
            results[name] = {"metrics": res.summary["metrics"], "per_voice": res.summary.get("per_voice", {}),
                             "rows": [{k: v for k, v in r.items() if isinstance(v, (int, float, str))}
                                      for r in res.rows]}
            print(f"  {name}: {wall[name]:.1f} s", flush=True)

    first = results["identity"]["metrics"]
    print(f"\n{len(pieces)} pieces from {args.path}; means over pieces\n")
    header = "| metric | ceiling | " + " | ".join(names) + " |"
    for group in groups:
        members = [m for m in first if m.split(".")[0] == group or (group == "fad" and m in ("kid", "fad", "fad_inf"))
                   or (group == "chroma" and m.startswith("key."))
                   or (group == "tempo" and m.startswith("beat."))]
        if not members:
            continue
        print(f"### {group}\n\n{header}\n" + "|---" * (len(names) + 2) + "|")
        for m in members:
            ceiling = (first[m].get("referee_ceiling") or {}).get("mean")
            cells = [_fmt(results[v]["metrics"].get(m, {}).get("mean")) for v in names]
            print(f"| {m} | {_fmt(ceiling)} | " + " | ".join(cells) + " |")
        print()

    voices = results["identity"]["per_voice"]
    if voices:
        print("### per voice (identity run): the referee on each part's own recording (ceiling) and in the mix\n")
        print("| instrument | ceiling F1 (onsets) | ceiling recall (onsets) | ceiling F1 (with offsets) | "
              "recall in the mix (onsets) |")
        print("|---|---|---|---|---|")
        stem = voices.get("referee", {}).get("instruments", {})
        mix = voices.get("referee-mix", {}).get("instruments", {})
        for inst in dict.fromkeys(list(stem) + list(mix)):
            s, x = stem.get(inst, {}), mix.get(inst, {})
            cells = [s.get(m, {}).get("mean") for m in ("notes.f1_no_offset", "notes.recall_no_offset", "notes.f1")]
            cells.append(x.get("notes.recall_no_offset", {}).get("mean"))
            print(f"| {inst} | " + " | ".join(_fmt(c) for c in cells) + " |")
        print()

    print("### removing a voice: its share of the notes vs the relative drop of each recall (mean over pieces)\n")
    watched = [m for m in ("notes.voice_recall", "notes.recall", "notes.f1_no_offset", "multipitch.recall")
               if m in first]
    print("| removed | share of notes | share played alone | " + " | ".join(f"drop {m}" for m in watched) + " |")
    print("|---" * (len(watched) + 3) + "|")
    removal = {}
    for name in names:
        removed = {pid: d[name][1] for pid, d in per_piece.items() if name in d and d[name][1] >= 0}
        if not removed or name not in results:
            continue
        share = float(np.mean([shares[pid][0][k] for pid, k in removed.items()]))
        share_alone = float(np.mean([shares[pid][1][k] for pid, k in removed.items()]))
        base = {m: {r["clip_id"]: r.get(m) for r in results["identity"]["rows"]} for m in watched}
        drops = {}
        for m in watched:
            rel = [1 - r[m] / base[m][r["clip_id"]] for r in results[name]["rows"]
                   if base[m].get(r["clip_id"]) and math.isfinite(base[m][r["clip_id"]])
                   and math.isfinite(r.get(m, math.nan))]
            drops[m] = float(np.mean(rel)) if rel else math.nan
        removal[name] = {"share": share, "share_alone": share_alone, "relative_drop": drops}
        print(f"| {name} | {share:.3f} | {share_alone:.3f} | " + " | ".join(_fmt(drops[m]) for m in watched) + " |")
    print("\nwall time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in wall.items())
          + f"; total {sum(wall.values()):.1f}")
    if args.json:
        args.json.write_text(json.dumps({"path": str(args.path), "pieces": [p.id for p in pieces], "groups": groups,
                                         "results": results, "removal": removal, "wall_s": wall},
                                        indent=1, default=str))


if __name__ == "__main__":
    main()
