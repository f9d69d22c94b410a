"""A piece's score (``Sco_*.mid``) as per-part notes in score time, checked against the piece's performers.

URMP ships a score per piece; ``vitmusic synth-data`` writes one too (the notes as written, at the piece's fixed
tempo). A score fits a piece when it has one part (a MIDI track with notes) per performer, in the performers'
order, and -- where the score names instruments (any track with a GM program other than 0) -- each part's
program is the performer's instrument. Anything else is a :class:`~vitmusic.errors.DataError` with one line: a
score-informed rendering of a clip whose score does not fit is refused, never rendered some other way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vitmusic.errors import DataError

__all__ = ["find_score", "read_score", "score_slice"]


def find_score(video: str | os.PathLike) -> Path | None:
    """The ``Sco_<folder>.mid`` next to a URMP-style ``Vid_<folder>.mp4`` (None when there is none)."""
    from vitmusic.data.urmp import score_file_name

    video = Path(video)
    folder = video.parent
    for name in (score_file_name(folder), f"Sco_{video.stem[4:]}.mid" if video.stem.startswith("Vid_") else None):
        if name and (folder / name).is_file():
            return folder / name
    return None


def read_score(path: str | os.PathLike | None, instruments: Sequence[str]) -> list[np.ndarray]:
    """Per performer, the score's notes ``[N, 3]`` (onset_s, f0_hz, duration_s) in score time, sorted by onset.

    Args:
        path: the MIDI score.
        instruments: the piece's performers (URMP codes, left to right = part order).

    Raises:
        DataError: no score, an unreadable or empty file, a part count or instruments that do not match the
            performers (one line naming the file).
    """
    import pretty_midi

    from vitmusic.data.urmp import INSTRUMENTS

    if not path:
        raise DataError("no score for this piece (no Sco_*.mid next to its video)")
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"score {path}: missing or empty file")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # noqa: BLE001 -- mido/pretty_midi raise many types on a corrupt file
        raise DataError(f"score {path}: unreadable MIDI ({type(e).__name__}: {e})") from e
    tracks = [i for i in pm.instruments if i.notes and not i.is_drum]
    if not tracks:
        raise DataError(f"score {path}: no notes")
    codes = list(instruments)
    if len(tracks) != len(codes):
        raise DataError(f"score {path}: {len(tracks)} part(s), but the piece has {len(codes)} performer(s) "
                        f"({', '.join(codes)})")
    if any(t.program != 0 for t in tracks):
        for k, (t, code) in enumerate(zip(tracks, codes), start=1):
            info = INSTRUMENTS.get(code)
            if info is not None and t.program != info.gm_program:
                name = pretty_midi.program_to_instrument_name(t.program)
                raise DataError(f"score {path}: part {k} is a {name} (GM program {t.program}), but performer {k} "
                                f"plays {info.name} ({code})")
    parts = []
    for t in tracks:
        notes = sorted(t.notes, key=lambda n: (n.start, n.pitch))
        parts.append(np.array([[n.start, 440.0 * 2 ** ((n.pitch - 69) / 12), n.end - n.start] for n in notes], float))
    return parts


def score_slice(parts: Sequence[np.ndarray], t0_s: float, t1_s: float) -> list[np.ndarray]:
    """The notes starting in ``[t0_s, t1_s)`` of score time, shifted to start at 0 and cut at ``t1_s``."""
    out = []
    for p in parts:
        p = np.asarray(p, float).reshape(-1, 3)
        p = p[(p[:, 0] >= t0_s) & (p[:, 0] < t1_s)].copy()
        p[:, 0] -= t0_s
        p[:, 2] = np.minimum(p[:, 2], t1_s - t0_s - p[:, 0])
        out.append(p[p[:, 2] > 0])
    return out
