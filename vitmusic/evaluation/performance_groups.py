"""Metric groups of what video can tell apart from pitch: ``onsets``, ``tempo_curve``, ``dynamics``,
``instrumentation`` (definitions in :mod:`vitmusic.metrics.performance`). Registered by
:mod:`vitmusic.evaluation.groups` after the built-in groups.

References: onsets are scored against the annotated notes of every stem (merged, pitch ignored) when the clip
has a complete Notes annotation, else against the same onset detector run on the reference audio;
``referee.onsets.*`` is that detector on the reference audio against the annotations (the ceiling a copy of
the reference reaches). Tempo curves and loudness envelopes always come from the reference audio (the same
analysis on both sides). Per-part scores need the generated side's MIDI (``<clip>.mid`` next to the audio, one
track per part, as the MIDI path writes) and the stems' Notes; parts are matched to stems by General MIDI
program in track order (:func:`vitmusic.metrics.parts.match_parts`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from vitmusic.evaluation.registry import Metric, MetricGroup, register_metric_group
from vitmusic.evaluation.schema import ClipInput
from vitmusic.metrics import performance
from vitmusic.metrics.referees import MetricUndefinedError

UNIT = (0.0, 1.0)
CORR = (-1.0, 1.0)
REFERENCE_AUDIO = "reference audio"


def _annotated_notes(clip: ClipInput) -> tuple[list | None, str]:
    """Every stem's notes when all are annotated (else ``(None, why not)``); a single-voice clip's notes too."""
    stems = clip.stem_notes
    if stems and all(s is not None for s in stems) and not any("Notes" in p for p in clip.stem_problems):
        return list(stems), ""
    if clip.ref_notes is not None:
        return [clip.ref_notes], ""
    return None, "no complete Notes annotation"


def _parts(clip: ClipInput) -> tuple[list[np.ndarray], list[int | None]]:
    """The generated MIDI's parts (notes per track, cut at the clip end) and, per stem, its part's index."""
    from vitmusic.metrics import parts as parts_mod

    if "gen_parts" not in clip.cache:
        if clip.gen_midi is None:
            clip.cache["gen_parts"] = MetricUndefinedError("no generated MIDI (<clip>.mid) to read parts from")
        else:
            try:
                parts = parts_mod.read_parts(clip.gen_midi)
            except ValueError as e:
                clip.cache["gen_parts"] = MetricUndefinedError(str(e))
            else:
                notes = [p["notes"][p["notes"][:, 0] < clip.duration_s] for p in parts]
                clip.cache["gen_parts"] = (notes, parts_mod.match_parts([p["program"] for p in parts],
                                                                        clip.stem_programs))
    value = clip.cache["gen_parts"]
    if isinstance(value, Exception):
        raise value
    return value


# ------------------------------------------------------------------------------------------------- onsets
def _in_clip(onsets_s: np.ndarray, clip: ClipInput) -> np.ndarray:
    """Onsets that lie in the clip: in a clip cut after its piece's start, the notes sounding at the cut are
    annotated from 0 s and the audio starts mid-note, so the first onset window is left out on both sides
    (the per-part scores' carried-over rule, widened to the onset window for detected onsets)."""
    return onsets_s[onsets_s >= performance.ONSET_WINDOW_S] if clip.start_s > 0 else onsets_s


def score_onsets(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    stems, why_not = _annotated_notes(clip)

    def detect(audio: np.ndarray) -> np.ndarray:
        return _in_clip(performance.detect_onsets(audio, clip.sample_rate), clip)

    est = detect(clip.gen_audio)
    if stems is None:
        clip.reference_used["onsets"] = f"{REFERENCE_AUDIO} ({why_not})"
        return dict(performance.evaluate_onsets(detect(clip.ref_audio), est))
    clip.reference_used["onsets"] = "annotations"
    ref = _in_clip(performance.note_onsets(np.concatenate([np.asarray(s, float).reshape(-1, 3) for s in stems], 0)),
                   clip)
    out = dict(performance.evaluate_onsets(ref, est))
    ceiling = performance.evaluate_onsets(ref, detect(clip.ref_audio))
    out.update({"referee." + k: v for k, v in ceiling.items()})
    if clip.gen_midi is not None and len(stems) == len(clip.stem_programs or []) and clip.stem_notes:
        try:
            parts, match = _parts(clip)
        except MetricUndefinedError:
            return out
        # an unmatched stem is scored against no onsets (0); a stem silent in the clip has none to find (nan)
        scores = [performance.evaluate_onsets(_in_clip(performance.note_onsets(s), clip), _in_clip(
            performance.note_onsets(parts[m]), clip) if m is not None else np.zeros(0))["onsets.f_measure"]
            for s, m in zip(stems, match)]
        scores = [s for s in scores if math.isfinite(s)]
        out["onsets.part_f_measure"] = float(np.mean(scores)) if scores else math.nan
    return out


ONSETS = MetricGroup("onsets", (
    Metric("onsets.f_measure", "rhythm, pitch ignored: mir_eval onset F-measure (50 ms) of the generated audio's "
           "onsets (librosa onset detector, backtracked) vs the reference onsets (all stems' annotated notes merged within "
           "30 ms, else the detector on the reference audio)", UNIT, referee=True),
    Metric("onsets.precision", "onset precision (50 ms, pitch ignored)", UNIT, referee=True),
    Metric("onsets.recall", "onset recall (50 ms, pitch ignored)", UNIT, referee=True),
    Metric("onsets.part_f_measure", "per part: onset F-measure (50 ms, pitch ignored) of each stem's annotated "
           "notes vs the onsets of its generated MIDI part (matched by GM program; none: 0), mean over the "
           "stems; needs <clip>.mid", UNIT),
), score=score_onsets, doc="rhythm: onset F-measure ignoring pitch, for the mix and per MIDI part")


# --------------------------------------------------------------------------------------------- tempo curve
def score_tempo_curve(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    ref_b, gen_b = (performance.track_beats(a, clip.sample_rate) for a in (clip.ref_audio, clip.gen_audio))
    for side, b in (("reference", ref_b), ("generated", gen_b)):
        if b.size < performance.MIN_BEATS:
            raise MetricUndefinedError(f"{side} audio has {b.size} beat(s); a tempo curve needs "
                                       f"{performance.MIN_BEATS}")
    clip.reference_used["tempo_curve"] = REFERENCE_AUDIO
    return dict(performance.evaluate_tempo_curves(ref_b, gen_b))


TEMPO_CURVE = MetricGroup("tempo_curve", (
    Metric("tempo_curve.median_abs_log2_ratio", "median |log2(generated / reference local tempo)| over the common "
           "span of the tempo curves (60 / inter-beat interval of librosa's beats, 3-beat median, start-aligned "
           "at each side's first beat); 1 = an octave error", (0.0, None), "octaves", False),
    Metric("tempo_curve.accuracy", "fraction of the common span where the local tempi agree within 8 %", UNIT),
    Metric("tempo_curve.correlation", "Pearson correlation of the log local-tempo curves (undefined when either "
           "is flat: log2 std < 0.02)", CORR),
), score=score_tempo_curve, doc="tempo curve agreement (local tempo from beats, start-aligned)")


# ------------------------------------------------------------------------------------------------ dynamics
def score_dynamics(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    for side, y in (("reference", clip.ref_audio), ("generated", clip.gen_audio)):
        if float(np.max(np.abs(y))) < performance.SILENCE_RMS:
            raise MetricUndefinedError(f"{side} audio is silent: no loudness envelope")
    clip.reference_used["dynamics"] = REFERENCE_AUDIO
    return dict(performance.evaluate_dynamics(clip.ref_audio, clip.gen_audio, clip.sample_rate))


DYNAMICS = MetricGroup("dynamics", (
    Metric("dynamics.pearson", "Pearson correlation of the loudness envelopes (frame RMS in dB, 0.5 s moving "
           "average, floored 60 dB below each side's peak): level-invariant", CORR),
    Metric("dynamics.spearman", "Spearman rank correlation of the same loudness envelopes", CORR),
), score=score_dynamics, doc="dynamics: correlation of the loudness envelopes")


# ----------------------------------------------------------------------------------------- instrumentation
def score_instrumentation(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    stems = clip.stem_notes
    if not stems or any(s is None for s in stems):
        raise MetricUndefinedError("no complete per-stem Notes annotation")
    parts, match = _parts(clip)
    clip.reference_used["instrumentation"] = "annotations"
    return dict(performance.evaluate_instrumentation(stems, parts, match, clip.duration_s))


INSTRUMENTATION = MetricGroup("instrumentation", (
    Metric("instrumentation.activity_f1", "who plays when: frame-level (10 ms) F1 of 'part k sounds' over every "
           "(stem, frame) cell, each stem against its generated MIDI part (matched by GM program; unmatched "
           "parts count as false alarms, unmatched stems as misses); needs <clip>.mid", UNIT),
    Metric("instrumentation.activity_precision", "precision of the same cells", UNIT),
    Metric("instrumentation.activity_recall", "recall of the same cells", UNIT),
), score=score_instrumentation, doc="instrumentation: per-part activity agreement (MIDI parts vs stems)")


for _group in (ONSETS, TEMPO_CURVE, DYNAMICS, INSTRUMENTATION):
    register_metric_group(_group, replace=True)
