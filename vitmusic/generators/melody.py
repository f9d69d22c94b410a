"""Melody chroma for MusicGen-melody, computed with librosa (the transformers extractor needs torchaudio).

Matches ``MusicgenMelodyFeatureExtractor``: centred, reflection-padded power STFT with n_fft 16384 / hop 4096 at
the model's sample rate, a 12-bin chroma filter bank starting at C (no tuning estimation), then one-hot on the
dominant pitch class per frame (tests/test_musicgen.py checks it against that recipe written with torch.stft).
"""

from __future__ import annotations

import numpy as np

N_FFT = 16384
HOP_LENGTH = 4096


def melody_chroma(
    audio: np.ndarray,
    sample_rate: int,
    *,
    model_sample_rate: int = 32000,
    num_chroma: int = 12,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
) -> np.ndarray:
    """One-hot chroma of a melody audio, the ``input_features`` MusicGen-melody consumes.

    Args:
        audio: waveform [N] or batch [B, N], float.
        sample_rate: sample rate of ``audio`` in Hz (resampled to ``model_sample_rate`` when different).
        model_sample_rate: the generator's sample rate in Hz.
        num_chroma: number of chroma bins (``MusicgenMelodyConfig.num_chroma``).
        n_fft: STFT size in samples.
        hop_length: hop in samples (chroma frame rate = model_sample_rate / hop_length).

    Returns:
        float32 chroma [T, num_chroma] for a 1-D input, [B, T, num_chroma] for a batch; each frame is one-hot.
    """
    import librosa

    y = np.asarray(audio, dtype=np.float32)
    if y.ndim not in (1, 2):
        raise ValueError(f"melody audio must be [N] or [B, N], got shape {y.shape}")
    if y.shape[-1] == 0:
        raise ValueError("melody audio is empty")
    if sample_rate != model_sample_rate:
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=model_sample_rate, axis=-1)
    batch = y[None] if y.ndim == 1 else y
    if batch.shape[-1] < n_fft:
        # as the transformers extractor: zero-pad short audio on both sides to one FFT window
        pad = n_fft - batch.shape[-1]
        batch = np.pad(batch, ((0, 0), (pad // 2, pad - pad // 2)))
    out = []
    for wav in batch:
        chroma = librosa.feature.chroma_stft(
            y=wav, sr=model_sample_rate, n_fft=n_fft, hop_length=hop_length, tuning=0.0, n_chroma=num_chroma,
            center=True, pad_mode="reflect",  # torchaudio's Spectrogram pads by reflection
        )  # [C, T]
        one_hot = np.zeros((chroma.shape[1], num_chroma), dtype=np.float32)
        one_hot[np.arange(chroma.shape[1]), chroma.argmax(axis=0)] = 1.0
        out.append(one_hot)
    result = np.stack(out)
    return result[0] if y.ndim == 1 else result
