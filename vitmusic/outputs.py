"""Check output paths before the work: a command that would fail to write its result after minutes of
scoring or generation says so at once, in one line.

These checks only look (nothing is created); the writes themselves stay atomic (:mod:`vitmusic.atomic`).
"""

from __future__ import annotations

import os
from pathlib import Path

from vitmusic.errors import VitmusicError

__all__ = ["check_output_dir", "check_output_file"]


def _check_parents(path: Path, flag: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable folder (no file on the way)."""
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise VitmusicError(f"{flag} {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise VitmusicError(f"{flag} {path}: folder {parent} is not writable")
            return


def check_output_file(path: str | os.PathLike, flag: str = "output") -> Path:
    """Raise :class:`VitmusicError` unless ``path`` can become a file (it may exist as a file: replaced).

    Args:
        path: the output file.
        flag: how the message names it (e.g. ``"--out"``).
    """
    p = Path(path)
    if p.is_dir():
        raise VitmusicError(f"{flag} {p}: is a folder, expected a file name")
    if p.exists() and not os.access(p, os.W_OK):
        raise VitmusicError(f"{flag} {p}: file is not writable")
    _check_parents(p, flag)
    return p


def check_output_dir(path: str | os.PathLike, flag: str = "output folder") -> Path:
    """Raise :class:`VitmusicError` unless ``path`` is, or can become, a writable folder."""
    p = Path(path)
    if p.exists() or p.is_symlink():
        if not p.is_dir():
            raise VitmusicError(f"{flag} {p}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise VitmusicError(f"{flag} {p}: folder is not writable")
        return p
    _check_parents(p, flag)
    return p
