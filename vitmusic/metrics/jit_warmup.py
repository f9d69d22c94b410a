"""The warm-up that :mod:`vitmusic.metrics.jit` runs in a child process, under its lock, to compile and then to
prove that librosa's numba cache loads: ``python -c "from vitmusic.metrics.jit_warmup import main; main()"``.

A module of its own because it imports the metric modules, which import :mod:`vitmusic.metrics.jit`.
"""

from __future__ import annotations

import importlib

import numpy as np

from vitmusic.metrics import chroma, emotion, fad, notes, pitch, sync, tempo
from vitmusic.metrics.jit import ensure_jit_cache, librosa_cached_modules

SAMPLE_RATE = 22050


def warm_up() -> None:
    """Compile (or load) every librosa function vitmusic runs: all cached modules' declared signatures (numba
    compiles a ``guvectorize`` function's signatures at import), and the signatures the metric and generator
    paths create at their first call (the metrics turn audio into float32 first)."""
    ensure_jit_cache()  # a no-op in the warm-up child; validates first when called in-process
    for name in librosa_cached_modules():
        importlib.import_module(name)

    sr = SAMPLE_RATE
    t = np.arange(3 * sr) / sr
    f0_hz = 220.0 * 2.0 ** (np.floor(t * 4) % 5 / 12)  # a 5-note arpeggio, 4 notes per second
    y = (0.3 * np.sin(2 * np.pi * np.cumsum(f0_hz) / sr) * np.exp(-(t * 4 % 1) * 3)).astype(np.float32)
    z = np.roll(y, sr // 8)
    tempo.evaluate(y, z, sr)
    notes.transcribe(y, sr, f0=pitch.track_f0(y, sr, backend="pyin"))
    chroma.evaluate(y, z, sr)
    emotion.evaluate(y, z, sr)
    sync.audio_onset_envelope(y, sr)
    fad.embed(y, sr)

    import librosa  # the generators' paths: melody chroma (MusicGen-melody), Griffin-Lim (synth vocoder)

    librosa.feature.chroma_stft(y=y, sr=sr, n_fft=2048, hop_length=512, tuning=0.0)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=256, power=1.0)
    stft = librosa.feature.inverse.mel_to_stft(mel.astype(np.float32), sr=sr, n_fft=1024, power=1.0)
    librosa.griffinlim(stft, n_iter=2, hop_length=256, n_fft=1024, length=y.size, random_state=0)


def main() -> None:
    """Entry point of the warm-up child: no core dump when a corrupt cache crashes it (that is expected)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ImportError, ValueError, OSError):  # pragma: no cover
        pass
    warm_up()
