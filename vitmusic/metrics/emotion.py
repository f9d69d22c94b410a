"""Emotional agreement (valence / arousal) between a reference and generated audio.

No pretrained emotion model can be downloaded here, so the default estimator is a **PROXY**: a
transparent, hand-weighted feature model in the spirit of the regression approach of Eerola, Lartillot &
Toiviainen (2009, "Prediction of multidimensional emotional ratings in music from audio using multivariate
regression models"), where arousal is carried mainly by loudness, event density, tempo and brightness,
and valence mainly by mode (major vs minor) plus tempo and brightness. Its weights are NOT fitted to
listener ratings; read its outputs as "does the generated music move in the same direction as the
reference on these cues", not as calibrated emotion ratings.

Audio is resampled to 22050 Hz and **loudness-normalised** to -23 LUFS (ITU-R BS.1770 integrated loudness,
``pyloudnorm``) before any feature, so file gain does not move the result. Features of
:class:`FeatureEmotionEstimator`, each mapped linearly to [-1, 1] between two anchors and clipped:

==================  ============================================  =========================
feature             definition                                    anchors (-> -1, +1)
==================  ============================================  =========================
onset_rate          ``librosa.onset.onset_detect`` events / s     0 /s, 6 /s
tempo               dominant tempo (``metrics.tempo``), BPM       60, 160 (0 if no tempo)
brightness          mean spectral centroid, log2(Hz)              log2(500), log2(3000)
mode                best major minus best minor key score         -0.5, +0.5
                    (``metrics.chroma.key_scores``: Krumhansl
                    correlations of the clip plus its cadence)
==================  ============================================  =========================

``arousal = 0.40 onset_rate + 0.30 tempo + 0.30 brightness``
``valence = 0.60 mode + 0.25 tempo + 0.15 brightness``

Both lie in [-1, 1]. Quadrant agreement is 1 when the signs of valence and arousal (>= 0 counts as
positive) match for both signals, else 0. ``loudness_lufs`` (before normalisation) is reported by
:func:`features` for information only; it has no weight.

**Undefined for non-music.** Emotion is not defined for input without tonal or rhythmic content: a signal
is *tonal* when its median spectral flatness is below :data:`MAX_TONAL_FLATNESS` (white noise ~0.56, pink
~0.2, the benchmark's chorales < 0.002) and *rhythmic* when the autocorrelation of its onset envelope at
lags 0.25-2 s peaks at or above :data:`MIN_PULSE` (noise ~0.12, chorales >= 0.28, a click track 0.84).
Neither (or silence) -> :func:`evaluate` returns nan instead of a confident value, for any estimator.

Any model can replace the proxy through the :class:`EmotionEstimator` protocol, e.g.
:class:`TransformersEmotionEstimator` for a transformers audio model with a 2-value regression head.
"""

from __future__ import annotations

import collections
import math
import os
from typing import Protocol, runtime_checkable

import numpy as np

from vitmusic.metrics.audio_checks import is_silent, resample, validate_audio, validate_pair

ANALYSIS_SR = 22050
#: ``name -> (low anchor, high anchor)`` mapped to -1 and +1.
FEATURE_ANCHORS: dict[str, tuple[float, float]] = {
    "onset_rate": (0.0, 6.0),
    "tempo": (60.0, 160.0),
    "brightness": (math.log2(500.0), math.log2(3000.0)),
    "mode": (-0.5, 0.5),
}
AROUSAL_WEIGHTS = {"onset_rate": 0.40, "tempo": 0.30, "brightness": 0.30}
VALENCE_WEIGHTS = {"mode": 0.60, "tempo": 0.25, "brightness": 0.15}
TARGET_LUFS = -23.0
MAX_TONAL_FLATNESS = 0.1
MIN_PULSE = 0.25

METRIC_NAMES = ("emotion.valence_abs_error", "emotion.arousal_abs_error", "emotion.quadrant_agreement")


