"""Input validation and light preprocessing shared by the metric modules.

Every metric module validates its inputs through these helpers so that a bad input (NaN/inf samples, an
empty or too-short signal, an invalid sample rate, a wrongly shaped annotation array) fails at once with a
``ValueError`` that names the argument, in the spirit of ``mir_eval``'s ``validate`` functions.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

#: Shortest signal the audio-level metrics accept (tempo, key and pitch statistics are meaningless below).
MIN_DURATION_S = 1.0


def validate_sample_rate(sample_rate: object, name: str = "sample_rate") -> int:
    """Check that ``sample_rate`` is a positive integer number of Hz (floats with an integral value pass).

    Returns:
        The sample rate as ``int``.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real):
        raise ValueError(f"{name} must be a positive number of Hz, got {sample_rate!r}")
    value = float(sample_rate)
    if not math.isfinite(value) or value <= 0 or value != int(value):
        raise ValueError(f"{name} must be a positive integer number of Hz, got {sample_rate!r}")
    if value < 4000:
        raise ValueError(f"{name}={int(value)} Hz is too low for music analysis (need >= 4000 Hz)")
    return int(value)


def validate_audio(
    audio: object,
    sample_rate: int,
    name: str = "audio",
    min_duration_s: float = MIN_DURATION_S,
) -> np.ndarray:
    """Validate a waveform and return it as a mono float32 array.

    Args:
        audio: ``[N]`` mono or ``[C, N]`` multi-channel samples (channels are averaged to mono); integer
            PCM is scaled to [-1, 1).
        sample_rate: Sample rate in Hz (already validated or validated here).
        name: Argument name used in error messages.
        min_duration_s: Minimum accepted duration in seconds.

    Returns:
        ``[N]`` float32 mono waveform.

    Raises:
        ValueError: non-numeric, empty, non-finite (NaN/inf), wrongly shaped or too short audio.
    """
    sample_rate = validate_sample_rate(sample_rate)
    try:
        y = np.asarray(audio)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} is not a numeric array: {exc}") from exc
    if y.dtype == object or not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"{name} must be a numeric array, got dtype {y.dtype}")
    if y.ndim == 2:
        if y.shape[0] > y.shape[1]:
            raise ValueError(
                f"{name} has shape {y.shape}; expected [N] or [C, N] with channels first (C <= N)"
            )
        y = y.mean(axis=0)
    elif y.ndim != 1:
        raise ValueError(f"{name} must be [N] or [C, N], got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    if np.issubdtype(y.dtype, np.integer):
        # Integer PCM (e.g. int16 from a wav reader) -> [-1, 1), so level-based features see the true level.
        y = y.astype(np.float32) / float(np.iinfo(y.dtype).max + 1)
    y = y.astype(np.float32, copy=False)
    if not np.all(np.isfinite(y)):
        bad = int(np.count_nonzero(~np.isfinite(y)))
        raise ValueError(f"{name} contains {bad} NaN/inf samples")
    duration_s = y.size / sample_rate
    # 10 ms of slack so that a clip cut at "1 s" with rounding still passes.
    if duration_s < min_duration_s - 0.01:
        raise ValueError(
            f"{name} is {duration_s:.3f} s long; at least {min_duration_s:g} s is needed for this metric"
        )
    return y


def validate_pair(
    ref_audio: object,
    est_audio: object,
    sample_rate: object,
    min_duration_s: float = MIN_DURATION_S,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate a (reference, estimate) pair sharing one sample rate.

    The two signals may differ in length; metrics that compare frame by frame truncate to the shorter one.

    Returns:
        ``(ref [N], est [M], sample_rate)`` as mono float32 arrays and an int rate.
    """
    sr = validate_sample_rate(sample_rate)
    ref = validate_audio(ref_audio, sr, "ref_audio", min_duration_s)
    est = validate_audio(est_audio, sr, "est_audio", min_duration_s)
    return ref, est, sr


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float32 waveform (soxr high quality); a no-op when the rates match."""
    if orig_sr == target_sr:
        return y
    import soxr

    return soxr.resample(y, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def is_silent(y: np.ndarray, threshold_db: float = -80.0) -> bool:
    """True when the RMS level of ``y`` is below ``threshold_db`` dBFS (digital silence or near it)."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    return rms <= 10.0 ** (threshold_db / 20.0)


def validate_series(times_s: object, values: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a time series given as ``times_s [N]`` and ``values [N]`` (e.g. an f0 track).

    Raises:
        ValueError: shapes differ, non-finite entries, negative or non-increasing times.
    """
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or v.ndim != 1:
        raise ValueError(f"{name}: times and values must be 1-D, got shapes {t.shape} and {v.shape}")
    if t.shape != v.shape:
        raise ValueError(f"{name}: {t.size} times but {v.size} values")
    if t.size == 0:
        raise ValueError(f"{name} is empty")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
        raise ValueError(f"{name} contains NaN/inf")
    if np.any(t < 0):
        raise ValueError(f"{name}: times must be >= 0")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise ValueError(f"{name}: times must be strictly increasing")
    return t, v
