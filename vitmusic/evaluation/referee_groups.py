"""The trained-referee metric groups ``rhythm`` and ``harmony`` (registered on import, after the built-in
groups of :mod:`vitmusic.evaluation.groups`).

Each scores the generated audio through a selectable referee against the reference annotations when the
clip has them, else against the same referee on the reference audio; with annotations, the referee on the
reference audio against them is the ceiling (``referee.<metric>``), as for pitch. The referee's name, version
and licence go to ``clip.referee_used`` (``summary.json`` ``referee`` next to each metric, the report).

- ``rhythm`` (``--beat-referee``, :mod:`vitmusic.metrics.beat_trackers`): reference beats from the piece's beat
  annotation (:func:`vitmusic.data.beats.find_reference_beats`: the synthetic benchmark's ``Beats_*.txt``,
  Bach10's score alignment), metrics of :mod:`vitmusic.metrics.rhythm`.
- ``harmony`` (``--chord-referee``, :mod:`vitmusic.metrics.chords`): reference chords and key labelled from the
  union of every stem's notes (segmented at the annotated beats when there are any), metrics of
  :mod:`vitmusic.metrics.harmony`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vitmusic.evaluation.registry import Metric, MetricGroup, register_metric_group
from vitmusic.evaluation.schema import DEFAULT_BEAT_REFEREE, DEFAULT_CHORD_REFEREE, ClipInput

UNIT = (0.0, 1.0)
ANNOTATIONS = "annotations"


def _metrics(module: str):
    import importlib

    return importlib.import_module(f"vitmusic.metrics.{module}")


def _cached(clip: ClipInput, key: str, compute):
    """``compute()`` once per clip (an exception is cached and raised again)."""
    if key not in clip.cache:
        try:
            clip.cache[key] = compute()
        except _metrics("referees").MetricUndefinedError as e:
            clip.cache[key] = e
    value = clip.cache[key]
    if isinstance(value, Exception):
        raise value
    return value


def _with_ceiling(scores: Mapping[str, float], ceiling) -> dict:
    return _metrics("ensemble")._with_ceiling(scores, ceiling)


# ------------------------------------------------------------------------------------------------ rhythm
def score_rhythm(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    rhythm = _metrics("rhythm")
    name = opts.get("beat_referee", DEFAULT_BEAT_REFEREE)
    tracker = _metrics("beat_trackers").beat_tracker(name)
    clip.referee_used["rhythm"] = tracker.describe()
    if clip.ref_beats_problem:
        raise _metrics("referees").MetricUndefinedError(clip.ref_beats_problem)

    def track(side: str):
        audio = clip.ref_audio if side == "ref" else clip.gen_audio
        return _cached(clip, f"{side}_beats_{name}", lambda: tracker.track(audio, clip.sample_rate))

    gen_beats, gen_down = track("gen")
    if art is not None:
        art["rhythm_gen_beats_s"] = gen_beats
    if clip.ref_beats is None:
        clip.reference_used["rhythm"] = "reference audio (no beat annotation)"
        ref_beats, ref_down = track("ref")
        return dict(rhythm.evaluate(ref_beats, gen_beats, ref_down, gen_down))
    clip.reference_used["rhythm"] = ANNOTATIONS
    ann, ann_down = clip.ref_beats[:, 0], rhythm.positions_to_downbeats(clip.ref_beats)

    def ceiling():
        ref_beats, ref_down = track("ref")
        return rhythm.evaluate(ann, ref_beats, ann_down, ref_down)

    return _with_ceiling(rhythm.evaluate(ann, gen_beats, ann_down, gen_down), ceiling)


RHYTHM = MetricGroup("rhythm", (
    Metric("rhythm.beat_f_measure", "mir_eval beat F-measure (70 ms) of the beat referee's beats in the generated "
           "audio vs the reference beats (annotated, else the referee on the reference audio)", UNIT, referee=True),
    Metric("rhythm.downbeat_f_measure", "the same F-measure on downbeats (undefined for the librosa referee, which "
           "has no bars, and where the reference's bar positions are unknown)", UNIT, referee=True),
    Metric("rhythm.tempo_p_score", "1 when the generated beat tempo (60 / median inter-beat interval) is within 8 % "
           "of the reference's (mir_eval P-score, one tempo per side), else 0", UNIT, referee=True),
    Metric("rhythm.bpm_abs_error", "|generated - reference| beat tempo (60 / median inter-beat interval)",
           (0.0, None), "bpm", False, referee=True),
), score=score_rhythm, doc="beats, downbeats, tempo from a beat referee (--beat-referee) vs annotated beats")


# ------------------------------------------------------------------------------------------------ harmony
def _chords(clip: ClipInput, referee, side: str):
    audio = clip.ref_audio if side == "ref" else clip.gen_audio

    def analyse():
        iv, labels = referee.chords(audio, clip.sample_rate)
        return iv, labels, referee.key(audio, clip.sample_rate)

    return _cached(clip, f"{side}_chords_{referee.name}", analyse)


def reference_notes(clip: ClipInput) -> tuple[np.ndarray | None, str]:
    """The clip's reference notes for chord labelling (every stem's notes, unisons merged, or the single
    voice's), or ``(None, why not)``."""
    ensemble = _metrics("ensemble")
    stems, why_not = ensemble.stem_annotations(clip, "notes")
    if stems is not None:
        return ensemble.union_notes(stems), ""
    if clip.ref_notes is not None and clip.n_voices == 1:
        return np.asarray(clip.ref_notes, float).reshape(-1, 3), ""
    return None, why_not


