"""Atomic outputs: write to a temporary sibling path, rename into place only on success.

An interrupted run therefore never leaves a complete-looking partial file (or folder) behind, and a folder is
replaced as a whole: the new one is built under a temporary name and swapped with the old one by one
``renameat2(RENAME_EXCHANGE)`` where the system has it (Linux), so a reader sees the old folder or the new one,
never a mix and never none.

Temporary names carry the writing process (``.<name>.p<pid>h<host>-<random>.tmp<suffix>``): what a killed
process left (a signal that could not be handled, a power cut) is removed by the next write of the same
output, while the temporaries of a process still writing are left alone.

A full disk while writing is reported as :class:`~vitmusic.errors.DiskFullError` (one line naming the path),
also when a library hides the cause (safetensors, libsndfile's ``System error.``, torch's ``file write
failed``): the temporary is removed and the destination is left as it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from vitmusic.errors import DiskFullError, VitmusicError

log = logging.getLogger(__name__)

# below this many free bytes a write error on that file system is taken as the disk being full
LOW_SPACE_BYTES = 4 << 20
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# what safetensors / av / soundfile put in their own exception types when the OS said ENOSPC or EDQUOT
_FULL_TEXT = ("no space left on device", "disk quota exceeded", "storagefull")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def _owner_tag() -> str:
    """``p<pid>h<host>-``: the part of a temporary name that says which process writes it."""
    return f"p{os.getpid()}h{_host_tag()}-"


def _owner_is_gone(name: str) -> bool | None:
    """Whether the process named in a temporary name has ended (None: no owner in the name, an older format)."""
    m = re.search(r"\.p(\d+)h([0-9a-f]{6})-[^.]*\.tmp", name)
    if m is None:
        return None
    if m.group(2) != _host_tag():  # another machine's (a shared file system): not ours to judge
        return False
    pid = int(m.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


# ---------------------------------------------------------------------------------------------- disk full


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes (for an unprivileged user) on the file system holding ``path`` or its nearest ancestor."""
    p = Path(path).absolute()
    for q in (p, *p.parents):
        try:
            st = os.statvfs(q)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return None


def is_disk_full(exc: BaseException, path: str | os.PathLike | None = None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the disk is full.

    Looks for ``ENOSPC`` / ``EDQUOT`` and the text libraries put in their own exception types; when ``path`` is
    given, a write error while its file system has less than :data:`LOW_SPACE_BYTES` free counts too (libsndfile
    says only ``System error.``, torch ``file write failed``).
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, DiskFullError):
            return True
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        text = str(e).lower()
        if any(t in text for t in _FULL_TEXT):
            return True
        e = e.__cause__ or e.__context__
    if path is not None and isinstance(exc, Exception) and not isinstance(exc, VitmusicError):
        free = free_bytes(path)
        return free is not None and free < LOW_SPACE_BYTES
    return False


def disk_full_error(path: str | os.PathLike) -> DiskFullError:
    """The one-line error of a write to ``path`` that ran out of space."""
    return DiskFullError(f"no space left on device while writing {path} (free some space and run the command "
                         "again: what was finished is kept)")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- swapping folders


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):  # kernel or file system without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(tmp: Path, final: Path) -> None:
    """Put the folder ``tmp`` at ``final`` (replacing a folder there as a whole) and remove ``tmp``'s name.

    With an old folder present the two are exchanged in one step and the old one (now under ``tmp``'s name) is
    deleted; without ``renameat2`` the old one is moved to ``.<name>.old`` first, which
    :func:`remove_stale_temporaries` puts back if a kill lands between the two renames.
    """
    if not final.exists():
        os.replace(tmp, final)
    elif _exchange(tmp, final):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on clean exit rename it onto ``path``.

    The temporary name keeps the final suffix (so format sniffing by extension, e.g. ``.mp4`` or
    ``.wav``, still works) and lives in the same folder (so the rename is atomic on POSIX).
    On an exception the temporary file/folder is removed and ``path`` is left untouched; a full disk is
    raised as :class:`~vitmusic.errors.DiskFullError`. Temporaries of ``path`` that a killed process left are
    removed first.

    Args:
        path: final destination.
        is_dir: create and yield a temporary *folder* instead of a file path; an existing folder at ``path``
            is replaced as a whole (:func:`replace_dir`).
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(final)
        if is_dir:
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{_owner_tag()}", suffix=".tmp", dir=final.parent))
            os.chmod(tmp, 0o777 & ~_umask())
        else:
            fd, name = tempfile.mkstemp(prefix=f".{final.stem}.{_owner_tag()}", suffix=f".tmp{final.suffix}",
                                        dir=final.parent)
            os.close(fd)
            tmp = Path(name)
            # mkstemp creates 0600; give the output the permissions a plain open() would have.
            os.chmod(tmp, 0o666 & ~_umask())
    except OSError as e:  # read-only or missing parent, a file where a folder should be, full disk
        if is_disk_full(e):
            raise disk_full_error(final) from None
        raise VitmusicError(f"cannot write {final}: {e.strerror or e}") from None
    try:
        yield tmp
    except BaseException as e:
        full = isinstance(e, Exception) and is_disk_full(e, tmp)  # before the temporary's space is freed
        _remove(tmp)
        if full:  # named by the outermost output (not a file inside its temporary folder)
            raise disk_full_error(final) from e
        raise
    try:
        if is_dir:
            replace_dir(tmp, final)
        else:
            os.replace(tmp, final)
    except OSError as e:  # e.g. the destination is an existing folder
        _remove(tmp)
        raise VitmusicError(f"cannot write {final}: {e.strerror or e}") from None


