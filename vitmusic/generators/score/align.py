"""Align a score to what the video shows: score notes + the transcription head's onset/activity curves -> timed notes.

The score gives every part's note sequence in *score time* (its own fixed tempo); the video, through the
transcription head, gives per-part curves of onset probability and activity at ``rate_hz``. The score is turned
into the same curves on its own time grid (a bump at every note onset, 1 while a note sounds) and one
monotone alignment of the clip against the score is found by subsequence DTW (:func:`librosa.sequence.dtw`,
``subseq=True``: the clip may start and end anywhere in the score; steps ``(1, 1), (1, 2), (2, 1)`` bound the
local tempo ratio to [1/2, 2]). The parts of an ensemble share one path (they play together), each part's
curves adding to the cost. The path is the warp ``score time -> clip time``; every score note whose onset the
warp covers is placed there, then moved to the strongest onset peak of its own part within ``snap_s`` (per-note
timing the smooth warp cannot give), and its velocity is that peak's height mapped to
``[min_velocity, 1]`` (the video's dynamics as far as the head's onset confidence carries them).

Arrays in, arrays out (numpy, librosa); :func:`validate` raises ``ValueError`` with one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Alignment", "align_score", "score_curves", "validate", "warp_notes"]


@dataclass
class Alignment:
    """The result of :func:`align_score`.

    Attributes:
        parts: per part, ``[N_k, 3]`` (onset_s from the clip start, f0_hz, duration_s) of the score notes the
            clip covers, in clip time.
        velocities: per part, ``[N_k]`` in ``(0, 1]``.
        score_s: ``[M]`` increasing score times of the warp's knots (seconds of the score's fixed tempo).
        clip_s: ``[M]`` the clip times they map to (non-decreasing).
        cost: mean per-step cost of the DTW path (lower: a closer match).
    """

    parts: list[np.ndarray]
    velocities: list[np.ndarray]
    score_s: np.ndarray
    clip_s: np.ndarray
    cost: float

    def tempo_ratio(self) -> float:
        """Score seconds per clip second over the aligned span (> 1: the performance is faster than the score)."""
        span = float(self.clip_s[-1] - self.clip_s[0])
        return float(self.score_s[-1] - self.score_s[0]) / span if span > 0 else float("nan")


def validate(score_parts: list[np.ndarray], onset: np.ndarray, activity: np.ndarray, rate_hz: float) -> None:
    """Check the inputs of :func:`align_score`.

    Raises:
        ValueError: mismatching shapes or part counts, a non-positive rate, non-finite values, or a score
            without notes.
    """
    onset, activity = np.asarray(onset), np.asarray(activity)
    if onset.ndim != 2 or onset.shape != activity.shape:
        raise ValueError(f"onset and activity must both be [P, T], got {onset.shape} and {activity.shape}")
    if len(score_parts) != onset.shape[0]:
        raise ValueError(f"the score has {len(score_parts)} parts, the video's curves {onset.shape[0]}")
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be positive, got {rate_hz}")
    if onset.shape[1] < 2:
        raise ValueError(f"the clip has {onset.shape[1]} frames; at least 2 are needed")
    if not (np.isfinite(onset).all() and np.isfinite(activity).all()):
        raise ValueError("the onset/activity curves contain non-finite values")
    for k, p in enumerate(score_parts):
        p = np.asarray(p, float)
        if p.ndim != 2 or p.shape[1] != 3 or not np.isfinite(p).all():
            raise ValueError(f"score part {k + 1} must be a finite [N, 3] array (onset_s, f0_hz, duration_s)")
    if not any(len(p) for p in score_parts):
        raise ValueError("the score has no notes")


def score_curves(score_parts: list[np.ndarray], rate_hz: float, n_frames: int | None = None,
                 width_frames: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The score as the head would see it: onset bumps and activity ``[P, S]`` on a ``rate_hz`` grid of score time.

    Args:
        score_parts: per part ``[N, 3]`` (onset_s, f0_hz, duration_s) in score time.
        rate_hz: frames per second of the grid.
        n_frames: ``S`` (default: up to the last note's end plus one frame).
        width_frames: standard deviation of an onset bump, in frames.
    """
    parts = [np.asarray(p, float).reshape(-1, 3) for p in score_parts]
    if n_frames is None:
        end_s = max((float((p[:, 0] + p[:, 2]).max()) for p in parts if len(p)), default=0.0)
        n_frames = int(np.ceil(end_s * rate_hz)) + 2
    grid = np.arange(n_frames, dtype=float)
    onset = np.zeros((len(parts), n_frames))
    activity = np.zeros((len(parts), n_frames))
    for k, p in enumerate(parts):
        for on_s, _, dur_s in p:
            c = on_s * rate_hz
            lo, hi = int(max(0, np.floor(c - 4 * width_frames))), int(min(n_frames, np.ceil(c + 4 * width_frames) + 1))
            onset[k, lo:hi] = np.maximum(onset[k, lo:hi], np.exp(-0.5 * ((grid[lo:hi] - c) / width_frames) ** 2))
            a, b = int(round(c)), int(round((on_s + dur_s) * rate_hz))
            activity[k, max(a, 0):min(max(b, a + 1), n_frames)] = 1.0
    return onset, activity


