"""Before/after figures of the metric definitions of issue 23.3 (tempo, chroma, sync, emotion).

Run it once against the current code and once against the code before the change (e.g. main's checkout
before the merge) to get both columns; every figure is computed by functions both versions have, and a
figure only the new version defines prints as ``-``::

    vitmusic synth-data --out /tmp/synth --pieces 8 --duration 16 --no-plot
    PYTHONPATH=$PWD python scripts/benchmarks/bench_metric_definitions.py --synth /tmp/synth
    PYTHONPATH=/path/to/old/checkout python scripts/benchmarks/bench_metric_definitions.py --synth /tmp/synth

Sections:
- tempo: the dominant tempo of 4 s windows and of whole pieces against the annotated tempo
  (``synth_data.json``): share within 8 %, share at another metrical level (x2, x1/2, x3, x1/3, within 8 %).
- chroma: one second of the reference followed by silence, scored against the whole reference.
- sync: matched video vs another piece's video on 4 s windows and whole pieces: mean peak correlation and
  the AUC (probability that a matched clip scores above a mismatched one) of ``sync.correlation`` and
  ``sync.z_score``; offset within 50 ms of 0 for matched clips.
- emotion: the musical gate on click tracks, noise, a tiny-MusicGen-like artifact (DC + 4/8/16 kHz tones),
  chorales and (when ``--real`` has them) real drum videos; the mode cue's sign on 4 s / 8 s windows of
  major and minor chorales (mix and soprano alone, music21's key analysis as truth) and, with the
  weak-evidence rule, the share of windows where valence stays defined.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

SR = 22050
LEVELS = (2.0, 0.5, 3.0, 1.0 / 3.0)


def _load(path: str | Path, sr: int = SR) -> np.ndarray:
    import librosa
    import soundfile as sf

    y, native = sf.read(str(path), dtype="float32", always_2d=True)
    return librosa.resample(y.mean(axis=1), orig_sr=native, target_sr=sr)


def _pieces(root: Path) -> list[dict]:
    meta = json.loads((root / "synth_data.json").read_text())
    out = []
    for p in meta["pieces"]:
        folder = root / p["piece"]
        out.append({"name": p["piece"], "tempo": float(p["tempo_bpm"]),
                    "audio": _load(next(folder.glob("AuMix_*.wav"))), "video": next(folder.glob("Vid_*.mp4"))})
    return out


def _auc(pos: list[float], neg: list[float]) -> float:
    p, n = np.asarray(pos, float), np.asarray(neg, float)
    p, n = p[np.isfinite(p)], n[np.isfinite(n)]
    if not p.size or not n.size:
        return math.nan
    return float(((p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()) / (p.size * n.size))


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


# ------------------------------------------------------------------------------------------------ tempo
def _dominant(env: np.ndarray) -> float:
    from vitmusic.metrics import tempo

    if hasattr(tempo, "tempo_estimate"):
        return float(tempo.tempo_estimate(env)[0])
    tempi, weight = tempo.tempi_from_envelope(env)
    return math.nan if math.isnan(weight) else float(tempo.dominant_tempo(tempi, weight))


def bench_tempo(pieces: list[dict]) -> None:
    from vitmusic.metrics import tempo

    for label, win_s in (("4 s windows", 4.0), ("whole pieces", None)):
        right = other = n = 0
        for p in pieces:
            y = p["audio"]
            segs = [y] if win_s is None else [y[i:i + int(win_s * SR)] for i in
                                              range(0, y.size - int(win_s * SR) + 1, int(win_s * SR))]
            for seg in segs:
                bpm = _dominant(tempo.onset_envelope(seg, SR))
                n += 1
                if math.isfinite(bpm) and abs(bpm / p["tempo"] - 1) <= 0.08:
                    right += 1
                elif math.isfinite(bpm) and any(abs(bpm / (k * p["tempo"]) - 1) <= 0.08 for k in LEVELS):
                    other += 1
        print(f"tempo  {label:13s} n={n:3d}  within 8 %: {right / n:.3f}  other metrical level: {other / n:.3f}")
    # a double-tempo version of each piece (time-stretched x2) against its first half
    import librosa

    rel, acc1, acc2, beat_f, amlt = [], [], [], [], []
    for p in pieces:
        y = p["audio"]
        fast = librosa.effects.time_stretch(y, rate=2.0)
        s = tempo.evaluate(y[: fast.size], fast, SR)
        rel.append(s["tempo.bpm_rel_error"])
        beat_f.append(s["beat.f_measure"])
        acc1.append(s.get("tempo.acc1", math.nan))
        acc2.append(s.get("tempo.acc2", math.nan))
        amlt.append(s.get("beat.amlt", math.nan))
    print(f"tempo  double-tempo version: rel error {np.nanmean(rel):.3f}  acc1 {_fmt(np.nanmean(acc1))}  "
          f"acc2 {_fmt(np.nanmean(acc2))}  beat F {np.nanmean(beat_f):.3f}  AMLt {_fmt(np.nanmean(amlt))}")


# ------------------------------------------------------------------------------------------------ chroma
def bench_chroma(pieces: list[dict]) -> None:
    from vitmusic.metrics import chroma

    cos, key = [], []
    for p in pieces:
        ref = p["audio"][: 10 * SR]
        est = ref.copy()
        est[SR:] = 0.0
        s = chroma.evaluate(ref, est, SR)
        cos.append(s["chroma.cosine"])
        key.append(s.get("key.local_score", math.nan))
    print(f"chroma 1 s of the reference then 9 s silence: chroma.cosine {np.nanmean(cos):.3f}  "
          f"key.local_score {_fmt(np.nanmean(key))}")


# ------------------------------------------------------------------------------------------------ sync
def bench_sync(pieces: list[dict]) -> None:
    from vitmusic.evaluation.inputs import read_motion_frames
    from vitmusic.metrics import sync

    envs = []
    for p in pieces:
        frames, fps = read_motion_frames(p["video"], 0.0, p["audio"].size / SR)
        envs.append((sync.motion_envelope(frames, fps), fps))
    names = ("sync.correlation", "sync.z_score")
    for label, win_s in (("4 s windows", 4.0), ("whole pieces", None)):
        # mismatched: the same window of another piece's video, and (4 s) the next window of this piece's own
        # video (same tempo and performer, other moment: the hard case)
        matched: dict[str, list[float]] = {n: [] for n in names}
        other_piece: dict[str, list[float]] = {n: [] for n in names}
        other_time: dict[str, list[float]] = {n: [] for n in names}
        offsets = []
        for i, p in enumerate(pieces):
            j = (i + 1) % len(pieces)
            dur = min(p["audio"].size / SR, pieces[j]["audio"].size / SR)
            starts = [0.0] if win_s is None else list(np.arange(0.0, dur - win_s + 1e-9, win_s))
            for w, t0 in enumerate(starts):
                t1 = dur if win_s is None else t0 + win_s
                audio = p["audio"][int(t0 * SR):int(t1 * SR)]
                cases = [(i, t0, matched), (j, t0, other_piece)]
                if win_s is not None:
                    cases.append((i, starts[(w + 1) % len(starts)], other_time))
                for k, v0, store in cases:
                    env, fps = envs[k]
                    seg = env[int(round(v0 * fps)):int(round((v0 + t1 - t0) * fps))]
                    s = sync.evaluate(seg, fps, audio, SR)
                    for name in names:
                        store[name].append(s.get(name, math.nan))
                    if store is matched:
                        offsets.append(abs(s["sync.offset_s"]) <= 0.05)
        print(f"sync   {label:13s} n={len(offsets):3d}  offset within 50 ms (matched) {np.mean(offsets):.3f}")
        for mname, mis in (("another piece's video", other_piece), ("own video, next window", other_time)):
            if not mis["sync.correlation"]:
                continue
            c_m, c_x = matched["sync.correlation"], mis["sync.correlation"]
            z_m, z_x = matched["sync.z_score"], mis["sync.z_score"]
            print(f"       vs {mname:23s} correlation {np.nanmean(c_m):.3f} / {np.nanmean(c_x):.3f} "
                  f"(max {np.nanmax(c_x):.3f}), AUC {_auc(c_m, c_x):.3f};  z {_fmt(np.nanmean(z_m))} / "
                  f"{_fmt(np.nanmean(z_x))}, AUC {_fmt(_auc(z_m, z_x))}")


# ------------------------------------------------------------------------------------------------ emotion
def _clicks(bpm: float, seconds: float) -> np.ndarray:
    y = np.zeros(int(seconds * SR), np.float32)
    k = np.arange(int(0.03 * SR))
    click = np.sin(2 * np.pi * 1000.0 * k / SR) * np.exp(-k / (0.004 * SR))
    for t in np.arange(0.1, seconds, 60.0 / bpm):
        i = int(t * SR)
        y[i:i + k.size] += click[: y.size - i]
    return y


def _artifact(seconds: float) -> np.ndarray:
    """DC plus 4, 8 and 16 kHz tones at 32 kHz with a slow wobble (the tiny MusicGen's spectrum)."""
    sr = 32000
    t = np.arange(int(seconds * sr)) / sr
    y = 0.03 + sum(0.01 * np.sin(2 * np.pi * f * t) for f in (4000.0, 8000.0)) + 0.005 * np.cos(np.pi * sr * t)
    y = y * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))
    import librosa

    return librosa.resample(y.astype(np.float32), orig_sr=sr, target_sr=SR)


