"""The URMP layout as an importer (the format itself lives in :mod:`vitmusic.data.urmp`)."""

from __future__ import annotations

from pathlib import Path

from vitmusic.data import urmp
from vitmusic.errors import DataError


class UrmpLayout:
    """``NN_Piece_inst1_inst2...`` folders with ``Vid_`` / ``AuMix_`` / ``AuSep_`` / ``F0s_`` / ``Notes_`` /
    ``Sco_`` files (see :mod:`vitmusic.data.urmp`)."""

    name = "urmp"
    description = "URMP: folders NN_Piece_inst1_inst2... with Vid_/AuMix_/AuSep_/F0s_/Notes_/Sco_ files"

    def detect(self, root: Path) -> bool:
        try:
            entries = list(root.iterdir())
        except OSError:
            return False
        if _parses(root.name) and any(p.name.startswith(urmp.FILE_PREFIXES) for p in entries):
            return True
        return any(p.is_dir() and _parses(p.name) for p in entries)

    def discover(self, root: Path) -> list[urmp.Piece]:
        return urmp.discover_pieces(root)


def _parses(name: str) -> bool:
    try:
        urmp.parse_piece_name(name)
    except DataError:
        return False
    return True