@runtime_checkable
class EmotionEstimator(Protocol):
    """Anything mapping a waveform to ``(valence, arousal)``, both on a [-1, 1] scale."""

    def __call__(self, audio: np.ndarray, sample_rate: int) -> tuple[float, float]: ...


def validate(valence: float, arousal: float, name: str = "estimator output") -> tuple[float, float]:
    """Check an estimator's output (two finite floats) and return it.

    Raises:
        ValueError: non-numeric or non-finite values.
    """
    try:
        v, a = float(valence), float(arousal)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be two numbers (valence, arousal): {exc}") from exc
    if not (math.isfinite(v) and math.isfinite(a)):
        raise ValueError(f"{name} must be finite, got valence={v}, arousal={a}")
    return v, a


def _scale(value: float, name: str) -> float:
    lo, hi = FEATURE_ANCHORS[name]
    return float(np.clip(2.0 * (value - lo) / (hi - lo) - 1.0, -1.0, 1.0))


def loudness_normalize(y: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS) -> tuple[np.ndarray, float]:
    """``y`` scaled to ``target_lufs`` integrated loudness (ITU-R BS.1770); returns it and its loudness
    before scaling (-inf for silence, returned unscaled)."""
    import pyloudnorm

    y64 = np.asarray(y, np.float64)
    if y64.size < int(0.4 * sample_rate):  # shorter than one BS.1770 gating block: pad with silence
        y64 = np.pad(y64, (0, int(0.4 * sample_rate) - y64.size))
    lufs = float(pyloudnorm.Meter(sample_rate).integrated_loudness(y64))
    if not math.isfinite(lufs):
        return np.asarray(y, np.float32), -math.inf
    return (np.asarray(y, np.float64) * 10 ** ((target_lufs - lufs) / 20)).astype(np.float32), lufs


def content(audio: np.ndarray, sample_rate: int) -> collections.OrderedDict[str, float]:
    """Musical-content cues: ``flatness`` (median spectral flatness of the sounding frames) and ``pulse``
    (peak onset-envelope autocorrelation at 0.25-2 s lags), plus ``tonal`` / ``rhythmic`` / ``musical``
    (1.0 or 0.0) from :data:`MAX_TONAL_FLATNESS` and :data:`MIN_PULSE`."""
    import librosa

    y = resample(validate_audio(audio, sample_rate), sample_rate, ANALYSIS_SR)
    out: collections.OrderedDict[str, float] = collections.OrderedDict(flatness=math.nan, pulse=math.nan,
                                                                       tonal=0.0, rhythmic=0.0, musical=0.0)
    if is_silent(y):
        return out
    rms = librosa.feature.rms(y=y)[0]
    flat = librosa.feature.spectral_flatness(y=y)[0][: rms.size]
    sounding = rms > 1e-3 * rms.max()
    out["flatness"] = float(np.median(flat[sounding])) if sounding.any() else math.nan
    env = librosa.onset.onset_strength(y=y, sr=ANALYSIS_SR)
    env = env - env.mean()
    ac = np.correlate(env, env, "full")[env.size - 1:]
    lags_s = np.arange(ac.size) * 512 / ANALYSIS_SR
    window = (lags_s >= 0.25) & (lags_s <= 2.0)
    out["pulse"] = float(ac[window].max() / ac[0]) if ac[0] > 0 and window.any() else 0.0
    out["tonal"] = float(out["flatness"] < MAX_TONAL_FLATNESS)
    out["rhythmic"] = float(out["pulse"] >= MIN_PULSE)
    out["musical"] = float(out["tonal"] or out["rhythmic"])
    return out


def is_musical(audio: np.ndarray, sample_rate: int) -> bool:
    """Whether ``audio`` has tonal or rhythmic content (see :func:`content`); False for silence and noise."""
    return bool(content(audio, sample_rate)["musical"])


