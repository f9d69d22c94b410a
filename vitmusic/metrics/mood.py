"""A trained valence / energy referee for the ``emotion`` metrics (``--emotion-referee vibenet``), beside the proxy.

:class:`VibeNetEstimator` wraps vibenet 0.1.0 (GPL-3.0-or-later; optional extra ``referees-gpl``, never
imported unless selected): an EfficientNet (ONNX, 18.5 MB, inside the package) distilled from a PANNs
teacher to predict Spotify-style audio features from a 128-band log-mel spectrogram of 16 kHz audio. Of its
seven outputs, ``valence`` (musical positiveness) and ``energy`` (intensity, activity) are read as valence
and arousal; both lie in [0, 1] and are mapped to the [-1, 1] scale of
:class:`vitmusic.metrics.emotion.EmotionEstimator` by ``2 x - 1`` (0.5 is neutral, as in the proxy's
quadrants).

The model is level-sensitive (a -15 dB gain moved a chorale's valence from 0.51 to 0.30, ``STACK.md``), so
every signal is loudness-normalised to :data:`vitmusic.metrics.beat_trackers.TARGET_LUFS` (ITU-R BS.1770)
first, as mastered music is. The whole clip is one input (the model pools over time).

The proxy (:class:`vitmusic.metrics.emotion.FeatureEmotionEstimator`) keeps its PROXY label; this one is
reported as ``vibenet 0.1.0 (GPL-3.0-or-later)``. Neither has a referee ceiling: there are no valence /
arousal annotations to score a referee against. :func:`agreement` measures how far the two agree.
"""

from __future__ import annotations

import collections
import functools
import math

import numpy as np

from vitmusic.metrics import referee_packages as packages
from vitmusic.metrics.audio_checks import validate_audio

__all__ = ["EMOTION_REFEREES", "VibeNetEstimator", "agreement"]

EMOTION_REFEREES: tuple[str, ...] = ("proxy", "vibenet")
SAMPLE_RATE = 16000


@functools.lru_cache(maxsize=1)
def _vibenet_model():
    return packages.import_vibenet().load_model()


class VibeNetEstimator:
    """vibenet's valence and energy as ``(valence, arousal)`` on [-1, 1] (the model loads on first use).

    Raises (on call):
        RefereeUnavailableError: vibenet is not installed (the message says how to install it).
    """

    is_proxy = False
    name = "vibenet"

    def describe(self) -> str:
        return packages.referee_info("vibenet").label(packages.vibenet_version(), "valence, energy")

    def features(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        """All seven vibenet outputs in [0, 1] of loudness-normalised ``audio``."""
        from vitmusic.metrics.audio_checks import resample
        from vitmusic.metrics.beat_trackers import loudness_normalized

        y = resample(loudness_normalized(validate_audio(audio, sample_rate), sample_rate), sample_rate, SAMPLE_RATE)
        return _vibenet_model().predict(np.asarray(y, np.float32), sr=SAMPLE_RATE)[0].to_dict()

    def __call__(self, audio: np.ndarray, sample_rate: int) -> tuple[float, float]:
        f = self.features(audio, sample_rate)
        return 2.0 * float(f["valence"]) - 1.0, 2.0 * float(f["energy"]) - 1.0


def agreement(a: np.ndarray, b: np.ndarray) -> collections.OrderedDict[str, float]:
    """How two estimators agree over the same clips: ``a``, ``b`` ``[N, 2]`` (valence, arousal) on [-1, 1].

    Returns:
        Pearson and Spearman correlations of valence and of arousal, the share of clips in the same
        quadrant, and the mean absolute differences (nan where fewer than 3 clips or a constant column).
    """
    from scipy import stats

    a, b = np.asarray(a, float).reshape(-1, 2), np.asarray(b, float).reshape(-1, 2)
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    a, b = a[ok], b[ok]
    out: collections.OrderedDict[str, float] = collections.OrderedDict(n=float(len(a)))
    for j, dim in enumerate(("valence", "arousal")):
        constant = len(a) < 3 or np.ptp(a[:, j]) == 0 or np.ptp(b[:, j]) == 0
        out[f"{dim}_pearson"] = math.nan if constant else float(stats.pearsonr(a[:, j], b[:, j])[0])
        out[f"{dim}_spearman"] = math.nan if constant else float(stats.spearmanr(a[:, j], b[:, j])[0])
        out[f"{dim}_mean_abs_diff"] = float(np.mean(np.abs(a[:, j] - b[:, j]))) if len(a) else math.nan
    same = [(va >= 0) == (vb >= 0) and (aa >= 0) == (ab >= 0) for (va, aa), (vb, ab) in zip(a, b)]
    out["quadrant_agreement"] = float(np.mean(same)) if same else math.nan
    return out