def score_harmony(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    chords, harmony = _metrics("chords"), _metrics("harmony")
    referee = chords.chord_referee(opts.get("chord_referee", DEFAULT_CHORD_REFEREE))
    clip.referee_used["harmony"] = referee.describe()
    gen_iv, gen_labels, gen_key = _chords(clip, referee, "gen")
    notes, why_not = reference_notes(clip)
    if notes is None:
        clip.reference_used["harmony"] = f"reference audio ({why_not})"
        ref_iv, ref_labels, ref_key = _chords(clip, referee, "ref")
        return dict(harmony.evaluate(ref_iv, ref_labels, gen_iv, gen_labels, ref_key, gen_key))
    clip.reference_used["harmony"] = ANNOTATIONS
    beats = clip.ref_beats[:, 0] if clip.ref_beats is not None else None
    ref_iv, ref_labels = chords.label_notes(notes, beats)
    if not any(lab not in ("N", "X") for lab in ref_labels):
        raise _metrics("referees").MetricUndefinedError(
            "the reference notes form no chord (no segment matches a chord template): harmony is undefined")
    ref_key = chords.key_from_notes(notes)
    if art is not None:
        art["ref_chords"], art["gen_chords"] = (ref_iv, ref_labels), (gen_iv, gen_labels)

    def ceiling():
        iv, labels, key = _chords(clip, referee, "ref")
        return harmony.evaluate(ref_iv, ref_labels, iv, labels, ref_key, key)

    return _with_ceiling(harmony.evaluate(ref_iv, ref_labels, gen_iv, gen_labels, ref_key, gen_key), ceiling)


HARMONY = MetricGroup("harmony", (
    Metric("harmony.chord_majmin", "mir_eval majmin chord agreement (duration-weighted) of the chord referee on the "
           "generated audio vs the chords labelled from the reference notes (else the referee on the reference "
           "audio)", UNIT, referee=True),
    Metric("harmony.chord_root", "mir_eval chord root agreement (duration-weighted), same sides", UNIT, referee=True),
    Metric("harmony.key_weighted", "mir_eval key weighted score of the referee's key of the generated audio vs the "
           "reference notes' Krumhansl-Schmuckler key (else the referee on the reference audio)", UNIT, referee=True),
), score=score_harmony, doc="chords and key from a chord referee (--chord-referee) vs the reference score's")


for _group in (RHYTHM, HARMONY):
    register_metric_group(_group, replace=True)
