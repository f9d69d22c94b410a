"""Tempo and beat agreement between a reference recording and generated audio (``mir_eval`` style).

**Tempo estimate.** MIREX's tempo protocol describes a piece by two tempi T1 < T2 and the relative
salience of T1; the metrics below also need one *dominant* tempo. Both come from the onset envelope:

1. onset strength envelope (``librosa.onset.onset_strength``, hop 512 at 22050 Hz, i.e. 43 frames/s);
2. its autocorrelation over the **whole clip** (mean removed, normalised at lag 0), for lags whose period
   fits at least twice into the clip and whose tempo lies in 30..320 BPM. Before, the time average of
   librosa's tempogram with its fixed 8.9 s window was used: longer than the 4 s clips of the demo, whose
   windows were then mostly padding (figures: ``scripts/benchmarks/bench_metric_definitions.py``);
3. multiplied by the same log-normal tempo prior librosa's ``feature.tempo`` uses (centre ``start_bpm``
   = 120, one octave std); the strongest local maximum is the first tempo, refined below one lag frame
   by a parabola; the second is the strongest local maximum at least 8 % away from it (both slots hold the
   first when it is weaker than 1 %); the weight is ``s(T1) / (s(T1) + s(T2))``;
4. the **dominant tempo** is the first tempo, except for one metrical-level rule: the envelope folded at
   that tempo's period is checked at the phases that split the period in 2 (then 3) equal parts; when
   each is at least :data:`LEVEL_RATIO` of the fold's peak, every beat is subdivided by equally strong
   events and the faster grid is the tempo (a 180 BPM click track is 180 BPM, not the 90 BPM that the
   prior prefers). Music whose off-beats are clearly weaker than its beats keeps the beat level.

Clips shorter than :data:`MIN_DURATION_S` have no tempo metrics (:class:`MetricUndefinedError`): two
periods of a 40 BPM tempo need 3 s.

**Metrics.** ``tempo.p_score``: ``mir_eval.tempo.detection`` of the generated pair against the
reference pair (8 % tolerance) -- it already tolerates one metrical-level confusion, since a reference
pair usually holds two levels. On the dominant tempi: ``tempo.acc1`` (within 4 %, strict) and
``tempo.acc2`` (within 4 % of 1, 2, 1/2, 3 or 1/3 times the reference: the MIREX Acc1/Acc2
convention), ``tempo.bpm_abs_error`` / ``tempo.bpm_rel_error`` (strict) and
``tempo.bpm_rel_error_octave`` (relative error to the nearest of those five levels).

**Beats.** ``librosa.beat.beat_track`` on each side, at that side's dominant tempo (so the beat level
is the tempo's level). ``beat.f_measure``: ``mir_eval.beat.f_measure`` (70 ms window) -- strict: a
double-tempo version scores 2/3 (half its beats are extra), a half-tempo one 2/3 (half are missing).
``beat.amlt``: ``mir_eval.beat.continuity``'s AMLt, which accepts the reference at double, half or
off-beat levels (17.5 % phase and period tolerance). Decision on trimming: ``mir_eval.beat.evaluate``
drops beats before 5 s (``trim_beats``) because human tappers need time to lock in. Here both beat
sequences come from the same tracker on clips that are often only 4-30 s long, so the default is
``beat_trim_s=0.0`` (no trimming); pass ``beat_trim_s=5.0`` to get the MIREX protocol.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from vitmusic.metrics.audio_checks import is_silent, resample, validate_audio, validate_pair
from vitmusic.metrics.jit import ensure_jit_cache
from vitmusic.metrics.referees import MetricUndefinedError

#: Analysis rate for onset/tempo features (librosa's default, where its tempo defaults are tuned).
ANALYSIS_SR = 22050
HOP_LENGTH = 512
MIN_BPM = 30.0
MAX_BPM = 320.0
#: Relative distance below which two tempogram peaks count as the same tempo (the MIREX tolerance).
SAME_TEMPO_TOL = 0.08
#: Acc1 / Acc2 tolerance (MIREX) and the Acc2 metrical levels (multiples of the reference tempo).
ACC_TOL = 0.04
ACC2_LEVELS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
#: A beat subdivided by events this strong (relative to the beat, onset envelope) makes the faster level the tempo.
LEVEL_RATIO = 0.8
#: Gaussian smoothing (std, onset frames) of the envelope before its autocorrelation.
ENVELOPE_SMOOTHING_FRAMES = 1.0
#: Shortest clip with tempo metrics: two periods of a 40 BPM tempo.
MIN_DURATION_S = 3.0

METRIC_NAMES = ("tempo.p_score", "tempo.acc1", "tempo.acc2", "tempo.bpm_abs_error", "tempo.bpm_rel_error",
                "tempo.bpm_rel_error_octave", "beat.f_measure", "beat.amlt")


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
    ensure_jit_cache()
    import librosa

    y = resample(validate_audio(audio, sample_rate), sample_rate, ANALYSIS_SR)
    if is_silent(y):
        return np.zeros(1 + y.size // HOP_LENGTH)
    return librosa.onset.onset_strength(y=y, sr=ANALYSIS_SR, hop_length=HOP_LENGTH)


def autocorrelation(onset_env: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole-clip autocorrelation of an onset envelope over the tempo lags.

    Returns:
        ``(lag_frames [L], ac [L])`` over the lags (consecutive integers, in onset-envelope frames) whose
        tempo lies in ``[MIN_BPM, MAX_BPM]`` and whose period fits twice into the envelope; ``ac`` is the
        autocorrelation of the mean-removed, lightly smoothed envelope over its value at lag 0, clipped at
        0 (all zeros for a flat envelope).
    """
    ensure_jit_cache()
    import librosa
    from scipy.ndimage import gaussian_filter1d

    env = np.asarray(onset_env, dtype=np.float64)
    # smoothed by one frame (23 ms) so that a period between two lag frames keeps its peak height: the
    # onset spikes of a click track are one frame wide, and the integer lags missed 190 BPM by 25 %
    centred = gaussian_filter1d(env - env.mean(), ENVELOPE_SMOOTHING_FRAMES)
    ac = librosa.autocorrelate(centred)
    ac = np.clip(ac / ac[0], 0.0, None) if ac[0] > 0 else np.zeros_like(ac)
    lags = np.arange(ac.size, dtype=np.float64)
    keep = (lags >= _lag(MAX_BPM)) & (lags <= min(_lag(MIN_BPM), env.size / 2))
    return lags[keep], ac[keep]


