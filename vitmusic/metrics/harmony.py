"""Chord and key agreement between two chord sequences / keys (``mir_eval`` style; the ``harmony`` metrics).

- ``harmony.chord_majmin``: ``mir_eval.chord.majmin`` comparison weighted by duration over the reference span
  (the estimate is cut / padded with ``N`` to it): the share of time where root and major/minor quality agree
  (sevenths reduce to their triad; reference chords of other qualities, e.g. diminished, and ``X`` are left
  out, as in MIREX).
- ``harmony.chord_root``: the same with ``mir_eval.chord.root`` (roots agree; ``N`` against a chord is wrong).
- ``harmony.key_weighted``: ``mir_eval.key.weighted_score`` (1 same key, 0.5 fifth, 0.3 relative, 0.2 parallel;
  :func:`vitmusic.metrics.chroma.key_score`).

Undefined (NaN): a reference without a single comparable chord (all ``N`` / ``X``: "no chords"), or without a
key. An estimate without chords (all ``N``) or without a key against a reference that has them scores 0.
"""

from __future__ import annotations

import collections
import math

import numpy as np

__all__ = ["METRIC_NAMES", "chord_scores", "evaluate", "validate"]

METRIC_NAMES = ("harmony.chord_majmin", "harmony.chord_root", "harmony.key_weighted")


def validate(intervals_s: object, labels: object, name: str) -> tuple[np.ndarray, list[str]]:
    """``(intervals [S, 2], labels [S])`` checked by ``mir_eval.chord``.

    Raises:
        ValueError: wrong shapes, decreasing or negative intervals, or an unparseable chord label.
    """
    import mir_eval

    iv = np.asarray(intervals_s, dtype=np.float64)
    labels = [str(x) for x in labels]
    if iv.size == 0 and not labels:
        return np.zeros((0, 2)), []
    if iv.ndim != 2 or iv.shape[1] != 2 or iv.shape[0] != len(labels):
        raise ValueError(f"{name}: intervals must be [S, 2] with one label each, got {iv.shape} and {len(labels)}")
    try:
        mir_eval.util.validate_intervals(iv)
        mir_eval.chord.validate(labels, labels)
    except (ValueError, mir_eval.chord.InvalidChordException) as e:
        raise ValueError(f"{name}: {e}") from e
    return iv, labels


def chord_scores(ref_intervals: np.ndarray, ref_labels: list[str], est_intervals: np.ndarray,
                 est_labels: list[str]) -> tuple[float, float]:
    """``(majmin, root)`` duration-weighted agreement over the reference span; nan when nothing compares."""
    import mir_eval

    ref_iv, ref_lab = validate(ref_intervals, ref_labels, "reference chords")
    est_iv, est_lab = validate(est_intervals, est_labels, "estimated chords")
    if not ref_lab:
        return math.nan, math.nan
    start, end = float(ref_iv.min()), float(ref_iv.max())
    if not est_lab:
        est_iv, est_lab = np.array([[start, end]]), ["N"]
    est_iv, est_lab = mir_eval.util.adjust_intervals(est_iv, est_lab, start, end, "N", "N")
    iv, ref_m, est_m = mir_eval.util.merge_labeled_intervals(ref_iv, ref_lab, est_iv, est_lab)
    durations = mir_eval.util.intervals_to_durations(iv)
    out = []
    for compare in (mir_eval.chord.majmin, mir_eval.chord.root):
        c = np.asarray(compare(ref_m, est_m), dtype=np.float64)
        valid = c >= 0
        weight = durations[valid].sum()
        out.append(float((c[valid] * durations[valid]).sum() / weight) if weight > 0 else math.nan)
    return out[0], out[1]


def evaluate(ref_intervals: np.ndarray, ref_labels: list[str], est_intervals: np.ndarray, est_labels: list[str],
             ref_key: str | None = None, est_key: str | None = None) -> collections.OrderedDict[str, float]:
    """The three ``harmony.*`` metrics (see the module docstring)."""
    from vitmusic.metrics.chroma import key_score

    majmin, root = chord_scores(ref_intervals, ref_labels, est_intervals, est_labels)
    return collections.OrderedDict([("harmony.chord_majmin", majmin), ("harmony.chord_root", root),
                                    ("harmony.key_weighted", key_score(ref_key, est_key))])
