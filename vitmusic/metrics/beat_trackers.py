"""Beat and downbeat referees: one interface, three trackers (``--beat-referee``).

Every tracker maps mono audio to ``(beats_s [B], downbeats_s [D] or None)``: ``None`` when it has no notion of
a bar (librosa). Licences and installation: :mod:`vitmusic.metrics.referee_packages`.

- ``beatnet``: BeatNet 1.1.3 (Heydari et al. 2021; CC BY 4.0) in its offline mode: its CRNN (model
  :data:`BEATNET_MODEL`, trained with GTZAN held out) gives beat and downbeat activations at 50 frames/s from
  a log-filtered spectrogram of 22.05 kHz audio, and madmom's dynamic Bayesian network decodes them
  (2, 3 or 4 beats per bar). BeatNet keeps its LSTM state between calls; it is reset before every signal so
  that a clip's beats do not depend on the clip analysed before it.
- ``madmom``: madmom's RNN downbeat tracker (Böck, Krebs & Widmer 2016; models CC BY-NC-SA) and its DBN
  (3 or 4 beats per bar, 100 frames/s) at 44.1 kHz.
- ``librosa``: ``librosa.beat.beat_track`` on the onset envelope of :mod:`vitmusic.metrics.tempo` (the
  tracker of the ``tempo`` metrics); no downbeats.

Input is loudness-normalised to :data:`TARGET_LUFS` first: the trained trackers read log-magnitude spectra
of mastered music, so a quiet rendering would otherwise look like a different piece.
A signal shorter than :data:`MIN_DURATION_S` is refused (:class:`MetricUndefinedError`): the decoders need a
few beats to settle on a tempo.
"""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np

from vitmusic.metrics import referee_packages as packages
from vitmusic.metrics.audio_checks import is_silent, resample, validate_audio
from vitmusic.metrics.referees import MetricUndefinedError

__all__ = ["BEAT_REFEREES", "BEATNET_MODEL", "MIN_DURATION_S", "BeatTracker", "beat_tracker", "loudness_normalized"]

BEAT_REFEREES: tuple[str, ...] = ("beatnet", "madmom", "librosa")
#: BeatNet's CRNN: 1 = GTZAN held out in training (2: Ballroom, 3: Rock Corpus); chosen on the benchmark
BEATNET_MODEL = 1
#: shortest signal a tracker is asked about (s)
MIN_DURATION_S = 4.0
#: loudness every trained referee sees (LUFS; streaming services normalise mastered music to about this)
TARGET_LUFS = -14.0


def loudness_normalized(audio: np.ndarray, sample_rate: int, min_duration_s: float = 0.0) -> np.ndarray:
    """``audio`` [N] validated, mono, scaled to :data:`TARGET_LUFS` (ITU-R BS.1770; silence stays silent)."""
    from vitmusic.metrics.emotion import loudness_normalize

    y = validate_audio(audio, sample_rate, min_duration_s=min_duration_s)
    return loudness_normalize(y, sample_rate, TARGET_LUFS)[0]


class BeatTracker(Protocol):
    name: str

    def describe(self) -> str:
        """Name, version, settings and licence in one line (recorded with every result)."""
        ...

    def track(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(beats_s [B], downbeats_s [D] or None)`` of mono ``audio`` at ``sample_rate``."""
        ...


def _prepare(audio: np.ndarray, sample_rate: int, rate: int, name: str) -> np.ndarray | None:
    """Validated, loudness-normalised audio at ``rate``; None for silence (no beats)."""
    y = validate_audio(audio, sample_rate, min_duration_s=0.0)
    if y.size < MIN_DURATION_S * sample_rate - 1:
        raise MetricUndefinedError(f"beat referee {name} needs at least {MIN_DURATION_S:g} s of audio "
                                   f"(got {y.size / sample_rate:.2f} s)")
    if is_silent(y):
        return None
    return resample(loudness_normalized(y, sample_rate), sample_rate, rate)


class LibrosaTracker:
    """librosa's dynamic-programming beat tracker (Ellis 2007) on the ``tempo`` metrics' onset envelope."""

    name = "librosa"

    def describe(self) -> str:
        from vitmusic.metrics.jit import ensure_jit_cache

        ensure_jit_cache()
        import librosa

        return packages.referee_info("librosa").label(librosa.__version__, "beat_track, no downbeats")

    def track(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, None]:
        from vitmusic.metrics import tempo

        y = _prepare(audio, sample_rate, tempo.ANALYSIS_SR, self.name)
        if y is None:
            return np.zeros(0), None
        return tempo.beat_times(y, tempo.ANALYSIS_SR), None


class BeatNetTracker:
    """BeatNet's offline CRNN + DBN (see the module docstring)."""

    name = "beatnet"
    sample_rate = 22050

    def __init__(self, model: int = BEATNET_MODEL) -> None:
        import torch

        cls = packages.import_beatnet()
        self.model_index = int(model)
        # BeatNet loads its bundled state dict with torch.load (weights only by default in torch >= 2.6)
        self.tracker = cls(self.model_index, mode="offline", inference_model="DBN", plot=[], thread=False)
        self._torch = torch

    def describe(self) -> str:
        return packages.referee_info("beatnet").label(packages.beatnet_version(), f"model {self.model_index}, DBN")

    def activations(self, audio_22k: np.ndarray) -> np.ndarray:
        """Beat and downbeat activations ``[T, 2]`` at 50 frames/s of 22.05 kHz audio."""
        bda = self.tracker.model
        bda.hidden = self._torch.zeros_like(bda.hidden)  # a fresh LSTM state per signal
        bda.cell = self._torch.zeros_like(bda.cell)
        return self.tracker.activation_extractor_online(np.asarray(audio_22k, np.float32))

    def track(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        y = _prepare(audio, sample_rate, self.sample_rate, self.name)
        if y is None:
            return np.zeros(0), np.zeros(0)
        out = np.asarray(self.tracker.estimator(self.activations(y)), dtype=np.float64).reshape(-1, 2)
        return out[:, 0].copy(), out[out[:, 1] == 1, 0].copy()


class MadmomTracker:
    """madmom's RNN downbeat tracker + DBN (see the module docstring)."""

    name = "madmom"
    sample_rate = 44100

    def __init__(self) -> None:
        packages.import_madmom()
        from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

        self.rnn = RNNDownBeatProcessor()
        self.dbn = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)

    def describe(self) -> str:
        return packages.referee_info("madmom").label(packages.madmom_version(), "RNNDownBeatProcessor + DBN")

    def track(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        y = _prepare(audio, sample_rate, self.sample_rate, self.name)
        if y is None:
            return np.zeros(0), np.zeros(0)
        out = np.asarray(self.dbn(self.rnn(y.astype(np.float32))), dtype=np.float64).reshape(-1, 2)
        return out[:, 0].copy(), out[out[:, 1] == 1, 0].copy()


_TRACKERS = {"beatnet": BeatNetTracker, "madmom": MadmomTracker, "librosa": LibrosaTracker}


@functools.lru_cache(maxsize=len(_TRACKERS))
def beat_tracker(name: str) -> BeatTracker:
    """The shared tracker called ``name`` (built once: BeatNet's import costs ~8 s, madmom's models ~1 s).

    Raises:
        ValueError: unknown name.
        RefereeUnavailableError: its package is not installed (the message says how to install it).
    """
    if name not in _TRACKERS:
        raise ValueError(f"unknown beat referee {name!r}; choose one of {', '.join(BEAT_REFEREES)}")
    return _TRACKERS[name]()
