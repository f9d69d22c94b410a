"""Shared material of the metric / evaluation tests: synthetic signals built with numpy (clicks, harmonic
tones, melodies, chords) and a tiny random-init audio model for the transformers adapters."""

from __future__ import annotations

import numpy as np

SR = 22050


def click_train(times_s, duration_s: float, sample_rate: int = SR, freq_hz: float = 1000.0) -> np.ndarray:
    """Short decaying 1 kHz clicks starting at ``times_s``."""
    y = np.zeros(int(round(duration_s * sample_rate)), np.float32)
    n = int(0.03 * sample_rate)
    k = np.arange(n)
    click = (np.sin(2 * np.pi * freq_hz * k / sample_rate) * np.exp(-k / (0.004 * sample_rate))).astype(
        np.float32
    )
    for t in times_s:
        i = int(round(t * sample_rate))
        if 0 <= i < y.size:
            seg = y[i : i + n]
            seg += click[: seg.size]
    return y


def clicks_at_bpm(bpm: float, duration_s: float = 12.0, sample_rate: int = SR) -> np.ndarray:
    return click_train(np.arange(0.1, duration_s, 60.0 / bpm), duration_s, sample_rate)


def harmonic_tone(
    f0_hz: float,
    duration_s: float,
    sample_rate: int = SR,
    amp: float = 0.3,
    n_harmonics: int = 4,
    release_s: float = 0.01,
) -> np.ndarray:
    """Harmonic tone (1/k partial amplitudes), 10 ms linear attack and ``release_s`` linear release."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    y = sum(amp / k * np.sin(2 * np.pi * k * f0_hz * t) for k in range(1, n_harmonics + 1))
    fade = np.clip(np.minimum(t / 0.01, (duration_s - t) / release_s), 0.0, 1.0)
    return (y * fade).astype(np.float32)


def tone_sequence(
    freqs_hz, note_s: float = 0.5, sample_rate: int = SR, amp: float = 0.3, n_harmonics: int = 3,
    release_s: float = 0.05,
) -> np.ndarray:
    """Equal-length harmonic notes (Hz) whose 50 ms releases leave audible gaps between them."""
    return np.concatenate([harmonic_tone(f, note_s, sample_rate, amp, n_harmonics, release_s) for f in freqs_hz])


def midi_hz(m: float) -> float:
    return float(440.0 * 2.0 ** ((m - 69) / 12))


def melody(
    midis, durations_s, sample_rate: int = SR, transpose: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated harmonic tones and their ``[N, 3]`` notes ``(onset_s, f0_hz, duration_s)``."""
    parts, notes, t = [], [], 0.0
    for m, d in zip(midis, durations_s):
        f = midi_hz(m + transpose)
        parts.append(harmonic_tone(f, d, sample_rate))
        notes.append((t, f, d))
        t += d
    return np.concatenate(parts), np.asarray(notes)


def chord_progression(chords, chord_s: float = 1.0, sample_rate: int = SR) -> np.ndarray:
    """Each chord (list of MIDI numbers) held for ``chord_s`` seconds."""
    out = [sum(harmonic_tone(midi_hz(m), chord_s, sample_rate, amp=0.2) for m in c) for c in chords]
    return np.concatenate(out).astype(np.float32)


C_MAJOR_CHORDS = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]]  # I IV V I in C
A_MINOR_CHORDS = [[57, 60, 64], [62, 65, 69], [64, 68, 71], [57, 60, 64]]  # i iv V i in A minor


def save_tiny_wav2vec2(path, model_class, **config_overrides):
    """Save a tiny random-init (seed 0) wav2vec2 ``model_class`` and a 16 kHz feature extractor to ``path``.

    Returns:
        The model, in eval mode, for comparing an adapter's outputs with a direct forward pass.
    """
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    config = dict(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
        conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
    )
    model = model_class(Wav2Vec2Config(**{**config, **config_overrides})).eval()
    model.save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(path)
    return model


def drum_pattern(bpm: float, duration_s: float = 8.0, sample_rate: int = SR) -> np.ndarray:
    """A rock beat: kick on beats 1 and 3, snare on 2 and 4, closed hi-hat on every eighth (rhythm, no pitch)."""
    rng = np.random.default_rng(0)
    y = np.zeros(int(round(duration_s * sample_rate)), np.float32)

    def hit(t0: float, wave: np.ndarray) -> None:
        i = int(round(t0 * sample_rate))
        if i < y.size:
            y[i : i + wave.size] += wave[: y.size - i]

    k = np.arange(int(0.25 * sample_rate)) / sample_rate
    kick = 0.8 * np.sin(2 * np.pi * (45 * k + 60 * (1 - np.exp(-k / 0.03)) * 0.03)) * np.exp(-k / 0.08)
    snare = (0.3 * rng.normal(size=k.size) + 0.4 * np.sin(2 * np.pi * 190 * k)) * np.exp(-k / 0.05)
    hat = 0.1 * np.diff(rng.normal(size=k.size + 1)) * np.exp(-k / 0.01)
    beat = 60.0 / bpm
    for j, t in enumerate(np.arange(0.1, duration_s, beat / 2)):
        hit(t, hat.astype(np.float32))
        if j % 4 == 0:
            hit(t, kick.astype(np.float32))
        elif j % 4 == 2:
            hit(t, snare.astype(np.float32))
    return y
