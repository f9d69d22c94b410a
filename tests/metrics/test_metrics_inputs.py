"""Bad inputs to every audio-level metric fail fast with a clear ValueError (before any heavy analysis).

All audio-level ``evaluate`` functions take ONE ``sample_rate`` for both signals (mir_eval style: plain
arrays in); callers resample mismatched signals first, so a "mismatched rate" reaches the metric as an
invalid or wrong number and is checked as such here.
"""

from __future__ import annotations

import numpy as np
import pytest
from metrics_signals import SR, clicks_at_bpm

from vitmusic.metrics import audio_checks, chroma, emotion, fad, pitch, sync, tempo

GOOD = clicks_at_bpm(120.0, 2.0)


def _call(module: str, ref, est, sample_rate):
    if module == "tempo":
        return tempo.evaluate(ref, est, sample_rate)
    if module == "pitch":
        return pitch.evaluate(ref, est, sample_rate)
    if module == "chroma":
        return chroma.evaluate(ref, est, sample_rate)
    if module == "emotion":
        return emotion.evaluate(ref, est, sample_rate)
    if module == "sync":
        return sync.evaluate(np.arange(60.0) % 7, 30.0, est, sample_rate)
    return fad.embed(est, sample_rate)


MODULES = ["tempo", "pitch", "chroma", "emotion", "sync", "fad"]
BAD_AUDIO = [
    (np.concatenate([GOOD[:100], [np.nan], GOOD[101:]]), "NaN/inf"),
    (np.concatenate([GOOD[:100], [np.inf], GOOD[101:]]), "NaN/inf"),
    (np.zeros(0, np.float32), "empty"),
    (np.ones((2, 3, 4), np.float32), "shape"),
    (np.array(["a", "b"]), "numeric"),
]


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize(("bad", "match"), BAD_AUDIO)
def test_bad_audio(module, bad, match):
    with pytest.raises(ValueError, match=match):
        _call(module, GOOD, bad, SR)


@pytest.mark.parametrize("module", ["tempo", "pitch", "chroma", "emotion"])
def test_bad_reference_is_named(module):
    with pytest.raises(ValueError, match="ref_audio"):
        _call(module, GOOD * np.nan, GOOD, SR)


@pytest.mark.parametrize("module", ["tempo", "pitch", "chroma", "emotion", "sync"])
def test_too_short(module):
    with pytest.raises(ValueError, match="at least 1 s"):
        _call(module, GOOD, GOOD[: SR // 2], SR)


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("sample_rate", [0, -22050, 22050.5, float("nan"), "22050", True, None, 1000])
def test_invalid_sample_rate(module, sample_rate):
    with pytest.raises(ValueError, match="sample_rate"):
        _call(module, GOOD, GOOD, sample_rate)


def test_channels_first_stereo_is_averaged():
    stereo = np.stack([GOOD, 0.5 * GOOD])
    assert np.allclose(audio_checks.validate_audio(stereo, SR), 0.75 * GOOD)
    with pytest.raises(ValueError, match="channels first"):
        audio_checks.validate_audio(stereo.T, SR)
    # Integer sample rates given as integral floats are fine; lengths may differ between ref and est.
    ref, est, sr = audio_checks.validate_pair(GOOD, GOOD[: int(1.5 * SR)], float(SR))
    assert sr == SR and ref.size != est.size
    pcm = (GOOD * 32767).astype(np.int16)
    assert np.allclose(audio_checks.validate_audio(pcm, SR), GOOD, atol=1e-4)  # integer PCM is scaled
    # A clip cut at "1 s" that rounding left a few samples short is accepted.
    assert audio_checks.validate_audio(GOOD[: SR - 5], SR).size == SR - 5
