"""Chroma/key metrics: known keys of synthesized progressions, metamorphic relations, mir_eval agreement."""

from __future__ import annotations

import math

import mir_eval
import numpy as np
import pytest
from metrics_signals import A_MINOR_CHORDS, C_MAJOR_CHORDS, SR, chord_progression

from vitmusic.metrics import chroma


@pytest.fixture(scope="module")
def c_major():
    return chord_progression(C_MAJOR_CHORDS)


def test_known_keys(c_major):
    keys = chroma.describe(c_major, chord_progression(A_MINOR_CHORDS), SR)
    assert keys == {"key.ref": "C major", "key.est": "A minor"}
    up = chord_progression([[m + 2 for m in c] for c in C_MAJOR_CHORDS])
    assert chroma.estimate_key(chroma.chromagram(up, SR)) == "D major"


def test_identical_audio_perfect(c_major):
    scores = chroma.evaluate(c_major, c_major, SR)
    assert list(scores) == list(chroma.METRIC_NAMES)
    assert all(v == pytest.approx(1.0) for v in scores.values())


def test_relative_minor_scores_relative_key(c_major):
    scores = chroma.evaluate(c_major, chord_progression(A_MINOR_CHORDS), SR)
    assert scores["key.weighted_score"] == 0.3  # mir_eval: relative major/minor
    assert 0.3 < scores["chroma.cosine"] < 0.9


def test_semitone_up_is_harmonically_far(c_major):
    up = chord_progression([[m + 1 for m in c] for c in C_MAJOR_CHORDS])
    scores = chroma.evaluate(c_major, up, SR)
    assert scores["chroma.cosine"] < 0.3
    assert scores["key.weighted_score"] == 0.0


def test_octave_up_keeps_chroma(c_major):
    octave = chord_progression([[m + 12 for m in c] for c in C_MAJOR_CHORDS])
    scores = chroma.evaluate(c_major, octave, SR)
    assert scores["chroma.cosine"] > 0.85 and scores["key.weighted_score"] == 1.0


def test_silent_output_is_a_miss_and_silent_pair_undefined(c_major):
    silence = np.zeros_like(c_major)
    scores = chroma.evaluate(c_major, silence, SR)
    assert scores["chroma.cosine"] == 0.0  # every frame where the reference sounds is a miss
    assert math.isnan(scores["chroma.pc_histogram_similarity"])  # no histogram to compare
    assert scores["key.weighted_score"] == 0.0 and scores["key.local_score"] == 0.0
    assert all(math.isnan(v) for v in chroma.evaluate(silence, silence, SR).values())


def test_mostly_silent_output_scores_low(c_major):
    # before (frames silent on either side skipped): one second of the reference then silence scored ~0.9
    one_second = c_major.copy()
    one_second[SR:] = 0.0
    scores = chroma.evaluate(c_major, one_second, SR)
    full = chroma.evaluate(c_major, c_major, SR)["chroma.cosine"]
    frac = SR / c_major.size
    assert scores["chroma.cosine"] < 1.5 * frac * full
    # the clip-level key cannot see when the key is stated; the local key can
    assert scores["key.weighted_score"] == 1.0
    assert scores["key.local_score"] < 0.5


def test_output_sounding_where_the_reference_is_silent_is_a_miss(c_major):
    half = c_major.copy()
    half[half.size // 2:] = 0.0
    one_way = chroma.evaluate(half, c_major, SR)["chroma.cosine"]
    other_way = chroma.evaluate(c_major, half, SR)["chroma.cosine"]
    assert one_way == pytest.approx(other_way, abs=0.02) and one_way < 0.6


def test_frame_cosine_one_sided_silence_known_answer():
    a = np.zeros((12, 4))
    a[0] = 1.0
    b = a.copy()
    b[:, 3] = 0.0  # est silent on the last frame: a miss
    a[:, 0] = 0.0  # ref silent on the first frame, est sounds: a miss
    assert chroma.frame_cosine(a, b) == pytest.approx(2 / 4)
    b[:, 0] = 0.0  # now frame 0 is silent on both sides: skipped
    assert chroma.frame_cosine(a, b) == pytest.approx(2 / 3)


def test_key_score_agrees_with_mir_eval():
    for ref, est in [
        ("C major", "G major"),
        ("C major", "A minor"),
        ("C major", "C minor"),
        ("F# minor", "C major"),
    ]:
        assert chroma.key_score(ref, est) == mir_eval.key.weighted_score(ref, est)


def test_frame_cosine_known_answer():
    a = np.zeros((12, 4))
    a[0] = 1.0
    b = a.copy()
    b[7, :2] = 1.0  # half the frames: C+G vs C -> cos 1/sqrt(2)
    assert chroma.frame_cosine(a, b) == pytest.approx((2 + 2 / np.sqrt(2)) / 4)


def test_validate_rejects_bad_chroma():
    with pytest.raises(ValueError, match=r"\[12, T\]"):
        chroma.frame_cosine(np.ones((11, 3)), np.ones((12, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        chroma.histogram_similarity(-np.ones((12, 3)), np.ones((12, 3)))
