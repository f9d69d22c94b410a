"""Harmonic (semantic) agreement: frame-wise chroma similarity, pitch-class histograms and key.

These reward generated music that uses the same harmony as the reference even when it is not note for
note. Chroma is ``librosa.feature.chroma_cqt`` at 22050 Hz with a 512-sample hop (~23 ms). The key is
estimated with the Krumhansl-Schmuckler method: the Pearson correlation of a pitch-class histogram with
the 24 rotated Krumhansl-Kessler probe-tone profiles; the best-correlated key wins. Keys are compared
with ``mir_eval.key.weighted_score`` (1 same key, 0.5 fifth, 0.3 relative, 0.2 parallel, 0 otherwise).

Silence (a frame whose chroma energy is below :data:`SILENT_FRAME_RATIO` of its side's loudest frame)
is part of the comparison, not a gap in it:

- ``chroma.cosine`` is the mean cosine over the frames where **either** side sounds; a frame where only
  one side sounds scores 0 (a miss: the generated audio is silent where the reference plays, or plays
  where the reference is silent); frames silent on both sides are skipped. Before, frames silent on
  either side were skipped, so one second of the reference followed by nine seconds of silence scored
  0.87-0.90; now it scores ~0.1.
- ``key.weighted_score`` compares the two clip-level keys (one key per clip, the MIREX convention).
  It cannot see when the key is stated: the same one second plus silence scores 1.0.
- ``key.local_score`` compares local keys over time: every :data:`KEY_HOP_S` seconds where the reference
  sounds, the key of each side's :data:`KEY_WINDOW_S` window centred there (mir_eval weighted score);
  a step where the generated audio is silent scores 0. It follows modulations and penalises output
  that states the key only briefly.
- ``chroma.pc_histogram_similarity`` is timing-free by definition (harmony regardless of when).
"""

from __future__ import annotations

import collections
import math

import numpy as np

from vitmusic.metrics.audio_checks import is_silent, resample, validate_audio, validate_pair
from vitmusic.metrics.jit import ensure_jit_cache

ANALYSIS_SR = 22050
HOP_LENGTH = 512
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
#: Frames whose chroma energy is below this fraction of the clip's loudest frame count as silent.
SILENT_FRAME_RATIO = 1e-3

#: local key: the key of the window of this length centred on each step (one step every KEY_HOP_S)
KEY_WINDOW_S = 8.0
KEY_HOP_S = 1.0

METRIC_NAMES = ("chroma.cosine", "key.weighted_score", "key.local_score", "chroma.pc_histogram_similarity")


def validate(ref_chroma: object, est_chroma: object) -> tuple[np.ndarray, np.ndarray]:
    """Check two chromagrams (``[12, T]``, finite, non-negative) and return them as float64.

    Raises:
        ValueError: wrong shape, empty, negative or non-finite values.
    """
    out = []
    for name, c in (("ref_chroma", ref_chroma), ("est_chroma", est_chroma)):
        arr = np.asarray(c, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] != 12 or arr.shape[1] == 0:
            raise ValueError(f"{name} must be [12, T] with T > 0, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} must be finite and non-negative")
        out.append(arr)
    return out[0], out[1]


