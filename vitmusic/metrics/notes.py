"""Note-level agreement (``mir_eval.transcription``) and a simple monophonic transcriber.

Notes arrays are ``[N, 3]`` rows of ``(onset_s, f0_hz, duration_s)``, the URMP ``Notes`` layout. When a
generator produces MIDI its notes are scored directly; audio is first transcribed with
:func:`transcribe` (f0 track + onset segmentation), which is monophonic: on polyphonic audio it follows
the predominant voice only.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from vitmusic.metrics.audio_checks import validate_audio, validate_sample_rate
from vitmusic.metrics.jit import ensure_jit_cache

METRIC_NAMES = ("notes.precision", "notes.recall", "notes.f1", "notes.f1_no_offset")


def validate_notes(notes: object, name: str = "notes") -> np.ndarray:
    """Check a notes array and return it as float64 ``[N, 3]`` (``N`` may be 0).

    Raises:
        ValueError: wrong shape, non-finite values, negative onsets, non-positive f0 or duration.
    """
    arr = np.asarray(notes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 3))
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must be [N, 3] rows of (onset_s, f0_hz, duration_s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf")
    if np.any(arr[:, 0] < 0):
        raise ValueError(f"{name}: onsets must be >= 0 s")
    if np.any(arr[:, 1] <= 0):
        raise ValueError(f"{name}: f0_hz must be > 0")
    if np.any(arr[:, 2] <= 0):
        raise ValueError(f"{name}: durations must be > 0 s")
    return arr


def validate(ref_notes: object, est_notes: object) -> None:
    """Check both notes arrays (see :func:`validate_notes`)."""
    validate_notes(ref_notes, "ref_notes")
    validate_notes(est_notes, "est_notes")


def to_intervals(notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[N, 3]`` notes -> ``(intervals [N, 2] onset/offset in s, pitches_hz [N])`` for mir_eval."""
    arr = validate_notes(notes)
    intervals = np.stack([arr[:, 0], arr[:, 0] + arr[:, 2]], axis=1) if arr.size else np.zeros((0, 2))
    return intervals, arr[:, 1].copy()


def precision_recall_f1(
    ref_notes: np.ndarray,
    est_notes: np.ndarray,
    *,
    offset_ratio: float | None = 0.2,
    onset_tolerance_s: float = 0.05,
    pitch_tolerance_cents: float = 50.0,
) -> tuple[float, float, float]:
    """``mir_eval.transcription.precision_recall_f1_overlap`` with explicit empty-set handling.

    Returns:
        ``(precision, recall, f1)``. Each is nan when the set it is taken over is empty: precision over the
        estimated notes, recall and F1 over the reference notes (as the beat F-measure: without reference
        notes there is nothing to get right). So no reference notes -> recall and F1 nan, precision 0 when
        there are estimated notes (each is a false positive, like a voicing false alarm); no estimated notes
        -> precision nan, recall 0, F1 0.
    """
    import mir_eval

    ref_i, ref_p = to_intervals(ref_notes)
    est_i, est_p = to_intervals(est_notes)
    if ref_p.size == 0:
        return (0.0 if est_p.size else math.nan), math.nan, math.nan
    if est_p.size == 0:
        return math.nan, 0.0, 0.0
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_i,
        ref_p,
        est_i,
        est_p,
        onset_tolerance=onset_tolerance_s,
        pitch_tolerance=pitch_tolerance_cents,
        offset_ratio=offset_ratio,
    )
    return float(p), float(r), float(f)


def matched_reference(
    ref_notes: np.ndarray,
    est_notes: np.ndarray,
    *,
    offset_ratio: float | None = None,
    onset_tolerance_s: float = 0.05,
    pitch_tolerance_cents: float = 50.0,
) -> np.ndarray:
    """Which reference notes the estimate recalls: ``bool [N]`` from mir_eval's one-to-one note matching
    (onsets within ``onset_tolerance_s``, pitch within ``pitch_tolerance_cents``; offsets only when
    ``offset_ratio`` is given). Its mean is the recall of :func:`precision_recall_f1`."""
    import mir_eval

    ref_i, ref_p = to_intervals(ref_notes)
    est_i, est_p = to_intervals(est_notes)
    hit = np.zeros(ref_p.size, bool)
    if ref_p.size and est_p.size:
        pairs = mir_eval.transcription.match_notes(ref_i, ref_p, est_i, est_p, onset_tolerance=onset_tolerance_s,
                                                   pitch_tolerance=pitch_tolerance_cents, offset_ratio=offset_ratio)
        hit[[i for i, _ in pairs]] = True
    return hit


def evaluate(ref_notes: np.ndarray, est_notes: np.ndarray) -> collections.OrderedDict[str, float]:
    """Note precision/recall/F1 with offsets (``offset_ratio`` 0.2) and F1 on onsets + pitch only.

    Args:
        ref_notes: ``[N, 3]`` reference notes (URMP ``Notes`` or a transcription of the reference).
        est_notes: ``[M, 3]`` generated notes (MIDI output or :func:`transcribe` of generated audio).

    Returns:
        ``notes.precision``, ``notes.recall``, ``notes.f1`` (offset-aware), ``notes.f1_no_offset``.
    """
    validate(ref_notes, est_notes)
    p, r, f = precision_recall_f1(ref_notes, est_notes, offset_ratio=0.2)
    _, _, f_no = precision_recall_f1(ref_notes, est_notes, offset_ratio=None)
    return collections.OrderedDict(
        [("notes.precision", p), ("notes.recall", r), ("notes.f1", f), ("notes.f1_no_offset", f_no)]
    )


