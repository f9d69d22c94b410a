"""FAD: closed-form known answers, small-sample handling, default and transformers embedders."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from metrics_signals import SR, chord_progression, clicks_at_bpm, harmonic_tone, save_tiny_wav2vec2

from vitmusic.metrics import fad


def test_one_dimensional_closed_form():
    # For 1-D Gaussians FAD = (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2.
    got = fad.frechet_distance_from_stats(
        np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])
    )
    assert got == pytest.approx((1 - 3) ** 2 + (2 - 3) ** 2)


def test_matches_eigenvalue_method():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.3
    mu_a, s_a = a.mean(0), np.cov(a, rowvar=False)
    mu_b, s_b = b.mean(0), np.cov(b, rowvar=False)
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvals(s_a @ s_b).real, 0, None)))
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * tr_sqrt
    assert fad.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_identical_sets_zero_and_shift_adds_squared_distance():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 4))
    assert fad.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, 0.0, -2.0, 0.5])
    assert fad.frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_small_samples_warn_and_undefined_is_nan():
    rng = np.random.default_rng(2)
    with pytest.warns(UserWarning, match="biased"):
        value = fad.frechet_distance(rng.normal(size=(10, 20)), rng.normal(size=(10, 20)))
    assert math.isfinite(value) and value > 0  # singular covariances are regularised, not a crash
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(fad.frechet_distance(np.ones((1, 3)), np.ones((5, 3))))


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.ones(5), np.ones((5, 2)), r"\[N, D\]"),
        (np.ones((5, 2)), np.ones((5, 3)), "widths differ"),
        (np.full((5, 2), np.nan), np.ones((5, 2)), "NaN/inf"),
    ],
)
def test_validate(a, b, match):
    with pytest.raises(ValueError, match=match):
        fad.frechet_distance(a, b)


def test_default_embedder_separates_timbres():
    emb = fad.MelStatsEmbedder()
    tone = emb(harmonic_tone(220.0, 4.0), SR)
    assert tone.shape == (7, emb.dim) == (7, 104)  # 1 s windows, 0.5 s hop over 4 s
    assert np.array_equal(fad.embed(harmonic_tone(220.0, 4.0), SR), tone)
    chords = [chord_progression([[60, 64, 67], [62, 65, 69]]) for _ in range(3)]
    clicks = [clicks_at_bpm(bpm, 4.0) for bpm in (90, 110, 130)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny sets: the bias warning is expected
        same = fad.evaluate(chords, chords, SR)["fad"]
        diff = fad.evaluate(chords, clicks, SR)["fad"]
    assert same == pytest.approx(0.0, abs=1e-6) and diff > 100 * max(same, 1e-3)


def test_transformers_embedder_round_trip(tmp_path):
    import torch
    from transformers import Wav2Vec2Model

    model = save_tiny_wav2vec2(tmp_path, Wav2Vec2Model)
    emb = fad.TransformersAudioEmbedder(tmp_path, window_s=1.0, hop_s=1.0)
    y = np.random.default_rng(0).normal(0, 0.1, 3 * 16000).astype(np.float32)
    out = fad.embed(y, 16000, emb)
    assert out.shape == (3, 16)
    inputs = emb.feature_extractor(y[:16000], sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        direct = model(**inputs).last_hidden_state[0].mean(0).numpy()
    assert np.allclose(out[0], direct, atol=1e-5)


def test_transformers_embedder_encodec(tmp_path):
    import torch
    from transformers import EncodecConfig, EncodecFeatureExtractor, EncodecModel

    torch.manual_seed(0)
    config = EncodecConfig(
        target_bandwidths=[1.5],
        sampling_rate=16000,
        audio_channels=1,
        hidden_size=8,
        num_filters=4,
        num_residual_layers=1,
        upsampling_ratios=[4, 4],
        codebook_size=16,
        codebook_dim=8,
        num_lstm_layers=1,
    )
    EncodecModel(config).save_pretrained(tmp_path)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=16000).save_pretrained(tmp_path)
    emb = fad.TransformersAudioEmbedder(tmp_path)
    assert emb.is_encodec
    out = fad.embed(np.random.default_rng(0).normal(0, 0.1, 2 * 16000).astype(np.float32), 16000, emb)
    assert out.shape == (2, 8) and np.all(np.isfinite(out))
