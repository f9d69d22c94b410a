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
    drum_pattern,
    melody,
    save_tiny_wav2vec2,
)

from vitmusic.metrics import emotion


def test_identical_audio_agrees_perfectly():
    y = _long(chord_progression(C_MAJOR_CHORDS))
    scores = emotion.evaluate(y, y, SR)
    assert list(scores) == list(emotion.METRIC_NAMES)
    assert scores["emotion.valence_abs_error"] == 0.0 and scores["emotion.arousal_abs_error"] == 0.0
    assert scores["emotion.quadrant_agreement"] == 1.0


def _long(y: np.ndarray, seconds: float = emotion.MODE_CONTEXT_S) -> np.ndarray:
    """``y`` repeated to at least ``seconds`` (valence needs that much context)."""
    return np.tile(y, int(np.ceil(seconds * SR / y.size)))


def test_proxy_directions():
    est = emotion.FeatureEmotionEstimator()
    assert est.is_proxy
    major, minor = _long(chord_progression(C_MAJOR_CHORDS)), _long(chord_progression(A_MINOR_CHORDS))
    v_major, _ = est(major, SR)
    v_minor, _ = est(minor, SR)
    assert v_major > v_minor  # mode carries valence
    _, a_slow = est(drum_pattern(60.0, 8.0), SR)
    _, a_fast = est(drum_pattern(150.0, 8.0), SR)
    assert a_fast > a_slow  # event rate and tempo carry arousal
    v, a = est(major, SR)
    assert -1.0 <= v <= 1.0 and -1.0 <= a <= 1.0
    label = emotion.describe()
    assert label["emotion.estimator"] == "FeatureEmotionEstimator" and "PROXY" in label["emotion.note"]


def test_valence_undefined_on_short_clips_and_without_pitch():
    # the mode cue's sign was right on 38-55 % of 4-8 s windows of minor chorales: no valence there
    est = emotion.FeatureEmotionEstimator()
    short = chord_progression(C_MAJOR_CHORDS)  # 4 s
    v, a = est(short, SR)
    assert math.isnan(v) and math.isfinite(a)
    assert math.isfinite(est(_long(short), SR)[0])
    v, a = est(drum_pattern(100.0, emotion.MODE_CONTEXT_S), SR)  # rhythm, no pitch: no mode
    assert math.isnan(v) and math.isfinite(a)
    s = emotion.evaluate(short, short, SR)
    assert math.isnan(s["emotion.valence_abs_error"]) and math.isnan(s["emotion.quadrant_agreement"])
    assert s["emotion.arousal_abs_error"] == 0.0
    assert not emotion.mode_is_reliable(0.05, 60.0) and emotion.mode_is_reliable(0.2, 20.0)


def test_features_are_documented_units():
    f = emotion.features(clicks_at_bpm(120.0, 6.0), SR)
    assert list(f) == ["loudness_lufs", "onset_rate", "tempo", "brightness", "mode"]
    assert f["tempo"] == pytest.approx(120.0, rel=0.03)
    assert f["onset_rate"] == pytest.approx(2.0, abs=0.3)
    assert f["loudness_lufs"] < 0


def test_proxy_is_loudness_normalised():
    # the measurement: a -15 dB gain change moved arousal by 0.35 before normalisation
    est = emotion.FeatureEmotionEstimator()
    for y in (_long(chord_progression(C_MAJOR_CHORDS)), drum_pattern(120.0, 6.0)):
        assert est(y * 10 ** (-15 / 20), SR) == pytest.approx(est(y, SR), abs=1e-3, nan_ok=True)


def test_non_musical_input_is_undefined_not_confident():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, 6 * SR).astype(np.float32)
    est = emotion.FeatureEmotionEstimator()
    assert all(math.isnan(x) for x in est(noise, SR))  # was valence +0.52, arousal +0.42 ("happy")
    assert all(math.isnan(x) for x in est(np.zeros(3 * SR, np.float32), SR))
    assert not emotion.is_musical(noise, SR)
    assert emotion.is_musical(chord_progression(C_MAJOR_CHORDS), SR)
    assert emotion.is_musical(drum_pattern(100.0, 6.0), SR)  # rhythm without pitch is music too
    music = chord_progression(C_MAJOR_CHORDS)
    s = emotion.evaluate(noise, music, SR)
    assert all(math.isnan(v) for v in s.values())
    s = emotion.evaluate(music, noise[: music.size], SR)
    assert math.isnan(s["emotion.valence_abs_error"]) and s["emotion.quadrant_agreement"] == 0.0
    # whatever a pluggable estimator says about noise
    s = emotion.evaluate(noise, noise, SR, estimator=lambda a, sr: (0.9, 0.9))
    assert all(math.isnan(v) for v in s.values())


