"""One tune in two splits is leakage: melodic signatures of pieces, tune groups, and the check of a split.

Two performances of one tune (the same chorale melody under two titles, the same ``Sco_*.mid`` under two
piece names, two harmonisations of one hymn tune) share their melody, so a model that saw one in training
has heard the other's answer. Titles do not reveal this: music21's chorale corpus holds one tune under many
titles. So pieces are compared by a *melodic signature* of their top voice:

1. The voice: the notes of the first part and of the part with the highest median pitch (both are tried,
   because an ensemble can carry the tune in its first part an octave below another part). A polyphonic
   track is reduced to its highest note per onset.
2. Two readings of the voice: every note, and the *main notes* only: a note that starts less than 3/4 of a
   beat after the previous main note is dropped (passing notes and other ornaments between beats), where the
   beat is the median inter-onset interval of the first 32 notes. Repeated pitches are merged.
3. Keys: the first :data:`NUM_INTERVALS` pitch intervals of each reading, from the first note and from the
   second (a pickup note present in one version only), each interval folded into [-5, +6] semitones, so
   keys are invariant to transposition and to a voice moved by octaves to fit an instrument. Rhythm and
   tempo enter only through the main-note reading.

Pieces that share any key are one tune; groups are the transitive closure (union-find, deterministic). A
piece whose voice has fewer than ``NUM_INTERVALS + 1`` distinct-pitch notes gets no key (it is reported and
forms its own group). Measured on music21's 365 four-voice chorales (``scripts/benchmarks/chorale_tunes.py``):
see ``docs/data.md``.

The signature comes from the piece's score (``Sco_*.mid``, Bach10's ``<piece>.mid``), else from the stems'
notes annotations; an unreadable or empty score falls back to the notes, with the reason reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitmusic.errors import DataError

__all__ = [
    "NUM_INTERVALS",
    "TuneGroups",
    "TuneSignature",
    "check_groups_disjoint",
    "find_tune_groups",
    "melodic_keys",
    "midi_voices",
    "piece_signature",
    "score_titles",
    "tune_groups",
    "voice_keys",
]

NUM_INTERVALS = 10
MAIN_NOTE_BEATS = 0.75  # a main note starts at least this many beats after the previous one
_ONSET_TOL_S = 0.01  # notes of one track starting within this are one chord (the top note is the voice)


def _skyline(onsets: np.ndarray, pitches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The highest pitch per onset (onsets within ``_ONSET_TOL`` merged), sorted by onset."""
    order = np.lexsort((-pitches, onsets))
    onsets, pitches = onsets[order], pitches[order]
    new = np.r_[True, np.diff(onsets) > _ONSET_TOL_S] if len(onsets) else np.zeros(0, bool)
    return onsets[new], pitches[new]


def _main_notes(onsets: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Pitches of the notes starting >= MAIN_NOTE_BEATS beats after the previous kept note."""
    ioi = np.diff(onsets[:33])
    ioi = ioi[ioi > 0]
    if not len(ioi):
        return pitches
    min_gap = MAIN_NOTE_BEATS * float(np.median(ioi)) - 1e-9
    keep, last = [], -np.inf
    for i, t in enumerate(onsets):
        if t - last >= min_gap:
            keep.append(i)
            last = t
    return pitches[keep]


def _interval_keys(pitches: np.ndarray, n: int) -> set[tuple[int, ...]]:
    p = np.round(np.asarray(pitches, dtype=np.float64)).astype(np.int64)
    p = p[np.r_[True, np.diff(p) != 0]] if len(p) else p
    iv = ((np.diff(p) + 5) % 12) - 5  # in [-5, 6]: transposition- and octave-invariant
    return {tuple(int(x) for x in iv[s:s + n]) for s in (0, 1) if len(iv) >= s + n}


def melodic_keys(onsets: np.ndarray, pitches_midi: np.ndarray, n: int = NUM_INTERVALS) -> frozenset:
    """Signature keys of one voice (see the module docstring): at most 4 tuples of ``n`` intervals.

    Args:
        onsets: ``[N]`` note onsets in any unit (seconds or beats).
        pitches_midi: ``[N]`` MIDI pitches (fractional values are rounded).
        n: intervals per key.
    """
    onsets = np.asarray(onsets, dtype=np.float64).reshape(-1)
    pitches = np.asarray(pitches_midi, dtype=np.float64).reshape(-1)
    if onsets.shape != pitches.shape:
        raise ValueError(f"onsets and pitches must have one value per note, got {onsets.shape} and {pitches.shape}")
    onsets, pitches = _skyline(onsets, pitches)
    return frozenset(_interval_keys(pitches, n) | _interval_keys(_main_notes(onsets, pitches), n))


def voice_keys(voices: Sequence[tuple[np.ndarray, np.ndarray]], n: int = NUM_INTERVALS) -> frozenset:
    """Keys of the first voice and of the highest voice (by median pitch) of ``(onsets, pitches_midi)`` parts."""
    voices = [(np.asarray(o, float), np.asarray(p, float)) for o, p in voices if len(p)]
    if not voices:
        return frozenset()
    highest = max(range(len(voices)), key=lambda k: (float(np.median(voices[k][1])), -k))
    keys: set = set()
    for k in dict.fromkeys((0, highest)):
        keys |= melodic_keys(*voices[k], n=n)
    return frozenset(keys)


def midi_voices(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(onsets_s [N], pitches_midi [N])`` of every pitched track with notes of a MIDI file, in track order.

    Raises:
        DataError: the file cannot be read as MIDI, or it has no pitched note.
    """
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(os.fspath(path))
    except Exception as e:  # mido raises OSError / EOFError / KeyError / ValueError / IndexError on broken files
        raise DataError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e})") from None
    voices = [(np.array([x.start for x in inst.notes]), np.array([x.pitch for x in inst.notes], float))
              for inst in pm.instruments if not inst.is_drum and inst.notes]
    if not voices:
        raise DataError(f"{path}: MIDI score with no notes")
    return voices


