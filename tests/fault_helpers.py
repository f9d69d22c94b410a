"""A small full disk for the fault tests: a tmpfs of a few MB mounted on a test folder (needs root and a
``mount`` that may mount tmpfs, as in a container run as root); tests skip where it cannot be made."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def can_mount_tmpfs() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "2m") -> Iterator[Path]:
    """Mount a ``size`` tmpfs on ``folder`` (created) for the block; skips the test where that is impossible."""
    if not can_mount_tmpfs():
        pytest.skip("a small tmpfs needs root and mount")
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave_bytes: int = 0) -> None:
    """Fill the file system of ``folder`` up to ``leave_bytes`` free (a file ``.filler``)."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize - leave_bytes
    with open(folder / ".filler", "wb") as f:
        with contextlib.suppress(OSError):
            f.write(b"\0" * max(0, free))
