"""What a video of a performance can tell, scored apart from pitch: rhythm, tempo curve, dynamics, who plays.

mir_eval-style: plain arrays in, ``validate_*`` raise ``ValueError``, ``evaluate_*`` return an ordered dict.
Nothing here imports the rest of the project.

- **onsets** (rhythm, pitch ignored): :func:`mir_eval.onset.f_measure` (50 ms window, one-to-one matching) of
  two onset-time lists. Note onsets closer than :data:`MERGE_S` are merged first (a chord is one attack; an
  audio onset detector cannot split it), on both sides. :func:`detect_onsets` is the audio referee (librosa's
  spectral-flux onset detector, each peak backtracked to the energy minimum before it).
- **tempo curve**: a local tempo curve per side from its beats (librosa's dynamic-programming beat tracker):
  ``60 / inter-beat interval`` at each interval's midpoint, median-smoothed over :data:`SMOOTH_BEATS`
  intervals, sampled every :data:`GRID_S` on a time axis starting at each side's *first beat* (alignment of the
  starts: a generated piece that starts late but keeps tempo scores perfectly). Scores over the span both curves
  cover: median ``|log2(gen / ref)|`` (0 = same tempo, 1 = an octave error), the fraction of the span within 8 %
  (mir_eval's tempo tolerance) and the Pearson correlation of the log-tempo curves (does the generated tempo
  speed up and slow down where the reference does). Undefined (nan) when a side has fewer than
  :data:`MIN_BEATS` beats or the common span is shorter than :data:`MIN_SPAN_S`; the correlation also when
  either curve is flat (log2-tempo std below :data:`FLAT_LOG2`: a constant tempo has no shape to follow).
- **dynamics**: loudness envelopes (frame RMS in dB, 46 ms frames every 11.6 ms at 22.05 kHz, moving average
  over :data:`SMOOTH_S`, floored at :data:`FLOOR_DB` below each side's own peak) compared by Pearson and
  Spearman correlation. Correlation ignores offset and scale of the dB curve, so a constant gain on either side
  changes nothing (level-invariant by construction). Undefined when a side is silent or its
  envelope is flat (range below :data:`FLAT_DB`).
- **instrumentation** (who plays when): per-part activity agreement. Each reference part (stem, notes) and each
  generated part (notes) becomes a boolean "sounding" row on a :data:`ACTIVITY_GRID_S` grid; generated parts are
  matched to reference parts beforehand (by the caller, e.g. by instrument); frame-level precision / recall / F1
  over every (part, frame) cell, with unmatched generated parts counting their frames as false alarms and
  unmatched reference parts their frames as misses.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import numpy as np

#: every name the metric groups built on this module report (onsets.part_f_measure: a mean of onset F1 over parts)
METRIC_NAMES: tuple[str, ...] = (
    "onsets.f_measure", "onsets.precision", "onsets.recall", "onsets.part_f_measure",
    "tempo_curve.median_abs_log2_ratio", "tempo_curve.accuracy", "tempo_curve.correlation",
    "dynamics.pearson", "dynamics.spearman",
    "instrumentation.activity_f1", "instrumentation.activity_precision", "instrumentation.activity_recall")
#: onset-matching window of the onset F-measure (mir_eval's default)
ONSET_WINDOW_S = 0.05
#: note onsets closer than this are one attack (chords, unisons, ensemble spread)
MERGE_S = 0.03
#: fewest beats per side for a tempo curve (3 inter-beat intervals)
MIN_BEATS = 4
#: shortest common span (s) of two tempo curves that is scored
MIN_SPAN_S = 1.0
#: median filter length (inter-beat intervals) of a tempo curve
SMOOTH_BEATS = 3
#: sampling step (s) of the tempo curves and of the activity grid
GRID_S = 0.05
ACTIVITY_GRID_S = 0.01
#: std of a log2 tempo curve below which it is flat (1.4 %: beat-time quantisation, not a tempo change)
FLAT_LOG2 = 0.02
#: relative tempo tolerance of ``tempo_curve.accuracy`` (mir_eval's 8 %)
TEMPO_TOLERANCE = 0.08
#: loudness-envelope smoothing (s) and floor (dB below the side's own peak)
SMOOTH_S = 0.5
FLOOR_DB = 60.0
#: an envelope whose range is below this (dB) is flat: no dynamics to follow
FLAT_DB = 0.5
FRAME = 1024
HOP = 256
#: a side whose RMS never exceeds this is silent
SILENCE_RMS = 1e-5


# -------------------------------------------------------------------------------------------------- onsets
def merge_onsets(onsets_s: np.ndarray, min_gap_s: float = MERGE_S) -> np.ndarray:
    """Sorted onset times [K] with every onset closer than ``min_gap_s`` to the last kept one dropped."""
    t = np.sort(np.asarray(onsets_s, dtype=np.float64).reshape(-1))
    if t.size < 2:
        return t
    keep = [t[0]]
    for x in t[1:]:
        if x - keep[-1] >= min_gap_s:
            keep.append(x)
    return np.asarray(keep)


def note_onsets(notes: np.ndarray) -> np.ndarray:
    """Merged onset times [K] of notes ``[N, 3]`` (onset_s, f0_hz, duration_s), pitch ignored."""
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    return merge_onsets(notes[:, 0])


def detect_onsets(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """The audio referee: librosa's onset detector (spectral flux, peak picking) on mono ``y`` [N]; onset times
    [K] in seconds, merged as :func:`merge_onsets`."""
    from vitmusic.metrics.jit import ensure_jit_cache

    ensure_jit_cache()
    import librosa

    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if y.size == 0 or float(np.max(np.abs(y))) < SILENCE_RMS:
        return np.zeros(0)
    # backtracked to the energy minimum before each peak: bowed and blown attacks rise for longer than the
    # 50 ms window, so the flux peak lags the annotated onset (on 8 synthetic pieces, F1 against the annotated
    # onsets 0.89 backtracked vs 0.27 at the peaks)
    times = librosa.onset.onset_detect(y=y, sr=sample_rate, units="time", backtrack=True)
    return merge_onsets(times)


def validate_onsets(reference_onsets_s: np.ndarray, estimated_onsets_s: np.ndarray) -> None:
    """Raises ValueError for onset lists that are not 1-D, finite and non-negative."""
    for name, t in (("reference", reference_onsets_s), ("estimated", estimated_onsets_s)):
        t = np.asarray(t)
        if t.ndim != 1:
            raise ValueError(f"{name} onsets must be a 1-D array of times, got shape {t.shape}")
        if t.size and (not np.all(np.isfinite(t)) or float(t.min()) < 0):
            raise ValueError(f"{name} onsets must be finite and non-negative")


def evaluate_onsets(reference_onsets_s: np.ndarray, estimated_onsets_s: np.ndarray,
                    window_s: float = ONSET_WINDOW_S, prefix: str = "onsets.") -> collections.OrderedDict:
    """Onset F-measure, precision and recall ignoring pitch. F and recall are nan without reference onsets and 0
    when only the estimate has none; precision is nan without estimated onsets."""
    import mir_eval

    validate_onsets(reference_onsets_s, estimated_onsets_s)
    ref = merge_onsets(reference_onsets_s)
    est = merge_onsets(estimated_onsets_s)
    out: collections.OrderedDict = collections.OrderedDict()
    # the house rule (docs/evaluation.md, "Undefined values"): a score taken over an empty set is nan, a failed
    # detection is 0
    if ref.size == 0 or est.size == 0:
        f = r = math.nan if ref.size == 0 else 0.0
        p = math.nan if est.size == 0 else 0.0
    else:
        f, p, r = mir_eval.onset.f_measure(ref, est, window=window_s)
    out[prefix + "f_measure"], out[prefix + "precision"], out[prefix + "recall"] = float(f), float(p), float(r)
    return out


# ---------------------------------------------------------------------------------------------- tempo curve
def track_beats(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Beat times [B] in seconds of mono ``y`` [N] (librosa's beat tracker; none for silence)."""
    from vitmusic.metrics.jit import ensure_jit_cache

    ensure_jit_cache()
    import librosa

    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if y.size == 0 or float(np.max(np.abs(y))) < SILENCE_RMS:
        return np.zeros(0)
    _, beats = librosa.beat.beat_track(y=y, sr=sample_rate, units="time")
    return np.asarray(beats, dtype=np.float64)


