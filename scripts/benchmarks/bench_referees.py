"""Measure the rhythm, harmony and emotion referees: ceilings, speed, metamorphic checks, proxy-vs-vibenet agreement.

Material: the synthetic benchmark rendered twice (``vitmusic synth-data --source chorales``, builtin synthesizer
and FluidSynth, written under ``--work`` once and reused), the real Bach10 development pieces and the real drum
videos of ``--real`` (``../shared/real``; skipped when absent).

- **Ceilings**: each referee on the *reference* audio against the annotations: annotated beats (the benchmark's
  ``Beats_*.txt``; Bach10's score alignment) for the beat referees, chords and key labelled from the stems'
  notes for the chord referees (:mod:`vitmusic.metrics.chords`). Means over pieces.
- **Speed**: CPU and wall seconds per minute of audio on this machine (its load average is printed: wall times
  on a shared machine are upper bounds; CPU time is what the work costs), each model loaded beforehand.
- **Metamorphic**: (a) a 1.25x time-stretch (``librosa.effects.time_stretch``) of the reference audio must move
  the tempo error against the original annotation by about a quarter of the tempo, and not against the
  annotation scaled with it; (b) a +2 semitone pitch shift must move the key and chord scores against the
  original score, and not against the score transposed with it; (c) a major chorale re-harmonised in minor
  (scale degrees 3 and 6 lowered a semitone: harmonic minor) and rendered again must lower valence (proxy and
  vibenet) and be read in a minor key by the key referees.
- **Agreement** of the emotion proxy and vibenet over 10 s windows of every recording.

Usage::

    python scripts/benchmarks/bench_referees.py --work /tmp/bench_referees [--pieces 6] [--duration-s 20]
        [--real ../shared/real] [--beat-referees librosa,beatnet,madmom] [--chord-referees template,madmom]
        [--sections rhythm,harmony,emotion,mode]   # e.g. two processes: rhythm / harmony,emotion,mode
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import time
from pathlib import Path

import numpy as np

SR = 22050


@dataclasses.dataclass
class Item:
    """One reference recording and its annotations."""

    set: str
    name: str
    audio: np.ndarray
    notes: np.ndarray | None = None  # union of the stems' notes [N, 3]
    beats: np.ndarray | None = None  # [B, 2] (time_s, position)


# ------------------------------------------------------------------------------------------------ material
def synthetic(work: Path, renderer: str, pieces: int, duration_s: float) -> list[Item]:
    from vitmusic.data.beats import find_reference_beats
    from vitmusic.data.synth import generate_benchmark
    from vitmusic.data.urmp import discover_pieces, read_notes
    from vitmusic.evaluation.inputs import load_mono
    from vitmusic.metrics.ensemble import union_notes

    root = work / f"synth-{renderer}"
    done = root / "synth_data.json"
    if not (done.is_file() and json.loads(done.read_text()).get("complete")):
        generate_benchmark(root, pieces, 0, duration_s=duration_s, source="chorales", renderer=renderer,
                           sample_rate=SR, width_per_player=64, height=96, progress=False, plot=False)
    items = []
    for piece in discover_pieces(root)[:pieces]:
        notes = union_notes([read_notes(s.notes) for s in piece.stems])
        items.append(Item(f"synthetic {renderer}", piece.id, load_mono(piece.mix, SR), notes,
                          find_reference_beats(piece.folder)[0]))
    return items


def bach10_notes(folder: Path) -> np.ndarray:
    """Every part's notes of a Bach10 piece (the Bach10 importer's reading of ``<piece>-GTNotes.mat``), as one
    union ``[N, 3]``."""
    from vitmusic.data.layouts.bach10 import read_gt_notes
    from vitmusic.metrics.ensemble import union_notes

    return union_notes(read_gt_notes(folder / f"{folder.name}-GTNotes.mat"))


def real(real_dir: Path) -> tuple[list[Item], list[Item]]:
    """(Bach10 pieces with annotations, drum-video soundtracks without)."""
    from vitmusic.data.beats import find_reference_beats
    from vitmusic.evaluation.inputs import load_mono

    bach10 = [Item("Bach10 (real)", d.name, load_mono(d / f"{d.name}.flac", SR), bach10_notes(d),
                   find_reference_beats(d)[0])
              for d in sorted((real_dir / "bach10-dev").glob("*")) if (d / f"{d.name}.flac").is_file()]
    drums = [Item("drum videos (real)", v.stem, load_mono(v, SR)) for v in sorted((real_dir / "videos").glob("*.mp4"))]
    return bach10, drums


# ------------------------------------------------------------------------------------------------ timing
class Clock:
    """CPU and wall seconds per referee, and the audio seconds they processed; each result is kept under
    ``key`` (when given) so that the metamorphic checks reuse the analyses of the original audio."""

    def __init__(self) -> None:
        self.cost: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
        self.results: dict = {}

    def run(self, name: str, fn, audio: np.ndarray, key=None):
        if key is not None and (name, key) in self.results:
            return self.results[name, key]
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn(audio, SR)
        c = self.cost[name]
        c[0] += time.process_time() - c0
        c[1] += time.perf_counter() - w0
        c[2] += audio.size / SR
        if key is not None:
            self.results[name, key] = out
        return out

    def per_minute(self, name: str) -> tuple[float, float]:
        cpu, wall, audio_s = self.cost[name]
        return 60 * cpu / audio_s, 60 * wall / audio_s


def mean_table(title: str, header: list[str], rows: dict[tuple[str, str], list[dict]], keys: list[str]) -> None:
    print(f"\n### {title}\n")
    print("| set | referee | n | " + " | ".join(header) + " |")
    print("|---|---|---|" + "---|" * len(header))
    for (set_name, referee), scores in rows.items():
        cells = []
        for k in keys:
            v = np.array([s[k] for s in scores], float)
            cells.append("—" if not np.isfinite(v).any() else f"{np.nanmean(v):.3f}")
        print(f"| {set_name} | {referee} | {len(scores)} | " + " | ".join(cells) + " |")


# ------------------------------------------------------------------------------------------------ parts
def rhythm_ceilings(items, trackers, clock) -> dict:
    from vitmusic.metrics import rhythm

    rows: dict = collections.OrderedDict()
    for name, tracker in trackers.items():
        for it in items:
            beats, down = clock.run(f"beat: {name}", tracker.track, it.audio, (it.set, it.name))
            rows.setdefault((it.set, name), []).append(
                rhythm.evaluate(it.beats[:, 0], beats, rhythm.positions_to_downbeats(it.beats), down))
    mean_table("Rhythm referee ceilings (referee on the reference audio vs the annotated beats)",
               ["beat F", "downbeat F", "tempo P", "BPM error"], rows, list(rhythm.METRIC_NAMES))
    return rows


def harmony_ceilings(items, referees, clock) -> dict:
    from vitmusic.metrics import chords, harmony

    rows: dict = collections.OrderedDict()
    for name, ref in referees.items():
        for it in items:
            iv, labels = chords.label_notes(it.notes, it.beats[:, 0] if it.beats is not None else None)
            est_iv, est_labels = clock.run(f"chords: {name}", ref.chords, it.audio, (it.set, it.name))
            est_key = clock.run(f"key: {name}", ref.key, it.audio, (it.set, it.name))
            rows.setdefault((it.set, name), []).append(
                harmony.evaluate(iv, labels, est_iv, est_labels, chords.key_from_notes(it.notes), est_key))
    mean_table("Harmony referee ceilings (referee on the reference audio vs chords / key labelled from the notes)",
               ["majmin", "root", "key weighted"], rows, list(harmony.METRIC_NAMES))
    return rows


def metamorphic_tempo(items, trackers, clock) -> None:
    import librosa

    from vitmusic.metrics import rhythm

    print("\n### Metamorphic: 1.25x time-stretch of the reference audio (beat referees)\n")
    print("| referee | n | BPM error: original | stretched vs original beats | stretched vs stretched beats "
          "| tempo P: original | vs original | vs stretched |")
    print("|---|---|---|---|---|---|---|---|")
    stretched = [librosa.effects.time_stretch(it.audio, rate=1.25) for it in items]
    for name, tracker in trackers.items():
        cols = collections.defaultdict(list)
        for it, y in zip(items, stretched):
            ann = it.beats[:, 0]
            orig = rhythm.evaluate(ann, clock.run(f"beat: {name}", tracker.track, it.audio, (it.set, it.name))[0])
            beats = tracker.track(y, SR)[0]
            moved, scaled = rhythm.evaluate(ann, beats), rhythm.evaluate(ann / 1.25, beats)
            for label, s in (("o", orig), ("m", moved), ("s", scaled)):
                cols["err" + label].append(s["rhythm.bpm_abs_error"])
                cols["p" + label].append(s["rhythm.tempo_p_score"])
        m = {k: np.nanmean(v) for k, v in cols.items()}
        print(f"| {name} | {len(items)} | {m['erro']:.1f} | {m['errm']:.1f} | {m['errs']:.1f} | {m['po']:.2f} | "
              f"{m['pm']:.2f} | {m['ps']:.2f} |")
    tempo = np.mean([rhythm.beat_tempo(it.beats[:, 0]) for it in items])
    print(f"\n(mean annotated tempo {tempo:.1f} BPM: a 1.25x stretch moves it by {0.25 * tempo:.1f} BPM)")


def metamorphic_transpose(items, referees, clock) -> None:
    import librosa

    from vitmusic.metrics import chords, harmony

    print("\n### Metamorphic: +2 semitone pitch shift of the reference audio (chord referees)\n")
    print("| referee | n | majmin: original | shifted vs original score | shifted vs transposed score | "
          "key: original | vs original | vs transposed |")
    print("|---|---|---|---|---|---|---|---|")
    shifted = [librosa.effects.pitch_shift(it.audio, sr=SR, n_steps=2) for it in items]
    for name, ref in referees.items():
        cols = collections.defaultdict(list)
        for it, y in zip(items, shifted):
            beats = it.beats[:, 0] if it.beats is not None else None
            up = it.notes * [1, 2 ** (2 / 12), 1]
            sides = {"o": (it.notes, it.audio), "m": (it.notes, y), "s": (up, y)}
            for label, (notes, audio) in sides.items():
                iv, labels = chords.label_notes(notes, beats)
                key = (it.set, it.name, label == "o")  # the original audio's analyses are the ceilings'
                s = harmony.evaluate(iv, labels, *clock.run(f"chords: {name}", ref.chords, audio, key),
                                     chords.key_from_notes(notes), clock.run(f"key: {name}", ref.key, audio, key))
                cols["mm" + label].append(s["harmony.chord_majmin"])
                cols["k" + label].append(s["harmony.key_weighted"])
        m = {k: np.nanmean(v) for k, v in cols.items()}
        print(f"| {name} | {len(items)} | {m['mmo']:.3f} | {m['mmm']:.3f} | {m['mms']:.3f} | {m['ko']:.3f} | "
              f"{m['km']:.3f} | {m['ks']:.3f} |")


def major_minor_pairs(n: int, duration_s: float) -> list[tuple[str, np.ndarray, np.ndarray, str]]:
    """``n`` major-key chorales rendered (builtin synthesizer) as written and re-harmonised in harmonic minor."""
    from vitmusic.data.synth.scores import PerformedPart, make_performance, midi_to_hz
    from vitmusic.data.synth.writer import render_stems
    from vitmusic.metrics import chords
    from vitmusic.metrics.ensemble import union_notes

    pairs = []
    k = 0
    while len(pairs) < n and k < 60:
        k += 1
        perf = make_performance(np.random.default_rng([7, k]), "chorales", duration_s, chorale=(7, k))
        key = chords.key_from_notes(union_notes([p.notes for p in perf.parts]))
        if key is None or not key.endswith("major"):
            continue
        tonic = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"].index(key.split()[0])
        lowered = {(tonic + 4) % 12, (tonic + 9) % 12}  # degrees 3 and 6: harmonic minor
        parts = []
        for p in perf.parts:
            midi = np.array([m - 1 if m % 12 in lowered else m for m in p.midi])
            parts.append(PerformedPart(p.instrument, midi, np.column_stack([p.notes[:, 0], midi_to_hz(midi),
                                                                            p.notes[:, 2]]), p.velocities))
        minor = dataclasses.replace(perf, parts=parts)
        renders = [np.sum(render_stems(x, SR, "builtin", seed=k)[0], axis=0) for x in (perf, minor)]
        peak = max(float(np.abs(r).max()) for r in renders)
        pairs.append((f"{perf.info['title']} ({key})", renders[0] / peak * 0.9, renders[1] / peak * 0.9, key))
    return pairs


def metamorphic_mode(pairs, emotion_referees, chord_referees) -> None:
    print("\n### Metamorphic: major chorale vs its harmonic-minor re-harmonisation (builtin renders)\n")
    print("| referee | n | valence major | valence minor | minor < major | read as minor (minor render) |")
    print("|---|---|---|---|---|---|")
    for name, est in emotion_referees.items():
        vals = np.array([[est(a, SR)[0], est(b, SR)[0]] for _, a, b, _ in pairs])
        print(f"| {name} | {len(pairs)} | {vals[:, 0].mean():+.3f} | {vals[:, 1].mean():+.3f} | "
              f"{int((vals[:, 1] < vals[:, 0]).sum())}/{len(pairs)} | — |")
    for name, ref in chord_referees.items():
        keys = [(ref.key(a, SR), ref.key(b, SR)) for _, a, b, _ in pairs]
        minor = sum(k2 is not None and k2.endswith("minor") for _, k2 in keys)
        major = sum(k1 is not None and k1.endswith("major") for k1, _ in keys)
        print(f"| key: {name} | {len(pairs)} | — | — | — | {minor}/{len(pairs)} (major render read as major: "
              f"{major}/{len(pairs)}) |")


def emotion_agreement(sets: dict[str, list[Item]], proxy, vibenet, clock) -> None:
    from vitmusic.metrics import emotion, mood

    print("\n### Emotion: proxy vs vibenet on 10 s windows (valence / arousal on [-1, 1])\n")
    print("| set | windows | valence r (Pearson) | valence rho (Spearman) | arousal r | arousal rho | same quadrant "
          "| mean abs diff V / A |")
    print("|---|---|---|---|---|---|---|---|")
    for set_name, items in sets.items():
        a, b = [], []
        for it in items:
            for s in range(0, max(1, it.audio.size - 10 * SR + 1), 10 * SR):
                w = it.audio[s: s + 10 * SR]
                if w.size < 5 * SR or not emotion.is_musical(w, SR):
                    continue
                a.append(clock.run("emotion: proxy", proxy, w))
                b.append(clock.run("emotion: vibenet", vibenet, w))
        g = mood.agreement(np.array(a), np.array(b))
        print(f"| {set_name} | {int(g['n'])} | {g['valence_pearson']:+.2f} | {g['valence_spearman']:+.2f} | "
              f"{g['arousal_pearson']:+.2f} | {g['arousal_spearman']:+.2f} | {g['quadrant_agreement']:.2f} | "
              f"{g['valence_mean_abs_diff']:.2f} / {g['arousal_mean_abs_diff']:.2f} |")


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the rendered benchmark (reused)")
    ap.add_argument("--pieces", type=int, default=6)
    ap.add_argument("--duration-s", type=float, default=20.0)
    real_default = next((p / "shared" / "real" for p in Path(__file__).resolve().parents
                         if (p / "shared" / "real").is_dir()), Path("../shared/real"))
    ap.add_argument("--real", type=Path, default=real_default, help="real material (default: the first "
                    "shared/real beside a folder above this script)")
    ap.add_argument("--renderers", default="builtin,fluidsynth")
    ap.add_argument("--beat-referees", default="librosa,beatnet,madmom")
    ap.add_argument("--chord-referees", default="template,madmom")
    ap.add_argument("--mode-pairs", type=int, default=6, help="major chorales re-harmonised in minor")
    ap.add_argument("--sections", default="rhythm,harmony,emotion,mode",
                    help="what to run (to split the work over processes): rhythm (ceilings, time-stretch), harmony "
                         "(ceilings, transposition), emotion (proxy vs vibenet), mode (major -> minor)")
    args = ap.parse_args()
    sections = set(args.sections.split(","))

    from vitmusic.metrics import beat_trackers, chords, emotion, mood
    from vitmusic.metrics.referees import RefereeUnavailableError

    def load(factory, names):
        out = {}
        for n in names.split(","):
            try:
                out[n] = factory(n)
            except RefereeUnavailableError as e:
                print(f"(skipping {n}: {e})")
        return out

    trackers = load(beat_trackers.beat_tracker, args.beat_referees) if "rhythm" in sections else {}
    chord_refs = load(chords.chord_referee, args.chord_referees) if sections & {"harmony", "mode"} else {}
    proxy, vibenet = emotion.FeatureEmotionEstimator(), mood.VibeNetEstimator()
    for t in trackers.values():  # load models / compile numba before timing
        t.track(np.random.default_rng(0).normal(size=6 * SR).astype(np.float32) * 0.1, SR)
    for r in chord_refs.values():
        r.chords(np.random.default_rng(0).normal(size=2 * SR).astype(np.float32) * 0.1, SR)
    items = [it for r in args.renderers.split(",") for it in synthetic(args.work, r, args.pieces, args.duration_s)]
    bach10, drums = real(args.real) if args.real.is_dir() else ([], [])
    annotated = items + bach10
    load_avg = os.getloadavg()
    print(f"# Referee benchmark: {len(items)} synthetic pieces ({args.renderers}; {args.duration_s:g} s), "
          f"{len(bach10)} Bach10 pieces, {len(drums)} drum videos; load average {load_avg[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    for r in list(trackers.values()) + list(chord_refs.values()) + [vibenet]:
        print(f"- {r.describe()}")
    clock = Clock()
    if "rhythm" in sections:
        rhythm_ceilings(annotated, trackers, clock)
    if "harmony" in sections:
        harmony_ceilings(annotated, chord_refs, clock)
    if "emotion" in sections:
        sets = collections.OrderedDict()
        for it in annotated + drums:
            sets.setdefault(it.set, []).append(it)
        emotion_agreement(sets, proxy, vibenet, clock)
    if clock.cost:
        print(f"\n### Speed (seconds per minute of audio; load average {load_avg[0]:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} now)\n")
        print("| referee | CPU s / min | wall s / min | audio analysed (s) |\n|---|---|---|---|")
        for name in clock.cost:
            cpu, wall = clock.per_minute(name)
            print(f"| {name} | {cpu:.2f} | {wall:.2f} | {clock.cost[name][2]:.0f} |")
    meta = [it for it in annotated if it.set != "synthetic fluidsynth"]
    if "rhythm" in sections:
        metamorphic_tempo(meta, trackers, clock)
    if "harmony" in sections:
        metamorphic_transpose(meta, chord_refs, clock)
    if "mode" in sections:
        pairs = major_minor_pairs(args.mode_pairs, args.duration_s)
        print("\nmajor chorales: " + ", ".join(p[0] for p in pairs))
        emo = {"proxy": proxy}
        try:
            vibenet(pairs[0][1], SR)
            emo["vibenet"] = vibenet
        except RefereeUnavailableError as e:
            print(f"(skipping vibenet: {e})")
        metamorphic_mode(pairs, emo, chord_refs)
    if math.isfinite(load_avg[0]):
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
