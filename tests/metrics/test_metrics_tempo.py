"""Tempo/beat metrics: known answers on click tracks, metamorphic relations, agreement with mir_eval."""

from __future__ import annotations

import math

import librosa
import mir_eval
import numpy as np
import pytest
from metrics_signals import SR, click_train, clicks_at_bpm

from vitmusic.metrics import tempo


@pytest.mark.parametrize("bpm", [90.0, 120.0, 150.0])
def test_click_tracks_known_tempo(bpm):
    y = clicks_at_bpm(bpm)
    tempi, weight = tempo.estimate_tempi(y, SR)
    assert tempi[0] <= tempi[1] and 0.0 <= weight <= 1.0
    dominant = tempo.dominant_tempo(tempi, weight)
    assert abs(dominant - bpm) / bpm < 0.02
    librosa_bpm = float(librosa.feature.tempo(y=y, sr=SR)[0])  # same prior, lag-quantised argmax
    assert abs(dominant - librosa_bpm) / librosa_bpm < 0.03
    # The second tempo of a click train is its half (a metrical level), not noise.
    assert abs(tempi[0] - bpm / 2) / (bpm / 2) < 0.03
    scores = tempo.evaluate(y, y, SR)
    assert list(scores) == list(tempo.METRIC_NAMES)
    assert scores["tempo.p_score"] == 1.0
    assert scores["tempo.bpm_abs_error"] == 0.0 and scores["tempo.bpm_rel_error"] == 0.0
    assert scores["beat.f_measure"] == 1.0


def test_25_percent_faster_fails_detection():
    scores = tempo.evaluate(clicks_at_bpm(120.0), clicks_at_bpm(150.0), SR)
    assert scores["tempo.p_score"] == 0.0
    assert 0.2 < scores["tempo.bpm_rel_error"] < 0.3
    assert scores["beat.f_measure"] < 0.5


def test_half_tempo_estimate_still_partly_right():
    # Metrical-level ambiguity: a 60 BPM estimate matches the reference's slower tempo (60 of 60/120).
    scores = tempo.evaluate(clicks_at_bpm(120.0), clicks_at_bpm(60.0), SR)
    assert 0.0 < scores["tempo.p_score"] < 1.0


def test_silence_gives_nan_or_zero_without_crash():
    silence = np.zeros(5 * SR, np.float32)
    assert all(math.isnan(v) for v in tempo.evaluate(silence, silence, SR).values())
    scores = tempo.evaluate(clicks_at_bpm(120.0, 5.0), silence, SR)
    assert scores["tempo.p_score"] == 0.0  # reference has a tempo, estimate none: a failed detection
    assert math.isnan(scores["tempo.bpm_abs_error"])
    assert scores["beat.f_measure"] == 0.0


def test_wrappers_agree_with_mir_eval():
    ref, est = np.array([60.0, 120.0]), np.array([61.0, 180.0])
    expected = mir_eval.tempo.detection(ref, 0.3, est, tol=0.08)[0]
    assert tempo.p_score(ref, 0.3, est) == expected == 0.3
    ref_beats = np.arange(0.5, 10, 0.5)
    est_beats = ref_beats[::2] + 0.03
    assert tempo.beat_f_measure(ref_beats, est_beats) == mir_eval.beat.f_measure(ref_beats, est_beats)
    trimmed = tempo.beat_f_measure(ref_beats, est_beats, trim_s=5.0)
    assert trimmed == mir_eval.beat.f_measure(
        mir_eval.beat.trim_beats(ref_beats), mir_eval.beat.trim_beats(est_beats)
    )
    # Beat tracking on real audio: the wrapper equals mir_eval on the tracker's own beat times.
    y_ref, y_est = clicks_at_bpm(100.0, 8.0), click_train(np.arange(0.1, 8.0, 0.6) + 0.02, 8.0)
    scores = tempo.evaluate(y_ref, y_est, SR)
    direct = mir_eval.beat.f_measure(tempo.beat_times(y_ref, SR), tempo.beat_times(y_est, SR))
    assert scores["beat.f_measure"] == pytest.approx(direct)


def test_empty_reference_beats_are_undefined():
    assert math.isnan(tempo.beat_f_measure(np.zeros(0), np.array([1.0, 2.0])))
    assert tempo.beat_f_measure(np.array([1.0, 2.0]), np.zeros(0)) == 0.0


@pytest.mark.parametrize(
    ("ref", "weight", "est", "match"),
    [
        ([120.0], 0.5, [120.0, 60.0], "exactly two"),
        ([120.0, -1.0], 0.5, [120.0, 60.0], ">= 0"),
        ([120.0, 60.0], 1.5, [120.0, 60.0], r"\[0, 1\]"),
        ([120.0, 60.0], 0.5, [np.inf, 60.0], "finite"),
    ],
)
def test_validate_rejects_bad_tempi(ref, weight, est, match):
    with pytest.raises(ValueError, match=match):
        tempo.validate(np.array(ref), weight, np.array(est))