def features(audio: np.ndarray, sample_rate: int) -> collections.OrderedDict[str, float]:
    """Raw proxy features (units in the module table) of the loudness-normalised signal: onset_rate /s,
    tempo BPM, brightness log2 Hz, mode (key-score difference), and ``loudness_lufs`` before normalisation
    (information only). Silence gives loudness -inf, zero rate/mode and nan tempo/brightness.
    """
    import librosa

    from vitmusic.metrics import chroma, tempo

    y = resample(validate_audio(audio, sample_rate), sample_rate, ANALYSIS_SR)
    y, lufs = loudness_normalize(y, ANALYSIS_SR)
    out: collections.OrderedDict[str, float] = collections.OrderedDict()
    out["loudness_lufs"] = lufs
    if is_silent(y):
        out.update(onset_rate=0.0, tempo=math.nan, brightness=math.nan, mode=0.0)
        return out
    onsets = librosa.onset.onset_detect(y=y, sr=ANALYSIS_SR, units="time")
    out["onset_rate"] = float(len(onsets) / (y.size / ANALYSIS_SR))
    tempi, weight = tempo.estimate_tempi(y, ANALYSIS_SR)
    out["tempo"] = math.nan if math.isnan(weight) else tempo.dominant_tempo(tempi, weight)
    centroid = librosa.feature.spectral_centroid(y=y, sr=ANALYSIS_SR)[0]
    centroid = centroid[centroid > 0]
    out["brightness"] = float(np.log2(np.mean(centroid))) if centroid.size else math.nan
    scores = chroma.key_scores(chroma.chromagram(y, ANALYSIS_SR))
    out["mode"] = 0.0 if np.all(np.isnan(scores)) else float(np.nanmax(scores[0]) - np.nanmax(scores[1]))
    return out


class FeatureEmotionEstimator:
    """PROXY valence/arousal estimator from onset rate, tempo, brightness and mode of loudness-normalised audio.

    Hand-set weights (see the module docstring), not fitted to listener ratings. Undefined features
    (nan tempo/brightness of near-silent audio) contribute 0, the neutral value. Non-musical input
    (:func:`is_musical` False: silence, noise) gives ``(nan, nan)``.
    """

    is_proxy = True

    def __call__(self, audio: np.ndarray, sample_rate: int) -> tuple[float, float]:
        if not is_musical(audio, sample_rate):
            return math.nan, math.nan
        raw = features(audio, sample_rate)
        scaled = {k: (0.0 if math.isnan(v) else _scale(v, k)) for k, v in raw.items() if k in FEATURE_ANCHORS}
        arousal = sum(w * scaled[k] for k, w in AROUSAL_WEIGHTS.items())
        valence = sum(w * scaled[k] for k, w in VALENCE_WEIGHTS.items())
        return float(valence), float(arousal)


class TransformersEmotionEstimator:
    """Adapter for a transformers audio model whose head outputs two regression values.

    Works with any ``AutoModelForAudioClassification`` checkpoint (hub id or local directory) trained with
    ``num_labels=2`` / ``problem_type="regression"``; output ``valence_index`` is valence and
    ``arousal_index`` arousal. Audio is resampled to the feature extractor's ``sampling_rate``. Outputs are
    squashed to [-1, 1] with ``tanh`` when ``squash`` is True (use it when the model's scale is unbounded).

    Args:
        name_or_path: hub id or local directory with the model and its feature extractor.
        revision: hub revision (pinned for reproducibility).
        valence_index, arousal_index: which logits carry valence and arousal.
        squash: apply ``tanh`` to the raw outputs.
    """

    is_proxy = False

    def __init__(
        self,
        name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        valence_index: int = 0,
        arousal_index: int = 1,
        squash: bool = False,
    ) -> None:
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        self.name_or_path = str(name_or_path)
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(self.name_or_path, revision=revision)
        self.model = AutoModelForAudioClassification.from_pretrained(self.name_or_path, revision=revision)
        self.model.eval()
        n_out = int(self.model.config.num_labels)
        if max(valence_index, arousal_index) >= n_out:
            raise ValueError(
                f"model {self.name_or_path} has {n_out} outputs; valence_index={valence_index} and "
                f"arousal_index={arousal_index} must be < {n_out}"
            )
        self.valence_index = valence_index
        self.arousal_index = arousal_index
        self.squash = squash
        self.sample_rate = int(self.feature_extractor.sampling_rate)

    def __call__(self, audio: np.ndarray, sample_rate: int) -> tuple[float, float]:
        import torch

        y = resample(validate_audio(audio, sample_rate), sample_rate, self.sample_rate)
        inputs = self.feature_extractor(y, sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**inputs).logits[0].float()
        if self.squash:
            logits = torch.tanh(logits)
        return float(logits[self.valence_index]), float(logits[self.arousal_index])


