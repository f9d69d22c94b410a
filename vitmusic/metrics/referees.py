"""Pretrained referees: the polyphonic transcriber that turns generated (or reference) audio into notes and
a multi-f0 track, so that ensembles can be scored against every stem's annotations.

:class:`BasicPitch` wraps Spotify's basic-pitch (Bittner et al. 2022, ICASSP; Apache-2.0). Its ONNX model
(~230 KB) ships inside the package and runs through onnxruntime, offline, without TensorFlow. Install it
without its TensorFlow pin: ``pip install --no-deps basic-pitch==0.4.0`` plus ``onnxruntime`` and
``resampy`` (``scripts/requirements-nodeps.txt``). One inference yields both outputs:

- notes ``[N, 3]`` (onset_s, f0_hz, duration_s): basic-pitch's own note creation (onset threshold 0.5,
  frame threshold 0.3, notes >= 127.7 ms, its defaults; pitch bends ignored) fed with the onsets that
  :func:`select_onsets` keeps: an onset peak on a pitch that is already sounding must reach
  ``reonset_threshold`` (0.7) to start a new note, and of the peaks of one pitch closer than
  ``onset_nms_ms`` (80 ms) only the strongest is kept. Basic-pitch alone splits a bowed or vibrato note into
  many short notes (its onset head fires on every bow change and vibrato cycle): on the real Bach10 violin
  its note precision was .57; with these two rules .76 (recall .79 -> .78), on synthetic violins .35 -> .99.
  Both thresholds were chosen by leave-one-piece-out on the Bach10 development pieces plus the synthetic
  benchmark (every fold chose them); figures and commands in docs/evaluation.md;
- multi-f0 ``(times_s [F], freqs)``: the pitches of its note posteriorgram above ``frame_threshold``
  (86.1 frames/s, 88 piano-range pitches, A0..C8) -- the frame-level activity of the same model.

When basic-pitch is not installed, :func:`basic_pitch` raises :class:`RefereeUnavailableError`, one line
that says how to install it; the runner reports the affected metrics as undefined with that reason.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os

import numpy as np

from vitmusic.errors import VitmusicError
from vitmusic.metrics.audio_checks import resample, validate_audio
from vitmusic.metrics.jit import ensure_jit_cache

#: shortest audio the transcriber accepts: its note creation needs a few hundred ms of context
MIN_DURATION_S = 0.5
INSTALL_HINT = "pip install --no-deps basic-pitch==0.4.0 && pip install onnxruntime resampy"


class MetricUndefinedError(VitmusicError):
    """A metric cannot be computed for this input; the message is the reason (reported, the value null)."""


class RefereeUnavailableError(MetricUndefinedError, ImportError):
    """An optional referee's package is not installed (the message says how to install it)."""


def onnx_threads() -> int | None:
    """The process's thread count for onnxruntime's pools: ``$OMP_NUM_THREADS`` (set by the CLI's thread
    policy, :mod:`vitmusic.threads`, or by the user); None (onnxruntime's default, one per core) when unset."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        return None
    return n if n >= 1 else None


def onnx_session_options():
    """onnxruntime session options for shared CPUs: the process's thread count and no busy-waiting between
    operators (measured on 2 cores at load 15: basic-pitch 260-280 ms per window batch with onnxruntime's
    spinning pool, 177-225 ms without)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if (n := onnx_threads()) is not None:
        options.intra_op_num_threads = n
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


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


#: onset strength a peak needs to start a new note on a pitch that is already sounding (a re-articulation,
#: not a bow change or a vibrato cycle of the held note); basic-pitch's own threshold is 0.5
REONSET_THRESHOLD = 0.7
#: of the onset peaks of one pitch closer than this, only the strongest starts a note
ONSET_NMS_MS = 80.0
#: frames (11.6 ms each) the pitch must have sounded before a peak for the peak to count as a re-onset
SOUNDING_FRAMES = 3