@dataclass
class TuneSignature:
    """The melodic signature of one piece.

    Attributes:
        keys: the signature keys (empty: no signature).
        source: where they come from (``"score <file>"``, ``"notes annotation"``) or None.
        problems: why a source was not used or gave no key (one line each, naming the file).
    """

    keys: frozenset = frozenset()
    source: str | None = None
    problems: list[str] = field(default_factory=list)


def _hz_to_midi(f0_hz: np.ndarray) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(np.maximum(np.asarray(f0_hz, float), 1e-6) / 440.0)


def piece_signature(piece, n: int = NUM_INTERVALS) -> TuneSignature:
    """Signature of a :class:`~vitmusic.data.urmp.Piece`: from its score MIDI, else its stems' notes."""
    sig = TuneSignature()
    if piece.score is not None:
        try:
            keys = voice_keys(midi_voices(piece.score), n)
            if keys:
                return TuneSignature(keys, f"score {Path(piece.score).name}")
            sig.problems.append(f"{piece.score}: top voice too short for a signature "
                                f"(fewer than {n + 1} distinct-pitch notes)")
        except DataError as e:
            sig.problems.append(str(e))
    voices = []
    for stem in piece.stems:
        try:
            notes = stem.load_notes()
        except DataError as e:
            sig.problems.append(str(e))
            continue
        if notes is not None and len(notes):
            voices.append((notes[:, 0], _hz_to_midi(notes[:, 1])))
    keys = voice_keys(voices, n)
    if keys:
        return TuneSignature(keys, "notes annotation", sig.problems)
    if voices:
        sig.problems.append(f"{piece.id}: top voice of the notes annotation too short for a signature")
    elif piece.score is None:
        sig.problems.append(f"{piece.id}: no score and no notes annotation")
    return sig


def tune_groups(keys: Mapping[str, Iterable]) -> list[list[str]]:
    """Pieces sharing any key, as groups of 2+ piece ids (transitive), each sorted, sorted by first id."""
    from vitmusic.data.splits import merge_groups

    sharing: dict = {}
    for p in sorted(keys):
        for key in keys[p]:
            sharing.setdefault(key, []).append(p)
    units = merge_groups(sorted(keys), sharing.values())
    return sorted((sorted(u) for u in units.values() if len(u) > 1), key=lambda g: g[0])


def score_titles(root: str | os.PathLike) -> dict[str, str]:
    """``{piece id: score}`` for the pieces of a synthetic benchmark that perform a fixed score (chorales).

    Read from ``synth_data.json`` (written by ``vitmusic synth-data``); generated melodies are unique per piece
    and real URMP folders carry no such record, so both give no entries.
    """
    path = Path(root) / "synth_data.json"
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable ({e})") from e
    return {str(p["piece"]): f"{p['source']}:{p['title']}" for p in doc.get("pieces", [])
            if p.get("source") == "chorale" and p.get("title")}


def check_groups_disjoint(split_map: Mapping[str, str], groups: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Raise when the pieces of one group (one tune, one score) lie in two different splits.

    Args:
        split_map: ``{piece: split}``.
        groups: ``(label, piece ids)`` per group; the label names the tune or score in the message.

    Raises:
        DataError: one line naming each shared tune with its pieces and their splits.
    """
    shared = []
    for label, members in groups:
        ps = sorted(p for p in members if p in split_map)
        if len({split_map[p] for p in ps}) > 1:
            shared.append(f"{label} in " + ", ".join(f"{p} ({split_map[p]})" for p in ps))
    if shared:
        raise DataError(f"one tune in two splits (content leakage): {'; '.join(shared)}; regenerate the benchmark, "
                        "fix the split file, or pass --allow-shared-scores")


@dataclass
class TuneGroups:
    """What :func:`find_tune_groups` found.

    Attributes:
        groups: ``(label, piece ids)`` per group of 2+ pieces that must share a split.
        report: the ``tunes`` entry of ``prepare.json`` (groups, each piece's signature source, problems).
        warnings: one line per problem met while computing signatures (each naming its file).
    """

    groups: list[tuple[str, list[str]]]
    report: dict
    warnings: list[str]


def find_tune_groups(pieces: Sequence, titles: Mapping[str, str] | None = None,
                     n: int = NUM_INTERVALS) -> TuneGroups:
    """Group pieces by melodic signature (:func:`piece_signature`) and by score title (``titles``).

    Args:
        pieces: :class:`~vitmusic.data.urmp.Piece` objects.
        titles: ``{piece id: score title}`` (e.g. :func:`score_titles`); pieces with one title are one group.
    """
    sigs = {p.id: piece_signature(p, n) for p in pieces}
    groups = [(f"one melodic signature ({g[0]} ...)", g) for g in tune_groups({k: s.keys for k, s in sigs.items()})]
    by_title: dict[str, list[str]] = {}
    for pid, title in (titles or {}).items():
        if pid in sigs:
            by_title.setdefault(title.split(":", 1)[-1], []).append(pid)
    groups += [(title, sorted(ps)) for title, ps in sorted(by_title.items()) if len(ps) > 1]
    report = {
        "num_intervals": n,
        "groups": [{"label": label, "pieces": ps} for label, ps in groups],
        "signature_source": {pid: s.source for pid, s in sigs.items()},
        "problems": {pid: s.problems for pid, s in sigs.items() if s.problems},
    }
    return TuneGroups(groups, report, [line for s in sigs.values() for line in s.problems])
