"""Tempo and beat agreement between a reference recording and generated audio (``mir_eval`` style).

How the two reference tempi and their weight are derived (MIREX tempo protocol needs two tempi T1 < T2
and the relative salience of T1):

1. onset strength envelope (``librosa.onset.onset_strength``, hop 512 at 22050 Hz, i.e. 43 frames/s);
2. autocorrelation tempogram (``librosa.feature.tempogram``, 8 s window) averaged over time;
3. multiplied by the same log-normal tempo prior librosa's ``feature.tempo`` uses
   (centre ``start_bpm``=120, one octave std), restricted to 30..320 BPM;
4. the strongest local maximum is the dominant tempo, refined below one lag frame by a parabola through
   the peak (librosa's ``feature.tempo`` takes the lag-quantised argmax of ``log1p(1e6 * ac) +
   log_prior``, which agrees on clear material but flattens saliences too much to serve as weights);
   the second tempo is the strongest local maximum at least 8 % away from it (ignored, i.e. both tempi
   equal with weight 1, when weaker than 1 % of the first);
5. tempi are ordered ``T1 < T2`` and the weight is ``s(T1) / (s(T1) + s(T2))`` with ``s`` the prior-
   weighted tempogram strength.

``mir_eval.tempo.detection`` then gives the P-score of the generated audio's two tempi against those of
the reference (8 % tolerance). BPM errors compare the dominant tempi.

Beat F-measure: ``librosa.beat.beat_track`` on both signals, ``mir_eval.beat.f_measure`` (70 ms window).
Decision on trimming: ``mir_eval.beat.evaluate`` drops beats before 5 s (``trim_beats``) because human
tappers need time to lock in. Here both beat sequences come from the same tracker on clips that are often
only 10-30 s long, so the default is ``beat_trim_s=0.0`` (no trimming); pass ``beat_trim_s=5.0`` to get
the MIREX protocol.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from vitmusic.metrics.audio_checks import is_silent, resample, validate_audio, validate_pair

#: Analysis rate for onset/tempo features (librosa's default, where its tempo defaults are tuned).
ANALYSIS_SR = 22050
HOP_LENGTH = 512
MIN_BPM = 30.0
MAX_BPM = 320.0
#: Relative distance below which two tempogram peaks count as the same tempo (the MIREX tolerance).
SAME_TEMPO_TOL = 0.08

METRIC_NAMES = ("tempo.p_score", "tempo.bpm_abs_error", "tempo.bpm_rel_error", "beat.f_measure")


def validate(reference_tempi: np.ndarray, reference_weight: float, estimated_tempi: np.ndarray) -> None:
    """Check MIREX-style tempo inputs (two non-negative finite tempi each, weight in [0, 1]).

    Raises:
        ValueError: wrong size, negative/non-finite tempo or weight out of range.
    """
    for name, tempi in (("reference_tempi", reference_tempi), ("estimated_tempi", estimated_tempi)):
        t = np.asarray(tempi, dtype=np.float64)
        if t.shape != (2,):
            raise ValueError(f"{name} must hold exactly two tempi, got shape {t.shape}")
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ValueError(f"{name} must be finite and >= 0 BPM, got {t.tolist()}")
    if not (0.0 <= float(reference_weight) <= 1.0):
        raise ValueError(f"reference_weight must be in [0, 1], got {reference_weight}")


def onset_envelope(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset strength envelope ``[F]`` at ``ANALYSIS_SR / HOP_LENGTH`` frames per second.

    All zeros for (near-)silent audio (``audio_checks.is_silent``), so that the onsets of a noise floor
    never count as a tempo or beats, on either side.
    """
    import librosa

    y = resample(validate_audio(audio, sample_rate), sample_rate, ANALYSIS_SR)
    if is_silent(y):
        return np.zeros(1 + y.size // HOP_LENGTH)
    return librosa.onset.onset_strength(y=y, sr=ANALYSIS_SR, hop_length=HOP_LENGTH)


def tempo_strength(
    onset_env: np.ndarray, start_bpm: float = 120.0, std_bpm: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Prior-weighted, time-averaged autocorrelation tempogram.

    Returns:
        ``(lag_frames [L], strength [L])`` over the lags (in onset-envelope frames, consecutive integers)
        whose tempo lies in ``[MIN_BPM, MAX_BPM]``; strength is 0 for a flat (silent) envelope.
    """
    import librosa

    tg = librosa.feature.tempogram(onset_envelope=onset_env, sr=ANALYSIS_SR, hop_length=HOP_LENGTH)
    lags = np.arange(tg.shape[0], dtype=np.float64)
    mean_ac = np.nan_to_num(tg.mean(axis=1))
    keep = (lags >= _lag(MAX_BPM)) & (lags <= _lag(MIN_BPM))
    lags, mean_ac = lags[keep], mean_ac[keep]
    # Same log-normal prior shape as librosa.feature.tempo's default (mode at start_bpm, std in octaves).
    log_prior = -0.5 * ((np.log2(_bpm(lags)) - np.log2(start_bpm)) / std_bpm) ** 2
    strength = np.clip(mean_ac, 0.0, None) * np.exp(log_prior)
    return lags, strength


def _bpm(lag_frames: np.ndarray | float) -> np.ndarray | float:
    return 60.0 * ANALYSIS_SR / (HOP_LENGTH * np.asarray(lag_frames, dtype=np.float64))


def _lag(bpm: float) -> float:
    return 60.0 * ANALYSIS_SR / (HOP_LENGTH * bpm)


def _peaks(strength: np.ndarray) -> np.ndarray:
    inner = np.flatnonzero((strength[1:-1] > strength[:-2]) & (strength[1:-1] >= strength[2:])) + 1
    return inner[np.argsort(strength[inner])[::-1]]


def _refined_bpm(lags: np.ndarray, strength: np.ndarray, i: int) -> float:
    # One lag frame is ~2 % of the tempo near 120 BPM; a parabola through the peak and its neighbours
    # recovers the sub-frame period.
    a, b, c = strength[i - 1], strength[i], strength[i + 1]
    denom = a - 2 * b + c
    delta = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float(_bpm(lags[i] + float(np.clip(delta, -0.5, 0.5))))


def estimate_tempi(audio: np.ndarray, sample_rate: int, start_bpm: float = 120.0) -> tuple[np.ndarray, float]:
    """Two strongest tempi and the relative weight of the slower one (see the module docstring).

    Returns:
        ``(tempi_bpm [2] sorted ascending, weight of tempi_bpm[0])``; ``([nan, nan], nan)`` for audio with
        no periodicity (silence, a single event).
    """
    env = onset_envelope(audio, sample_rate)
    return tempi_from_envelope(env, start_bpm=start_bpm)


def tempi_from_envelope(onset_env: np.ndarray, start_bpm: float = 120.0) -> tuple[np.ndarray, float]:
    """Like :func:`estimate_tempi` but from a precomputed onset envelope."""
    nan2 = np.array([math.nan, math.nan])
    if onset_env.size < 4 or not np.any(onset_env > 0):
        return nan2, math.nan
    lags, strength = tempo_strength(onset_env, start_bpm=start_bpm)
    peaks = _peaks(strength)
    if peaks.size == 0 or strength[peaks[0]] <= 0:
        return nan2, math.nan
    t1 = _refined_bpm(lags, strength, peaks[0])
    s1 = strength[peaks[0]]
    second = [p for p in peaks[1:] if abs(_refined_bpm(lags, strength, p) - t1) / t1 > SAME_TEMPO_TOL]
    if not second or strength[second[0]] <= 0.01 * s1:
        # A single periodicity (other peaks are numerical noise): both slots hold it, so either estimate matching it scores fully.
        return np.array([t1, t1]), 1.0
    t2, s2 = _refined_bpm(lags, strength, second[0]), strength[second[0]]
    tempi = np.array([t1, t2])
    weights = np.array([s1, s2])
    order = np.argsort(tempi)
    return tempi[order], float(weights[order][0] / weights.sum())


def dominant_tempo(tempi: np.ndarray, weight: float) -> float:
    """The tempo with the larger weight of a MIREX pair (BPM)."""
    return float(tempi[0] if weight >= 0.5 else tempi[1])


def p_score(
    reference_tempi: np.ndarray, reference_weight: float, estimated_tempi: np.ndarray, tol: float = 0.08
) -> float:
    """MIREX tempo P-score (``mir_eval.tempo.detection``); nan when either side has no tempo."""
    import mir_eval

    ref = np.asarray(reference_tempi, dtype=np.float64)
    est = np.asarray(estimated_tempi, dtype=np.float64)
    if np.any(np.isnan(ref)) or np.any(np.isnan(est)) or math.isnan(reference_weight):
        return math.nan
    validate(ref, reference_weight, est)
    score, _, _ = mir_eval.tempo.detection(ref, float(reference_weight), est, tol=tol)
    return float(score)


def beat_times(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Beat times in seconds from ``librosa.beat.beat_track`` (``[B]``, possibly empty)."""
    return beats_from_envelope(onset_envelope(audio, sample_rate))


def beats_from_envelope(onset_env: np.ndarray) -> np.ndarray:
    """Beat times in seconds from a precomputed onset envelope."""
    import librosa

    if not np.any(onset_env > 0):
        return np.zeros(0)
    _, beats = librosa.beat.beat_track(
        onset_envelope=onset_env, sr=ANALYSIS_SR, hop_length=HOP_LENGTH, units="time"
    )
    return np.asarray(beats, dtype=np.float64)


def beat_f_measure(
    reference_beats: np.ndarray, estimated_beats: np.ndarray, trim_s: float = 0.0, window_s: float = 0.07
) -> float:
    """``mir_eval.beat.f_measure`` after dropping beats before ``trim_s``; nan if the reference has none."""
    import mir_eval

    ref = np.asarray(reference_beats, dtype=np.float64)
    est = np.asarray(estimated_beats, dtype=np.float64)
    if trim_s > 0:
        ref = mir_eval.beat.trim_beats(ref, min_beat_time=trim_s)
        est = mir_eval.beat.trim_beats(est, min_beat_time=trim_s)
    if ref.size == 0:
        return math.nan
    if est.size == 0:
        return 0.0
    mir_eval.beat.validate(ref, est)
    return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=window_s))


