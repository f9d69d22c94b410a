"""Note metrics: transcription of synthesized melodies, mir_eval agreement, empty sets, bad inputs."""

from __future__ import annotations

import math

import mir_eval
import numpy as np
import pytest
from metrics_signals import SR, melody

from vitmusic.metrics import notes, pitch

# C D E F G G A (repeated G tests onset splitting) then a quick descending figure.
MIDIS = [60, 62, 64, 65, 67, 67, 69, 67, 65, 64]
DURS = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 0.25, 0.25, 0.5]


@pytest.fixture(scope="module")
def synth():
    return melody(MIDIS, DURS)


def test_transcribe_known_sequence(synth):
    y, ref = synth
    est = notes.transcribe(y, SR)
    assert est.shape[1] == 3
    assert len(est) == len(ref)
    scores = notes.evaluate(ref, est)
    assert list(scores) == list(notes.METRIC_NAMES)
    assert scores["notes.f1_no_offset"] == 1.0
    assert scores["notes.f1"] >= 0.9
    assert np.allclose(1200 * np.log2(est[:, 1] / ref[:, 1]), 0, atol=25)


def test_transcribe_release_tails_and_repeated_notes():
    # Each note is annotated to stop 60 ms before the next onset but rings on in a 25 ms-decay release
    # tail at the same pitch (pyin keeps it voiced); the repeated notes are re-attacked after a short dip.
    midis, durs = [62, 62, 65, 65, 65, 60], [0.5, 0.4, 0.6, 0.3, 0.5, 0.7]
    t_all, parts, ref = 0.0, [], []
    for m, d in zip(midis, durs):
        f = 440.0 * 2 ** ((m - 69) / 12)
        n = int(d * SR)
        t = np.arange(n) / SR
        held = d - 0.06
        env = np.where(t < held, np.minimum(1, t / 0.01), np.exp(-(t - held) / 0.025))
        parts.append(
            (0.3 * env * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t))).astype(np.float32)
        )
        ref.append((t_all, f, held))
        t_all += d
    est = notes.transcribe(np.concatenate(parts), SR)
    assert len(est) == len(ref)
    scores = notes.evaluate(np.asarray(ref), est)
    assert scores["notes.f1"] == 1.0  # offsets found at the release, not at the end of the tail


def test_transcribe_reuses_f0_track(synth):
    y, _ = synth
    f0 = pitch.track_f0(y, SR)
    assert np.array_equal(notes.transcribe(y, SR, f0=f0), notes.transcribe(y, SR))


def test_transposed_notes_do_not_match(synth):
    _, ref = synth
    up = ref.copy()
    up[:, 1] *= 2 ** (1 / 12)
    scores = notes.evaluate(ref, up)
    assert scores["notes.precision"] == scores["notes.recall"] == scores["notes.f1"] == 0.0


def test_identical_notes_perfect(synth):
    _, ref = synth
    assert all(v == 1.0 for v in notes.evaluate(ref, ref).values())


def test_agrees_with_mir_eval():
    rng = np.random.default_rng(1)
    ref = np.column_stack([np.arange(10) * 0.5, 440 * 2 ** (rng.integers(-5, 5, 10) / 12), np.full(10, 0.4)])
    est = ref + np.column_stack([rng.normal(0, 0.03, 10), np.zeros(10), rng.normal(0, 0.1, 10)])
    est[:, 2] = np.abs(est[:, 2]) + 0.05
    est[:, 0] = np.abs(est[:, 0])
    ours = notes.evaluate(ref, est)
    ri, rp = np.column_stack([ref[:, 0], ref[:, 0] + ref[:, 2]]), ref[:, 1]
    ei, ep = np.column_stack([est[:, 0], est[:, 0] + est[:, 2]]), est[:, 1]
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep)
    _, _, f_no, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, offset_ratio=None)
    assert (ours["notes.precision"], ours["notes.recall"], ours["notes.f1"]) == (p, r, f)
    assert ours["notes.f1_no_offset"] == f_no
    assert f < f_no  # the offset criterion is stricter on these perturbed durations


def test_empty_sets():
    ref = np.array([[0.0, 440.0, 0.5]])
    empty = np.zeros((0, 3))
    scores = notes.evaluate(ref, empty)
    assert math.isnan(scores["notes.precision"])
    assert scores["notes.recall"] == 0.0 and scores["notes.f1"] == 0.0
    # no reference notes: nothing to recall, but every estimated note is a false positive
    scores = notes.evaluate(empty, ref)
    assert scores["notes.precision"] == 0.0
    assert all(math.isnan(scores[m]) for m in ("notes.recall", "notes.f1", "notes.f1_no_offset"))
    assert all(math.isnan(v) for v in notes.evaluate(empty, empty).values())
    assert notes.transcribe(np.zeros(2 * SR, np.float32), SR).shape == (0, 3)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.ones((2, 2)), r"\[N, 3\]"),
        (np.array([[0.0, np.nan, 0.5]]), "NaN/inf"),
        (np.array([[-1.0, 440.0, 0.5]]), "onsets"),
        (np.array([[0.0, 0.0, 0.5]]), "f0_hz"),
        (np.array([[0.0, 440.0, 0.0]]), "durations"),
    ],
)
def test_validate_rejects_bad_notes(bad, match):
    with pytest.raises(ValueError, match=match):
        notes.evaluate(np.array([[0.0, 440.0, 0.5]]), bad)