def tempo_strength(
    onset_env: np.ndarray, start_bpm: float = 120.0, std_bpm: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Prior-weighted whole-clip autocorrelation (:func:`autocorrelation` times librosa's tempo prior).

    Returns:
        ``(lag_frames [L], strength [L])``; strength is 0 for a flat (silent) envelope.
    """
    lags, ac = autocorrelation(onset_env)
    return lags, ac * _prior(lags, start_bpm, std_bpm)


def _prior(lags: np.ndarray, start_bpm: float, std_bpm: float = 1.0) -> np.ndarray:
    # Same log-normal prior shape as librosa.feature.tempo's default (mode at start_bpm, std in octaves).
    return np.exp(-0.5 * ((np.log2(_bpm(lags)) - np.log2(start_bpm)) / std_bpm) ** 2)


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
    return tempo_estimate(onset_env, start_bpm)[1:]


def tempo_estimate(onset_env: np.ndarray, start_bpm: float = 120.0) -> tuple[float, np.ndarray, float]:
    """Dominant tempo and the MIREX pair of an onset envelope (module docstring, steps 2-4).

    Returns:
        ``(dominant_bpm, tempi_bpm [2] sorted ascending, weight of tempi_bpm[0])``; all nan for an
        envelope with no periodicity (silence, a single event, too short for any lag).
    """
    nan2 = np.array([math.nan, math.nan])
    env = np.asarray(onset_env, dtype=np.float64)
    if env.size < 8 or not np.any(env > 0):
        return math.nan, nan2, math.nan
    lags, raw = autocorrelation(env)
    if lags.size < 3:
        return math.nan, nan2, math.nan
    strength = raw * _prior(lags, start_bpm)
    peaks = _peaks(strength)
    if peaks.size == 0 or strength[peaks[0]] <= 0:
        return math.nan, nan2, math.nan
    t1 = _refined_bpm(lags, strength, peaks[0])
    s1 = strength[peaks[0]]
    dominant = _metrical_level(env, t1)
    second = [p for p in peaks[1:] if abs(_refined_bpm(lags, strength, p) - t1) / t1 > SAME_TEMPO_TOL]
    if not second or strength[second[0]] <= 0.01 * s1:
        # A single periodicity (other peaks are numerical noise): both slots hold it, so either estimate
        # matching it scores fully.
        return dominant, np.array([t1, t1]), 1.0
    t2, s2 = _refined_bpm(lags, strength, second[0]), strength[second[0]]
    tempi = np.array([t1, t2])
    weights = np.array([s1, s2])
    order = np.argsort(tempi)
    return dominant, tempi[order], float(weights[order][0] / weights.sum())


def _metrical_level(onset_env: np.ndarray, bpm: float) -> float:
    """``k * bpm`` (k = 2, then 3) when the envelope folded at the period of ``bpm`` is as strong (at least
    :data:`LEVEL_RATIO` of its peak) at every one of the ``k - 1`` phases that split the period evenly:
    every beat is then subdivided by equally strong events and the faster grid is the tempo. Else ``bpm``.
    """
    from scipy.ndimage import gaussian_filter1d

    env = gaussian_filter1d(np.asarray(onset_env, dtype=np.float64), ENVELOPE_SMOOTHING_FRAMES)
    period = float(_lag(bpm))
    n_periods = int(env.size // period)
    if n_periods < 2:
        return bpm
    t = np.arange(n_periods)[:, None] * period

    def fold(phase: np.ndarray) -> np.ndarray:  # mean envelope at phase + m * period, for each phase
        return np.interp(t + phase[None, :], np.arange(env.size), env).mean(axis=0)

    phases = np.arange(0.0, period, 0.25)
    profile = fold(phases)
    top = float(profile.max())
    if top <= 0:
        return bpm
    peak = phases[int(np.argmax(profile))]
    for k in (2, 3):
        if k * bpm > MAX_BPM:
            break
        # each subdivision's strongest value within one frame of its nominal phase (tempo drift, rounding)
        subs = [fold((peak + j * period / k + np.arange(-1.0, 1.01, 0.25)) % period).max() for j in range(1, k)]
        if min(subs) >= LEVEL_RATIO * top:
            return k * bpm
    return bpm


def dominant_tempo(tempi: np.ndarray, weight: float) -> float:
    """The tempo with the larger weight of a MIREX pair (BPM). (:func:`tempo_estimate` also applies the
    metrical-level rule.)"""
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


def accuracy(reference_bpm: float, estimated_bpm: float, levels: tuple[float, ...] = (1.0,),
             tol: float = ACC_TOL) -> float:
    """MIREX tempo accuracy: 1.0 when ``estimated_bpm`` is within ``tol`` (relative) of ``reference_bpm``
    times one of ``levels`` (Acc1: ``(1,)``; Acc2: :data:`ACC2_LEVELS`), else 0.0. nan without a reference
    tempo; 0.0 without an estimate (a failed detection)."""
    if math.isnan(reference_bpm):
        return math.nan
    if math.isnan(estimated_bpm):
        return 0.0
    return float(any(abs(estimated_bpm - k * reference_bpm) <= tol * k * reference_bpm for k in levels))


def relative_error(reference_bpm: float, estimated_bpm: float, levels: tuple[float, ...] = (1.0,)) -> float:
    """``min_k |estimated - k * reference| / (k * reference)`` over the metrical ``levels`` (nan if either is
    nan)."""
    if math.isnan(reference_bpm) or math.isnan(estimated_bpm):
        return math.nan
    return float(min(abs(estimated_bpm - k * reference_bpm) / (k * reference_bpm) for k in levels))


def beat_times(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Beat times in seconds from ``librosa.beat.beat_track`` at the dominant tempo (``[B]``, possibly empty)."""
    return beats_from_envelope(onset_envelope(audio, sample_rate))


def beats_from_envelope(onset_env: np.ndarray, bpm: float | None = None) -> np.ndarray:
    """Beat times in seconds from a precomputed onset envelope, tracked at ``bpm`` (default: the envelope's
    dominant tempo, :func:`tempo_estimate`; librosa's own estimate when it has none)."""
    ensure_jit_cache()
    import librosa

    if not np.any(onset_env > 0):
        return np.zeros(0)
    if bpm is None:
        bpm = tempo_estimate(onset_env)[0]
    _, beats = librosa.beat.beat_track(
        onset_envelope=onset_env, sr=ANALYSIS_SR, hop_length=HOP_LENGTH, units="time",
        bpm=None if math.isnan(bpm) else float(bpm),
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


def beat_amlt(reference_beats: np.ndarray, estimated_beats: np.ndarray, trim_s: float = 0.0) -> float:
    """AMLt of ``mir_eval.beat.continuity`` (any metrical level, continuity not required) after dropping
    beats before ``trim_s``; nan if the reference has fewer than 2 beats, 0 if the estimate has fewer."""
    import warnings

    import mir_eval

    ref = np.asarray(reference_beats, dtype=np.float64)
    est = np.asarray(estimated_beats, dtype=np.float64)
    if trim_s > 0:
        ref = mir_eval.beat.trim_beats(ref, min_beat_time=trim_s)
        est = mir_eval.beat.trim_beats(est, min_beat_time=trim_s)
    if ref.size < 2:
        return math.nan
    if est.size < 2:
        return 0.0
    mir_eval.beat.validate(ref, est)
    with warnings.catch_warnings():  # mir_eval warns about beats past 30 000 s only; none here
        warnings.simplefilter("ignore", UserWarning)
        return float(mir_eval.beat.continuity(ref, est)[3])


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
        The metrics of :func:`evaluate_envelopes`.

    Raises:
        MetricUndefinedError: a signal shorter than :data:`MIN_DURATION_S`.
    """
    ref, est, sr = validate_pair(ref_audio, est_audio, sample_rate)
    ref_env, est_env = onset_envelope(ref, sr), onset_envelope(est, sr)
    return evaluate_envelopes(
        ref_env, est_env, beats_from_envelope(ref_env), beats_from_envelope(est_env),
        tol=tol, beat_trim_s=beat_trim_s,
    )


def check_duration(onset_env: np.ndarray, name: str = "audio") -> None:
    """Raise :class:`MetricUndefinedError` when an onset envelope covers less than :data:`MIN_DURATION_S`."""
    seconds = np.asarray(onset_env).size * HOP_LENGTH / ANALYSIS_SR
    if seconds < MIN_DURATION_S - 0.05:
        raise MetricUndefinedError(f"tempo and beats need >= {MIN_DURATION_S:g} s (two periods of a 40 BPM "
                                   f"tempo); the {name} is {seconds:.2f} s")


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
        ``tempo.p_score``, ``tempo.acc1``, ``tempo.acc2`` (0..1), ``tempo.bpm_abs_error`` (BPM),
        ``tempo.bpm_rel_error``, ``tempo.bpm_rel_error_octave`` (fractions of the reference tempo),
        ``beat.f_measure``, ``beat.amlt`` (0..1). Without a reference tempo/beats everything is nan; a
        reference with a tempo against an estimate without one (silence) gives P-score, accuracies and
        beat scores 0 and BPM errors nan.

    Raises:
        MetricUndefinedError: an envelope shorter than :data:`MIN_DURATION_S`.
    """
    check_duration(ref_env, "reference")
    check_duration(est_env, "generated audio")
    ref_bpm, ref_tempi, ref_weight = tempo_estimate(np.asarray(ref_env, dtype=np.float64))
    est_bpm, est_tempi, est_weight = tempo_estimate(np.asarray(est_env, dtype=np.float64))
    scores: collections.OrderedDict[str, float] = collections.OrderedDict()
    if not math.isnan(ref_weight) and math.isnan(est_weight):
        # The reference has a tempo and the estimate has none: a failed detection, not an undefined one.
        scores["tempo.p_score"] = 0.0
    else:
        scores["tempo.p_score"] = p_score(ref_tempi, ref_weight, est_tempi, tol=tol)
    scores["tempo.acc1"] = accuracy(ref_bpm, est_bpm)
    scores["tempo.acc2"] = accuracy(ref_bpm, est_bpm, ACC2_LEVELS)
    rel_err = relative_error(ref_bpm, est_bpm)
    scores["tempo.bpm_abs_error"] = rel_err * ref_bpm
    scores["tempo.bpm_rel_error"] = rel_err
    scores["tempo.bpm_rel_error_octave"] = relative_error(ref_bpm, est_bpm, ACC2_LEVELS)
    scores["beat.f_measure"] = beat_f_measure(ref_beats_s, est_beats_s, trim_s=beat_trim_s)
    scores["beat.amlt"] = beat_amlt(ref_beats_s, est_beats_s, trim_s=beat_trim_s)
    return scores
