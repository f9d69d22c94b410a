"""Pretrained referees: the polyphonic transcriber that turns generated (or reference) audio into notes and
a multi-f0 track, so that ensembles can be scored against every stem's annotations.

:class:`BasicPitch` wraps Spotify's basic-pitch (Bittner et al. 2022, ICASSP; Apache-2.0). Its ONNX model
(~230 KB) ships inside the package and runs through onnxruntime, offline, without TensorFlow. Install it
without its TensorFlow pin: ``pip install --no-deps basic-pitch==0.4.0`` plus ``onnxruntime`` and
``resampy`` (``scripts/requirements-nodeps.txt``). One inference yields both outputs:

- notes ``[N, 3]`` (onset_s, f0_hz, duration_s): basic-pitch's own note creation (onset threshold 0.5,
  frame threshold 0.3, notes >= 127.7 ms, its defaults) with pitch bends ignored;
- multi-f0 ``(times_s [F], freqs)``: the pitches of its note posteriorgram above ``frame_threshold``
  (86.1 frames/s, 88 piano-range pitches, A0..C8) -- the frame-level activity of the same model.

When basic-pitch is not installed, :func:`basic_pitch` raises :class:`RefereeUnavailableError`, one line
that says how to install it; the runner reports the affected metrics as undefined with that reason.
"""

from __future__ import annotations

import contextlib
import functools
import logging

import numpy as np

from vitmusic.errors import VitmusicError
from vitmusic.metrics.audio_checks import resample, validate_audio

#: shortest audio the transcriber accepts: its note creation needs a few hundred ms of context
MIN_DURATION_S = 0.5
INSTALL_HINT = "pip install --no-deps basic-pitch==0.4.0 && pip install onnxruntime resampy"


class MetricUndefinedError(VitmusicError):
    """A metric cannot be computed for this input; the message is the reason (reported, the value null)."""


class RefereeUnavailableError(MetricUndefinedError, ImportError):
    """An optional referee's package is not installed (the message says how to install it)."""


@contextlib.contextmanager
def _quiet_root_logger():
    # basic-pitch logs one root-logger WARNING per absent backend (TensorFlow, CoreML, TFLite) at import;
    # with ONNX they are expected, so they are held back for the duration of the import only
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class BasicPitch:
    """basic-pitch on in-memory audio: ``analyze`` -> (notes, multi-f0) from one model run.

    Args:
        onset_threshold, frame_threshold, min_note_ms: basic-pitch's note-creation parameters.
        multif0_threshold: posteriorgram threshold of the multi-f0 track.
    """

    name = "basic-pitch"

    def __init__(self, onset_threshold: float = 0.5, frame_threshold: float = 0.3, min_note_ms: float = 127.7,
                 multif0_threshold: float = 0.3) -> None:
        try:
            with _quiet_root_logger():
                from basic_pitch import ICASSP_2022_MODEL_PATH, constants, inference, note_creation
        except ImportError as e:
            raise RefereeUnavailableError(
                f"the polyphonic transcriber basic-pitch is not installed ({e}); {INSTALL_HINT}") from e
        self._inference, self._notes, self._c = inference, note_creation, constants
        self.model_path = str(ICASSP_2022_MODEL_PATH)
        if not self.model_path.endswith(".onnx"):
            raise RefereeUnavailableError(f"basic-pitch picked {self.model_path}, not its ONNX model; "
                                          f"install onnxruntime (and no TensorFlow): {INSTALL_HINT}")
        self.model = inference.Model(ICASSP_2022_MODEL_PATH)
        self.onset_threshold, self.frame_threshold = onset_threshold, frame_threshold
        self.min_note_ms, self.multif0_threshold = min_note_ms, multif0_threshold
        self.sample_rate = int(constants.AUDIO_SAMPLE_RATE)

    def posteriors(self, audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """Model outputs ``note [T, 88]``, ``onset [T, 88]``, ``contour [T, 264]`` at 86.13 frames/s."""
        c, inf = self._c, self._inference
        y = validate_audio(audio, sample_rate, "audio", min_duration_s=MIN_DURATION_S)
        y = resample(y, sample_rate, self.sample_rate).astype(np.float32)
        # basic-pitch's run_inference on an array instead of a file: the same padding, windows and overlap
        n_overlap = 30
        overlap_len = n_overlap * c.FFT_HOP
        hop = c.AUDIO_N_SAMPLES - overlap_len
        padded = np.concatenate([np.zeros(overlap_len // 2, np.float32), y])
        out: dict[str, list] = {"note": [], "onset": [], "contour": []}
        for window, _ in inf.window_audio_file(padded, hop):
            for k, v in self.model.predict(window[None]).items():
                out[k].append(v)
        return {k: inf.unwrap_output(np.concatenate(v), y.size, n_overlap) for k, v in out.items()}

    def notes_from(self, post: dict[str, np.ndarray]) -> np.ndarray:
        min_len = int(round(self.min_note_ms / 1000 * self.sample_rate / self._c.FFT_HOP))
        _, events = self._notes.model_output_to_notes(
            post, onset_thresh=self.onset_threshold, frame_thresh=self.frame_threshold, min_note_len=min_len,
            include_pitch_bends=False, melodia_trick=True)
        rows = [(float(s), 440.0 * 2 ** ((int(p) - 69) / 12), float(e) - float(s))
                for s, e, p, *_ in events if float(e) > float(s)]
        arr = np.asarray(sorted(rows), dtype=np.float64).reshape(-1, 3)
        return arr

    def multif0_from(self, post: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        act = np.asarray(post["note"], float)
        times = self._notes.model_frames_to_time(act.shape[0])
        hz = 440.0 * 2 ** ((np.arange(act.shape[1]) + self._notes.MIDI_OFFSET - 69) / 12)
        return np.asarray(times, float), [hz[row >= self.multif0_threshold] for row in act]

    def analyze(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, tuple[np.ndarray, list]]:
        """Notes ``[N, 3]`` and multi-f0 ``(times_s [F], freqs)`` of ``audio`` from one model run.

        Raises:
            ValueError: bad or too short audio (< :data:`MIN_DURATION_S`).
        """
        post = self.posteriors(audio, sample_rate)
        return self.notes_from(post), self.multif0_from(post)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Polyphonic notes ``[N, 3]`` (onset_s, f0_hz, duration_s) of ``audio``."""
        return self.analyze(audio, sample_rate)[0]

    def multif0(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Multi-f0 track ``(times_s [F], freqs)`` of ``audio``."""
        return self.analyze(audio, sample_rate)[1]


@functools.lru_cache(maxsize=1)
def basic_pitch() -> BasicPitch:
    """The shared default :class:`BasicPitch` (loaded once: the ONNX session takes ~0.1 s, the import ~2 s)."""
    return BasicPitch()


def is_available() -> bool:
    """Whether the default polyphonic referee can be loaded."""
    try:
        basic_pitch()
    except RefereeUnavailableError:
        return False
    return True
