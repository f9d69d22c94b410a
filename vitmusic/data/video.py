"""Video reading: frames ``uint8 [T, H, W, 3]`` with their presentation times, from decord or PyAV.

Time convention (shared with :mod:`vitmusic.data.audio`): a frame's time is its pts in seconds minus the
container's start time, so frame times and audio sample indices (``n / sample_rate``) of the same file
share one clock starting at 0. For files written by :func:`vitmusic.data.videowriter.write_video` the
container start is 0 and frame ``i`` is at ``i / fps``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitmusic.errors import DataError

__all__ = ["VideoInfo", "Frames", "probe_video", "VideoReader", "open_container", "check_media_file"]


def check_media_file(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path, or raise DataError if it is missing, not a file, or empty."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if not p.is_file():
        raise DataError(f"{p}: not a file")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file (0 bytes)")
    return p


@contextlib.contextmanager
def open_container(path: str | os.PathLike):
    """Open a media file with PyAV for reading; DataError (one line) instead of av/OS errors."""
    import av

    p = check_media_file(path)
    try:
        container = av.open(str(p), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot open as a media file (corrupt or unsupported: {_reason(e)})") from e
    try:
        yield container
    finally:
        container.close()


def _reason(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return msg[0] if msg else type(e).__name__