def _level_db(y: np.ndarray, sample_rate: int, times_s: np.ndarray) -> np.ndarray:
    """RMS level in dB (20 ms windows) sampled at ``times_s``."""
    ensure_jit_cache()
    import librosa

    hop = max(1, int(round(0.01 * sample_rate)))
    rms = librosa.feature.rms(y=y, frame_length=2 * hop, hop_length=hop)[0]
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    return np.interp(times_s, np.arange(db.size) * hop / sample_rate, db)


def transcribe(
    audio: np.ndarray,
    sample_rate: int,
    *,
    f0: tuple[np.ndarray, np.ndarray] | None = None,
    backend: str = "pyin",
    min_note_s: float = 0.06,
    max_jump_semitones: float = 0.6,
    min_split_s: float = 0.1,
    attack_db: float = 1.0,
    release_db: float = 10.0,
) -> np.ndarray:
    """Monophonic transcription: f0 track segmented at pitch changes, unvoiced gaps and onsets.

    Steps: voiced f0 frames are converted to fractional MIDI; a new note starts at an unvoiced->voiced
    transition, where the pitch moves more than ``max_jump_semitones`` from the running note's median,
    or at an audio onset (``librosa.onset.onset_detect``) that separates repeated notes. An onset splits
    a note only when (a) the pitch stays the same right after it (a pitch change is left to the jump
    rule), (b) the running note is at least ``min_split_s`` old (attacks often trigger two onset peaks)
    and (c) the level rises by ``attack_db`` from its lowest point in the 60 ms up to the onset to its
    highest in the 60 ms after — the end of a note (release, bow change) also makes spectral flux, but
    with falling energy. Each note gets the median f0 of its frames; notes shorter than ``min_note_s``
    are dropped. A note ends at the next boundary, or earlier where its level (after its loudest frame)
    first falls ``release_db`` below the note's median level: a release tail still carries the pitch
    (so pyin keeps it voiced) but is no longer the note.

    Args:
        audio: ``[N]`` waveform.
        sample_rate: Hz.
        f0: precomputed ``(times_s, f0_hz)`` from :func:`vitmusic.metrics.pitch.track_f0` (saves a pass).
        backend: f0 backend when ``f0`` is None.
        min_note_s: shortest note kept.
        max_jump_semitones: pitch deviation that starts a new note.
        min_split_s: no onset split closer than this to the note's start.
        attack_db: level rise an onset needs to split a repeated note.
        release_db: level drop (below the note's median) that ends a note.

    Returns:
        ``[K, 3]`` float64 notes ``(onset_s, f0_hz, duration_s)``, sorted by onset.
    """
    ensure_jit_cache()
    import librosa

    from vitmusic.metrics import pitch

    sr = validate_sample_rate(sample_rate)
    y = validate_audio(audio, sr, "audio", min_duration_s=0.1)
    if f0 is None:
        times, f0_hz = pitch.track_f0(y, sr, backend=backend)
    else:
        times, f0_hz = (np.asarray(a, dtype=np.float64) for a in f0)
    if times.size < 2 or not np.any(f0_hz > 0):
        return np.zeros((0, 3))
    hop_s = float(np.median(np.diff(times)))
    onset_times = librosa.onset.onset_detect(y=y, sr=sr, units="time") if np.any(y) else []
    onset_frames = set(np.searchsorted(times, np.asarray(onset_times) - hop_s / 2).tolist())
    level_db = _level_db(y, sr, times)
    ctx = max(1, int(round(0.06 / hop_s)))
    min_split = max(2, int(round(min_split_s / hop_s)))

    voiced = f0_hz > 0
    midi = np.where(voiced, librosa.hz_to_midi(np.where(voiced, f0_hz, 1.0)), np.nan)
    notes: list[tuple[float, float, float]] = []
    start: int | None = None
    current: list[float] = []

    def close(end: int) -> None:
        if start is None or not current:
            return
        level = level_db[start:end]
        # Look only after the loudest frame: the attack ramp is quiet too but belongs to the note.
        peak = int(np.argmax(level))
        quiet = np.flatnonzero(level[peak:] < np.median(level) - release_db)
        if quiet.size:
            end = start + peak + int(quiet[0])
        duration_s = (end - start) * hop_s
        if duration_s >= min_note_s:
            notes.append((float(times[start]), float(librosa.midi_to_hz(np.median(current))), duration_s))

    for i in range(times.size):
        if not voiced[i]:
            close(i)
            start, current = None, []
            continue
        boundary = start is None or abs(midi[i] - np.median(current)) > max_jump_semitones
        if not boundary and i in onset_frames and i - start >= min_split:
            ahead = midi[i : i + 4]
            ahead = ahead[np.isfinite(ahead)]
            same_pitch = ahead.size > 0 and abs(np.median(ahead) - np.median(current)) <= max_jump_semitones
            # The dip before a re-attack can fall on the onset frame itself, so it is in both windows.
            rise = level_db[i : i + ctx + 1].max() - level_db[max(0, i - ctx) : i + 1].min()
            boundary = same_pitch and rise >= attack_db
        if boundary:
            close(i)
            start, current = i, []
        current.append(float(midi[i]))
    close(times.size)
    return np.asarray(notes, dtype=np.float64).reshape(-1, 3)
