"""Beat, downbeat and tempo agreement from beat sequences (``mir_eval`` style; the ``rhythm`` metrics).

The beats come from a trained referee (:mod:`vitmusic.metrics.beat_trackers`) on the generated audio, and
from the annotations (or the same referee on the reference audio) on the reference side.

- ``rhythm.beat_f_measure``: ``mir_eval.beat.f_measure`` (70 ms window) of the estimated beats against the
  reference beats. No beats are trimmed at the start (as :mod:`vitmusic.metrics.tempo`): clips are short and
  neither side is a human tapper who needs time to lock in.
- ``rhythm.downbeat_f_measure``: the same F-measure on the downbeats (the 1s of the bar); undefined when a
  side has no notion of a bar (librosa's tracker) or the reference bar positions are unknown.
- ``rhythm.tempo_p_score``: the tempo of each side is one number, ``60 / median inter-beat interval`` (robust
  to a fermata or a missed beat); ``mir_eval.tempo.detection`` with the reference tempo in both slots, i.e.
  1 when the estimate lies within 8 % of it, else 0 (Gouyon et al.'s "accuracy 1"). An octave error (half or
  double tempo) scores 0.
- ``rhythm.bpm_abs_error``: ``|estimated - reference|`` tempo in BPM.

Undefined (NaN): a reference with fewer than two beats (no tempo, nothing to find); a detection whose
reference exists but whose estimate has no beat scores 0 (F-measures, P-score) and has no BPM error.
"""

from __future__ import annotations

import collections
import math

import numpy as np

__all__ = ["METRIC_NAMES", "beat_tempo", "evaluate", "f_measure", "positions_to_downbeats", "validate"]

METRIC_NAMES = ("rhythm.beat_f_measure", "rhythm.downbeat_f_measure", "rhythm.tempo_p_score",
                "rhythm.bpm_abs_error")
WINDOW_S = 0.07
TEMPO_TOL = 0.08


def validate(beats_s: object, name: str) -> np.ndarray:
    """``beats_s`` as float64 [B]: 1-D, finite, >= 0, strictly increasing.

    Raises:
        ValueError: naming ``name``.
    """
    b = np.asarray(beats_s, dtype=np.float64)
    if b.ndim != 1:
        raise ValueError(f"{name} must be 1-D beat times, got shape {b.shape}")
    if not np.isfinite(b).all() or (b < 0).any():
        raise ValueError(f"{name} must be finite times >= 0")
    if b.size > 1 and (np.diff(b) <= 0).any():
        raise ValueError(f"{name} must be strictly increasing")
    return b


def positions_to_downbeats(beats: np.ndarray) -> np.ndarray | None:
    """The downbeat times of a ``[B, 2]`` (time_s, position) annotation; None when no position is known."""
    beats = np.asarray(beats, dtype=np.float64).reshape(-1, 2)
    if beats.size and not (beats[:, 1] > 0).any():
        return None
    return beats[beats[:, 1] == 1, 0]


def beat_tempo(beats_s: np.ndarray) -> float:
    """``60 / median inter-beat interval`` in BPM; nan with fewer than two beats."""
    b = np.asarray(beats_s, dtype=np.float64)
    if b.size < 2:
        return math.nan
    return float(60.0 / np.median(np.diff(b)))


def f_measure(reference_s: np.ndarray, estimated_s: np.ndarray, window_s: float = WINDOW_S) -> float:
    """``mir_eval.beat.f_measure``; nan without a reference event, 0 without an estimated one."""
    import mir_eval

    if reference_s.size == 0:
        return math.nan
    if estimated_s.size == 0:
        return 0.0
    return float(mir_eval.beat.f_measure(reference_s, estimated_s, f_measure_threshold=window_s))


def evaluate(reference_beats_s: np.ndarray, estimated_beats_s: np.ndarray,
             reference_downbeats_s: np.ndarray | None = None, estimated_downbeats_s: np.ndarray | None = None,
             *, window_s: float = WINDOW_S, tol: float = TEMPO_TOL) -> collections.OrderedDict[str, float]:
    """The four ``rhythm.*`` metrics (see the module docstring).

    Args:
        reference_beats_s, estimated_beats_s: beat times [B] in seconds.
        reference_downbeats_s, estimated_downbeats_s: downbeat times [D], or None when a side has no bars.
        window_s: F-measure window (s).
        tol: relative tempo tolerance of the P-score.
    """
    import mir_eval

    ref = validate(reference_beats_s, "reference_beats_s")
    est = validate(estimated_beats_s, "estimated_beats_s")
    scores: collections.OrderedDict[str, float] = collections.OrderedDict()
    scores["rhythm.beat_f_measure"] = f_measure(ref, est, window_s) if ref.size >= 2 else math.nan
    if reference_downbeats_s is None or estimated_downbeats_s is None:
        scores["rhythm.downbeat_f_measure"] = math.nan
    else:
        scores["rhythm.downbeat_f_measure"] = f_measure(validate(reference_downbeats_s, "reference_downbeats_s"),
                                                        validate(estimated_downbeats_s, "estimated_downbeats_s"),
                                                        window_s)
    ref_bpm, est_bpm = beat_tempo(ref), beat_tempo(est)
    if math.isnan(ref_bpm):
        p = math.nan
    elif math.isnan(est_bpm):
        p = 0.0
    else:
        p = float(mir_eval.tempo.detection(np.array([ref_bpm, ref_bpm]), 0.5, np.array([est_bpm, est_bpm]),
                                           tol=tol)[0])
    scores["rhythm.tempo_p_score"] = p
    scores["rhythm.bpm_abs_error"] = abs(est_bpm - ref_bpm) if not (math.isnan(ref_bpm) or math.isnan(est_bpm)) \
        else math.nan
    return scores
