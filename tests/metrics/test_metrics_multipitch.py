import math

import numpy as np
import pytest

from vitmusic.metrics import multipitch


def _track(hz, n=100, hop=0.01, voiced=None):
    f = np.full(n, float(hz))
    if voiced is not None:
        f[~voiced] = 0.0
    return np.arange(n) * hop, f


def test_union_merges_stems_drops_unvoiced_and_unisons():
    v = np.zeros(100, bool)
    v[:50] = True
    t, freqs = multipitch.union_f0([_track(220), _track(330, voiced=v), _track(221)], end_s=1.0)
    assert len(t) == len(freqs) == 100
    assert np.allclose(freqs[10], [220, 330])  # 221 Hz is a unison with 220 Hz (< half a semitone)
    assert np.allclose(freqs[80], [220])


def test_perfect_missing_voice_and_extra_voice():
    ref = multipitch.union_f0([_track(220), _track(330), _track(440)], end_s=1.0)
    assert all(v == pytest.approx(1.0) for v in multipitch.evaluate(*ref, *ref).values())
    two = multipitch.union_f0([_track(220), _track(330)], end_s=1.0)
    s = multipitch.evaluate(*ref, *two)
    assert s["multipitch.precision"] == pytest.approx(1.0)
    assert s["multipitch.recall"] == pytest.approx(2 / 3)
    assert s["multipitch.accuracy"] == pytest.approx(2 / 3)
    octave = multipitch.union_f0([_track(220), _track(330), _track(880)], end_s=1.0)
    s = multipitch.evaluate(*ref, *octave)
    assert s["multipitch.accuracy"] < 1.0 and s["multipitch.chroma_accuracy"] == pytest.approx(1.0)


def test_undefined_cases_are_nan_not_zero():
    ref = multipitch.union_f0([_track(220)], end_s=1.0)
    silent = (ref[0], [np.zeros(0)] * len(ref[0]))
    s = multipitch.evaluate(*ref, *silent)
    assert math.isnan(s["multipitch.precision"]) and s["multipitch.recall"] == 0.0
    s = multipitch.evaluate(*silent, *ref)
    assert s["multipitch.precision"] == 0.0 and math.isnan(s["multipitch.recall"])


def test_from_notes_and_validation():
    notes = np.array([[0.0, 220.0, 0.5], [0.25, 330.0, 0.5]])
    freqs = multipitch.from_notes(notes, np.array([0.1, 0.3, 0.6, 0.9]))
    assert [list(f) for f in freqs] == [[220.0], [220.0, 330.0], [330.0], []]
    with pytest.raises(ValueError, match="frequency frames"):
        multipitch.evaluate(np.arange(3) * 0.01, [np.zeros(0)] * 2, np.arange(3) * 0.01, [np.zeros(0)] * 3)
    with pytest.raises(ValueError, match="Hz > 0"):
        multipitch.evaluate(np.arange(2) * 0.01, [np.array([-1.0])] * 2, np.arange(2) * 0.01, [np.zeros(0)] * 2)
