"""Atomic outputs: write to a temporary sibling path, rename into place only on success.

An interrupted run therefore never leaves a complete-looking partial file (or folder) behind.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from vitmusic.errors import VitmusicError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on clean exit rename it onto ``path``.

    The temporary name keeps the final suffix (so format sniffing by extension, e.g. ``.mp4`` or
    ``.wav``, still works) and lives in the same folder (so the rename is atomic on POSIX).
    On an exception the temporary file/folder is removed and ``path`` is left untouched.

    Args:
        path: final destination.
        is_dir: create and yield a temporary *folder* instead of a file path.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            remove_stale_temporaries(final)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
            os.chmod(tmp, 0o777 & ~_umask())
        else:
            fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
            os.close(fd)
            tmp = Path(name)
            # mkstemp creates 0600; give the output the permissions a plain open() would have.
            os.chmod(tmp, 0o666 & ~_umask())
    except OSError as e:  # read-only or missing parent, a file where a folder should be, full disk
        raise VitmusicError(f"cannot write {final}: {e.strerror or e}") from None
    try:
        yield tmp
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    try:
        if is_dir and final.exists():
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except OSError as e:  # e.g. the destination is an existing folder
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise VitmusicError(f"cannot write {final}: {e.strerror or e}") from None


def remove_stale_temporaries(final: str | os.PathLike) -> list[Path]:
    """Delete the temporary folders ``.<name>.<random>.tmp`` that an interrupted (killed) :func:`atomic_path`
    left next to the folder ``final``; returns what was removed.

    Called before a new temporary folder for ``final`` is made, so the leftovers of a kill disappear on the
    next run. Two processes writing the same ``final`` at once are not supported anyway (the last rename wins).
    """
    final = Path(final)
    removed = []
    if not final.parent.is_dir():
        return removed
    for p in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the final path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def publish_dir(folder: str | os.PathLike, write: Callable[[Path], None], is_complete: Callable[[Path], bool]) -> Path:
    """Build a folder that several processes may build at once (a tiny preset under ``accelerate launch``).

    ``write(tmp)`` fills a temporary sibling folder, which is then renamed onto ``folder``. The first rename
    wins: a process that loses keeps the winner's folder (replacing it would leave a moment without one, in
    which a reader fails). A folder already there that is not ``is_complete`` (half-written, an older recipe)
    is removed first. Call it after checking ``is_complete(folder)`` yourself.

    Returns:
        ``folder``.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        write(tmp)
        if folder.exists() and not is_complete(folder):
            shutil.rmtree(folder)
        try:
            os.rename(tmp, folder)  # atomic; fails if another process renamed its copy first
        except OSError:
            if not is_complete(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
