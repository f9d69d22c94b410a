"""Audio-visual sync: known offsets between a synthetic video's motion onsets and audio clicks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from metrics_signals import SR, click_train

from vitmusic.metrics import sync

FPS = 30.0
DURATION_S = 8.0


@pytest.fixture(scope="module")
def onsets_and_frames():
    """A video whose square jumps to a new place at each (irregular) onset, and those onsets."""
    rng = np.random.default_rng(0)
    onsets = np.cumsum(rng.uniform(0.3, 0.8, 20))
    onsets = onsets[onsets < DURATION_S - 1.0]
    return onsets, _square_video(onsets)


def test_motion_envelope_peaks_at_onsets(onsets_and_frames):
    onsets, frames = onsets_and_frames
    env = sync.motion_envelope(frames, FPS)
    assert env.shape == (frames.shape[0],) and np.all(env >= 0)
    peaks = np.flatnonzero(env > 0.5 * env.max()) / FPS
    assert all(np.min(np.abs(onsets - p)) <= 1.0 / FPS + 1e-9 for p in peaks)
    assert len(peaks) == len(onsets)


@pytest.mark.parametrize("shift_s", [0.0, 0.2, -0.15])
def test_known_offset(onsets_and_frames, shift_s):
    onsets, frames = onsets_and_frames
    env = sync.motion_envelope(frames, FPS)
    scores = sync.evaluate(env, FPS, click_train(onsets + shift_s, DURATION_S), SR)
    assert list(scores) == list(sync.METRIC_NAMES)
    assert scores["sync.offset_s"] == pytest.approx(shift_s, abs=0.035)  # ~one video frame
    assert scores["sync.correlation"] > 0.5


def test_unrelated_audio_correlates_weakly(onsets_and_frames):
    onsets, frames = onsets_and_frames
    env = sync.motion_envelope(frames, FPS)
    other = np.random.default_rng(5).uniform(0.2, DURATION_S - 0.2, len(onsets))
    matched = sync.evaluate(env, FPS, click_train(onsets, DURATION_S), SR)["sync.correlation"]
    unrelated = sync.evaluate(env, FPS, click_train(np.sort(other), DURATION_S), SR)["sync.correlation"]
    assert unrelated < matched - 0.2


def test_static_video_or_silence_is_undefined(onsets_and_frames):
    onsets, frames = onsets_and_frames
    still = sync.motion_envelope(np.repeat(frames[:1], 60, axis=0), FPS)
    assert all(math.isnan(v) for v in sync.evaluate(still, FPS, click_train(onsets, 2.0), SR).values())
    env = sync.motion_envelope(frames, FPS)
    silence = np.zeros(int(DURATION_S * SR), np.float32)
    assert all(math.isnan(v) for v in sync.evaluate(env, FPS, silence, SR).values())


def test_bad_inputs(onsets_and_frames):
    _, frames = onsets_and_frames
    audio = click_train([0.5], 2.0)
    with pytest.raises(ValueError, match="uint8"):
        sync.motion_envelope(frames.astype(np.float32), FPS)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        sync.motion_envelope(frames[..., 0], FPS)
    with pytest.raises(ValueError, match="motion_fps"):
        sync.evaluate(np.ones(10), 0.0, audio, SR)
    with pytest.raises(ValueError, match="NaN/inf"):
        sync.evaluate(np.array([0.0, np.nan, 1.0]), FPS, audio, SR)
    with pytest.raises(ValueError, match="max_lag_s"):
        sync.evaluate(np.ones(10), FPS, audio, SR, max_lag_s=0)


def test_chunked_envelope_equals_whole_video_formula():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (sync.MOTION_CHUNK_FRAMES * 2 + 7, 6, 5, 3), dtype=np.uint8)
    gray = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    energy = np.concatenate([[0.0], np.abs(np.diff(gray, axis=0)).mean(axis=(1, 2))])
    expected = np.concatenate([[0.0, 0.0], np.maximum(np.diff(energy)[1:], 0.0)])
    assert np.allclose(sync.motion_envelope(frames, FPS), expected)


# ------------------------------------------------------------------ null distribution (issue 23.3)
def _square_video(onsets: np.ndarray, duration_s: float = DURATION_S) -> np.ndarray:
    """Frames ``[T, 24, 24, 3]`` of a square that jumps to the next of 9 places at each onset."""
    n = int(duration_s * FPS)
    frames = np.full((n, 24, 24, 3), 30, np.uint8)
    event = np.searchsorted(onsets, np.arange(n) / FPS, side="right")  # events so far at each frame
    for k in range(n):
        r, c = divmod(int(event[k]) % 9, 3)
        frames[k, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = 220
    return frames


def test_mismatched_video_scores_near_the_null(onsets_and_frames):
    # before: the peak correlation of another clip's video was far from "around 0" (here 0.3-0.5)
    onsets, frames = onsets_and_frames
    audio = click_train(onsets, DURATION_S)
    matched = sync.evaluate(sync.motion_envelope(frames, FPS), FPS, audio, SR)
    assert matched["sync.z_score"] > 3.5 and matched["sync.null_percentile"] > 0.99
    zs = []
    for seed in range(1, 6):
        rng = np.random.default_rng(seed)
        other = np.cumsum(rng.uniform(0.3, 0.8, 20))
        other = other[other < DURATION_S - 1.0]
        mismatched = sync.evaluate(sync.motion_envelope(_square_video(other), FPS), FPS, audio, SR)
        assert mismatched["sync.correlation"] > 0.1  # the raw peak is not near 0 ...
        zs.append(mismatched["sync.z_score"])
    assert max(zs) < 3.0 and np.mean(zs) < 1.5  # ... the z-score is
    assert min(zs) < matched["sync.z_score"] - 2.0


def test_steady_tempo_fits_any_video_and_the_null_says_so():
    # a metronome against a video moving at the same tempo with another phase: a high raw peak, no evidence
    beats = np.arange(0.25, DURATION_S - 0.5, 0.5)
    audio = click_train(beats, DURATION_S)
    env = sync.motion_envelope(_square_video(beats + 0.21), FPS)
    scores = sync.evaluate(env, FPS, audio, SR)
    assert scores["sync.correlation"] > 0.5
    assert scores["sync.z_score"] < 2.5  # measured 1.9; matched irregular onsets: 4.2


def test_null_needs_a_clip_longer_than_the_lag_window(onsets_and_frames):
    onsets, frames = onsets_and_frames
    short = frames[: int(1.9 * FPS)]
    scores = sync.evaluate(sync.motion_envelope(short, FPS), FPS, click_train(onsets, 1.9), SR)
    assert math.isfinite(scores["sync.correlation"])
    assert math.isnan(scores["sync.z_score"]) and math.isnan(scores["sync.null_percentile"])


def test_circular_correlation_known_shift():
    rng = np.random.default_rng(0)
    v = rng.normal(size=300)
    c = sync.circular_correlation(v, np.roll(v, 7))  # audio 7 samples late
    assert int(np.argmax(c)) == 7 and c[7] == pytest.approx(1.0)
