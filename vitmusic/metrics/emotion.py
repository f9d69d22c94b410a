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

**Undefined for non-music.** Emotion is not defined for input that is not music; :func:`content` decides
(figures from ``scripts/benchmarks/bench_metric_definitions.py``):

- **in band**: at least :data:`MIN_BAND_SHARE` of the energy lies between 27.5 Hz and 4.2 kHz (the piano's
  range, where the fundamentals and most of the energy of music lie). The random-init tiny MusicGen
  writes almost all its energy at DC and 4/8/16 kHz (share 0.001): codec artifacts, not music.
- **tonal**: median spectral flatness of the sounding frames below :data:`MAX_TONAL_FLATNESS` (white
  noise ~0.56, pink ~0.2, the benchmark's chorales < 0.002) **and** a pitch-class entropy of the chroma
  below :data:`MAX_PC_ENTROPY` bits (uniform over 12 classes is 3.58; a 1 kHz click track and drum kits
  3.53-3.58, melodies and chorales 3.1-3.3);
- **rhythmic**: at least 3 onsets and either an onset-envelope autocorrelation peak at 0.25-2 s lags of
  at least :data:`MIN_PULSE` (noise ~0.1, chorales >= 0.22, a drum beat ~0.8) or, when not noise-like
  (flatness as above), :data:`MIN_ONSET_RATE` onsets per second (a freely played drum solo), and **not a
  click track**: a click track repeats one identical event (timbre variety, the
  mean standard deviation of MFCC 1-12 across onsets, below :data:`MIN_EVENT_VARIETY`: clicks 3.4, real
  drum kits 5.4-11.4, chorales 8.7) at a steady rate (inter-onset-interval coefficient of variation below
  :data:`MAX_CLICK_IOI_CV`: clicks 0.02).

``musical = in band and (tonal or rhythmic)``. Not musical (or silence) -> :func:`evaluate` returns nan
instead of a confident value, for any estimator.

**Mode cue on short windows.** Valence rests on the mode cue, and whether a passage is in a major key or
its relative minor cannot be told reliably from a few seconds without a cadence: on 4 s and 8 s windows of
16 chorales the cue's sign was right for 77-79 % of the major windows but only 38-55 % of the minor ones,
and no confidence threshold fixed it (the wrong minor windows are confidently wrong); on whole pieces with
``|mode| >= 0.1`` it was right 13 of 13 times (3 of 16 pieces below the threshold). The proxy's valence is
therefore **undefined** (nan; arousal stays defined) on clips shorter than :data:`MODE_CONTEXT_S` and
when ``|mode| <`` :data:`MIN_MODE_EVIDENCE` (``scripts/benchmarks/bench_metric_definitions.py``). Even so,
16 s windows cut from the middle of a piece are only right 73 % (major) / 67 % (minor) of the time where
valence is defined (the cue reads the tonic from the cadence, which such windows lack): the proxy's
valence means something for whole pieces, little for excerpts.
Music without
pitch content (rhythmic but not tonal: drums) has no mode either: arousal only, valence nan.

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
from vitmusic.metrics.jit import ensure_jit_cache
from vitmusic.metrics.loudness import TARGET_LUFS, loudness_normalize  # noqa: F401  (re-exported)

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
MAX_TONAL_FLATNESS = 0.1
MIN_PULSE = 0.25
#: musical gate (module docstring): energy share in 27.5 Hz..4.2 kHz, pitch-class entropy (bits), onsets
MIN_BAND_SHARE = 0.5
MUSIC_BAND_HZ = (27.5, 4200.0)
MAX_PC_ENTROPY = 3.45
MIN_ONSET_RATE = 1.0
MIN_EVENT_VARIETY = 4.5
MAX_CLICK_IOI_CV = 0.1
#: valence is undefined on clips shorter than MODE_CONTEXT_S seconds or with |mode| below MIN_MODE_EVIDENCE
MIN_MODE_EVIDENCE = 0.1
MODE_CONTEXT_S = 16.0

METRIC_NAMES = ("emotion.valence_abs_error", "emotion.arousal_abs_error", "emotion.quadrant_agreement")


@runtime_checkable
class EmotionEstimator(Protocol):
    """Anything mapping a waveform to ``(valence, arousal)``, both on a [-1, 1] scale."""

    def __call__(self, audio: np.ndarray, sample_rate: int) -> tuple[float, float]: ...


def validate(valence: float, arousal: float, name: str = "estimator output") -> tuple[float, float]:
    """Check an estimator's output (two floats, each finite or nan for "undefined") and return it.

    Raises:
        ValueError: non-numeric or infinite values.
    """
    try:
        v, a = float(valence), float(arousal)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be two numbers (valence, arousal): {exc}") from exc
    if math.isinf(v) or math.isinf(a):
        raise ValueError(f"{name} must be finite (or nan: undefined), got valence={v}, arousal={a}")
    return v, a


def _scale(value: float, name: str) -> float:
    lo, hi = FEATURE_ANCHORS[name]
    return float(np.clip(2.0 * (value - lo) / (hi - lo) - 1.0, -1.0, 1.0))


def content(audio: np.ndarray, sample_rate: int) -> collections.OrderedDict[str, float]:
    """Musical-content cues of the module docstring's gate.

    Returns:
        ``band_share`` (energy share in :data:`MUSIC_BAND_HZ`), ``flatness`` (median spectral flatness of
        the sounding frames), ``pc_entropy`` (bits, of the chroma summed over time), ``pulse`` (peak
        onset-envelope autocorrelation at 0.25-2 s lags), ``onset_rate`` (/s), ``event_variety`` (mean std
        of MFCC 1-12 across onsets; nan below 3 onsets), ``ioi_cv`` (inter-onset intervals), and the 0/1
        decisions ``in_band``, ``tonal``, ``click_track``, ``rhythmic``, ``musical``. Silence: all cues nan,
        all decisions 0.
    """
    ensure_jit_cache()
    import librosa

    y = resample(validate_audio(audio, sample_rate), sample_rate, ANALYSIS_SR)
    names = ("band_share", "flatness", "pc_entropy", "pulse", "onset_rate", "event_variety", "ioi_cv")
    out: collections.OrderedDict[str, float] = collections.OrderedDict.fromkeys(names, math.nan)
    out.update(dict.fromkeys(("in_band", "tonal", "click_track", "rhythmic", "musical"), 0.0))
    if is_silent(y):
        return out
    power = np.abs(librosa.stft(y)) ** 2
    freqs = librosa.fft_frequencies(sr=ANALYSIS_SR)
    band = (freqs >= MUSIC_BAND_HZ[0]) & (freqs <= MUSIC_BAND_HZ[1])
    out["band_share"] = float(power[band].sum() / max(power.sum(), 1e-30))
    rms = librosa.feature.rms(y=y)[0]
    flat = librosa.feature.spectral_flatness(y=y)[0][: rms.size]
    sounding = rms > 1e-3 * rms.max()
    out["flatness"] = float(np.median(flat[sounding])) if sounding.any() else math.nan
    from vitmusic.metrics import chroma

    hist = chroma.pc_histogram(chroma.chromagram(y, ANALYSIS_SR))
    p = hist[hist > 0]
    out["pc_entropy"] = float(-(p * np.log2(p)).sum()) if p.size else math.nan
    env = librosa.onset.onset_strength(y=y, sr=ANALYSIS_SR)
    centred = env - env.mean()
    ac = np.correlate(centred, centred, "full")[centred.size - 1:]
    lags_s = np.arange(ac.size) * 512 / ANALYSIS_SR
    window = (lags_s >= 0.25) & (lags_s <= 2.0)
    out["pulse"] = float(ac[window].max() / ac[0]) if ac[0] > 0 and window.any() else 0.0
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=ANALYSIS_SR)
    out["onset_rate"] = float(onsets.size / (y.size / ANALYSIS_SR))
    if onsets.size >= 3:
        mfcc = librosa.feature.mfcc(y=y, sr=ANALYSIS_SR, n_mfcc=13)[1:]  # c0 (level) left out
        events = np.stack([mfcc[:, o:o + 3].mean(axis=1) for o in onsets])  # ~70 ms after each onset
        out["event_variety"] = float(events.std(axis=0).mean())
        ioi = np.diff(onsets).astype(np.float64)
        out["ioi_cv"] = float(ioi.std() / ioi.mean())
    noise_like = not out["flatness"] < MAX_TONAL_FLATNESS
    out["in_band"] = float(out["band_share"] >= MIN_BAND_SHARE)
    out["tonal"] = float(not noise_like and out["pc_entropy"] < MAX_PC_ENTROPY)
    out["click_track"] = float(out["event_variety"] < MIN_EVENT_VARIETY and out["ioi_cv"] < MAX_CLICK_IOI_CV)
    out["rhythmic"] = float(onsets.size >= 3 and not out["click_track"] and (
        out["pulse"] >= MIN_PULSE or (not noise_like and out["onset_rate"] >= MIN_ONSET_RATE)))
    out["musical"] = float(out["in_band"] and (out["tonal"] or out["rhythmic"]))
    return out