def select_onsets(onsets: np.ndarray, frames: np.ndarray, onset_threshold: float, frame_threshold: float,
                  reonset_threshold: float | None = REONSET_THRESHOLD, nms_frames: int = 0,
                  sounding_frames: int = SOUNDING_FRAMES) -> np.ndarray:
    """The onset peaks that may start a note, as a sparse onset matrix for basic-pitch's note creation.

    A peak (local maximum in time of one pitch's onset activation) is kept when it reaches
    ``onset_threshold`` and, if the pitch has been sounding for the ``sounding_frames`` frames before it
    (frame activation >= ``frame_threshold``), also ``reonset_threshold``; then, per pitch, peaks within
    ``nms_frames`` of a stronger kept peak are dropped (non-maximum suppression).

    Args:
        onsets: onset activations ``[T, P]`` (basic-pitch's, with its inferred onsets).
        frames: frame (note) activations ``[T, P]``.

    Returns:
        ``[T, P]``: the kept peaks' activations, 0 elsewhere.
    """
    import scipy.signal

    onsets, frames = np.asarray(onsets, float), np.asarray(frames, float)
    t_idx, p_idx = scipy.signal.argrelmax(onsets, axis=0)
    value = onsets[t_idx, p_idx]
    keep = value >= onset_threshold
    if reonset_threshold is not None and sounding_frames > 0:
        before = np.stack([frames[np.clip(t_idx - k, 0, None), p_idx] for k in range(1, sounding_frames + 1)], 1)
        sounding = (before.min(axis=1) >= frame_threshold) & (t_idx >= sounding_frames)
        keep &= ~sounding | (value >= reonset_threshold)
    t_idx, p_idx, value = t_idx[keep], p_idx[keep], value[keep]
    if nms_frames > 0 and t_idx.size:
        alive = np.ones(t_idx.size, bool)
        kept = np.zeros(t_idx.size, bool)
        for i in np.argsort(-value, kind="stable"):
            if alive[i]:
                kept[i] = True
                alive[(p_idx == p_idx[i]) & (np.abs(t_idx - t_idx[i]) <= nms_frames)] = False
        t_idx, p_idx, value = t_idx[kept], p_idx[kept], value[kept]
    out = np.zeros_like(onsets)
    out[t_idx, p_idx] = value
    return out


class BasicPitch:
    """basic-pitch on in-memory audio: ``analyze`` -> (notes, multi-f0) from one model run.

    Args:
        onset_threshold, frame_threshold, min_note_ms: basic-pitch's note-creation parameters.
        multif0_threshold: posteriorgram threshold of the multi-f0 track.
        reonset_threshold, onset_nms_ms: :func:`select_onsets` (None and 0: basic-pitch's own note creation).
    """

    name = "basic-pitch"

    def __init__(self, onset_threshold: float = 0.5, frame_threshold: float = 0.3, min_note_ms: float = 127.7,
                 multif0_threshold: float = 0.3, reonset_threshold: float | None = REONSET_THRESHOLD,
                 onset_nms_ms: float = ONSET_NMS_MS) -> None:
        ensure_jit_cache()  # basic-pitch uses librosa
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
        if self.model.model_type == inference.Model.MODEL_TYPES.ONNX:  # basic-pitch's session busy-waits
            import onnxruntime

            self.model.model = onnxruntime.InferenceSession(self.model_path, onnx_session_options(),
                                                            providers=["CPUExecutionProvider"])
        self.onset_threshold, self.frame_threshold = onset_threshold, frame_threshold
        self.min_note_ms, self.multif0_threshold = min_note_ms, multif0_threshold
        self.reonset_threshold, self.onset_nms_ms = reonset_threshold, onset_nms_ms
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
        """Notes ``[N, 3]`` (onset_s, f0_hz, duration_s) from :meth:`posteriors` (see the module docstring)."""
        nc = self._notes
        frames_per_s = self.sample_rate / self._c.FFT_HOP
        act = np.asarray(post["note"], float)
        with np.errstate(invalid="ignore"):  # silent audio: basic-pitch rescales by a zero maximum (nan, no onset)
            inferred = nc.get_infered_onsets(np.asarray(post["onset"], float), act)
        onsets = select_onsets(np.nan_to_num(inferred), act,
                               self.onset_threshold, self.frame_threshold, self.reonset_threshold,
                               int(round(self.onset_nms_ms / 1000 * frames_per_s)))
        events = nc.output_to_notes_polyphonic(
            act, onsets, onset_thresh=self.onset_threshold, frame_thresh=self.frame_threshold,
            min_note_len=int(round(self.min_note_ms / 1000 * frames_per_s)), infer_onsets=False, max_freq=None,
            min_freq=None, melodia_trick=True)
        times = nc.model_frames_to_time(act.shape[0])
        rows = [(float(times[s]), 440.0 * 2 ** ((int(p) - 69) / 12), float(times[e] - times[s]))
                for s, e, p, _ in events if e > s]
        return np.asarray(sorted(rows), dtype=np.float64).reshape(-1, 3)

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
