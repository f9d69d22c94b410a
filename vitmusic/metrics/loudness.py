"""Integrated loudness (ITU-R BS.1770, via pyloudnorm) and loudness normalisation of one signal.

The metrics that must not see level (the emotion proxy's arousal, FAD's embeddings) bring every signal to one
integrated loudness first; the listening-test stimuli are matched with the same measurement.
"""

from __future__ import annotations

import math

import numpy as np

#: EBU R 128 programme loudness: the level the metrics normalise to.
TARGET_LUFS = -23.0
#: One BS.1770 gating block.
BLOCK_S = 0.4


def integrated_loudness(y: np.ndarray, sample_rate: int, *, tile_short: bool = False) -> float:
    """BS.1770 integrated loudness of mono ``y`` [N] in LUFS (-inf for silence).

    Args:
        y: mono samples [N].
        sample_rate: Hz.
        tile_short: measure a signal shorter than one 0.4 s gating block on the signal repeated to 0.4 s
            (its mean square is unchanged) instead of refusing it.

    Raises:
        ValueError: ``y`` shorter than 0.4 s and ``tile_short`` is False.
    """
    import pyloudnorm

    y = np.asarray(y, dtype=np.float64).reshape(-1)
    block = int(math.ceil(BLOCK_S * sample_rate))
    if y.size < block:
        if not tile_short or y.size == 0:
            raise ValueError(f"excerpt too short for a loudness measurement ({y.size / sample_rate:.2f} s < 0.4 s)")
        y = np.tile(y, -(-block // y.size))[:block]
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(y))


def loudness_normalize(
    y: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS
) -> tuple[np.ndarray, float]:
    """``y`` [N] scaled to ``target_lufs`` integrated loudness; returns it (float32) and its loudness before.

    A silent signal (no block above BS.1770's -70 LUFS gate) is returned unscaled with loudness -inf. No
    clipping is applied: the result may exceed [-1, 1], which is harmless for an analysis.
    """
    lufs = integrated_loudness(y, sample_rate, tile_short=True)
    if not math.isfinite(lufs):
        return np.asarray(y, np.float32), -math.inf
    return (np.asarray(y, np.float64) * 10 ** ((target_lufs - lufs) / 20)).astype(np.float32), lufs
