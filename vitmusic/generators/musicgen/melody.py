"""Melody chroma for MusicGen-melody, computed with librosa (the transformers extractor needs torchaudio).

Matches ``MusicgenMelodyFeatureExtractor``: centred, reflection-padded power STFT with n_fft 16384 / hop 4096 at
the model's sample rate, a 12-bin chroma filter bank starting at C (no tuning estimation), then one-hot on the
dominant pitch class per frame (tests/test_musicgen.py checks it against that recipe written with torch.stft).
"""

from __future__ import annotations

import numpy as np
import torch

from vitmusic.generators.musicgen.decoder_cache import cache_kwargs, output_cache
from vitmusic.metrics.jit import ensure_jit_cache

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
    ensure_jit_cache()
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


def prefix_decoder_sample(
    decoder: torch.nn.Module,
    ids: torch.Tensor,
    hidden: torch.Tensor,
    *,
    num_frames: int,
    guidance_scale: float,
    do_sample: bool,
    top_k: int,
    temperature: float,
) -> torch.Tensor:
    """Delayed, cached, optionally guided sampling for MusicGen-melody's prefix-conditioned decoder.

    ``MusicgenMelodyForCausalLM.generate`` cannot be used: in transformers 5.23 it concatenates the [B, S] prefix
    mask with a [B*K, L] code mask (shape error), and given a [B, L] mask its cached steps drop the prefix from
    the mask (wrong codes). This is the same loop written out; tests compare it with uncached forward passes.

    Args:
        decoder: ``MusicgenMelodyForCausalLM``.
        ids: long [B, K, 1 + P]: the start token column followed by P prompt frames (undelayed).
        hidden: prefix [B, S, H], or [2B, S, H] = [cond; null] when ``guidance_scale > 1``.
        num_frames: new frames to generate.
        guidance_scale: classifier-free guidance scale (> 1 = guided).
        do_sample: top-k sampling (else greedy).
        top_k: top-k.
        temperature: sampling temperature.

    Returns:
        codes long [B, K, P + num_frames] (prompt included).
    """
    from transformers import DynamicCache, EncoderDecoderCache

    B, K = ids.shape[:2]
    pad = int(decoder.config.pad_token_id)
    guided = guidance_scale > 1.0
    max_length = ids.shape[-1] + num_frames + K - 1
    seq, pattern = decoder.build_delay_pattern_mask(ids.reshape(B * K, -1), pad_token_id=pad, max_length=max_length)
    x = decoder.apply_delay_pattern_mask(seq, pattern)
    out = decoder(input_ids=x.repeat(2, 1) if guided else x, encoder_hidden_states=hidden,
                  use_cache=True, **cache_kwargs(decoder, EncoderDecoderCache(DynamicCache(), DynamicCache())))
    while True:
        logits = out.logits[:, -1].float()  # [(2 x) B*K, V]
        if guided:
            cond, uncond = logits.split(B * K)
            logits = uncond + guidance_scale * (cond - uncond)  # transformers' CFG logits processor
        if do_sample:
            logits = logits / temperature
            if top_k and top_k < logits.shape[-1]:
                kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1)
        else:
            nxt = logits.argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], dim=-1)
        if seq.shape[-1] >= max_length:
            break
        x = decoder.apply_delay_pattern_mask(seq, pattern)[:, -1:]
        out = decoder(input_ids=x.repeat(2, 1) if guided else x, use_cache=True,
                      **cache_kwargs(decoder, output_cache(out)))
    seq = decoder.apply_delay_pattern_mask(seq, pattern)
    return seq[seq != pad].reshape(B, K, -1)
