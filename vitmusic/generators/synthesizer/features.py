"""Features of the diffusion synthesizer: normalised log-mel frames, piano-roll conditioning, harmonic mel
templates, and the mel -> waveform vocoders.

Features: magnitude mel spectrogram (``center=True`` frames, frame ``i`` centred on sample ``i * hop``), in
dB, clipped to ``[db_min, db_max]`` and mapped linearly to ``[-1, 1]``. The default vocoder is Griffin-Lim
(librosa's ``mel_to_stft`` + ``griffinlim``, the two halves of ``feature.inverse.mel_to_audio``, called
separately to seed the random initial phases); any callable ``(mel [M, T], num_samples) -> wav`` plugs in.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vitmusic.config import DiffusionConfig
from vitmusic.generators.midi.transcription import notes_to_roll
from vitmusic.metrics.jit import ensure_jit_cache

__all__ = [
    "GriffinLimVocoder",
    "Vocoder",
    "harmonic_templates",
    "log_mel",
    "mel_from_log",
    "num_frames",
    "piano_roll",
]

NUM_HARMONICS = 16


# ---------------------------------------------------------------------------------------------- features


def num_frames(num_samples: int, hop_length: int) -> int:
    """Mel frames of ``num_samples`` samples (``center=True``: one frame per hop, plus the last)."""
    return 1 + int(num_samples) // int(hop_length)


def _mel_kwargs(cfg: DiffusionConfig) -> dict[str, Any]:
    return {"sr": cfg.sample_rate, "n_fft": cfg.n_fft, "fmin": cfg.fmin_hz, "fmax": cfg.fmax_hz}


def log_mel(wav: np.ndarray, cfg: DiffusionConfig) -> np.ndarray:
    """Normalised log-mel frames of a mono waveform at ``cfg.sample_rate``.

    Args:
        wav: ``[N]`` float waveform.
        cfg: feature settings.

    Returns:
        float32 ``[n_mels, num_frames(N, hop_length)]`` in ``[-1, 1]`` (-1 = silence, ``db_min`` or below).
    """
    ensure_jit_cache()
    import librosa

    y = np.asarray(wav, dtype=np.float32).reshape(-1)
    mel = librosa.feature.melspectrogram(
        y=y, hop_length=cfg.hop_length, n_mels=cfg.n_mels, power=1.0, **_mel_kwargs(cfg)
    )
    db = 20.0 * np.log10(np.maximum(mel, 1e-10))
    x = 2.0 * (np.clip(db, cfg.db_min, cfg.db_max) - cfg.db_min) / (cfg.db_max - cfg.db_min) - 1.0
    return x[:, : num_frames(len(y), cfg.hop_length)].astype(np.float32)


def mel_from_log(x: np.ndarray, cfg: DiffusionConfig) -> np.ndarray:
    """Inverse of :func:`log_mel`'s mapping: magnitude mel ``[M, T]`` (the floor maps to exact silence)."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    db = cfg.db_min + (x + 1.0) * 0.5 * (cfg.db_max - cfg.db_min)
    return np.where(x <= -1.0 + 1e-6, 0.0, 10.0 ** (db / 20.0)).astype(np.float32)


def piano_roll(notes: np.ndarray, frames: int, cfg: DiffusionConfig, *, carried_over: bool = False) -> np.ndarray:
    """The conditioning roll of one part: frame rows then onset rows, float32 ``[2 K, frames]``.

    Args:
        notes: ``[N, 3]`` (onset_s, f0_hz, duration_s), times relative to frame 0.
        frames: ``T`` mel frames.
        cfg: pitch axis (``min_midi``, ``num_pitches``) and frame rate (``sample_rate / hop_length``).
        carried_over: notes at time 0 began before the window (a cut clip or crop): no onset for them.
    """
    roll = notes_to_roll(
        np.asarray(notes, dtype=np.float64).reshape(-1, 3),
        frames,
        cfg.sample_rate / cfg.hop_length,
        min_midi=cfg.min_midi,
        num_pitches=cfg.num_pitches,
        carried_over=carried_over,
    )
    return np.concatenate([roll.frame.T, roll.onset.T]).astype(np.float32)


def harmonic_templates(cfg: DiffusionConfig) -> np.ndarray:
    """``[K, M]``: the mel pattern of an ideal harmonic tone (1/h partials) per roll pitch, peak 1 each."""
    ensure_jit_cache()
    import librosa

    fb = librosa.filters.mel(n_mels=cfg.n_mels, **_mel_kwargs(cfg))  # [M, n_fft // 2 + 1]
    bin_hz = cfg.sample_rate / cfg.n_fft
    out = np.zeros((cfg.num_pitches, cfg.n_mels), np.float32)
    for k in range(cfg.num_pitches):
        f0_hz = 440.0 * 2.0 ** ((cfg.min_midi + k - 69) / 12)
        spec = np.zeros(fb.shape[1])
        for h in range(1, NUM_HARMONICS + 1):
            b = int(round(h * f0_hz / bin_hz))
            if b < len(spec):
                spec[b] += 1.0 / h
        row = fb @ spec
        out[k] = row / row.max() if row.max() > 0 else row
    return out


# ---------------------------------------------------------------------------------------------- vocoder


@runtime_checkable
class Vocoder(Protocol):
    """Mel -> waveform: ``vocoder(mel [M, T] magnitude, num_samples) -> [num_samples]`` float waveform."""

    def __call__(self, mel: np.ndarray, num_samples: int) -> np.ndarray: ...


@dataclasses.dataclass
class GriffinLimVocoder:
    """Griffin-Lim phase reconstruction of a magnitude mel spectrogram (librosa), seeded initial phases."""

    config: DiffusionConfig
    n_iter: int | None = None  # default: config.griffin_lim_iters
    seed: int = 0

    def __call__(self, mel: np.ndarray, num_samples: int) -> np.ndarray:
        ensure_jit_cache()
        import librosa

        cfg = self.config
        mel = np.asarray(mel, dtype=np.float32)
        if not mel.any():
            return np.zeros(int(num_samples), np.float32)
        stft = librosa.feature.inverse.mel_to_stft(mel, power=1.0, **_mel_kwargs(cfg))
        # griffinlim needs a length that has exactly T frames; the rest is trimmed or padded with silence
        T, hop = mel.shape[1], cfg.hop_length
        y = librosa.griffinlim(
            stft,
            n_iter=self.n_iter or cfg.griffin_lim_iters,
            hop_length=hop,
            n_fft=cfg.n_fft,
            length=int(np.clip(num_samples, (T - 1) * hop, T * hop - 1)),
            random_state=self.seed,
        )
        n = int(num_samples)
        return (y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))).astype(np.float32)
