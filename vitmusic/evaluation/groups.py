"""The built-in metric groups of ``vitmusic evaluate``: how each is computed from a clip, and what it means.

Each scorer adapts one :mod:`vitmusic.metrics` module (arrays in, dict out) to a
:class:`~vitmusic.evaluation.schema.ClipInput`; the :class:`~vitmusic.evaluation.registry.Metric`
declarations are the definitions the report and ``summary.json`` print. Importing this module registers
the groups (in the order below, which is the order of every table).

Which reference a metric used is recorded per clip in ``clip.reference_used[group]``: ``"annotations"``
(the dataset's F0s / Notes), ``"reference audio"`` (the same analysis or referee run on the reference
recording) or ``"melody annotation"``; ``summary.json`` counts them per metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

import numpy as np

from vitmusic.evaluation.registry import Metric, MetricGroup, register_metric_group
from vitmusic.evaluation.schema import DEFAULT_PITCH_BACKEND, ClipInput

UNIT = (0.0, 1.0)
NONNEG = (0.0, None)
ANNOTATIONS = "annotations"
REFERENCE_AUDIO = "reference audio"


def _lazy(module: str):
    import importlib

    return importlib.import_module(f"vitmusic.metrics.{module}")


def _f0(clip: ClipInput, side: str, opts: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """f0 track of one side, computed once per clip and shared by the pitch and notes metrics."""
    key = f"{side}_f0"
    if key not in clip.cache:
        audio = clip.ref_audio if side == "ref" else clip.gen_audio
        clip.cache[key] = _lazy("pitch").track_f0(audio, clip.sample_rate,
                                                  backend=opts.get("pitch_backend", DEFAULT_PITCH_BACKEND))
    return clip.cache[key]


# ------------------------------------------------------------------------------------------------ tempo
def score_tempo(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    tempo = _lazy("tempo")
    # the steps of tempo.evaluate, so that the beat plot shows the very beats that were scored
    ref_env, gen_env = (tempo.onset_envelope(a, clip.sample_rate) for a in (clip.ref_audio, clip.gen_audio))
    ref_beats, gen_beats = tempo.beats_from_envelope(ref_env), tempo.beats_from_envelope(gen_env)
    if art is not None:
        art["ref_beats_s"], art["gen_beats_s"] = ref_beats, gen_beats
    clip.reference_used["tempo"] = REFERENCE_AUDIO
    return tempo.evaluate_envelopes(ref_env, gen_env, ref_beats, gen_beats)


TEMPO = MetricGroup("tempo", (
    Metric("tempo.p_score", "mir_eval tempo P-score of the generated audio's two tempo estimates against the "
           "reference audio's (8 % tolerance; a reference pair usually holds two metrical levels)", UNIT),
    Metric("tempo.acc1", "MIREX Acc1: 1 when the generated dominant tempo is within 4 % of the reference's",
           UNIT),
    Metric("tempo.acc2", "MIREX Acc2: 1 when the generated dominant tempo is within 4 % of 1, 2, 1/2, 3 or 1/3 "
           "times the reference's (octave errors allowed)", UNIT),
    Metric("tempo.bpm_abs_error", "|generated - reference| dominant tempo (strict)", NONNEG, "bpm", False),
    Metric("tempo.bpm_rel_error", "|generated - reference| / reference dominant tempo (strict)", NONNEG, "",
           False),
    Metric("tempo.bpm_rel_error_octave", "relative error to the nearest of 1, 2, 1/2, 3, 1/3 times the "
           "reference dominant tempo", NONNEG, "", False),
    Metric("beat.f_measure", "mir_eval beat F-measure (70 ms window) of generated vs reference beats (strict: "
           "double or half tempo scores 2/3)", UNIT),
    Metric("beat.amlt", "mir_eval beat continuity AMLt: correct beats at any metrical level (double, half, "
           "off-beat)", UNIT),
), score=score_tempo, doc="tempo and beats (librosa's tracker on both sides; "
                  "undefined below 3 s)")


# ------------------------------------------------------------------------------------------------ pitch
def score_pitch(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    pitch = _lazy("pitch")
    if clip.ref_f0 is not None:
        ref_f0 = clip.ref_f0
        clip.reference_used["pitch"] = "melody annotation" if clip.n_voices > 1 else ANNOTATIONS
    elif clip.n_voices > 1:
        raise _lazy("referees").MetricUndefinedError(
            "single-voice pitch is undefined for an ensemble without its melody annotation (a monophonic "
            "tracker on a mix follows whichever voice dominates); see multipitch.*, or --annotations always")
    else:
        ref_f0 = _f0(clip, "ref", opts)
        clip.reference_used["pitch"] = REFERENCE_AUDIO
    gen_f0 = _f0(clip, "gen", opts)
    if art is not None:
        art["ref_f0"], art["gen_f0"] = ref_f0, gen_f0
    scores = dict(pitch.evaluate(None, clip.gen_audio, clip.sample_rate, ref_f0=ref_f0, est_f0=gen_f0))
    if clip.ref_f0 is not None:  # referee ceiling: the tracker on the reference audio vs the annotation
        ceiling = pitch.evaluate(None, clip.ref_audio, clip.sample_rate, ref_f0=ref_f0, est_f0=_f0(clip, "ref", opts))
        scores.update({"referee." + k: v for k, v in ceiling.items()})
    return scores


PITCH = MetricGroup("pitch", (
    Metric("pitch.voicing_recall", "mir_eval melody: reference-voiced frames the generated track voices", UNIT,
           referee=True),
    Metric("pitch.voicing_false_alarm", "mir_eval melody: reference-unvoiced frames the generated track voices",
           UNIT, higher_is_better=False, referee=True),
    Metric("pitch.raw_pitch_accuracy", "mir_eval melody: voiced frames within 50 cents", UNIT, referee=True),
    Metric("pitch.raw_chroma_accuracy", "mir_eval melody: voiced frames within 50 cents, octave ignored", UNIT,
           referee=True),
    Metric("pitch.overall_accuracy", "mir_eval melody: frames right on voicing and pitch", UNIT, referee=True),
), score=score_pitch, doc="single-voice f0 (melody) of the generated audio vs the reference melody")


# ------------------------------------------------------------------------------------------------ notes
def score_notes(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    notes = _lazy("notes")
    backend = opts.get("pitch_backend", DEFAULT_PITCH_BACKEND)

    def mono(side: str) -> np.ndarray:  # the monophonic transcriber (f0 track + onsets) of one side
        audio = clip.ref_audio if side == "ref" else clip.gen_audio
        return notes.transcribe(audio, clip.sample_rate, f0=_f0(clip, side, opts), backend=backend)

    return _lazy("ensemble").score_notes(clip, opts, art, mono)


NOTES = MetricGroup("notes", (
    Metric("notes.precision", "mir_eval transcription precision (50 ms onsets, 50 cents, offsets 20 %)", UNIT,
           referee=True),
    Metric("notes.recall", "mir_eval transcription recall (50 ms onsets, 50 cents, offsets 20 %)", UNIT,
           referee=True),
    Metric("notes.f1", "mir_eval transcription F-measure with offsets", UNIT, referee=True),
    Metric("notes.f1_no_offset", "mir_eval transcription F-measure, onsets and pitch only", UNIT, referee=True),
    Metric("notes.voice_recall", "per voice, the share of the notes the referee hears in the reference that it also "
           "hears in the generated audio (onsets and pitch), weighted by the notes each voice plays alone (a note "
           "another voice doubles in unison is left out): a missing voice costs its share of the notes", UNIT),
), score=score_notes, doc="notes transcribed from the generated audio vs the reference notes")


# ------------------------------------------------------------------------------------------------ chroma
def score_chroma(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    clip.reference_used["chroma"] = REFERENCE_AUDIO
    return _lazy("chroma").evaluate(clip.ref_audio, clip.gen_audio, clip.sample_rate)


CHROMA = MetricGroup("chroma", (
    Metric("chroma.cosine", "mean cosine of time-aligned CQT chroma frames over the frames where either side "
           "sounds (one side silent: 0)", UNIT),
    Metric("key.weighted_score", "mir_eval key weighted score of the clip-level Krumhansl-Schmuckler keys",
           UNIT),
    Metric("key.local_score", "mean mir_eval key weighted score of the local keys (8 s window, 1 s steps where "
           "the reference sounds)", UNIT),
    Metric("chroma.pc_histogram_similarity", "cosine of the clip-level pitch-class histograms (harmony "
           "regardless of timing)", UNIT),
), score=score_chroma, doc="harmony: chroma frames, pitch-class histograms and key")


# ------------------------------------------------------------------------------------------------ emotion
def score_emotion(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    clip.reference_used["emotion"] = REFERENCE_AUDIO
    estimator = opts.get("emotion_estimator")
    if estimator is None:  # the proxy keeps its label
        clip.referee_used["emotion"] = _lazy("referee_packages").referee_info("proxy").label(None, "PROXY")
    else:
        clip.referee_used["emotion"] = (estimator.describe() if hasattr(estimator, "describe") else
                                        _lazy("emotion").describe(estimator)["emotion.estimator"])
    return _lazy("emotion").evaluate(clip.ref_audio, clip.gen_audio, clip.sample_rate, estimator=estimator)


EMOTION = MetricGroup("emotion", (
    Metric("emotion.valence_abs_error", "|valence(generated) - valence(reference)| on [-1, 1] (proxy unless "
           "--emotion-referee / --emotion-model; the proxy's valence is undefined below 16 s, on weak mode "
           "evidence and without pitch content)", (0.0, 2.0), higher_is_better=False),
    Metric("emotion.arousal_abs_error", "|arousal(generated) - arousal(reference)| on [-1, 1]", (0.0, 2.0),
           higher_is_better=False),
    Metric("emotion.quadrant_agreement", "1 when both sides fall in the same valence/arousal quadrant", UNIT),
), score=score_emotion, doc="valence / arousal agreement (documented proxy, --emotion-referee vibenet or "
    "--emotion-model); undefined for non-music (noise, click tracks, out-of-band artifacts)")


# ------------------------------------------------------------------------------------------------ sync
def score_sync(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    from vitmusic.evaluation.inputs import read_motion_frames

    sync = _lazy("sync")
    if clip.video is None:
        return {}
    frames, fps = read_motion_frames(clip.video, clip.video_t0, clip.video_t0 + clip.duration_s)
    env = sync.motion_envelope(frames, fps)
    clip.reference_used["sync"] = "video"
    return sync.evaluate(env, fps, clip.gen_audio, clip.sample_rate)


SYNC = MetricGroup("sync", (
    Metric("sync.offset_s", "lag of the generated audio's onsets behind the video's motion onsets (> 0: audio "
           "late)", (-1.0, 1.0), "s", None),
    Metric("sync.correlation", "peak Pearson correlation of motion-onset and audio-onset envelopes (not 0 for "
           "unrelated video: read it with sync.z_score)", (-1.0, 1.0)),
    Metric("sync.z_score", "matched peak (circular correlation, same lag window) minus the mean of its null "
           "(circular shifts and the time-reversed audio), over the null's std; ~0 for unrelated video"),
    Metric("sync.null_percentile", "share of the null's peaks below the matched peak (~uniform for unrelated "
           "video)", UNIT),
), score=score_sync, needs_video=True, doc="audio-visual sync of the generated audio with the video")


# ------------------------------------------------------------------------------------------------ multipitch
def score_multipitch(clip: ClipInput, opts: Mapping[str, Any], art: dict | None) -> Mapping[str, float]:
    return _lazy("ensemble").score_multipitch(clip, opts, art)


MULTIPITCH = MetricGroup("multipitch", (
    Metric("multipitch.precision", "mir_eval multipitch precision (50 cents) of basic-pitch's multi-f0", UNIT,
           referee=True),
    Metric("multipitch.recall", "mir_eval multipitch recall (50 cents)", UNIT, referee=True),
    Metric("multipitch.accuracy", "mir_eval multipitch accuracy (50 cents)", UNIT, referee=True),
    Metric("multipitch.chroma_accuracy", "mir_eval multipitch accuracy, octave ignored", UNIT, referee=True),
), score=score_multipitch, doc="every voice: multi-f0 of the generated audio vs the union of the stems' F0s")


# ------------------------------------------------------------------------------------------------ fad
def embed_fad(clip: ClipInput, opts: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-window embeddings of both sides after loudness normalisation (``opts["fad_embedder"]``, default
    mel-stats); the embedding's description goes to ``opts["fad_embedding"]`` for the summary."""
    fad = _lazy("fad")
    embedder = opts.get("fad_embedder") or fad.MelStatsEmbedder()
    pair = tuple(np.asarray(fad.embed(a, clip.sample_rate, embedder)) for a in (clip.ref_audio, clip.gen_audio))
    if isinstance(opts, dict):
        opts["fad_embedding"] = {**fad.describe_embedder(embedder), "loudness_lufs": fad.TARGET_LUFS}
    return pair