def _normalise(x: np.ndarray, floor: float) -> np.ndarray:
    """Each row over its peak (a row peaking below ``floor``, e.g. a silent part, over ``floor``)."""
    return x / np.maximum(x.max(axis=1, keepdims=True), floor)


def warp_notes(score_parts: list[np.ndarray], score_s: np.ndarray, clip_s: np.ndarray,
               duration_s: float, tolerance_s: float = 0.05) -> list[np.ndarray]:
    """Score notes through a monotone warp ``score_s -> clip_s`` (beyond its knots, at the written tempo): onsets
    and ends mapped, notes that land outside ``[-tolerance_s, duration_s)`` dropped (those just before 0 start
    at 0), notes cut at ``duration_s``. Returns per part ``[N_k, 3]`` in clip time."""

    def warp(x: np.ndarray) -> np.ndarray:
        return np.where(x < score_s[0], clip_s[0] + x - score_s[0],
                        np.where(x > score_s[-1], clip_s[-1] + x - score_s[-1], np.interp(x, score_s, clip_s)))

    out = []
    for p in score_parts:
        p = np.asarray(p, float).reshape(-1, 3)
        on, end = warp(p[:, 0]), warp(p[:, 0] + p[:, 2])
        keep = (on >= -tolerance_s) & (on < duration_s)
        on, end, f0 = np.maximum(on[keep], 0.0), np.minimum(end[keep], duration_s), p[keep, 1]
        out.append(np.stack([on, f0, np.maximum(end - on, 0.0)], axis=1) if len(on) else np.zeros((0, 3)))
    return out