PROXY_NOTE = (
    "PROXY: valence/arousal from hand-weighted onset rate, tempo, brightness and mode features of "
    "loudness-normalised audio (Eerola et al. 2009 style), not a model fitted to listener ratings; "
    "undefined for non-musical input"
)


def describe(estimator: EmotionEstimator | None = None) -> dict[str, str]:
    """Strings for reports saying which estimator produced the emotion metrics and whether it is a PROXY.

    Returns:
        ``{"emotion.estimator": name, "emotion.note": ...}``; the note carries :data:`PROXY_NOTE` for the
        default estimator (and any estimator with ``is_proxy = True``).
    """
    estimator = FeatureEmotionEstimator() if estimator is None else estimator
    name = type(estimator).__name__
    if getattr(estimator, "name_or_path", None):
        name += f"({estimator.name_or_path})"  # type: ignore[attr-defined]
    proxy = bool(getattr(estimator, "is_proxy", False))
    note = PROXY_NOTE if proxy else "model-based estimator supplied by the user"
    return {"emotion.estimator": name, "emotion.note": note}


def quadrant(valence: float, arousal: float) -> int:
    """Russell circumplex quadrant 1..4 (1: +V+A, 2: -V+A, 3: -V-A, 4: +V-A); 0 counts as positive."""
    if valence >= 0:
        return 1 if arousal >= 0 else 4
    return 2 if arousal >= 0 else 3


def evaluate(
    ref_audio: np.ndarray,
    est_audio: np.ndarray,
    sample_rate: int,
    estimator: EmotionEstimator | None = None,
) -> collections.OrderedDict[str, float]:
    """Valence/arousal agreement of generated audio with the reference.

    Args:
        ref_audio, est_audio: ``[N]`` / ``[M]`` waveforms at ``sample_rate`` Hz.
        estimator: an :class:`EmotionEstimator`; default :class:`FeatureEmotionEstimator` (a PROXY).

    Returns:
        ``emotion.valence_abs_error`` and ``emotion.arousal_abs_error`` (|difference|, 0..2 on the [-1, 1]
        scale) and ``emotion.quadrant_agreement`` (1.0 same quadrant, else 0.0). Silence and non-musical input
        (noise: :func:`is_musical`) have no emotion, whatever an estimator returns for them: such a
        reference makes all three nan; such an estimate against a musical reference gives nan errors (no
        value to measure) and quadrant agreement 0 (the estimate failed to convey the reference's emotion).
    """
    ref, est, sr = validate_pair(ref_audio, est_audio, sample_rate)
    ref_none = is_silent(ref) or not is_musical(ref, sr)
    if ref_none or is_silent(est) or not is_musical(est, sr):
        agreement = math.nan if ref_none else 0.0
        return collections.OrderedDict(
            [("emotion.valence_abs_error", math.nan), ("emotion.arousal_abs_error", math.nan),
             ("emotion.quadrant_agreement", agreement)]
        )
    estimator = FeatureEmotionEstimator() if estimator is None else estimator
    ref_v, ref_a = validate(*estimator(ref, sr), name="estimator output for ref_audio")
    est_v, est_a = validate(*estimator(est, sr), name="estimator output for est_audio")
    return collections.OrderedDict(
        [
            ("emotion.valence_abs_error", abs(ref_v - est_v)),
            ("emotion.arousal_abs_error", abs(ref_a - est_a)),
            ("emotion.quadrant_agreement", float(quadrant(ref_v, ref_a) == quadrant(est_v, est_a))),
        ]
    )
