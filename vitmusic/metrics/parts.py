"""Per-part scores: each generated part (a MIDI track of the video -> notes path) against its own stem.

The MIDI path writes one track per performer with the performer's General MIDI program. Parts are matched
to the reference stems by program, in order (the first unused track with the stem's program; two violins
take the two violin tracks in track order). Each matched pair is scored directly from the MIDI notes (no
transcription, so there is no referee error):

- ``notes.*`` (``mir_eval.transcription``, as :func:`vitmusic.metrics.notes.evaluate`) against the stem's
  ``Notes``;
- ``pitch.raw_pitch_accuracy`` / ``pitch.overall_accuracy`` of the part's notes as an f0 track (the highest
  sounding note on a 10 ms grid) against the stem's ``F0s``.

A stem without a matching part gets a row of nan with the reason.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from vitmusic.metrics import notes as notes_mod
from vitmusic.metrics import pitch

PART_METRICS: tuple[str, ...] = ("notes.precision", "notes.recall", "notes.f1", "notes.f1_no_offset",
                                 "pitch.raw_pitch_accuracy", "pitch.overall_accuracy")
PART_COLUMNS: tuple[str, ...] = ("clip_id", "stem", "instrument", "part", "part_name", "program") + PART_METRICS + (
    "reason",)
GRID_S = 0.01


def read_parts(path: str | os.PathLike) -> list[dict]:
    """Tracks of a MIDI file: ``[{"name", "program", "notes" [N, 3]}]`` (drum tracks skipped).

    Raises:
        ValueError: the file cannot be parsed as MIDI.
    """
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(os.fspath(path))
    except Exception as e:  # mido / pretty_midi raise a variety of errors on a bad file
        raise ValueError(f"cannot read MIDI {path}: {type(e).__name__}: {e}") from e
    parts = []
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        rows = [(n.start, 440.0 * 2 ** ((n.pitch - 69) / 12), n.end - n.start) for n in inst.notes if n.end > n.start]
        parts.append({"name": inst.name, "program": int(inst.program),
                      "notes": np.asarray(sorted(rows), dtype=np.float64).reshape(-1, 3)})
    return parts


def match_parts(part_programs: Sequence[int], stem_programs: Sequence[int]) -> list[int | None]:
    """For each stem, the index of its part (same GM program, first unused in track order) or None."""
    used: set[int] = set()
    out: list[int | None] = []
    for prog in stem_programs:
        hit = next((i for i, p in enumerate(part_programs) if p == prog and i not in used), None)
        if hit is not None:
            used.add(hit)
        out.append(hit)
    return out


def notes_to_f0(notes: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """The highest note sounding at each of ``times_s`` [F] (0 Hz where none): a part as an f0 track."""
    notes = np.asarray(notes, float).reshape(-1, 3)
    t = np.asarray(times_s, float).reshape(-1, 1)
    if not notes.size:
        return np.zeros(t.shape[0])
    on = (t >= notes[:, 0]) & (t < notes[:, 0] + notes[:, 2])
    return np.where(on, notes[:, 1], 0.0).max(axis=1)


def score_part(part_notes: np.ndarray, stem_notes: np.ndarray | None,
               stem_f0: tuple[np.ndarray, np.ndarray] | None) -> dict[str, float]:
    """Scores of one part against one stem (nan where the stem lacks that annotation)."""
    out = {m: math.nan for m in PART_METRICS}
    part_notes = np.asarray(part_notes, float).reshape(-1, 3)
    if stem_notes is not None:
        out.update(notes_mod.evaluate(np.asarray(stem_notes, float).reshape(-1, 3), part_notes))
    if stem_f0 is not None and len(stem_f0[0]):
        t, f = (np.asarray(a, float) for a in stem_f0)
        est_t = np.arange(0.0, float(t[-1]) + GRID_S, GRID_S)
        s = pitch.evaluate_f0(t, f, est_t, notes_to_f0(part_notes, est_t))
        out["pitch.raw_pitch_accuracy"] = s["pitch.raw_pitch_accuracy"]
        out["pitch.overall_accuracy"] = s["pitch.overall_accuracy"]
    return out


def score_parts(clip_id: str, parts: list[dict], instruments: Sequence[str], stem_programs: Sequence[int],
                stem_notes: Sequence[np.ndarray | None], stem_f0s: Sequence[tuple | None],
                duration_s: float) -> list[dict]:
    """One row per stem (``PART_COLUMNS``): its matched part's scores, or nan with the reason."""
    match = match_parts([p["program"] for p in parts], stem_programs)
    rows = []
    for k, hit in enumerate(match):
        row = {"clip_id": clip_id, "stem": k + 1, "instrument": instruments[k] if k < len(instruments) else "",
               "program": stem_programs[k], "reason": ""}
        if hit is None:
            row.update({m: math.nan for m in PART_METRICS}, part="", part_name="",
                       reason=f"no generated part with GM program {stem_programs[k]}")
        else:
            notes = parts[hit]["notes"]
            notes = notes[notes[:, 0] < duration_s] if notes.size else notes
            row.update(score_part(notes, stem_notes[k] if k < len(stem_notes) else None,
                                  stem_f0s[k] if k < len(stem_f0s) else None),
                       part=hit + 1, part_name=parts[hit]["name"])
        rows.append(row)
    return rows