def _chorales(n: int, tempo_bpm: float = 90.0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(mode, mix, soprano)`` of the first ``n`` plain 4-voice chorales (music21's key analysis)."""
    from music21 import converter

    from vitmusic.data.synth.instruments import render_notes
    from vitmusic.data.synth.scores import chorale_paths, load_chorale, midi_to_hz

    out = []
    for path in chorale_paths():
        if len(out) >= n:
            break
        score = load_chorale(path)
        if score is None:
            continue
        mode = converter.parse(path).analyze("key").mode
        parts = []
        for part, inst in zip(score.parts, ("fl", "cl", "hn", "vc")):
            notes = part.notes.copy()
            secs = np.stack([notes[:, 0] * 60 / tempo_bpm, midi_to_hz(notes[:, 1]), notes[:, 2] * 60 / tempo_bpm], 1)
            parts.append(render_notes(secs, inst, SR, duration_s=score.length_beats * 60 / tempo_bpm))
        mix = np.sum(parts, axis=0)
        out.append((mode, mix / np.abs(mix).max(), parts[0]))
    return out


def bench_emotion(real: Path | None, n_chorales: int, sweep: tuple[float, ...] = ()) -> None:
    import librosa

    from vitmusic.metrics import emotion

    rng = np.random.default_rng(0)
    signals = {"click track 120 BPM": _clicks(120, 8), "click track 70 BPM": _clicks(70, 8),
               "white noise": 0.1 * rng.normal(size=8 * SR).astype(np.float32),
               "DC + 4/8/16 kHz tones": _artifact(8)}
    for path in sorted(glob.glob(str(real / "videos" / "*.mp4")) if real else []):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signals[f"real drums {Path(path).stem}"] = librosa.load(path, sr=SR, mono=True, duration=10.0)[0]
    est = emotion.FeatureEmotionEstimator()
    for name, y in signals.items():
        v, a = est(y, SR)
        print(f"emotion gate  {name:28s} musical {int(emotion.is_musical(y, SR))}  valence {_fmt(v)}  arousal {_fmt(a)}")
    chorales = _chorales(n_chorales)
    print(f"emotion mode cue on {len(chorales)} chorales ({sum(m == 'major' for m, _, _ in chorales)} major) at 90 BPM:")
    reliable = getattr(emotion, "mode_is_reliable", None)
    for win_s in (4.0, 8.0, 16.0, None):
        for which in ("mix", "soprano"):
            cues = []  # (mode, cue, seconds)
            for mode, mix, soprano in chorales:
                y = mix if which == "mix" else soprano
                w = y.size if win_s is None else int(win_s * SR)
                cues += [(mode, emotion.features(y[i:i + w], SR)["mode"], w / SR) for i in range(0, y.size - w + 1, w)]
            label = "whole" if win_s is None else f"{win_s:g} s"
            rules = [("all windows", lambda c, d: True)]
            if reliable is not None:
                rules.append(("valence defined", reliable))
            rules += [(f"|mode| >= {t:g}", lambda c, d, t=t: abs(c) >= t) for t in sweep]
            for rule, keep in rules:
                parts = []
                for m in ("major", "minor"):
                    c = np.array([x for mm, x, d in cues if mm == m and keep(x, d)])
                    total = sum(mm == m for mm, _, _ in cues)
                    right = np.mean((c > 0) == (m == "major")) if c.size else math.nan
                    parts.append(f"{m}: sign right {_fmt(right)} ({c.size}/{total} defined)")
                print(f"  {label:5s} {which:7s} {rule:16s} " + "  ".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", type=Path, required=True, help="output folder of `vitmusic synth-data`")
    ap.add_argument("--real", type=Path, default=Path(os.environ.get("VITMUSIC_REAL", "/work/shared/real")),
                    help="real material folder (videos/*.mp4 drum videos; skipped when absent)")
    ap.add_argument("--sections", default="tempo,chroma,sync,emotion")
    ap.add_argument("--chorales", type=int, default=16, help="chorales for the mode-cue figures")
    ap.add_argument("--sweep", default="", help="extra mode-evidence thresholds to print, e.g. 0.05,0.1,0.2")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    pieces = _pieces(args.synth) if sections & {"tempo", "chroma", "sync"} else []
    if "tempo" in sections:
        bench_tempo(pieces)
    if "chroma" in sections:
        bench_chroma(pieces)
    if "sync" in sections:
        bench_sync(pieces)
    if "emotion" in sections:
        bench_emotion(args.real if args.real.is_dir() else None, args.chorales,
                      tuple(float(t) for t in args.sweep.split(",") if t))


if __name__ == "__main__":
    main()
