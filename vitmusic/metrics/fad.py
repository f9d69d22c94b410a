"""Fréchet Audio Distance between sets of audio embeddings, with pluggable embedding models.

``FAD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` between Gaussians fitted to two embedding
sets. FAD is a *set* statistic: compute it over all clips of a test set, not per clip. It is biased
upward for small sets (the bias shrinks roughly as 1/N), so values are only comparable between runs
with the same N and the same embedding; a warning is issued when N < 50 or N < D.

Embeddings (naming follows torchcrepe's ``embed`` family):

- default :class:`MelStatsEmbedder` (offline, no download): 1 s windows with 0.5 s hop at 16 kHz; per
  window the mean of a 64-band log-mel spectrogram (dB, 25 ms / 10 ms frames) and the mean and standard
  deviation of 20 MFCCs -> D = 104. A cheap, transparent timbre/energy descriptor, far less semantic than
  learned embeddings; its values are NOT comparable with published FAD numbers (VGGish, CLAP, ...).
- :class:`TransformersAudioEmbedder`: a transformers audio model by hub id or local directory. Encodec
  checkpoints (e.g. ``facebook/encodec_32khz``, MusicGen's audio codec) use the encoder's continuous
  latents; encoder-style models with a feature extractor (Wav2Vec2, HuBERT, WavLM, AST ...) the hidden
  states of ``layer``; either way averaged over time per window. (Two-tower models such as CLAP need
  their own adapter: any callable ``(audio, sample_rate) -> [W, D]`` is an :class:`Embedder`.)
"""

from __future__ import annotations

import collections
import math
import os
import warnings
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from vitmusic.metrics.audio_checks import resample, validate_audio, validate_sample_rate

#: Below this many embeddings the covariance estimate (and so FAD) is strongly biased.
MIN_RELIABLE_N = 50


@runtime_checkable
class Embedder(Protocol):
    """Maps a waveform to a set of embeddings ``[W, D]`` (one per analysis window)."""

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


def validate(emb_a: object, emb_b: object) -> tuple[np.ndarray, np.ndarray]:
    """Check two embedding sets (``[N, D]`` and ``[M, D]``, finite, same D) and return them as float64.

    Raises:
        ValueError: wrong rank, differing widths, empty or non-finite entries.
    """
    out = []
    for name, e in (("emb_a", emb_a), ("emb_b", emb_b)):
        arr = np.asarray(e, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be [N, D], got shape {arr.shape}")
        if arr.shape[1] == 0:
            raise ValueError(f"{name} has zero-width embeddings")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN/inf")
        out.append(arr)
    if out[0].shape[1] != out[1].shape[1]:
        raise ValueError(f"embedding widths differ: {out[0].shape[1]} vs {out[1].shape[1]}")
    return out[0], out[1]


def gaussian_stats(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and (unbiased) covariance ``[D, D]`` of ``[N, D]`` embeddings (N >= 2)."""
    return emb.mean(axis=0), np.atleast_2d(np.cov(emb, rowvar=False))


def frechet_distance_from_stats(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between two Gaussians.

    ``tr((S_a S_b)^(1/2))`` is computed with ``scipy.linalg.sqrtm``; a singular product (fewer samples
    than dimensions) is regularised with ``eps * I`` on both covariances, and the tiny imaginary parts
    that sqrtm returns for nearly-PSD products are dropped (a warning if they are not tiny).
    """
    from scipy import linalg

    diff = mu_a - mu_b
    covmean = linalg.sqrtm(sigma_a @ sigma_b)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(sigma_a.shape[0]) * eps
        covmean = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        max_imag = float(np.max(np.abs(covmean.imag)))
        scale = max(float(np.max(np.abs(covmean.real))), 1e-12)
        if max_imag > 1e-3 * scale:
            warnings.warn(
                f"sqrtm of the covariance product has imaginary part {max_imag:.3g} (relative "
                f"{max_imag / scale:.2g}); FAD may be inaccurate",
                RuntimeWarning,
                stacklevel=3,
            )
        covmean = covmean.real
    value = float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean))
    # Round-off can leave a tiny negative number for identical distributions.
    return max(value, 0.0)


