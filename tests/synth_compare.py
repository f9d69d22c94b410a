"""Comparing two runs of ``synth-data`` with the same seed: every file byte for byte, the mp4s included.

The mp4s of two processes used to differ now and then (one video of three, in about one test run of three):
x264's macroblock tree read heap memory it had not written, so the bytes followed each process's allocation
history. The writer turns mbtree off (``vitmusic/data/videowriter.py``;
``tests/data/test_video.py::test_write_video_bytes_do_not_depend_on_the_heap``), and the mp4s are compared
byte for byte again.
"""

from __future__ import annotations

from pathlib import Path


def assert_same_benchmark(a: Path, b: Path, n_videos: int) -> None:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) == files
    assert sum(p.suffix == ".mp4" for p in files) == n_videos
    differ = [str(p) for p in files if (a / p).read_bytes() != (b / p).read_bytes()]
    assert differ == []