def tempo_curve(beats_s: np.ndarray, grid_s: float = GRID_S) -> tuple[np.ndarray, np.ndarray]:
    """Local tempo curve from beat times: ``(times_s [F], tempo_bpm [F])`` with ``times_s`` counted from the
    first beat, ``60 / IBI`` median-smoothed over :data:`SMOOTH_BEATS` intervals and linearly interpolated
    between interval midpoints (held constant before the first / after the last midpoint).

    Raises:
        ValueError: fewer than :data:`MIN_BEATS` beats, or beats not strictly increasing.
    """
    from scipy.signal import medfilt

    b = np.asarray(beats_s, dtype=np.float64).reshape(-1)
    if b.size < MIN_BEATS:
        raise ValueError(f"{b.size} beat(s): a tempo curve needs at least {MIN_BEATS}")
    ibi = np.diff(b)
    if np.any(ibi <= 0):
        raise ValueError("beat times must be strictly increasing")
    bpm = 60.0 / ibi
    if bpm.size >= SMOOTH_BEATS:
        bpm = medfilt(bpm, SMOOTH_BEATS)
        bpm[0], bpm[-1] = 60.0 / np.median(ibi[:SMOOTH_BEATS]), 60.0 / np.median(ibi[-SMOOTH_BEATS:])
    mid = (b[:-1] + b[1:]) / 2 - b[0]
    times = np.arange(0.0, b[-1] - b[0] + grid_s / 2, grid_s)
    return times, np.interp(times, mid, bpm)


