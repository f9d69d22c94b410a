"""Pitch metrics: pyin known answers, metamorphic relations, mir_eval agreement, crepe backend guard."""

from __future__ import annotations

import importlib.util
import math

import mir_eval
import numpy as np
import pytest
from metrics_signals import SR, harmonic_tone, melody

from vitmusic.errors import VitmusicError
from vitmusic.metrics import pitch

MIDIS = [60, 62, 64, 65, 67, 69]
DURS = [0.4] * len(MIDIS)


@pytest.fixture(scope="module")
def ref_melody():
    return melody(MIDIS, DURS)


@pytest.mark.parametrize("f0_hz", [55.0, 220.0, 880.0])
def test_pyin_tracks_harmonic_tone_within_20_cents(f0_hz):
    times, f0 = pitch.track_f0(harmonic_tone(f0_hz, 1.5), SR)
    voiced = f0 > 0
    assert voiced.mean() > 0.9
    cents = 1200 * np.log2(f0[voiced] / f0_hz)
    assert np.median(np.abs(cents)) < 20
    assert np.allclose(np.diff(times), 0.02)


def test_identical_audio_scores_perfect(ref_melody):
    y, _ = ref_melody
    scores = pitch.evaluate(y, y, SR)
    assert list(scores) == list(pitch.METRIC_NAMES)
    for name in ("voicing_recall", "raw_pitch_accuracy", "raw_chroma_accuracy", "overall_accuracy"):
        assert scores[f"pitch.{name}"] == 1.0


def test_semitone_up_kills_pitch_and_chroma(ref_melody):
    y, _ = ref_melody
    up, _ = melody(MIDIS, DURS, transpose=1.0)
    scores = pitch.evaluate(y, up, SR)
    assert scores["pitch.voicing_recall"] > 0.9
    assert scores["pitch.raw_pitch_accuracy"] < 0.1
    assert scores["pitch.raw_chroma_accuracy"] < 0.1


def test_octave_up_keeps_chroma_only(ref_melody):
    y, _ = ref_melody
    octave, _ = melody(MIDIS, DURS, transpose=12.0)
    scores = pitch.evaluate(y, octave, SR)
    assert scores["pitch.raw_pitch_accuracy"] < 0.1
    assert scores["pitch.raw_chroma_accuracy"] > 0.9


def test_silence(ref_melody):
    y, _ = ref_melody
    silence = np.zeros_like(y)
    scores = pitch.evaluate(y, silence, SR)
    assert scores["pitch.voicing_recall"] == 0.0
    assert scores["pitch.raw_pitch_accuracy"] == 0.0
    # A silent reference has no voiced frames: recall and raw accuracies are undefined, not 0.
    scores = pitch.evaluate(silence, y, SR)
    assert math.isnan(scores["pitch.voicing_recall"]) and math.isnan(scores["pitch.raw_pitch_accuracy"])
    assert scores["pitch.voicing_false_alarm"] > 0.9


def test_reference_from_annotations(ref_melody):
    y, notes = ref_melody
    # URMP-style F0s annotation at a 10 ms hop, with a voiced/unvoiced gap at the end.
    times = np.arange(0, notes[-1, 0] + notes[-1, 2] + 0.5, 0.01)
    idx = np.searchsorted(notes[:, 0], times, side="right") - 1
    f0 = notes[idx, 1]
    f0[times >= notes[-1, 0] + notes[-1, 2]] = 0.0
    scores = pitch.evaluate(None, y, SR, ref_f0=(times, f0))
    assert scores["pitch.raw_pitch_accuracy"] > 0.9
    assert scores["pitch.voicing_false_alarm"] < 0.2


def test_evaluate_f0_agrees_with_mir_eval():
    rng = np.random.default_rng(0)
    ref_t = np.arange(200) * 0.01
    ref_f = np.where(rng.random(200) < 0.8, 220 * 2 ** rng.normal(0, 0.05, 200), 0.0)
    # The estimate spans the reference (a shorter one is padded unvoiced first, see pitch.evaluate_f0).
    est_t = np.arange(151) * 0.0133
    est_f = np.where(rng.random(151) < 0.7, 220 * 2 ** rng.normal(0, 0.05, 151), 0.0)
    ours = pitch.evaluate_f0(ref_t, ref_f, est_t, est_f)
    theirs = mir_eval.melody.evaluate(ref_t, ref_f, est_t, est_f)
    for key, name in [
        ("Voicing Recall", "voicing_recall"),
        ("Voicing False Alarm", "voicing_false_alarm"),
        ("Raw Pitch Accuracy", "raw_pitch_accuracy"),
        ("Raw Chroma Accuracy", "raw_chroma_accuracy"),
        ("Overall Accuracy", "overall_accuracy"),
    ]:
        assert ours[f"pitch.{name}"] == pytest.approx(theirs[key], abs=1e-12)


def test_track_shares_pass_with_evaluate(ref_melody):
    y, _ = ref_melody
    est_f0 = pitch.track_f0(y, SR)
    assert pitch.evaluate(y, y, SR, est_f0=est_f0) == pitch.evaluate(y, y, SR)


def test_bad_inputs():
    y = harmonic_tone(220.0, 1.5)
    with pytest.raises(ValueError, match="unknown pitch backend"):
        pitch.evaluate(y, y, SR, backend="yin")
    with pytest.raises(ValueError, match="give ref_audio or ref_f0"):
        pitch.evaluate(None, y, SR)
    with pytest.raises(ValueError, match="strictly increasing"):
        pitch.evaluate_f0([0.0, 0.0], [1.0, 1.0], [0.0, 0.1], [1.0, 1.0])
    with pytest.raises(ValueError, match="2 times but 3 values"):
        pitch.evaluate(None, y, SR, ref_f0=([0.0, 0.1], [1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="NaN/inf"):
        pitch.validate([0.0, 0.1], [np.nan, 1.0], [0.0], [1.0])


@pytest.mark.skipif(importlib.util.find_spec("torchcrepe") is not None, reason="torchcrepe is installed")
def test_crepe_without_torchcrepe_explains_install():
    with pytest.raises(VitmusicError, match="pip install --no-deps torchcrepe"):
        pitch.track_f0(harmonic_tone(220.0, 1.0), SR, backend="crepe")


@pytest.mark.skipif(importlib.util.find_spec("torchcrepe") is None, reason="torchcrepe not installed")
def test_crepe_tracks_harmonic_tone():
    _, f0 = pitch.track_f0(harmonic_tone(220.0, 1.5), SR, backend="crepe")
    voiced = f0 > 0
    assert voiced.mean() > 0.8
    assert np.median(np.abs(1200 * np.log2(f0[voiced] / 220.0))) < 20
