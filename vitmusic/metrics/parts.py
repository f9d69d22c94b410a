"""Per-part and per-voice scores: each generated part (a MIDI track of the video -> notes path) against its
own stem, and how well each voice is heard in the generated audio and by the referee.

The MIDI path writes one track per performer with the performer's General MIDI program. Parts are matched
to the reference stems by program, in order (the first unused track with the stem's program; two violins
take the two violin tracks in track order). Each matched pair is scored directly from the MIDI notes (no
transcription, so there is no referee error):

- ``notes.*`` (``mir_eval.transcription``, as :func:`vitmusic.metrics.notes.evaluate`) against the stem's
  ``Notes``;
- ``pitch.raw_pitch_accuracy`` / ``pitch.overall_accuracy`` of the part's notes as an f0 track (the highest
  sounding note on a 10 ms grid) against the stem's ``F0s``.

A stem without a matching part gets a row of nan with the reason.

**Notes carried over from before the clip.** A clip cut from a piece after its start (``start_s > 0``) begins
with the notes that were sounding at the cut: their annotation starts at 0 s, but their onset is not in the
clip, so no model can be asked to find it. In such a clip the ``notes.*`` scores leave out, on both sides, the
notes whose onset is at 0 s (``<= CARRIED_OVER_S``): the reference notes carried over and any estimated note
starting at the first instant. The f0 scores keep them (the notes do sound). A clip that starts its piece
(``start_s == 0``) keeps every note. :func:`score_clip_parts` (the decoded notes of a clip, part by part in
order) and :func:`score_parts` (the parts of a MIDI file, matched by program) apply the same rule through
:func:`score_part`.

Per-voice rows (:func:`voice_rows`, the ``part`` column names the kind) for ensembles scored against their
stems' notes with the polyphonic referee:

- ``"audio"``: the referee's notes on the *generated* audio against this voice's notes: ``notes.recall``
  (with offsets), ``notes.recall_no_offset`` and ``notes.voice_recall`` (of the notes the referee hears in
  the reference mix, the share it hears in the generated audio); precision and F1 are undefined (nan): a
  transcribed note of a mix belongs to no voice in particular;
- ``"referee-mix"``: the same on the *reference* mix: what a copy of the reference gets per voice;
- ``"referee"``: the per-voice ceiling, the referee on the voice's own stem audio against its annotations,
  every note metric and the pitch accuracies of its notes as an f0 track: how well the referee reads the
  instrument alone, without the other voices.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from vitmusic.metrics import notes as notes_mod
from vitmusic.metrics import pitch

PART_METRICS: tuple[str, ...] = ("notes.precision", "notes.recall", "notes.f1", "notes.f1_no_offset",
                                 "notes.recall_no_offset", "notes.voice_recall", "pitch.raw_pitch_accuracy",
                                 "pitch.overall_accuracy")
#: ``part`` of the per-voice rows: generated audio, referee on the reference mix, referee on the stem
VOICE_KINDS: tuple[str, ...] = ("audio", "referee-mix", "referee")
VOICE_KIND_NAMES: dict[str, str] = {"audio": "generated audio, transcribed by the referee",
                                    "referee-mix": "reference mix, transcribed by the referee",
                                    "referee": "the voice's stem, transcribed by the referee (per-voice ceiling)"}
PART_COLUMNS: tuple[str, ...] = ("clip_id", "stem", "instrument", "part", "part_name", "program") + PART_METRICS + (
    "reason",)
GRID_S = 0.01
CARRIED_OVER_S = 1e-6  # a note starting at or before this (seconds from the clip start) started before the cut


def onset_notes(notes: np.ndarray, carried_over: bool) -> np.ndarray:
    """The notes whose onset lies in the clip: all of them, or (``carried_over``) those starting after 0 s."""
    notes = np.asarray(notes, float).reshape(-1, 3)
    return notes[notes[:, 0] > CARRIED_OVER_S] if carried_over else notes


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
               stem_f0: tuple[np.ndarray, np.ndarray] | None, *, carried_over: bool = False) -> dict[str, float]:
    """Scores of one part against one stem (nan where the stem lacks that annotation).

    Args:
        part_notes: the part's notes ``[N, 3]`` (onset_s from the clip start, f0_hz, duration_s).
        stem_notes: the stem's annotated notes ``[M, 3]`` (same times), or None.
        stem_f0: the stem's annotated ``(times_s [F], f0_hz [F])``, or None.
        carried_over: the clip starts after its piece does (see the module docstring's rule).
    """
    out = {m: math.nan for m in PART_METRICS}
    part_notes = np.asarray(part_notes, float).reshape(-1, 3)
    if stem_notes is not None:
        ref = np.asarray(stem_notes, float).reshape(-1, 3)
        ref = ref[(ref[:, 1] > 0) & (ref[:, 2] > 0)]  # a 0 Hz or zero-length annotation is not a note
        out.update(notes_mod.evaluate(onset_notes(ref, carried_over), onset_notes(part_notes, carried_over)))
        out["notes.recall_no_offset"] = notes_mod.precision_recall_f1(
            onset_notes(ref, carried_over), onset_notes(part_notes, carried_over), offset_ratio=None)[1]
    if stem_f0 is not None and len(stem_f0[0]):
        t, f = (np.asarray(a, float) for a in stem_f0)
        est_t = np.arange(0.0, float(t[-1]) + GRID_S, GRID_S)
        s = pitch.evaluate_f0(t, f, est_t, notes_to_f0(part_notes, est_t))
        out["pitch.raw_pitch_accuracy"] = s["pitch.raw_pitch_accuracy"]
        out["pitch.overall_accuracy"] = s["pitch.overall_accuracy"]
    return out


def score_parts(clip_id: str, parts: list[dict], instruments: Sequence[str], stem_programs: Sequence[int],
                stem_notes: Sequence[np.ndarray | None], stem_f0s: Sequence[tuple | None],
                duration_s: float, *, carried_over: bool = False) -> list[dict]:
    """One row per stem (``PART_COLUMNS``): its matched part's scores, or nan with the reason.

    ``carried_over``: the clip starts after its piece does (the module docstring's rule).
    """
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
                                  stem_f0s[k] if k < len(stem_f0s) else None, carried_over=carried_over),
                       part=hit + 1, part_name=parts[hit]["name"])
        rows.append(row)
    return rows


def voice_rows(clip_id: str, instruments: Sequence[str], stem_programs: Sequence[int],
               stem_notes: Sequence[np.ndarray], stem_f0s: Sequence[tuple | None], per_voice: Sequence[dict] | None,
               stem_transcriptions: Sequence[np.ndarray | Exception | None] | None = None) -> list[dict]:
    """Per-voice rows (``PART_COLUMNS``; see the module docstring) of one clip.

    Args:
        per_voice: :func:`vitmusic.metrics.ensemble.voice_recalls` of the clip (None: no ``audio`` /
            ``referee-mix`` rows).
        stem_transcriptions: per stem the referee's notes ``[M, 3]`` on the stem audio, an exception whose
            message says why there are none (a row of nan with that reason), or None (no row).
    """
    rows: list[dict] = []

    def row(k: int, kind: str, scores: dict, reason: str = "") -> dict:
        out = {"clip_id": clip_id, "stem": k + 1, "instrument": instruments[k] if k < len(instruments) else "",
               "program": stem_programs[k] if k < len(stem_programs) else -1, "part": kind,
               "part_name": VOICE_KIND_NAMES[kind], "reason": reason}
        out.update({m: math.nan for m in PART_METRICS})
        out.update(scores)
        return out

    for k, v in enumerate(per_voice or []):
        rows.append(row(k, "audio", {"notes.recall_no_offset": v["recall_gen"], "notes.voice_recall": v["voice_recall"],
                                     "notes.recall": v.get("recall_gen_offset", math.nan)}))
        rows.append(row(k, "referee-mix", {"notes.recall_no_offset": v["recall_ref"],
                                           "notes.recall": v.get("recall_ref_offset", math.nan)}))
    for k, est in enumerate(stem_transcriptions or []):
        if est is None or k >= len(stem_notes):
            continue
        if isinstance(est, Exception):
            rows.append(row(k, "referee", {}, reason=str(est)))
            continue
        rows.append(row(k, "referee", score_part(est, stem_notes[k], stem_f0s[k] if k < len(stem_f0s) else None)))
    return rows


def score_clip_parts(ref_parts: Sequence[np.ndarray], est_parts: Sequence[np.ndarray], *,
                     carried_over: bool) -> dict[str, float]:
    """The decoded notes of one clip against its annotation: ``notes.*`` of part ``k`` against stem ``k``
    (:func:`score_part`, with the carried-over rule), averaged over the parts that have at least one reference
    note in the clip after the rule (nan when none has).

    Args:
        ref_parts: per stem, annotated notes ``[M_k, 3]`` (onset_s from the clip start, f0_hz, duration_s).
        est_parts: per part (same order), decoded notes ``[N_k, 3]``; a missing part counts as no notes.
        carried_over: the clip starts after its piece does.

    Returns:
        ``{notes.precision, notes.recall, notes.f1, notes.f1_no_offset}`` (clip means) and ``notes.parts``
        (how many parts entered the means).
    """
    per: dict[str, list[float]] = {m: [] for m in notes_mod.METRIC_NAMES}
    for k, ref in enumerate(ref_parts):
        ref = np.asarray(ref, float).reshape(-1, 3)
        if not len(onset_notes(ref[(ref[:, 1] > 0) & (ref[:, 2] > 0)], carried_over)):
            continue
        est = est_parts[k] if k < len(est_parts) else np.zeros((0, 3))
        scores = score_part(est, ref, None, carried_over=carried_over)
        for m in per:
            per[m].append(scores[m])
    out = {m: float(np.nanmean(v)) if v and np.isfinite(v).any() else math.nan for m, v in per.items()}
    out["notes.parts"] = float(len(per["notes.f1"]))
    return out