def evaluate(
    ref_audio: np.ndarray,
    est_audio: np.ndarray,
    sample_rate: int,
    *,
    tol: float = 0.08,
    beat_trim_s: float = 0.0,
) -> collections.OrderedDict[str, float]:
    """Tempo and beat agreement of ``est_audio`` with ``ref_audio``.

    Args:
        ref_audio: ``[N]`` (or ``[C, N]``) reference waveform.
        est_audio: ``[M]`` (or ``[C, M]``) generated waveform, same sample rate.
        sample_rate: Hz.
        tol: P-score tolerance (relative, MIREX uses 0.08).
        beat_trim_s: ignore beats before this time (0 = keep all; see module docstring).

    Returns:
        The four metrics of :func:`evaluate_envelopes`.
    """
    ref, est, sr = validate_pair(ref_audio, est_audio, sample_rate)
    ref_env, est_env = onset_envelope(ref, sr), onset_envelope(est, sr)
    return evaluate_envelopes(
        ref_env, est_env, beats_from_envelope(ref_env), beats_from_envelope(est_env),
        tol=tol, beat_trim_s=beat_trim_s,
    )


def evaluate_envelopes(
    ref_env: np.ndarray,
    est_env: np.ndarray,
    ref_beats_s: np.ndarray,
    est_beats_s: np.ndarray,
    *,
    tol: float = 0.08,
    beat_trim_s: float = 0.0,
) -> collections.OrderedDict[str, float]:
    """:func:`evaluate` from precomputed onset envelopes and beats (a caller that also plots the beats
    tracks them once).

    Args:
        ref_env, est_env: ``[F]`` envelopes from :func:`onset_envelope`.
        ref_beats_s, est_beats_s: ``[B]`` beat times from :func:`beats_from_envelope` of those envelopes.
        tol, beat_trim_s: as in :func:`evaluate`.

    Returns:
        ``tempo.p_score`` (0..1), ``tempo.bpm_abs_error`` (BPM), ``tempo.bpm_rel_error`` (fraction of the
        reference tempo), ``beat.f_measure`` (0..1). Without a reference tempo/beats everything is nan;
        a reference with a tempo against an estimate without one (silence) gives P-score 0, BPM errors
        nan and beat F-measure 0.
    """
    ref_tempi, ref_weight = tempi_from_envelope(np.asarray(ref_env, dtype=np.float64))
    est_tempi, est_weight = tempi_from_envelope(np.asarray(est_env, dtype=np.float64))
    scores: collections.OrderedDict[str, float] = collections.OrderedDict()
    if not math.isnan(ref_weight) and math.isnan(est_weight):
        # The reference has a tempo and the estimate has none: a failed detection, not an undefined one.
        scores["tempo.p_score"] = 0.0
    else:
        scores["tempo.p_score"] = p_score(ref_tempi, ref_weight, est_tempi, tol=tol)
    if math.isnan(ref_weight) or math.isnan(est_weight):
        abs_err = math.nan
        rel_err = math.nan
    else:
        ref_bpm = dominant_tempo(ref_tempi, ref_weight)
        abs_err = abs(dominant_tempo(est_tempi, est_weight) - ref_bpm)
        rel_err = abs_err / ref_bpm
    scores["tempo.bpm_abs_error"] = float(abs_err)
    scores["tempo.bpm_rel_error"] = float(rel_err)
    scores["beat.f_measure"] = beat_f_measure(ref_beats_s, est_beats_s, trim_s=beat_trim_s)
    return scores
