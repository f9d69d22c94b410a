"""Trained single-voice f0 trackers whose weights ship inside their packages (offline), beside pYIN.

Both take 16 kHz mono audio (:data:`vitmusic.metrics.pitch.ANALYSIS_SR`) and return ``(times_s [F],
f0_hz [F])`` with 0 Hz on unvoiced frames, like every backend of :func:`vitmusic.metrics.pitch.track_f0`.

- ``"swift"``: swift-f0 0.3 (MIT; a 135 KB ONNX model, onnxruntime + numpy only): 16 ms frames,
  46.9..2093.8 Hz, a frame is voiced when its calibrated confidence is >= 0.5 (the package's rule).
- ``"pesto"``: PESTO 2.0 (Riou et al. 2023; LGPL-3; the bundled ``mir-1k_g7`` checkpoint) at a 20 ms step.
  Its package imports torchaudio at module level for a file loader that is never used here; a placeholder
  module stands in during the import (and is removed afterwards), as for torchcrepe. Its checkpoint loader
  unpickles the bundled file (a full, not weights-only, load inside the package): only the checkpoint
  that ships with the installed package is ever loaded. Voicing = confidence >= :data:`PESTO_VOICING`.

Which one is the default of the benchmark is decided by measurement (``docs/evaluation.md``).
"""

from __future__ import annotations

import functools
import sys
import types

import numpy as np

from vitmusic.metrics.referees import RefereeUnavailableError, onnx_threads

SWIFT_HINT = "pip install swift-f0 (MIT, ONNX model inside the package; needs onnxruntime)"
PESTO_HINT = "pip install --no-deps pesto-pitch==2.0.1 (its torchaudio dependency is not needed)"
#: PESTO voicing threshold on its confidence output (chosen on the synthetic benchmark's stems)
PESTO_VOICING = 0.5
PESTO_STEP_MS = 20.0


@functools.lru_cache(maxsize=1)
def _swift():
    try:
        from swift_f0 import SwiftF0
    except ImportError as e:
        raise RefereeUnavailableError(f"pitch backend 'swift' needs swift-f0 ({e}): {SWIFT_HINT}") from e
    return SwiftF0(threads=onnx_threads(), spin=False)  # the process's thread count, no busy-waiting pool


def track_swift(y: np.ndarray, sample_rate: int, fmin_hz: float, fmax_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """swift-f0 on ``y`` [N] (any rate; it resamples to 16 kHz itself)."""
    res = _swift().detect(np.asarray(y, np.float32), sample_rate, fmin=max(fmin_hz, 46.875),
                          fmax=min(fmax_hz, 2093.75))
    f0 = np.where((res.confidence >= 0.5) & np.isfinite(res.pitch_hz), res.pitch_hz, 0.0)
    return np.asarray(res.timestamps, np.float64), f0.astype(np.float64)


def _import_pesto() -> types.ModuleType:
    placed = "torchaudio" not in sys.modules
    if placed:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        import pesto
    except ImportError as e:
        raise RefereeUnavailableError(f"pitch backend 'pesto' needs pesto-pitch ({e}): {PESTO_HINT}") from e
    finally:
        if placed:  # other libraries probe sys.modules for torchaudio: leave no placeholder behind
            sys.modules.pop("torchaudio", None)
    return pesto


@functools.lru_cache(maxsize=4)
def _pesto_model(sample_rate: int):
    pesto = _import_pesto()
    model = pesto.load_model("mir-1k_g7", step_size=PESTO_STEP_MS, sampling_rate=sample_rate)
    return model.eval()


def track_pesto(y: np.ndarray, sample_rate: int, fmin_hz: float, fmax_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """PESTO on ``y`` [N] at ``sample_rate``; frames outside ``[fmin_hz, fmax_hz]`` count as unvoiced."""
    import torch

    model = _pesto_model(int(sample_rate))
    with torch.inference_mode():
        pred, conf, _, _ = model(torch.as_tensor(np.asarray(y, np.float32)), sr=int(sample_rate),
                                 convert_to_freq=True, return_activations=True)
    f0 = pred.reshape(-1).double().numpy()
    conf = conf.reshape(-1).double().numpy()
    voiced = (conf >= PESTO_VOICING) & np.isfinite(f0) & (f0 >= fmin_hz) & (f0 <= fmax_hz)
    times = np.arange(f0.size) * PESTO_STEP_MS / 1000.0
    return times, np.where(voiced, f0, 0.0)
