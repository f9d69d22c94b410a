"""Loudness matching of the stimuli of one item (ITU-R BS.1770 via pyloudnorm) and the MUSHRA low anchor.

Rule (documented in ``eval/listening/README.md``): every stimulus of an item is brought to the same integrated
loudness — the target (default -23 LUFS) when every one of them reaches it with its sample peak at or below
the ceiling (default -1 dBFS, headroom for the AAC encoder's overshoot). When one of them would exceed the
ceiling, the whole item is lowered to the loudest level all of them reach, so the stimuli a listener compares
stay loudness-matched; the lowered level is recorded. Silent stimuli (no measurable loudness) are left as
they are and recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vitmusic.errors import ConfigError

ANCHOR_CUTOFF_HZ = 3500.0


@dataclass
class Gain:
    """Loudness decision for one stimulus."""

    loudness_lufs: float  # measured before the gain (-inf when silent)
    gain_db: float
    target_lufs: float  # level actually aimed at (the item's level)
    lowered: bool  # True when the item level is below the requested target to avoid clipping
    silent: bool


def integrated_loudness(y: np.ndarray, sample_rate: int) -> float:
    """BS.1770 integrated loudness of mono ``y`` [N] in LUFS (-inf for silence); the metrics' measurement."""
    from vitmusic.metrics.loudness import integrated_loudness as measure

    try:
        return measure(y, sample_rate)
    except ValueError as e:  # too short: the user's excerpt
        raise ConfigError(str(e)) from e


def match_item_loudness(
    signals: Mapping[str, np.ndarray], sample_rate: int, target_lufs: float = -23.0, peak_dbfs: float = -1.0
) -> dict[str, Gain]:
    """Gains that bring every signal of one item to one common loudness without exceeding the peak ceiling.

    Args:
        signals: condition -> mono audio [N] (float, same rate).
        sample_rate: Hz.
        target_lufs: requested integrated loudness.
        peak_dbfs: sample-peak ceiling after the gain (dBFS, <= 0).

    Returns:
        condition -> :class:`Gain`.
    """
    if peak_dbfs > 0:
        raise ConfigError(f"the peak ceiling must be <= 0 dBFS, got {peak_dbfs}")
    measured = {k: integrated_loudness(y, sample_rate) for k, y in signals.items()}
    peaks = {k: float(np.max(np.abs(y))) if np.size(y) else 0.0 for k, y in signals.items()}
    level = float(target_lufs)
    for k, lufs in measured.items():
        if np.isfinite(lufs) and peaks[k] > 0:
            # highest loudness this signal reaches with its peak at the ceiling
            reachable = lufs + peak_dbfs - 20.0 * np.log10(peaks[k])
            level = min(level, float(reachable))
    gains: dict[str, Gain] = {}
    for k, lufs in measured.items():
        silent = not np.isfinite(lufs)
        gains[k] = Gain(
            loudness_lufs=lufs,
            gain_db=0.0 if silent else float(level - lufs),
            target_lufs=level,
            lowered=bool(level < target_lufs - 1e-9),
            silent=bool(silent),
        )
    return gains


def apply_gain(y: np.ndarray, gain_db: float) -> np.ndarray:
    """``y * 10**(gain_db/20)`` as float32."""
    return (np.asarray(y, dtype=np.float64) * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def low_anchor(y: np.ndarray, sample_rate: int, cutoff_hz: float = ANCHOR_CUTOFF_HZ) -> np.ndarray:
    """The BS.1534 low anchor: ``y`` [N] low-passed at ``cutoff_hz`` (8th-order Butterworth, zero phase)."""
    from scipy.signal import butter, sosfiltfilt

    if sample_rate <= 2 * cutoff_hz:
        raise ConfigError(f"sample rate {sample_rate} Hz is too low for a {cutoff_hz:.0f} Hz low-pass anchor")
    sos = butter(8, cutoff_hz, btype="low", fs=sample_rate, output="sos")
    return sosfiltfilt(sos, np.asarray(y, dtype=np.float64)).astype(np.float32)
