"""The score-to-video aligner: a known warp is recovered, no onsets or bad inputs raise ValueError."""

import numpy as np
import pytest

from vitmusic.generators.score.align import align_score, score_curves, validate, warp_notes

RATE = 30.0


def _score(n_parts=2, length_s=20.0, step_s=0.5):
    """Notes every ``step_s`` (the second part off by half a step), 440 Hz, 90 % of the step long."""
    parts = []
    for k in range(n_parts):
        on = np.arange(0.0, length_s, step_s) + (step_s / 2 if k % 2 else 0.0)
        parts.append(np.stack([on, np.full_like(on, 440.0), np.full_like(on, 0.9 * step_s)], axis=1))
    return parts


def _perform(parts, warp, clip_s, rng, noise=0.05):
    """What a head would output for a performance ``score time s -> clip time warp(s)``: a 3-frame onset peak
    per note, activity while it sounds, uniform noise; and the true clip-time onsets per part."""
    T = int(clip_s * RATE)
    onset, activity, truth = np.zeros((len(parts), T)), np.zeros((len(parts), T)), []
    for k, p in enumerate(parts):
        on, end = warp(p[:, 0]), warp(p[:, 0] + p[:, 2])
        inside = (on >= 0) & (on < clip_s - 1.0 / RATE)
        truth.append(on[inside])
        for a, b in zip(on[inside], end[inside]):
            i = int(round(a * RATE))
            onset[k, max(i - 1, 0):i + 2] = np.maximum(onset[k, max(i - 1, 0):i + 2], [0.4, 0.9, 0.4][(i == 0):])
            activity[k, i:int(round(b * RATE))] = 0.8
    return onset + rng.uniform(0, noise, onset.shape), activity, truth


@pytest.mark.parametrize("warp", [
    lambda s: 1.2 * (s - 4.0) + 0.3 * np.sin(s),  # slower than the score, with rubato; the clip starts at 4 s
    lambda s: 0.8 * (s - 9.0) + 0.02 * (s - 9.0) ** 2,  # faster, accelerating into a ritardando
])
def test_a_known_warp_is_recovered(warp):
    parts = _score()
    onset, activity, truth = _perform(parts, warp, 10.0, np.random.default_rng(0))
    al = align_score(parts, onset, activity, RATE)
    for k in range(2):
        est = al.parts[k][:, 0]
        # every note the clip shows is placed within a frame of its true onset; at most one at an edge is lost
        assert abs(len(est) - len(truth[k])) <= 1
        matched = [np.min(np.abs(est - t)) for t in truth[k][1:-1]]
        assert max(matched) <= 1.0 / RATE + 1e-9
        assert np.all(np.diff(est) > 0) and np.all(al.parts[k][:, 2] > 0)
        assert np.all(al.velocities[k] > 0.5) and np.all(al.velocities[k] <= 1.0)
    assert np.all(np.diff(al.clip_s) >= 0) and np.all(np.diff(al.score_s) > 0)


def test_the_warp_beats_the_deadpan_reading():
    """Placing the score by the alignment is much closer to the truth than reading it at the score's tempo."""
    parts = _score(1)
    warp = lambda s: 1.3 * (s - 2.0)  # noqa: E731
    onset, activity, truth = _perform(parts, warp, 8.0, np.random.default_rng(1))
    al = align_score(parts, onset, activity, RATE)
    est = al.parts[0][:, 0]
    deadpan = parts[0][:, 0]
    err_aligned = np.mean([np.min(np.abs(est - t)) for t in truth[0]])
    err_deadpan = np.mean([np.min(np.abs(deadpan - t)) for t in truth[0]])
    assert err_aligned < 0.02 < 0.1 < err_deadpan
    assert al.tempo_ratio() == pytest.approx(1 / 1.3, rel=0.05)


def test_no_onsets_raise():
    parts = _score()
    flat = np.full((2, 120), 0.05)
    with pytest.raises(ValueError, match="no onset"):
        align_score(parts, flat, flat, RATE)


@pytest.mark.parametrize("args, match", [
    (([np.zeros((0, 3)), np.zeros((0, 3))], np.ones((2, 10)), np.ones((2, 10)), RATE), "no notes"),
    ((_score(3), np.ones((2, 10)), np.ones((2, 10)), RATE), "3 parts"),
    ((_score(), np.ones((2, 10)), np.ones((2, 9)), RATE), r"\[P, T\]"),
    ((_score(), np.ones((2, 10)), np.ones((2, 10)), 0.0), "rate_hz"),
    ((_score(), np.full((2, 10), np.nan), np.ones((2, 10)), RATE), "non-finite"),
    (([np.ones((2, 2)), np.ones((2, 3))], np.ones((2, 10)), np.ones((2, 10)), RATE), r"\[N, 3\]"),
])
def test_validate(args, match):
    with pytest.raises(ValueError, match=match):
        validate(*args)


def test_score_curves_and_warp_notes():
    parts = [np.array([[0.5, 440.0, 0.25], [1.0, 220.0, 0.5]])]
    on, act = score_curves(parts, 10.0)
    assert on.shape == act.shape == (1, 17) and on[0, 5] == pytest.approx(1.0) and on[0, 10] == pytest.approx(1.0)
    assert act[0, 5:8].all() and not act[0, 8:10].any() and act[0, 10:15].all()
    # a warp that doubles the time from score 0.5 s: the first note at 0, the second at 1 s, cut at 1.2 s
    got = warp_notes(parts, np.array([0.5, 1.5]), np.array([0.0, 2.0]), 1.2)[0]
    np.testing.assert_allclose(got, [[0.0, 440.0, 0.5], [1.0, 220.0, 0.2]])
