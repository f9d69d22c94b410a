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


def test_silence_is_undefined_not_zero(c_major):
    silence = np.zeros_like(c_major)
    scores = chroma.evaluate(c_major, silence, SR)
    assert math.isnan(scores["chroma.cosine"]) and math.isnan(scores["chroma.pc_histogram_similarity"])
    assert scores["key.weighted_score"] == 0.0  # a reference key and no estimated key: a miss
    assert all(math.isnan(v) for v in chroma.evaluate(silence, silence, SR).values())


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
