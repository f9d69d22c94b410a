"""Tempo/beat metrics: known answers on click tracks, metamorphic relations, agreement with mir_eval."""

from __future__ import annotations

import math

import librosa
import mir_eval
import numpy as np
import pytest
from metrics_signals import SR, click_train, clicks_at_bpm, melody

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


# ------------------------------------------------------------------ metrical levels (issue 23.3)
@pytest.mark.parametrize("bpm", [90.0, 95.0])
@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_double_and_half_tempo_strict_vs_tolerant(bpm, factor):
    # before: the double-tempo version scored relative error 0.00 and beat F 1.00 (the prior folded 180
    # BPM clicks onto 90), the half-tempo one relative error 0.50: octave errors were neither allowed nor
    # consistently penalised
    scores = tempo.evaluate(clicks_at_bpm(bpm, 10.0), clicks_at_bpm(bpm * factor, 10.0), SR)
    assert scores["tempo.acc1"] == 0.0 and scores["tempo.acc2"] == 1.0
    assert scores["tempo.bpm_rel_error"] == pytest.approx(abs(factor - 1.0), abs=0.04)
    assert scores["tempo.bpm_rel_error_octave"] < 0.02
    assert scores["beat.f_measure"] < 0.75  # strict: half the beats extra or missing (2/3)
    assert scores["beat.amlt"] > 0.85  # any metrical level


def test_other_tempo_fails_both_accuracies():
    scores = tempo.evaluate(clicks_at_bpm(96.0, 10.0), clicks_at_bpm(120.0, 10.0), SR)
    assert scores["tempo.acc1"] == scores["tempo.acc2"] == scores["tempo.p_score"] == 0.0
    assert scores["tempo.bpm_rel_error_octave"] == pytest.approx(0.25, abs=0.02)
    assert scores["beat.amlt"] < 0.2


def test_melody_rerendered_at_double_tempo():
    # equal-length notes: the events of the fast version fall on a grid twice as fast
    pitches = [60, 64, 67, 72, 71, 67, 64, 62] * 4
    slow, _ = melody(pitches, [0.6] * len(pitches))
    fast, _ = melody(pitches * 2, [0.3] * len(pitches) * 2)
    assert tempo.tempo_estimate(tempo.onset_envelope(slow, SR))[0] == pytest.approx(100.0, rel=0.03)
    assert tempo.tempo_estimate(tempo.onset_envelope(fast, SR))[0] == pytest.approx(200.0, rel=0.03)
    scores = tempo.evaluate(slow, fast[: slow.size], SR)
    assert scores["tempo.acc1"] == 0.0 and scores["tempo.acc2"] == 1.0


def test_time_stretched_reference_keeps_acc2():
    y = clicks_at_bpm(100.0, 10.0) + 0.5 * melody([60, 62, 64, 65, 67] * 6, [0.6] * 30)[0][: 10 * SR]
    doubled = librosa.effects.time_stretch(y, rate=2.0)
    scores = tempo.evaluate(y[: doubled.size], doubled, SR)
    assert scores["tempo.acc2"] == 1.0 and scores["tempo.acc1"] == 0.0


def test_metrical_level_rule_keeps_the_beat_when_offbeats_are_weaker():
    # strong beats at 90 BPM with softer off-beats: the tempo stays 90 (the 180 BPM grid is weaker)
    beats = np.arange(0.1, 10.0, 60.0 / 90.0)
    y = click_train(beats, 10.0) + 0.3 * click_train(beats + 30.0 / 90.0, 10.0)
    assert tempo.tempo_estimate(tempo.onset_envelope(y, SR))[0] == pytest.approx(90.0, rel=0.03)


@pytest.mark.parametrize("bpm", [72.0, 100.0, 137.0])
def test_short_clip_tempo_uses_the_whole_clip(bpm):
    # 4 s clips (the demo's length) were analysed through an 8.9 s tempogram window, mostly padding
    dominant, tempi, _ = tempo.tempo_estimate(tempo.onset_envelope(clicks_at_bpm(bpm, 4.0), SR))
    assert dominant == pytest.approx(bpm, rel=0.03)


def test_clip_below_minimum_length_is_undefined_with_a_reason():
    from vitmusic.metrics.referees import MetricUndefinedError

    with pytest.raises(MetricUndefinedError, match=r">= 3 s"):
        tempo.evaluate(clicks_at_bpm(120.0, 2.5), clicks_at_bpm(120.0, 2.5), SR)
    assert tempo.evaluate(clicks_at_bpm(120.0, 3.0), clicks_at_bpm(120.0, 3.0), SR)["tempo.acc1"] == 1.0


def test_accuracy_and_relative_error_definitions():
    assert tempo.accuracy(100.0, 103.9) == 1.0 and tempo.accuracy(100.0, 104.1) == 0.0
    assert [tempo.accuracy(100.0, x, tempo.ACC2_LEVELS) for x in (200.0, 50.0, 300.0, 33.4, 150.0)] == [
        1.0, 1.0, 1.0, 1.0, 0.0]
    assert tempo.relative_error(100.0, 190.0, tempo.ACC2_LEVELS) == pytest.approx(0.05)
    assert math.isnan(tempo.accuracy(math.nan, 100.0)) and tempo.accuracy(100.0, math.nan) == 0.0
    assert tempo.beat_amlt(np.arange(1.0, 9.0, 0.5), np.arange(1.0, 9.0, 1.0)) == 1.0  # half tempo: any level
    assert tempo.beat_f_measure(np.arange(1.0, 9.0, 0.5), np.arange(1.0, 9.0, 1.0)) == pytest.approx(2 / 3)
    assert math.isnan(tempo.beat_amlt(np.array([1.0]), np.arange(1.0, 9.0)))