def evaluate_tempo_curves(reference_beats_s: np.ndarray, estimated_beats_s: np.ndarray) -> collections.OrderedDict:
    """``tempo_curve.median_abs_log2_ratio``, ``tempo_curve.accuracy`` and ``tempo_curve.correlation`` of the two
    sides' tempo curves over their common span (see the module doc). All nan where undefined."""
    out = collections.OrderedDict((k, math.nan) for k in (
        "tempo_curve.median_abs_log2_ratio", "tempo_curve.accuracy", "tempo_curve.correlation"))
    try:
        (rt, rb), (et, eb) = tempo_curve(reference_beats_s), tempo_curve(estimated_beats_s)
    except ValueError:
        return out
    n = min(rt.size, et.size)
    if n * GRID_S < MIN_SPAN_S:
        return out
    log_ratio = np.log2(eb[:n] / rb[:n])
    out["tempo_curve.median_abs_log2_ratio"] = float(np.median(np.abs(log_ratio)))
    out["tempo_curve.accuracy"] = float(np.mean(np.abs(eb[:n] / rb[:n] - 1.0) <= TEMPO_TOLERANCE))
    lr, le = np.log2(rb[:n]), np.log2(eb[:n])
    if np.std(lr) >= FLAT_LOG2 and np.std(le) >= FLAT_LOG2:
        out["tempo_curve.correlation"] = _pearson(lr, le)
    return out


# -------------------------------------------------------------------------------------------------- dynamics
def loudness_envelope(y: np.ndarray, sample_rate: int, smooth_s: float = SMOOTH_S) -> np.ndarray:
    """Smoothed loudness envelope [F] in dB (frame RMS, ``FRAME``/``HOP`` samples), floored ``FLOOR_DB`` below
    its own peak; empty for a silent signal."""
    from vitmusic.metrics.jit import ensure_jit_cache

    ensure_jit_cache()
    import librosa
    from scipy.ndimage import uniform_filter1d

    y = np.asarray(y, dtype=np.float32).reshape(-1)
    rms = librosa.feature.rms(y=y, frame_length=FRAME, hop_length=HOP, center=False)[0].astype(np.float64)
    if rms.size == 0 or float(rms.max()) < SILENCE_RMS:
        return np.zeros(0)
    db = 20 * np.log10(np.maximum(rms, 1e-12))
    db = np.maximum(db, db.max() - FLOOR_DB)
    width = max(1, int(round(smooth_s * sample_rate / HOP)))
    return uniform_filter1d(db, width, mode="nearest")


