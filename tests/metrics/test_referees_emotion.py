"""The trained emotion referee (vibenet, optional extra referees-gpl) beside the proxy, and their agreement."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from metrics_signals import A_MINOR_CHORDS, C_MAJOR_CHORDS, SR, chord_progression

from vitmusic.metrics import emotion, mood, referee_packages
from vitmusic.metrics.referees import RefereeUnavailableError


def _vibenet() -> bool:
    try:
        referee_packages.import_vibenet()
    except RefereeUnavailableError:
        return False
    return True


def test_agreement():
    a = np.array([[0.5, 0.2], [-0.3, 0.4], [0.1, -0.6], [-0.8, -0.1]])
    same = mood.agreement(a, a)
    assert same["n"] == 4 and same["valence_pearson"] == pytest.approx(1.0)
    assert same["arousal_spearman"] == pytest.approx(1.0) and same["quadrant_agreement"] == 1.0
    assert same["valence_mean_abs_diff"] == 0.0
    flipped = mood.agreement(a, -a)
    assert flipped["valence_pearson"] == pytest.approx(-1.0) and flipped["quadrant_agreement"] == 0.0
    with_nan = mood.agreement(np.vstack([a, [[math.nan, 0.0]]]), np.vstack([a, [[0.0, 0.0]]]))
    assert with_nan["n"] == 4  # a clip undefined on one side is left out
    assert math.isnan(mood.agreement(a[:2], a[:2])["valence_pearson"])  # too few clips for a correlation


def test_missing_vibenet_is_one_line_on_use(monkeypatch):
    referee_packages.import_vibenet.cache_clear()
    mood._vibenet_model.cache_clear()
    monkeypatch.setitem(sys.modules, "vibenet", None)
    try:
        estimator = mood.VibeNetEstimator()  # constructing it loads nothing
        with pytest.raises(RefereeUnavailableError, match="REFEREES=gpl"):
            estimator(chord_progression(C_MAJOR_CHORDS), SR)
    finally:
        referee_packages.import_vibenet.cache_clear()
        mood._vibenet_model.cache_clear()


@pytest.mark.referees
@pytest.mark.skipif(not _vibenet(), reason="optional referee vibenet not installed")
def test_vibenet_is_level_free_and_hears_mode_and_pace():
    estimator = mood.VibeNetEstimator()
    happy = np.tile(chord_progression(C_MAJOR_CHORDS, 0.5), 3)  # major, two chords a second
    sad = chord_progression(A_MINOR_CHORDS, 1.5)  # minor, a chord every 1.5 s
    v_happy, a_happy = estimator(happy, SR)
    v_sad, a_sad = estimator(sad, SR)
    assert -1 <= v_sad < v_happy <= 1 and -1 <= a_happy <= 1
    quiet = estimator(happy * 10 ** (-15 / 20), SR)  # loudness-normalised first: the gain does not matter
    assert quiet == pytest.approx((v_happy, a_happy), abs=1e-3)
    assert isinstance(estimator, emotion.EmotionEstimator) and "GPL-3.0" in estimator.describe()
    scores = emotion.evaluate(happy, sad, SR, estimator=estimator)
    assert scores["emotion.valence_abs_error"] == pytest.approx(abs(v_happy - v_sad), abs=1e-6)