def remove_stale_temporaries(final: str | os.PathLike) -> list[Path]:
    """Delete the temporaries of ``final`` that an ended process left (see the module docstring); returns
    what was removed.

    Called before each new temporary of ``final`` is made, so the leftovers of a kill disappear on the next
    run. A temporary folder in the older format without an owner (``.<name>.<random>.tmp``) is removed too; a
    ``.<name>.old`` left between the two renames of :func:`replace_dir` is put back when ``final`` is missing.
    """
    final = Path(final)
    removed: list[Path] = []
    if not final.parent.is_dir():
        return removed
    old = final.with_name(f".{final.name}.old")
    if old.is_dir() and not final.exists():
        with contextlib.suppress(OSError):
            os.replace(old, final)
    patterns = {f".{glob.escape(final.name)}.*.tmp", f".{glob.escape(final.stem)}.p*.tmp{glob.escape(final.suffix)}"}
    for pattern in patterns:
        for p in final.parent.glob(pattern):
            if p.is_symlink():
                continue
            gone = _owner_is_gone(p.name)
            if gone or (gone is None and p.is_dir() and p.name.startswith(f".{final.name}.")):
                _remove(p)
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{_owner_tag()}", suffix=".tmp", dir=folder.parent))
    try:
        write(tmp)
        if folder.exists() and not is_complete(folder):
            shutil.rmtree(folder)
        try:
            os.rename(tmp, folder)  # atomic; fails if another process renamed its copy first
        except OSError:
            if not is_complete(folder):
                raise
    except Exception as e:
        if is_disk_full(e, tmp):
            shutil.rmtree(tmp, ignore_errors=True)
            raise disk_full_error(folder) from e
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def open_locked(path: str | os.PathLike, on_busy: Callable[[IO[str]], None] | None = None) -> IO[str]:
    """Open ``path`` (created if missing) holding an exclusive ``flock`` on it, and return the open file.

    When another process holds it, ``on_busy(file)`` is called first (it may raise, e.g. to refuse instead of
    waiting; the file is closed then), then the call waits. The lock is on the file that is at ``path`` when it
    is taken: a holder removes the file when it is done (:func:`release_locked`), so nothing is left behind.
    """
    import fcntl

    busy_said = False
    while True:
        f = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- returned open, holding the lock
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                busy = False
            except BlockingIOError:
                busy = True
            if busy:
                if on_busy is not None and not busy_said:
                    busy_said = True
                    on_busy(f)
                fcntl.flock(f, fcntl.LOCK_EX)
            # the holder may have removed the file between our open and flock: lock the file now there
            if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                return f
        except FileNotFoundError:
            pass
        except BaseException:
            f.close()
            raise
        f.close()


def release_locked(path: str | os.PathLike, f: IO[str]) -> None:
    """Remove ``path`` and release the lock ``f`` holds on it (:func:`open_locked`)."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    f.close()


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str, take: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block (:func:`open_locked`; the file is removed after),
    waiting while another process holds it (one log line says so): one process at a time builds ``what``.
    The lock ends with the process (a kill frees it). ``take=False`` holds nothing (e.g. the non-main
    processes of one job, whose main process holds it for them)."""
    if not take:
        yield
        return
    f = open_locked(path, lambda _: log.info("waiting for another process that is building %s", what))
    try:
        yield
    finally:
        release_locked(path, f)
