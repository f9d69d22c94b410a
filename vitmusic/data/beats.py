"""Reference beat annotations: the synthetic benchmark's ``Beats_<piece>.txt`` and Bach10's score alignment.

A beat annotation is ``[B, 2]`` float: ``(time_s, position)`` per beat, ``position`` = 1-based beat number in
its bar (1 = downbeat), or 0 where the bar position is unknown. Two sources exist:

- ``Beats_<piece>.txt`` (written by ``vitmusic synth-data`` next to the URMP files; not part of URMP): one
  ``time_s<TAB>position`` line per beat, the format of the common beat-tracking datasets' ``.beats`` files.
  The beats are the score's quarter notes at their performed times (the tempo map, drift and fermata
  ritardandi included), so they are exact.
- Bach10 (Duan & Pardo): ``<piece>.mid`` is the score at a constant tempo and ``<piece>.txt`` aligns its
  notes to the recording (one line per note: ``audio_onset_ms  score_onset_ms  midi_pitch  part``). The
  score's beat grid (``pretty_midi``: its tempo and time signature, so a one-beat pickup starts on beat 4)
  is mapped to audio time by piecewise-linear interpolation between the aligned onsets (the median audio
  onset of the notes sharing one score onset; onsets that would make the map non-increasing are dropped).
  Beats before the first or after the last aligned onset are left out: the alignment says nothing there.

:func:`find_reference_beats` is the one entry point (it returns ``None`` for a folder with neither).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vitmusic.data.urmp import _read_table, _write_table
from vitmusic.errors import DataError

__all__ = ["BEATS_PREFIX", "aligned_beats", "bach10_alignment", "beats_file_name", "find_reference_beats",
           "read_beats", "score_beats", "write_beats"]

BEATS_PREFIX = "Beats_"


def beats_file_name(folder: str | os.PathLike) -> str:
    """``Beats_<piece folder name>.txt``."""
    return f"{BEATS_PREFIX}{Path(folder).name}.txt"


def _check(beats: np.ndarray, where: str) -> np.ndarray:
    beats = np.asarray(beats, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(beats).all():
        raise DataError(f"{where}: non-finite beat time or position")
    if (beats[:, 0] < 0).any():
        raise DataError(f"{where}: negative beat time")
    if (np.diff(beats[:, 0]) <= 0).any():
        raise DataError(f"{where}: beat times must increase")
    if (beats[:, 1] < 0).any() or (beats[:, 1] != np.round(beats[:, 1])).any():
        raise DataError(f"{where}: beat positions must be whole numbers >= 0 (1 = downbeat, 0 = unknown)")
    return beats


def write_beats(path: str | os.PathLike, beats: np.ndarray) -> Path:
    """Write ``[B, 2]`` ``(time_s, position)`` as ``time_s<TAB>position`` lines, atomically."""
    return _write_table(path, _check(beats, str(path)), "%.6f\t%d")


def read_beats(path: str | os.PathLike) -> np.ndarray:
    """Read a ``Beats_*.txt`` file: ``[B, 2]`` float64 ``(time_s, position)``.

    Raises:
        DataError: missing file, a line without two numbers, decreasing times, negative or fractional positions.
    """
    values, _ = _read_table(path, 2, "beats")
    return _check(values, str(path))


def score_beats(midi_path: str | os.PathLike) -> np.ndarray:
    """The beat grid of a MIDI score: ``[B, 2]`` ``(score_time_s, position)`` from its tempo map and time
    signatures (``pretty_midi.get_beats`` / ``get_downbeats``), up to its last note's end.

    Raises:
        DataError: unreadable MIDI file or one without notes.
    """
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(midi_path))
    except Exception as e:  # mido / pretty_midi raise many types on a broken file
        raise DataError(f"cannot read score {midi_path}: {type(e).__name__}: {e}") from None
    end = pm.get_end_time()
    if end <= 0:
        raise DataError(f"score {midi_path} holds no notes")
    beats = np.asarray(pm.get_beats(), dtype=np.float64)
    beats = beats[beats < end]
    downbeats = np.asarray(pm.get_downbeats(), dtype=np.float64)
    positions = np.zeros(len(beats))
    if len(downbeats):
        # beats since the latest downbeat (a pickup bar before the first downbeat counts back from it)
        per_bar = _beats_per_bar(pm, beats)
        bar = np.searchsorted(downbeats, beats + 1e-6, side="right") - 1
        idx = np.searchsorted(beats, downbeats - 1e-6)
        for i in range(len(beats)):
            if bar[i] >= 0:
                positions[i] = i - idx[bar[i]] + 1
            else:
                positions[i] = per_bar[i] - (idx[0] - i) + 1
    return np.stack([beats, np.maximum(positions, 0)], axis=1)


def _beats_per_bar(pm, beats: np.ndarray) -> np.ndarray:
    """Beats per bar at each beat (the time signature's numerator; 4 without one)."""
    out = np.full(len(beats), 4.0)
    for ts in sorted(pm.time_signature_changes, key=lambda t: t.time):
        out[beats >= ts.time - 1e-6] = ts.numerator
    if pm.time_signature_changes:
        out[beats < min(t.time for t in pm.time_signature_changes)] = pm.time_signature_changes[0].numerator
    return out


def bach10_alignment(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Bach10's score-to-audio alignment ``<piece>.txt``: ``(score_s [K], audio_s [K])``, both increasing.

    One point per distinct score onset: the median audio onset of its notes. A point that would make the
    audio times non-increasing (an alignment glitch) is dropped.

    Raises:
        DataError: not four numeric columns, negative times.
    """
    values, _ = _read_table(path, 4, "Bach10 alignment")
    if len(values) == 0:
        raise DataError(f"{path}: the alignment holds no note")
    if (values[:, :2] < 0).any():
        raise DataError(f"{path}: negative onset time")
    audio_ms, score_ms = values[:, 0], values[:, 1]
    score_s = np.unique(score_ms)
    audio_s = np.array([np.median(audio_ms[score_ms == s]) for s in score_s])
    keep = [0]
    for i in range(1, len(score_s)):
        if audio_s[i] > audio_s[keep[-1]]:
            keep.append(i)
    return score_s[keep] / 1000.0, audio_s[keep] / 1000.0


def aligned_beats(beats: np.ndarray, score_s: np.ndarray, audio_s: np.ndarray) -> np.ndarray:
    """Map score-time beats ``[B, 2]`` to audio time through an alignment; beats outside its span are dropped."""
    beats = np.asarray(beats, dtype=np.float64).reshape(-1, 2)
    # the alignment is written in whole milliseconds: a beat within 2 ms of its first / last onset is inside
    inside = (beats[:, 0] >= score_s[0] - 0.002) & (beats[:, 0] <= score_s[-1] + 0.002)
    beats = beats[inside]
    return np.stack([np.interp(beats[:, 0], score_s, audio_s), beats[:, 1]], axis=1)


def find_reference_beats(folder: str | os.PathLike) -> tuple[np.ndarray, str] | None:
    """The beat annotation of a piece folder and where it came from, or None.

    Returns:
        ``(beats [B, 2], source)`` with ``source`` ``"Beats file"`` or ``"score alignment"``; None when the
        folder has neither a ``Beats_*.txt`` nor a Bach10 ``<piece>.txt`` + ``<piece>.mid`` pair.

    Raises:
        DataError: such a file exists but is malformed.
    """
    folder = Path(folder)
    beats_file = folder / beats_file_name(folder)
    if beats_file.is_file():
        return read_beats(beats_file), "Beats file"
    txt, mid = folder / f"{folder.name}.txt", folder / f"{folder.name}.mid"
    if txt.is_file() and mid.is_file():
        score_s, audio_s = bach10_alignment(txt)
        return aligned_beats(score_beats(mid), score_s, audio_s), "score alignment"
    return None
