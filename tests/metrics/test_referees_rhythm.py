"""The rhythm metrics (vitmusic.metrics.rhythm) and the beat referees (vitmusic.metrics.beat_trackers).

BeatNet and madmom are optional (extras referees-ccby / referees-nc): their tests carry the ``referees`` marker
and skip when the package is absent (CI installs them and runs ``-m referees``)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from metrics_signals import SR, click_train, clicks_at_bpm

from vitmusic.metrics import beat_trackers, referee_packages, rhythm
from vitmusic.metrics.referees import MetricUndefinedError, RefereeUnavailableError


def _installed(name: str) -> bool:
    try:
        {"beatnet": referee_packages.import_beatnet, "madmom": referee_packages.import_madmom}[name]()
    except RefereeUnavailableError:
        return False
    return True


needs = {name: pytest.mark.skipif(not _installed(name), reason=f"optional referee {name} not installed")
         for name in ("beatnet", "madmom")}


# ------------------------------------------------------------------------------------------------ metrics
def test_perfect_beats_score_one_and_zero_error():
    ref = np.arange(0.5, 10.0, 0.5)
    s = rhythm.evaluate(ref, ref, ref[::4], ref[::4])
    assert list(s) == list(rhythm.METRIC_NAMES)
    assert s["rhythm.beat_f_measure"] == 1.0 and s["rhythm.downbeat_f_measure"] == 1.0
    assert s["rhythm.tempo_p_score"] == 1.0 and s["rhythm.bpm_abs_error"] == pytest.approx(0.0)


def test_octave_error_fails_the_tempo_and_half_the_beats():
    ref = np.arange(0.5, 10.0, 0.5)  # 120 BPM
    est = ref[::2]  # 60 BPM, every other beat
    s = rhythm.evaluate(ref, est)
    assert s["rhythm.tempo_p_score"] == 0.0
    assert s["rhythm.bpm_abs_error"] == pytest.approx(60.0)
    recall = est.size / ref.size  # precision 1
    assert s["rhythm.beat_f_measure"] == pytest.approx(2 * recall / (1 + recall))
    assert math.isnan(s["rhythm.downbeat_f_measure"])  # no bars given on either side


def test_tempo_within_eight_percent_counts():
    ref = np.arange(0.5, 10.0, 0.5)
    assert rhythm.evaluate(ref, np.arange(0.5, 10.0, 0.5 / 1.07))["rhythm.tempo_p_score"] == 1.0
    assert rhythm.evaluate(ref, np.arange(0.5, 10.0, 0.5 / 1.10))["rhythm.tempo_p_score"] == 0.0


def test_undefined_and_failed_detection():
    ref = np.arange(0.5, 10.0, 0.5)
    none = rhythm.evaluate(ref, np.zeros(0), ref[::4], np.zeros(0))  # the estimate found nothing
    assert none["rhythm.beat_f_measure"] == 0.0 and none["rhythm.tempo_p_score"] == 0.0
    assert none["rhythm.downbeat_f_measure"] == 0.0 and math.isnan(none["rhythm.bpm_abs_error"])
    no_ref = rhythm.evaluate(np.array([1.0]), ref)  # one beat is no tempo
    assert all(math.isnan(v) for v in no_ref.values())


def test_validate_names_the_bad_argument():
    with pytest.raises(ValueError, match="estimated_beats_s must be strictly increasing"):
        rhythm.evaluate(np.arange(3.0), np.array([2.0, 1.0]))
    with pytest.raises(ValueError, match="reference_beats_s must be 1-D"):
        rhythm.evaluate(np.zeros((2, 2)), np.arange(3.0))


def test_positions_to_downbeats():
    beats = np.array([[0.5, 4], [1.0, 1], [1.5, 2], [2.0, 3], [2.5, 4], [3.0, 1]], float)
    assert rhythm.positions_to_downbeats(beats).tolist() == [1.0, 3.0]
    unknown = beats.copy()
    unknown[:, 1] = 0
    assert rhythm.positions_to_downbeats(unknown) is None


# ------------------------------------------------------------------------------------------------ referees
def test_librosa_referee_tempo_and_no_bars():
    beats, downbeats = beat_trackers.beat_tracker("librosa").track(clicks_at_bpm(120, 10.0), SR)
    assert downbeats is None
    assert rhythm.beat_tempo(beats) == pytest.approx(120, rel=0.08)


def test_short_silent_and_unknown():
    tracker = beat_trackers.beat_tracker("librosa")
    with pytest.raises(MetricUndefinedError, match="needs at least 4 s of audio"):
        tracker.track(clicks_at_bpm(120, 3.0), SR)
    beats, _ = tracker.track(np.zeros(5 * SR, np.float32), SR)
    assert beats.size == 0
    with pytest.raises(ValueError, match="unknown beat referee 'x'"):
        beat_trackers.beat_tracker("x")


def test_loudness_normalised_input_is_level_free():
    y = clicks_at_bpm(100, 8.0)
    a = beat_trackers.loudness_normalized(y, SR)
    b = beat_trackers.loudness_normalized(y * 10 ** (-20 / 20), SR)
    assert np.allclose(a, b, atol=1e-5)


def test_missing_package_is_one_line_with_the_install_path(monkeypatch):
    referee_packages.import_beatnet.cache_clear()
    beat_trackers.beat_tracker.cache_clear()
    monkeypatch.setitem(sys.modules, "BeatNet", None)  # import BeatNet -> ImportError
    monkeypatch.setitem(sys.modules, "BeatNet.BeatNet", None)
    try:
        with pytest.raises(RefereeUnavailableError, match=r"REFEREES=ccby bash scripts/setup.sh"):
            beat_trackers.beat_tracker("beatnet")
    finally:
        referee_packages.import_beatnet.cache_clear()
        beat_trackers.beat_tracker.cache_clear()


def test_madmom_shim_reports_a_missing_package(monkeypatch):
    referee_packages.import_madmom.cache_clear()
    monkeypatch.setitem(sys.modules, "madmom", None)
    try:
        with pytest.raises(RefereeUnavailableError, match="madmom is not installed.*REFEREES=nc"):
            referee_packages.import_madmom()
    finally:
        referee_packages.import_madmom.cache_clear()


@pytest.mark.referees
@pytest.mark.parametrize("name", ["beatnet", "madmom"])
def test_trained_referee_on_a_click_track(name):
    if not _installed(name):
        pytest.skip(f"optional referee {name} not installed")
    bpm = 120.0
    times = np.arange(0.1, 10.0, 60 / bpm)
    # an accented first beat of every bar of four: a louder, lower click
    y = click_train(times, 10.0) + 1.5 * click_train(times[::4], 10.0, freq_hz=500.0)
    beats, downbeats = beat_trackers.beat_tracker(name).track(y, SR)
    s = rhythm.evaluate(times, beats)
    assert s["rhythm.tempo_p_score"] == 1.0 and s["rhythm.beat_f_measure"] >= 0.9
    assert downbeats is not None and 0 < downbeats.size < beats.size
    assert name.lower() in beat_trackers.beat_tracker(name).describe().lower()


@pytest.mark.referees
@needs["beatnet"]
def test_beatnet_state_is_reset_between_signals():
    """BeatNet's LSTM keeps its state between calls; a clip's activations must not depend on the previous clip."""
    tracker = beat_trackers.beat_tracker("beatnet")
    y = clicks_at_bpm(120, 6.0)
    first = tracker.activations(y)
    tracker.activations(np.random.default_rng(0).normal(size=5 * SR).astype(np.float32))
    assert np.array_equal(first, tracker.activations(y))
    assert "CC BY 4.0" in tracker.describe()