def test_key_mode_reads_the_cadence():
    from metrics_signals import midi_hz, tone_sequence

    from vitmusic.metrics import chroma

    # melodies that dwell on the relative key's tonic triad but cadence on their own tonic
    cases = [("G major", [64, 67, 71, 64, 71, 67, 64, 66, 67, 74, 72, 71, 69, 66, 67]),
             ("C major", [57, 60, 64, 57, 64, 60, 57, 59, 60, 67, 65, 64, 62, 59, 60]),
             ("E minor", [67, 71, 74, 67, 71, 66, 67, 64, 66, 63, 64, 71, 64]),
             ("A minor", [57, 60, 64, 62, 60, 59, 57, 56, 57, 52, 57])]
    for key, midis in cases:
        c = chroma.chromagram(tone_sequence([midi_hz(m) for m in midis], 0.4), SR)
        assert chroma.estimate_key(c, cadence=True) == key
        mode = emotion.features(tone_sequence([midi_hz(m) for m in midis], 0.4), SR)["mode"]
        assert (mode > 0) == key.endswith("major")
    g = chroma.chromagram(tone_sequence([midi_hz(m) for m in cases[0][1]], 0.4), SR)
    assert chroma.estimate_key(g) == "E minor"  # the whole-clip Krumhansl estimate alone: the relative key


@pytest.mark.parametrize("bpm", [70.0, 100.0, 120.0, 160.0])
def test_click_tracks_are_not_music(bpm):
    # before: a click track passed the gate (rhythmic) and got confident values (valence +0.07/-0.11)
    y = clicks_at_bpm(bpm, 8.0)
    cues = emotion.content(y, SR)
    assert cues["click_track"] == 1.0 and cues["musical"] == 0.0
    assert all(math.isnan(x) for x in emotion.FeatureEmotionEstimator()(y, SR))
    music = _long(chord_progression(C_MAJOR_CHORDS))
    s = emotion.evaluate(music, clicks_at_bpm(bpm, music.size / SR), SR)
    assert math.isnan(s["emotion.valence_abs_error"]) and s["emotion.quadrant_agreement"] == 0.0
    # the same clicks under a melody are music again (the melody is)
    tune, _ = melody([60, 62, 64, 65, 67, 65, 64, 62] * 4, [0.5] * 32)
    assert emotion.is_musical(tune + clicks_at_bpm(bpm, tune.size / SR)[: tune.size], SR)


def test_codec_artifacts_are_not_music():
    # the random-init tiny MusicGen's output: 99.95 % of the energy at DC and 4/8/16 kHz (32 kHz codec)
    sr = 32000
    t = np.arange(8 * sr) / sr
    y = 0.03 + 0.01 * np.sin(2 * np.pi * 4000 * t) + 0.01 * np.sin(2 * np.pi * 8000 * t)
    y = (y * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)
    cues = emotion.content(y, sr)
    assert cues["band_share"] < 0.05 and cues["musical"] == 0.0
    music = _long(chord_progression(C_MAJOR_CHORDS))
    assert emotion.evaluate(music, np.resize(y, music.size), SR)["emotion.quadrant_agreement"] == 0.0


class _Fixed:
    def __init__(self, table):
        self.table = table

    def __call__(self, audio, sample_rate):
        return self.table[int(np.argmax(np.abs(audio)) > 0)]


def test_pluggable_estimator_and_quadrants():
    y = chord_progression(C_MAJOR_CHORDS)
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
    y = chord_progression(C_MAJOR_CHORDS)
    with pytest.raises(ValueError, match="finite"):
        emotion.evaluate(y, y, SR, estimator=lambda a, sr: (math.inf, 0.0))
    s = emotion.evaluate(y, y, SR, estimator=lambda a, sr: (math.nan, 0.0))  # nan: undefined, not an error
    assert math.isnan(s["emotion.valence_abs_error"]) and s["emotion.arousal_abs_error"] == 0.0
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
    tones = chord_progression(C_MAJOR_CHORDS)
    scores = emotion.evaluate(tones, tones, SR, estimator=est)
    assert scores["emotion.valence_abs_error"] == 0.0
    with pytest.raises(ValueError, match="must be < 2"):
        emotion.TransformersEmotionEstimator(tmp_path, arousal_index=2)


def test_evaluate_with_a_trained_model_path_replaces_the_proxy(tmp_path, capsys):
    import json

    import soundfile as sf
    from transformers import Wav2Vec2ForSequenceClassification

    from vitmusic import cli

    model_dir = tmp_path / "va_model"
    save_tiny_wav2vec2(model_dir, Wav2Vec2ForSequenceClassification, num_hidden_layers=1,
                       classifier_proj_size=8, num_labels=2, problem_type="regression")
    major, minor = _long(chord_progression(C_MAJOR_CHORDS)), _long(chord_progression(A_MINOR_CHORDS))
    for side, y in (("ref", major), ("gen", minor)):
        (tmp_path / side).mkdir()
        sf.write(tmp_path / side / "a.wav", y, SR)
    argv = ["evaluate", "--ref", str(tmp_path / "ref"), "--gen", str(tmp_path / "gen"), "--out",
            str(tmp_path / "out"), "--metrics", "emotion", "--quiet", "--sample-rate", str(SR)]
    assert cli.main(argv + ["--emotion-model", str(model_dir)]) == 0
    got = json.loads((tmp_path / "out" / "summary.json").read_text())["metrics"]
    want = emotion.evaluate(major, minor, SR, estimator=emotion.TransformersEmotionEstimator(model_dir))
    assert got["emotion.valence_abs_error"]["mean"] == pytest.approx(want["emotion.valence_abs_error"], abs=1e-6)
    proxy = emotion.evaluate(major, minor, SR)
    assert math.isfinite(proxy["emotion.valence_abs_error"])
    assert want["emotion.valence_abs_error"] != pytest.approx(proxy["emotion.valence_abs_error"])
    capsys.readouterr()
    assert cli.main(argv + ["--emotion-model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot load --emotion-model" in err[0]
