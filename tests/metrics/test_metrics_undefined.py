"""Undefined vs zero: every metric on a silent generated file and on a silent reference.

The expected values are the table in docs/evaluation.md ("Undefined values"): NaN where the set a metric is
taken over is empty or a value it compares does not exist on one side, 0 where the reference has
something and the estimate failed to produce it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from metrics_signals import SR, melody

from vitmusic.metrics import chroma, emotion, fad, notes, pitch, sync, tempo

NAN, ZERO, DEFINED = "nan", "0", "defined"  # DEFINED: finite, value depends on the signal

# metric -> (generated silent / reference sounds, reference silent / generated sounds)
TABLE: dict[str, tuple[str, str]] = {
    "tempo.p_score": (ZERO, NAN),
    "tempo.bpm_abs_error": (NAN, NAN),
    "tempo.bpm_rel_error": (NAN, NAN),
    "tempo.acc1": (ZERO, NAN),
    "tempo.acc2": (ZERO, NAN),
    "tempo.bpm_rel_error_octave": (NAN, NAN),
    "beat.f_measure": (ZERO, NAN),
    "beat.amlt": (ZERO, NAN),
    "pitch.voicing_recall": (ZERO, NAN),
    "pitch.voicing_false_alarm": (ZERO, DEFINED),
    "pitch.raw_pitch_accuracy": (ZERO, NAN),
    "pitch.raw_chroma_accuracy": (ZERO, NAN),
    "pitch.overall_accuracy": (DEFINED, DEFINED),
    "notes.precision": (NAN, ZERO),
    "notes.recall": (ZERO, NAN),
    "notes.f1": (ZERO, NAN),
    "notes.f1_no_offset": (ZERO, NAN),
    "chroma.cosine": (ZERO, ZERO),
    "key.weighted_score": (ZERO, NAN),
    "key.local_score": (ZERO, NAN),
    "chroma.pc_histogram_similarity": (NAN, NAN),
    "emotion.valence_abs_error": (NAN, NAN),
    "emotion.arousal_abs_error": (NAN, NAN),
    "emotion.quadrant_agreement": (ZERO, NAN),
}


@pytest.fixture(scope="module")
def tune() -> np.ndarray:
    y, _ = melody([60, 62, 64, 65, 67, 69, 71, 72] * 2, [0.25, 0.5] * 8)
    return y


def all_metrics(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    ref_f0, est_f0 = pitch.track_f0(ref, SR), pitch.track_f0(est, SR)
    return {
        **tempo.evaluate(ref, est, SR),
        **pitch.evaluate(None, est, SR, ref_f0=ref_f0, est_f0=est_f0),
        **notes.evaluate(notes.transcribe(ref, SR, f0=ref_f0), notes.transcribe(est, SR, f0=est_f0)),
        **chroma.evaluate(ref, est, SR),
        **emotion.evaluate(ref, est, SR),
    }


def _check(scores: dict[str, float], column: int) -> None:
    assert set(scores) == set(TABLE)
    wrong = {}
    for name, expected in TABLE.items():
        v, want = scores[name], expected[column]
        ok = (math.isnan(v) if want == NAN else v == 0.0 if want == ZERO else math.isfinite(v))
        if not ok:
            wrong[name] = (v, want)
    assert not wrong


@pytest.mark.filterwarnings("ignore:.*melody has no voiced frames:UserWarning")
def test_silent_generated_file(tune):
    scores = all_metrics(tune, np.zeros_like(tune))
    _check(scores, 0)
    # defined, with the values the definitions give: the unvoiced reference frames are the only hits
    assert 0.0 < scores["pitch.overall_accuracy"] < 0.2


@pytest.mark.filterwarnings("ignore:.*melody has no voiced frames:UserWarning")
def test_silent_reference(tune):
    scores = all_metrics(np.zeros_like(tune), tune)
    _check(scores, 1)
    # nearly every generated frame is voiced where the reference is silent: false alarms, not "undefined"
    assert scores["pitch.voicing_false_alarm"] > 0.8
    assert scores["pitch.overall_accuracy"] == pytest.approx(1.0 - scores["pitch.voicing_false_alarm"])


@pytest.mark.filterwarnings("ignore:.*melody has no voiced frames:UserWarning")
def test_both_silent_is_undefined_except_frame_counts():
    z = np.zeros(3 * SR, np.float32)
    scores = all_metrics(z, z)
    frame_counts = {"pitch.voicing_false_alarm": 0.0, "pitch.overall_accuracy": 1.0}
    assert {k: v for k, v in scores.items() if not math.isnan(v)} == frame_counts


def test_near_silence_counts_as_silence(tune):
    # a -90 dBFS noise floor must not produce a tempo, beats or an emotion, on either side
    hiss = np.random.default_rng(0).normal(0, 3e-5, tune.size).astype(np.float32)
    zero = np.zeros_like(tune)
    for module in (tempo, emotion):
        for ref, est, ref0, est0 in ((tune, hiss, tune, zero), (hiss, tune, zero, tune)):
            got, want = module.evaluate(ref, est, SR), module.evaluate(ref0, est0, SR)
            np.testing.assert_array_equal(list(got.values()), list(want.values()))


def test_sync_and_fad(tune):
    # sync: the video is the reference; a flat audio (or motion) envelope has no correlation and no lag
    env = np.zeros(int(tune.size / SR * 25))
    env[::12] = 1.0
    assert all(math.isnan(v) for v in sync.evaluate(env, 25, np.zeros_like(tune), SR).values())
    assert all(math.isfinite(v) for v in sync.evaluate(env, 25, tune, SR).values())
    # FAD is a distance between two sets of windows; silent windows are points like any other
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # expected: small-sample bias; singular covariance of silence
        value = fad.evaluate([tune, tune[::-1]], [np.zeros_like(tune)] * 2, SR)["fad"]
    assert math.isfinite(value) and value > 0
