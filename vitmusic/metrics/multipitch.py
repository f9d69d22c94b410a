"""Multi-pitch (multi-f0) agreement with ``mir_eval.multipitch``, against the union of every stem's f0.

An ensemble's reference is the set of pitches sounding in each frame: the union of all stems' ``F0s``
annotations on one time grid (:func:`union_f0`). The estimate is a multi-f0 track of the generated mix (e.g.
:meth:`vitmusic.metrics.referees.BasicPitch.multif0`). Multi-f0 tracks are ``(times_s [F], freqs)`` with
``freqs`` a list of F arrays of the frequencies (Hz) active in each frame (empty = silence), mir_eval's
layout.

Metrics (``mir_eval.multipitch`` conventions: a pitch is correct within half a semitone; the estimate is
resampled onto the reference's time grid):

- ``multipitch.precision``: correct estimated pitches / estimated pitches;
- ``multipitch.recall``: correct estimated pitches / reference pitches;
- ``multipitch.accuracy``: TP / (TP + FP + FN) (Poliner & Ellis 2007);
- ``multipitch.chroma_accuracy``: the same with octave errors forgiven.

Undefined values: no reference pitch at all -> recall / accuracy nan (nothing to get right), precision 0
when something was estimated (every estimate is a false alarm); no estimated pitch -> precision nan,
recall and accuracy 0.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import numpy as np

from vitmusic.metrics.audio_checks import validate_series

METRIC_NAMES = ("multipitch.precision", "multipitch.recall", "multipitch.accuracy",
                "multipitch.chroma_accuracy")
#: grid of the reference union (seconds); URMP F0s are at ~5.8 ms, the synthetic benchmark at 10 ms
UNION_HOP_S = 0.01


def validate(ref_times: object, ref_freqs: object, est_times: object, est_freqs: object) -> None:
    """Check two multi-f0 tracks (increasing times, one finite, positive frequency array per frame).

    Raises:
        ValueError: with a message naming the offending track.
    """
    for name, times, freqs in (("reference", ref_times, ref_freqs), ("estimate", est_times, est_freqs)):
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        validate_series(t, np.zeros_like(t), f"{name} multi-f0")
        if len(freqs) != t.size:
            raise ValueError(f"{name} multi-f0: {t.size} times but {len(freqs)} frequency frames")
        for i, f in enumerate(freqs):
            f = np.asarray(f, dtype=np.float64)
            if f.ndim != 1 or not np.all(np.isfinite(f)) or np.any(f <= 0):
                raise ValueError(f"{name} multi-f0 frame {i}: frequencies must be a 1-D array of finite Hz > 0")


def union_f0(tracks: Sequence[tuple[np.ndarray, np.ndarray]], hop_s: float = UNION_HOP_S,
             end_s: float | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Union of single-voice f0 tracks on one ``hop_s`` grid: per frame every voiced stem's f0.

    Each stem contributes the value of its nearest annotated frame when that lies within one hop (0 Hz or
    no frame nearby = silent). Unisons (two stems within half a semitone) count once: a mix carries a
    unison as one pitch, so no transcriber could report it twice.

    Args:
        tracks: per stem ``(times_s [F_k], f0_hz [F_k])``; 0 Hz = unvoiced.
        hop_s: grid step in seconds.
        end_s: grid end (exclusive); default the last annotated time.

    Returns:
        ``(times_s [F], freqs)`` with ``freqs[i]`` the sorted frequencies (Hz) of frame ``i``.
    """
    tracks = [(np.asarray(t, float).reshape(-1), np.asarray(f, float).reshape(-1)) for t, f in tracks]
    tracks = [(t, f) for t, f in tracks if t.size]
    if end_s is None:
        end_s = max((float(t[-1]) + hop_s / 2 for t, _ in tracks), default=0.0)
    grid = np.arange(0.0, max(end_s, 0.0) - 1e-9, hop_s) if end_s > 0 else np.zeros(0)
    cols = []
    for t, f in tracks:
        idx = np.clip(np.searchsorted(t, grid), 0, t.size - 1)
        left = np.clip(idx - 1, 0, t.size - 1)
        idx = np.where(np.abs(t[left] - grid) <= np.abs(t[idx] - grid), left, idx)
        cols.append(np.where(np.abs(t[idx] - grid) <= hop_s, f[idx], 0.0))
    values = np.stack(cols, 1) if cols else np.zeros((grid.size, 0))
    freqs = [_dedupe(row[row > 0]) for row in values]
    return grid, freqs


def _dedupe(f: np.ndarray) -> np.ndarray:
    f = np.sort(np.asarray(f, float))
    if f.size < 2:
        return f
    midi = 12 * np.log2(f / 440.0)
    keep = np.concatenate([[True], np.diff(midi) >= 0.5])
    return f[keep]


def from_notes(notes: np.ndarray, times_s: np.ndarray) -> list[np.ndarray]:
    """Frequencies sounding at each of ``times_s`` [F] according to notes ``[N, 3]`` (onset, f0, dur)."""
    notes = np.asarray(notes, float).reshape(-1, 3)
    t = np.asarray(times_s, float).reshape(-1, 1)
    on = (t >= notes[:, 0]) & (t < notes[:, 0] + notes[:, 2]) if notes.size else np.zeros((t.size, 0), bool)
    return [_dedupe(notes[row, 1]) for row in on]


def evaluate(ref_times: np.ndarray, ref_freqs: Sequence[np.ndarray], est_times: np.ndarray,
             est_freqs: Sequence[np.ndarray]) -> collections.OrderedDict[str, float]:
    """Multi-pitch scores of an estimate against a reference (see the module docstring).

    Args:
        ref_times: reference frame times [F] (s), increasing.
        ref_freqs: F arrays of reference frequencies (Hz).
        est_times: estimate frame times [G] (s), increasing.
        est_freqs: G arrays of estimated frequencies (Hz).

    Returns:
        ``multipitch.precision``, ``.recall``, ``.accuracy``, ``.chroma_accuracy``.
    """
    import mir_eval

    validate(ref_times, ref_freqs, est_times, est_freqs)
    ref_times = np.asarray(ref_times, float).reshape(-1)
    est_times = np.asarray(est_times, float).reshape(-1)
    ref_freqs = [np.asarray(f, float) for f in ref_freqs]
    est_freqs = [np.asarray(f, float) for f in est_freqs]
    n_ref = sum(f.size for f in ref_freqs)
    n_est = sum(f.size for f in est_freqs)
    nan = math.nan
    if n_ref == 0:
        return collections.OrderedDict(zip(METRIC_NAMES, (0.0 if n_est else nan, nan, nan, nan)))
    if n_est == 0 or ref_times.size == 0 or est_times.size == 0:
        return collections.OrderedDict(zip(METRIC_NAMES, (nan, 0.0, 0.0, 0.0)))
    # the estimate onto the reference grid (mir_eval would do the same, with a warning per call)
    est_freqs = mir_eval.multipitch.resample_multipitch(est_times, est_freqs, ref_times)
    if not any(f.size for f in est_freqs):  # the estimate lies outside the reference's time range
        return collections.OrderedDict(zip(METRIC_NAMES, (nan, 0.0, 0.0, 0.0)))
    scores = mir_eval.multipitch.evaluate(ref_times, ref_freqs, ref_times, est_freqs)
    prec = float(scores["Precision"])
    return collections.OrderedDict([
        ("multipitch.precision", prec),
        ("multipitch.recall", float(scores["Recall"])),
        ("multipitch.accuracy", float(scores["Accuracy"])),
        ("multipitch.chroma_accuracy", float(scores["Chroma Accuracy"])),
    ])

