"""Synthetic test signals for the metric tests, built with numpy only (clicks, harmonic tones)."""

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
    f0_hz: float, duration_s: float, sample_rate: int = SR, amp: float = 0.3, n_harmonics: int = 4
) -> np.ndarray:
    """Harmonic tone (1/k partial amplitudes) with 10 ms linear fades at both ends."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    y = sum(amp / k * np.sin(2 * np.pi * k * f0_hz * t) for k in range(1, n_harmonics + 1))
    fade = np.clip(np.minimum(t / 0.01, (duration_s - t) / 0.01), 0.0, 1.0)
    return (y * fade).astype(np.float32)


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
