"""Emotion metrics: the feature PROXY's directions, the estimator protocol and the transformers adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from metrics_signals import (
    A_MINOR_CHORDS,
    C_MAJOR_CHORDS,
    SR,
    chord_progression,
    clicks_at_bpm,
    save_tiny_wav2vec2,
)

from vitmusic.metrics import emotion


def test_identical_audio_agrees_perfectly():
    y = chord_progression(C_MAJOR_CHORDS)
    scores = emotion.evaluate(y, y, SR)
    assert list(scores) == list(emotion.METRIC_NAMES)
    assert scores["emotion.valence_abs_error"] == 0.0 and scores["emotion.arousal_abs_error"] == 0.0
    assert scores["emotion.quadrant_agreement"] == 1.0


def test_proxy_directions():
    est = emotion.FeatureEmotionEstimator()
    assert est.is_proxy
    major, minor = chord_progression(C_MAJOR_CHORDS), chord_progression(A_MINOR_CHORDS)
    v_major, _ = est(major, SR)
    v_minor, _ = est(minor, SR)
    assert v_major > v_minor  # mode carries valence
    _, a_quiet = est(0.05 * clicks_at_bpm(70.0, 6.0), SR)
    _, a_loud = est(0.9 * clicks_at_bpm(160.0, 6.0), SR)
    assert a_loud > a_quiet  # loudness, event rate and tempo carry arousal
    for v, a in [est(major, SR), est(np.zeros(2 * SR, np.float32), SR)]:
        assert -1.0 <= v <= 1.0 and -1.0 <= a <= 1.0
    label = emotion.describe()
    assert label["emotion.estimator"] == "FeatureEmotionEstimator" and "PROXY" in label["emotion.note"]


def test_features_are_documented_units():
    f = emotion.features(clicks_at_bpm(120.0, 6.0), SR)
    assert list(f) == ["loudness", "onset_rate", "tempo", "brightness", "mode"]
    assert f["tempo"] == pytest.approx(120.0, rel=0.03)
    assert f["onset_rate"] == pytest.approx(2.0, abs=0.3)
    assert f["loudness"] < 0


class _Fixed:
    def __init__(self, table):
        self.table = table

    def __call__(self, audio, sample_rate):
        return self.table[int(np.argmax(np.abs(audio)) > 0)]


def test_pluggable_estimator_and_quadrants():
    y = clicks_at_bpm(100.0, 2.0)
    est = _Fixed({0: (0.5, 0.5), 1: (-0.25, 0.75)})
    assert isinstance(est, emotion.EmotionEstimator)
    scores = emotion.evaluate(y, y, SR, estimator=_Fixed({0: (0.5, 0.5), 1: (0.5, -0.5)}))
    assert scores["emotion.quadrant_agreement"] == 1.0
    scores = emotion.evaluate(y, np.roll(y, 1), SR, estimator=est)
    assert scores["emotion.valence_abs_error"] == 0.0
    assert [emotion.quadrant(v, a) for v, a in [(1, 1), (-1, 1), (-1, -1), (1, -1), (0, 0)]] == [
        1,
        2,
        3,
        4,
        1,
    ]


def test_bad_estimator_output_is_rejected():
    y = clicks_at_bpm(100.0, 2.0)
    with pytest.raises(ValueError, match="finite"):
        emotion.evaluate(y, y, SR, estimator=lambda a, sr: (math.nan, 0.0))
    with pytest.raises(ValueError, match="two numbers"):
        emotion.evaluate(y, y, SR, estimator=lambda a, sr: ("high", 0.0))


def test_transformers_adapter_round_trip(tmp_path):
    import torch
    from transformers import Wav2Vec2ForSequenceClassification

    model = save_tiny_wav2vec2(tmp_path, Wav2Vec2ForSequenceClassification, num_hidden_layers=1,
                               classifier_proj_size=8, num_labels=2, problem_type="regression")
    est = emotion.TransformersEmotionEstimator(tmp_path)
    assert not est.is_proxy and est.sample_rate == 16000
    assert "PROXY" not in emotion.describe(est)["emotion.note"]
    assert str(tmp_path) in emotion.describe(est)["emotion.estimator"]
    y = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    v, a = est(y, 16000)
    inputs = est.feature_extractor(y, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits[0]
    assert (v, a) == pytest.approx((float(logits[0]), float(logits[1])), abs=1e-5)
    # Resampling path: the same audio given at 22050 Hz goes through soxr first.
    scores = emotion.evaluate(clicks_at_bpm(100.0, 1.5), clicks_at_bpm(100.0, 1.5), SR, estimator=est)
    assert scores["emotion.valence_abs_error"] == 0.0
    with pytest.raises(ValueError, match="must be < 2"):
        emotion.TransformersEmotionEstimator(tmp_path, arousal_index=2)