def is_musical(audio: np.ndarray, sample_rate: int) -> bool:
    """Whether ``audio`` is music by :func:`content`'s gate; False for silence, noise, click tracks and
    out-of-band artifacts."""
    return bool(content(audio, sample_rate)["musical"])


def features(audio: np.ndarray, sample_rate: int) -> collections.OrderedDict[str, float]:
    """Raw proxy features (units in the module table) of the loudness-normalised signal: onset_rate /s,
    tempo BPM, brightness log2 Hz, mode (key-score difference), and ``loudness_lufs`` before normalisation
    (information only). Silence gives loudness -inf, zero rate/mode and nan tempo/brightness.
    """
    ensure_jit_cache()
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


def mode_is_reliable(mode: float, duration_s: float) -> bool:
    """Whether the mode cue may carry valence: on a clip of at least :data:`MODE_CONTEXT_S` with
    ``|mode| >=`` :data:`MIN_MODE_EVIDENCE` (module docstring, "Mode cue on short windows")."""
    return duration_s >= MODE_CONTEXT_S - 1e-6 and abs(mode) >= MIN_MODE_EVIDENCE


class FeatureEmotionEstimator:
    """PROXY valence/arousal estimator from onset rate, tempo, brightness and mode of loudness-normalised audio.

    Hand-set weights (see the module docstring), not fitted to listener ratings. Undefined features
    (nan tempo/brightness of near-silent audio) contribute 0, the neutral value. Non-musical input
    (:func:`is_musical` False: silence, noise, click tracks, artifacts) gives ``(nan, nan)``; non-tonal
    music (drums) or weak mode evidence on a short clip (:func:`mode_is_reliable`) a nan valence.
    """

    is_proxy = True

    def __call__(self, audio: np.ndarray, sample_rate: int) -> tuple[float, float]:
        gate = content(audio, sample_rate)
        if not gate["musical"]:
            return math.nan, math.nan
        raw = features(audio, sample_rate)
        scaled = {k: (0.0 if math.isnan(v) else _scale(v, k)) for k, v in raw.items() if k in FEATURE_ANCHORS}
        arousal = sum(w * scaled[k] for k, w in AROUSAL_WEIGHTS.items())
        valence = sum(w * scaled[k] for k, w in VALENCE_WEIGHTS.items())
        if not gate["tonal"] or not mode_is_reliable(raw["mode"], len(audio) / sample_rate):
            valence = math.nan  # no pitch content (drums) or weak mode evidence: the mode cue is noise
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
        A nan valence or arousal from the estimator (e.g. the proxy's valence on weak mode evidence) makes
        that error and the quadrant agreement nan.
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
    defined = not any(math.isnan(x) for x in (ref_v, ref_a, est_v, est_a))
    return collections.OrderedDict(
        [
            ("emotion.valence_abs_error", abs(ref_v - est_v)),
            ("emotion.arousal_abs_error", abs(ref_a - est_a)),
            ("emotion.quadrant_agreement",
             float(quadrant(ref_v, ref_a) == quadrant(est_v, est_a)) if defined else math.nan),
        ]
    )
