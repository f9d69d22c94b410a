"""The trained single-voice f0 trackers (swift-f0, PESTO) behind ``pitch.track_f0``."""

import sys

import numpy as np
import pytest

from vitmusic.metrics import pitch

SR = 22050


def tone(hz, dur=1.5):
    t = np.arange(int(dur * SR)) / SR
    return (0.3 * sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, 4))).astype(np.float32)


@pytest.mark.parametrize("backend", ["swift", "pesto"])
def test_trained_tracker_finds_a_tone_and_silence(backend):
    y = np.concatenate([tone(220.0), np.zeros(SR // 2, np.float32), tone(330.0)])
    times, f0 = pitch.track_f0(y, SR, backend=backend)
    assert times.shape == f0.shape and np.all(np.diff(times) > 0)
    first = f0[(times > 0.2) & (times < 1.3)]
    assert np.median(np.abs(1200 * np.log2(first[first > 0] / 220.0))) < 20
    assert (first > 0).mean() > 0.9
    assert (f0[(times > 1.6) & (times < 1.9)] == 0).mean() > 0.8  # silence is unvoiced
    last = f0[(times > 2.2) & (times < 3.3)]
    assert np.median(np.abs(1200 * np.log2(last[last > 0] / 330.0))) < 20
    assert "torchaudio" not in sys.modules or sys.modules["torchaudio"].__spec__ is not None  # no stub left


def test_scores_with_the_default_backend_of_the_runner():
    from vitmusic.evaluation import runner

    assert runner.DEFAULT_PITCH_BACKEND in pitch.BACKENDS
    y = tone(261.63, 2.0)
    s = pitch.evaluate(y, y, SR)  # module default (pYIN) stays available
    assert s["pitch.raw_pitch_accuracy"] == pytest.approx(1.0)
    ref = pitch.track_f0(y, SR, backend="swift")
    s = pitch.evaluate(None, y, SR, ref_f0=ref, est_f0=ref)
    assert s["pitch.raw_pitch_accuracy"] == pytest.approx(1.0)