def evaluate_dynamics(reference: np.ndarray, estimated: np.ndarray, sample_rate: int) -> collections.OrderedDict:
    """Pearson and Spearman correlation of the two sides' loudness envelopes (nan for a silent or flat side:
    range below :data:`FLAT_DB`)."""
    from scipy.stats import spearmanr

    re, ee = loudness_envelope(reference, sample_rate), loudness_envelope(estimated, sample_rate)
    n = min(re.size, ee.size)
    out = collections.OrderedDict([("dynamics.pearson", math.nan), ("dynamics.spearman", math.nan)])
    if n < 3 or np.ptp(re[:n]) < FLAT_DB or np.ptp(ee[:n]) < FLAT_DB:
        return out
    out["dynamics.pearson"] = _pearson(re[:n], ee[:n])
    out["dynamics.spearman"] = float(spearmanr(re[:n], ee[:n]).statistic)
    return out


# ------------------------------------------------------------------------------------------- instrumentation
def activity(notes: np.ndarray, n_frames: int, grid_s: float = ACTIVITY_GRID_S) -> np.ndarray:
    """Boolean "sounding" row [F] of notes ``[N, 3]`` on a grid of ``n_frames`` frames of ``grid_s``."""
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    row = np.zeros(n_frames, bool)
    for onset, _, dur in notes:
        a, b = int(math.floor(onset / grid_s)), int(math.ceil((onset + dur) / grid_s))
        row[max(a, 0):max(min(b, n_frames), 0)] = True
    return row


def validate_parts(reference_parts: Sequence[np.ndarray], estimated_parts: Sequence[np.ndarray],
                   match: Sequence[int | None]) -> None:
    """Raises ValueError when ``match`` (per reference part, its estimated part's index or None) is
    inconsistent with the part lists or uses a part twice."""
    if len(match) != len(reference_parts):
        raise ValueError(f"match has {len(match)} entries for {len(reference_parts)} reference parts")
    used = [m for m in match if m is not None]
    if len(set(used)) < len(used) or any(not 0 <= m < len(estimated_parts) for m in used):
        raise ValueError(f"match must use each of the {len(estimated_parts)} estimated parts at most once: {match}")


def evaluate_instrumentation(reference_parts: Sequence[np.ndarray], estimated_parts: Sequence[np.ndarray],
                             match: Sequence[int | None], duration_s: float) -> collections.OrderedDict:
    """Frame-level precision / recall / F1 of "part k sounds" over all (part, frame) cells (module doc).

    Args:
        reference_parts: notes ``[N_k, 3]`` per reference part.
        estimated_parts: notes ``[M_j, 3]`` per generated part.
        match: per reference part, the index of its generated part, or None (none matched).
        duration_s: the scored span.
    """
    validate_parts(reference_parts, estimated_parts, match)
    n = max(1, int(round(duration_s / ACTIVITY_GRID_S)))
    tp = fp = fn = 0
    for k, ref in enumerate(reference_parts):
        r = activity(ref, n)
        e = activity(estimated_parts[match[k]], n) if match[k] is not None else np.zeros(n, bool)
        tp, fp, fn = tp + int(np.sum(r & e)), fp + int(np.sum(~r & e)), fn + int(np.sum(r & ~e))
    for j in sorted(set(range(len(estimated_parts))) - {m for m in match if m is not None}):
        fp += int(np.sum(activity(estimated_parts[j], n)))
    out = collections.OrderedDict()
    p = tp / (tp + fp) if tp + fp else math.nan
    r = tp / (tp + fn) if tp + fn else math.nan
    f = math.nan if tp + fn == 0 else (2 * p * r / (p + r) if tp else 0.0)
    out["instrumentation.activity_f1"], out["instrumentation.activity_precision"], \
        out["instrumentation.activity_recall"] = float(f), float(p), float(r)
    return out


# ---------------------------------------------------------------------------------------------------- helpers
def _flat(x: np.ndarray) -> bool:
    return float(np.std(x)) < 1e-9


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if _flat(a) or _flat(b):
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])