def align_score(score_parts: list[np.ndarray], onset: np.ndarray, activity: np.ndarray, rate_hz: float, *,
                min_peak: float = 0.2, snap_s: float = 0.05, activity_weight: float = 0.5,
                min_velocity: float = 0.5, search_s: tuple[float, float] | None = None,
                nominal_s: float | None = None, prior_weight: float = 0.0) -> Alignment:
    """Place a score's notes where the video shows them (the module docstring's method).

    Args:
        score_parts: per part ``[N, 3]`` (onset_s, f0_hz, duration_s) in score time (the score's fixed tempo),
            part ``k`` of the score played by performer ``k`` of the video.
        onset: ``[P, T]`` onset probability per part and clip frame (the head's onset output, max over pitch).
        activity: ``[P, T]`` probability that the part sounds (the head's frame output, max over pitch).
        rate_hz: frames per second of ``onset``/``activity`` (the score grid uses the same rate).
        min_peak: the video shows no onset when no part's onset curve reaches this.
        snap_s: a placed onset moves to its part's strongest onset peak within this many seconds (0: never).
        activity_weight: weight of the activity curves against the onset curves in the DTW cost.
        min_velocity: velocity of a note at an onset peak of height 0 (height 1 gives 1).
        search_s: ``(from_s, to_s)``: the span of score time the clip lies in (e.g. the clip's own span widened
            by a few seconds, when where the clip starts in the piece is known); None: anywhere in the score.
        nominal_s: the score time the clip starts at when read deadpan (its start in the performance).
        prior_weight: cost per squared second that the path strays from the deadpan reading ``nominal_s + t``
            (0: no prior; a weak video's evidence then cannot pull the notes far from the written tempo).

    Returns:
        The :class:`Alignment` (notes in clip time, velocities, the warp).

    Raises:
        ValueError: bad inputs (:func:`validate`), or no onset in the video (every onset curve below
            ``min_peak``): the score would be placed on nothing.
    """
    from vitmusic.metrics.jit import ensure_jit_cache

    ensure_jit_cache()
    import librosa

    validate(score_parts, onset, activity, rate_hz)
    onset, activity = np.asarray(onset, float), np.asarray(activity, float)
    P, T = onset.shape
    if float(onset.max()) < min_peak:
        raise ValueError(f"the aligner found no onset in the video (highest onset probability "
                         f"{float(onset.max()):.3f} < {min_peak})")
    s_on, s_act = score_curves(score_parts, rate_hz)
    j0 = 0
    if search_s is not None:  # only this span of the score's grid is searched
        j0 = int(np.clip(np.floor(search_s[0] * rate_hz), 0, s_on.shape[1] - 1))
        j1 = int(np.clip(np.ceil(search_s[1] * rate_hz) + 1, j0 + 1, s_on.shape[1]))
        s_on, s_act = s_on[:, j0:j1], s_act[:, j0:j1]
    x = np.concatenate([_normalise(onset, min_peak), activity_weight * np.clip(activity, 0, 1)])  # [2P, T]
    y = np.concatenate([s_on, activity_weight * s_act])  # [2P, S]
    if y.shape[1] < 2:
        raise ValueError("the score is shorter than two frames")
    cost = ((x[:, :, None] - y[:, None, :]) ** 2).sum(axis=0)  # [T, S]
    if prior_weight > 0 and nominal_s is not None:
        lag_s = (j0 + np.arange(y.shape[1]))[None, :] / rate_hz - (nominal_s + np.arange(T)[:, None] / rate_hz)
        cost = cost + prior_weight * lag_s ** 2
    steps = np.array([[1, 1], [1, 2], [2, 1]])
    D, wp = librosa.sequence.dtw(C=cost, step_sizes_sigma=steps, subseq=True)
    wp = wp[::-1]  # (clip frame, score frame), increasing
    if not np.isfinite(D[-1]).any():
        raise ValueError("no monotone alignment of the clip to the score within tempo ratios 1/2..2 (the score "
                         "is too short for the clip)")
    js = np.unique(wp[:, 1])
    is_ = np.array([wp[wp[:, 1] == j, 0].mean() for j in js])
    score_s, clip_s = (js + j0) / rate_hz, np.maximum.accumulate(is_) / rate_hz
    duration_s = T / rate_hz
    parts = warp_notes(score_parts, score_s, clip_s, duration_s)
    radius = int(round(snap_s * rate_hz))
    velocities = []
    for k, notes in enumerate(parts):
        heights = np.zeros(len(notes))
        for n in range(len(notes)):
            f = int(np.clip(round(notes[n, 0] * rate_hz), 0, T - 1))
            lo, hi = max(0, f - radius), min(T, f + radius + 1)
            g = lo + int(np.argmax(onset[k, lo:hi]))
            heights[n] = onset[k, g]
            if radius and onset[k, g] >= min_peak and g != f:
                end = notes[n, 0] + notes[n, 2]
                notes[n, 0] = g / rate_hz
                notes[n, 2] = max(end - notes[n, 0], 1.0 / rate_hz)
        if len(notes) > 1:  # snapping may not reorder notes or make them overlap the next one
            notes[:, 0] = np.maximum.accumulate(notes[:, 0])
            notes[:-1, 2] = np.minimum(notes[:-1, 2], np.maximum(np.diff(notes[:, 0]), 1.0 / rate_hz))
        # within the first half frame a note sounds from the clip's start (a note carried over from before it)
        first = notes[:, 0] < 0.5 / rate_hz
        notes[first, 2] += notes[first, 0]
        notes[first, 0] = 0.0
        notes[:, 2] = np.minimum(notes[:, 2], duration_s - notes[:, 0])
        keep = notes[:, 2] > 0
        parts[k] = notes[keep]
        velocities.append(np.clip(min_velocity + (1 - min_velocity) * heights[keep], 0.05, 1.0))
    mean_cost = float(D[wp[-1, 0], wp[-1, 1]]) / max(len(wp), 1)
    return Alignment(parts, velocities, score_s, clip_s, mean_cost)