def aggregate_fad(ref_embs: list[np.ndarray], gen_embs: list[np.ndarray]) -> dict[str, dict]:
    """kid (with its interval), fad and fad_inf over the clips, each with the size warnings that apply."""
    return dict(_lazy("fad").set_scores(ref_embs, gen_embs, warn=False))


FAD = MetricGroup("fad", (
    Metric("kid", "headline distribution distance: unbiased MMD^2 (cubic kernel) between the clips' window "
           "embeddings of the reference and the generated set; 95% CI from a jackknife over clips",
           higher_is_better=False, set_level=True),
    Metric("fad", "Fréchet distance between Gaussians fitted to the pooled window embeddings of the two sets "
           "(biased upward by about c/n at n clips: compare only at equal n)", NONNEG, higher_is_better=False,
           set_level=True),
    Metric("fad_inf", "fad extrapolated to infinitely many clips (delete-a-group jackknife)",
           higher_is_better=False, set_level=True),
), embed=embed_fad, aggregate=aggregate_fad,
    doc="distribution distances of the generated set (kid, fad, fad_inf; loudness-normalised, docs/fad.md)")


for _group in (TEMPO, PITCH, NOTES, CHROMA, EMOTION, SYNC, MULTIPITCH, FAD):
    register_metric_group(_group, replace=True)

# the trained-referee groups (rhythm, harmony): their module registers them after the groups above
import_module("vitmusic.evaluation.referee_groups")
# what video can tell apart from pitch (onsets, tempo_curve, dynamics, instrumentation), after the groups above
import_module("vitmusic.evaluation.performance_groups")