def chromagram(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Constant-Q chromagram ``[12, T]`` (raw energies, not max-normalised; zeros for silence)."""
    ensure_jit_cache()
    import librosa

    y = resample(validate_audio(audio, sample_rate), sample_rate, ANALYSIS_SR)
    if is_silent(y):
        n = 1 + y.size // HOP_LENGTH
        return np.zeros((12, n))
    # norm=None keeps silent frames at ~0 instead of blowing their noise up to unit norm.
    return librosa.feature.chroma_cqt(y=y, sr=ANALYSIS_SR, hop_length=HOP_LENGTH, norm=None)


def _active(chroma: np.ndarray) -> np.ndarray:
    energy = chroma.sum(axis=0)
    peak = energy.max() if energy.size else 0.0
    return energy > SILENT_FRAME_RATIO * peak if peak > 0 else np.zeros(energy.shape, dtype=bool)


def frame_cosine(ref_chroma: np.ndarray, est_chroma: np.ndarray) -> float:
    """Mean cosine similarity of time-aligned chroma frames where either signal sounds.

    The longer chromagram is truncated to the shorter. A frame where only one signal sounds scores 0 (a
    miss either way); frames silent in both are skipped; nan when no frame sounds in either.
    """
    ref, est = validate(ref_chroma, est_chroma)
    n = min(ref.shape[1], est.shape[1])
    ref, est = ref[:, :n], est[:, :n]
    ref_on, est_on = _active(ref), _active(est)
    either = ref_on | est_on
    if not np.any(either):
        return math.nan
    both = ref_on & est_on
    r, e = ref[:, both], est[:, both]
    cos = (r * e).sum(axis=0) / (np.linalg.norm(r, axis=0) * np.linalg.norm(e, axis=0))
    return float(np.sum(cos) / np.count_nonzero(either))


def pc_histogram(chroma: np.ndarray) -> np.ndarray:
    """Pitch-class histogram ``[12]``: chroma summed over time, normalised to sum 1 (zeros if silent)."""
    hist = np.asarray(chroma, dtype=np.float64).sum(axis=1)
    total = hist.sum()
    return hist / total if total > 0 else hist


def histogram_similarity(ref_chroma: np.ndarray, est_chroma: np.ndarray) -> float:
    """Cosine similarity of the two pitch-class histograms (nan when either is silent)."""
    ref, est = validate(ref_chroma, est_chroma)
    a, b = pc_histogram(ref), pc_histogram(est)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return math.nan
    return float(a @ b / (na * nb))


def key_correlations(chroma: np.ndarray) -> np.ndarray:
    """Krumhansl-Schmuckler correlations ``[2, 12]`` (row 0 major, row 1 minor; column = tonic pitch class).

    All nan for a silent or flat histogram.
    """
    hist = pc_histogram(chroma)
    out = np.full((2, 12), math.nan)
    if np.allclose(hist, hist[0]):
        return out
    for mode, profile in enumerate((MAJOR_PROFILE, MINOR_PROFILE)):
        for tonic in range(12):
            out[mode, tonic] = np.corrcoef(hist, np.roll(profile, tonic))[0, 1]
    return out


#: share of the clip's sounding frames that counts as its ending (the cadence) in :func:`key_scores`
CADENCE_FRACTION = 0.2
#: the final sonority (this share of the sounding frames) and the score its strongest pitch class adds
FINAL_FRACTION = 0.05
TONIC_BONUS = 0.3


def key_scores(chroma: np.ndarray, cadence_weight: float = 1.0) -> np.ndarray:
    """Key scores ``[2, 12]``: Krumhansl-Schmuckler correlations of the whole clip plus, weighted by
    ``cadence_weight``, those of its last :data:`CADENCE_FRACTION` of sounding frames.

    The whole-clip histogram cannot tell a key from its relative (G major and E minor share every pitch
    class; a melody that dwells on E and B reads as E minor); music states its tonic at the cadence, so the
    ending's histogram breaks the tie, and the strongest pitch class of the final sonority (its last
    :data:`FINAL_FRACTION` of sounding frames) adds :data:`TONIC_BONUS` to both keys on that tonic. All nan
    when silent or flat.
    """
    corr = key_correlations(chroma)
    active = np.flatnonzero(_active(chroma))
    if cadence_weight == 0 or active.size < 5 or np.all(np.isnan(corr)):
        return corr
    tail = chroma[:, active[-max(2, int(round(CADENCE_FRACTION * active.size))):]]
    end = key_correlations(tail)
    # the final sonority: its strongest pitch class is the usual tonic (a cadence ends on the root)
    final = chroma[:, active[-max(2, int(round(FINAL_FRACTION * active.size))):]].sum(axis=1)
    share = final / final.max() if final.max() > 0 else np.zeros(12)
    out = corr + cadence_weight * (np.nan_to_num(end) + TONIC_BONUS * (share >= 1.0)[None, :])
    return out


def estimate_key(chroma: np.ndarray, cadence: bool = False) -> str | None:
    """Best Krumhansl-Schmuckler key as a ``mir_eval`` key string (e.g. ``"A minor"``); None if silent.

    ``cadence=True`` adds the clip ending's correlations (:func:`key_scores`).
    """
    corr = key_scores(chroma) if cadence else key_correlations(chroma)
    if np.all(np.isnan(corr)):
        return None
    mode, tonic = np.unravel_index(np.nanargmax(corr), corr.shape)
    return f"{PITCH_CLASSES[tonic]} {'major' if mode == 0 else 'minor'}"


def key_score(ref_key: str | None, est_key: str | None) -> float:
    """``mir_eval.key.weighted_score``; nan without a reference key, 0 without an estimated one."""
    import mir_eval

    if ref_key is None:
        return math.nan
    if est_key is None:
        return 0.0
    mir_eval.key.validate(ref_key, est_key)
    return float(mir_eval.key.weighted_score(ref_key, est_key))


def local_keys(chroma: np.ndarray, window_s: float = KEY_WINDOW_S, hop_s: float = KEY_HOP_S
               ) -> tuple[list[str | None], np.ndarray]:
    """Krumhansl-Schmuckler key of the ``window_s`` window centred on each ``hop_s`` step.

    Args:
        chroma: ``[12, T]`` chromagram at ``ANALYSIS_SR / HOP_LENGTH`` frames per second.
        window_s: window length (clipped at the clip edges; a clip shorter than it is one window).
        hop_s: step length.

    Returns:
        ``(keys, sounding [S])``: per step the key string (None when the window is silent or flat) and
        whether any frame of the step itself sounds.
    """
    c = np.asarray(chroma, dtype=np.float64)
    fps = ANALYSIS_SR / HOP_LENGTH
    hop, half = max(1, int(round(hop_s * fps))), max(1, int(round(window_s * fps / 2)))
    n = c.shape[1]
    active = _active(c)
    cum = np.concatenate([np.zeros((12, 1)), np.cumsum(np.where(active, c, 0.0), axis=1)], axis=1)
    keys: list[str | None] = []
    sounding = []
    for start in range(0, n, hop):
        centre = min(start + hop // 2, n - 1)
        lo, hi = max(0, centre - half), min(n, centre + half)
        hist = cum[:, hi] - cum[:, lo]
        keys.append(estimate_key(hist[:, None]) if hist.sum() > 0 else None)
        sounding.append(bool(active[start:start + hop].any()))
    return keys, np.asarray(sounding, dtype=bool)


def local_key_score(ref_chroma: np.ndarray, est_chroma: np.ndarray, window_s: float = KEY_WINDOW_S,
                    hop_s: float = KEY_HOP_S) -> float:
    """Mean ``mir_eval`` weighted score of the local keys (:func:`local_keys`) over the steps where the
    reference sounds; a step where the generated audio is silent (or flat) scores 0; nan when the
    reference never sounds."""
    ref, est = validate(ref_chroma, est_chroma)
    n = min(ref.shape[1], est.shape[1])
    ref_keys, ref_on = local_keys(ref[:, :n], window_s, hop_s)
    est_keys, est_on = local_keys(est[:, :n], window_s, hop_s)
    scores = [key_score(r, e if on else None)
              for r, on_ref, e, on in zip(ref_keys, ref_on, est_keys, est_on) if on_ref and r is not None]
    return float(np.mean(scores)) if scores else math.nan


def describe(ref_audio: np.ndarray, est_audio: np.ndarray, sample_rate: int) -> dict[str, str | None]:
    """The estimated key strings ``{"key.ref": ..., "key.est": ...}`` (for reports; not metrics)."""
    ref, est, sr = validate_pair(ref_audio, est_audio, sample_rate)
    return {"key.ref": estimate_key(chromagram(ref, sr)), "key.est": estimate_key(chromagram(est, sr))}


def evaluate(
    ref_audio: np.ndarray, est_audio: np.ndarray, sample_rate: int
) -> collections.OrderedDict[str, float]:
    """Chroma and key agreement of generated audio with the reference.

    Returns:
        ``chroma.cosine`` (mean frame cosine over the frames where either side sounds, 0..1),
        ``key.weighted_score`` (clip keys, 0..1), ``key.local_score`` (local keys over time, 0..1) and
        ``chroma.pc_histogram_similarity`` (0..1). A silent generated side scores 0 on the cosine and the
        key scores, nan on the histogram similarity; a silent reference scores 0 on the cosine when the
        generated side sounds (every sounding frame is a miss), nan on the others.
    """
    ref, est, sr = validate_pair(ref_audio, est_audio, sample_rate)
    ref_c, est_c = chromagram(ref, sr), chromagram(est, sr)
    scores: collections.OrderedDict[str, float] = collections.OrderedDict()
    scores["chroma.cosine"] = frame_cosine(ref_c, est_c)
    scores["key.weighted_score"] = key_score(estimate_key(ref_c), estimate_key(est_c))
    scores["key.local_score"] = local_key_score(ref_c, est_c)
    scores["chroma.pc_histogram_similarity"] = histogram_similarity(ref_c, est_c)
    return scores