def frechet_distance(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Fréchet distance between two embedding sets.

    Args:
        emb_a: ``[N, D]`` embeddings (e.g. of the reference clips).
        emb_b: ``[M, D]`` embeddings (e.g. of the generated clips).

    Returns:
        FAD (>= 0); nan when either set has fewer than 2 embeddings. Warns about small-sample bias when
        ``min(N, M) < 50`` or ``< D``.
    """
    a, b = validate(emb_a, emb_b)
    n = min(a.shape[0], b.shape[0])
    d = a.shape[1]
    if n < 2:
        return math.nan
    if n < MIN_RELIABLE_N or n < d:
        warnings.warn(
            f"FAD from {n} embeddings of dimension {d} is strongly biased upward (want N >= "
            f"{max(MIN_RELIABLE_N, d)}); compare only runs with equal N",
            UserWarning,
            stacklevel=2,
        )
    return frechet_distance_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def _windows(y: np.ndarray, sample_rate: int, window_s: float, hop_s: float) -> list[np.ndarray]:
    win = int(round(window_s * sample_rate))
    hop = int(round(hop_s * sample_rate))
    if y.size <= win:
        return [y]
    return [y[i : i + win] for i in range(0, y.size - win + 1, hop)]


class MelStatsEmbedder:
    """Offline default embedding: log-mel means + MFCC means/stds per window (D = n_mels + 2 n_mfcc).

    Args:
        window_s, hop_s: analysis window and hop in seconds.
        sample_rate: analysis rate (audio is resampled to it).
        n_mels, n_mfcc: feature sizes.
    """

    def __init__(
        self,
        window_s: float = 1.0,
        hop_s: float = 0.5,
        sample_rate: int = 16000,
        n_mels: int = 64,
        n_mfcc: int = 20,
    ) -> None:
        if not (0 < hop_s and 0 < window_s):
            raise ValueError("window_s and hop_s must be > 0")
        self.window_s, self.hop_s = window_s, hop_s
        self.sample_rate, self.n_mels, self.n_mfcc = sample_rate, n_mels, n_mfcc

    @property
    def dim(self) -> int:
        return self.n_mels + 2 * self.n_mfcc

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import librosa

        y = resample(validate_audio(audio, sample_rate, min_duration_s=0.1), sample_rate, self.sample_rate)
        n_fft, hop = int(0.025 * self.sample_rate), int(0.010 * self.sample_rate)
        mel = librosa.feature.melspectrogram(
            y=y, sr=self.sample_rate, n_fft=n_fft, hop_length=hop, n_mels=self.n_mels
        )
        log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=self.n_mfcc)
        frames_per_win = max(1, int(round(self.window_s / 0.010)))
        frames_per_hop = max(1, int(round(self.hop_s / 0.010)))
        n = log_mel.shape[1]
        starts = range(0, max(1, n - frames_per_win + 1), frames_per_hop)
        rows = []
        for s in starts:
            lm, mf = log_mel[:, s : s + frames_per_win], mfcc[:, s : s + frames_per_win]
            rows.append(np.concatenate([lm.mean(axis=1), mf.mean(axis=1), mf.std(axis=1)]))
        return np.stack(rows).astype(np.float64)


class TransformersAudioEmbedder:
    """Embeddings from a transformers audio model (hub id or local directory), one per window.

    Args:
        name_or_path: model id or directory holding the model and its feature extractor.
        revision: hub revision.
        window_s, hop_s: analysis windows in seconds.
        layer: hidden-state index for non-Encodec models (-1 = last).
    """

    def __init__(
        self,
        name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        window_s: float = 1.0,
        hop_s: float = 1.0,
        layer: int = -1,
    ) -> None:
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        self.name_or_path = str(name_or_path)
        config = AutoConfig.from_pretrained(self.name_or_path, revision=revision)
        self.is_encodec = config.model_type == "encodec"
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(self.name_or_path, revision=revision)
        self.model = AutoModel.from_pretrained(self.name_or_path, revision=revision).eval()
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        self.window_s, self.hop_s, self.layer = window_s, hop_s, layer

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch

        y = resample(validate_audio(audio, sample_rate, min_duration_s=0.1), sample_rate, self.sample_rate)
        rows = []
        with torch.inference_mode():
            for w in _windows(y, self.sample_rate, self.window_s, self.hop_s):
                inputs = self.feature_extractor(w, sampling_rate=self.sample_rate, return_tensors="pt")
                if self.is_encodec:
                    latents = self.model.encoder(inputs["input_values"])  # [1, D, T']
                    rows.append(latents[0].mean(dim=-1))
                else:
                    out = self.model(**inputs, output_hidden_states=True)
                    rows.append(out.hidden_states[self.layer][0].mean(dim=0))  # [T', D] -> [D]
        return torch.stack(rows).float().numpy().astype(np.float64)


def embed(audio: np.ndarray, sample_rate: int, embedder: Embedder | None = None) -> np.ndarray:
    """Embed one waveform: ``[W, D]`` embeddings (default :class:`MelStatsEmbedder`)."""
    validate_sample_rate(sample_rate)
    embedder = MelStatsEmbedder() if embedder is None else embedder
    emb = np.asarray(embedder(audio, sample_rate), dtype=np.float64)
    if emb.ndim == 1:
        emb = emb[None]
    return emb


def embed_many(
    audios: Iterable[np.ndarray], sample_rate: int, embedder: Embedder | None = None
) -> np.ndarray:
    """Embed several waveforms and stack the windows: ``[sum W_i, D]``."""
    embedder = MelStatsEmbedder() if embedder is None else embedder
    parts = [embed(a, sample_rate, embedder) for a in audios]
    if not parts:
        raise ValueError("no audio to embed")
    return np.concatenate(parts, axis=0)


def evaluate(
    ref_audios: Iterable[np.ndarray],
    est_audios: Iterable[np.ndarray],
    sample_rate: int,
    embedder: Embedder | None = None,
) -> collections.OrderedDict[str, float]:
    """FAD between a set of reference clips and a set of generated clips (windows pooled per set).

    Returns:
        ``{"fad": value}`` (nan when a set yields fewer than 2 embeddings).
    """
    embedder = MelStatsEmbedder() if embedder is None else embedder
    ref = embed_many(ref_audios, sample_rate, embedder)
    est = embed_many(est_audios, sample_rate, embedder)
    return collections.OrderedDict([("fad", frechet_distance(ref, est))])
