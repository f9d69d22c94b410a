"""What the adversarial-input scripts share: a case, how its run is classified, and small odd inputs.

Used by ``scripts/adversarial_inputs.py`` (the command line, data and CLI cases) and
``scripts/adversarial_more.py`` (the listening server and generation cases); see the first for the outcomes.
"""

from __future__ import annotations

import contextlib
import io
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@dataclass
class Case:
    name: str
    argv: list[str] | None = None  # a CLI case: vitmusic ARGV
    expect: str = "error"  # error | ok | either
    fn: Callable[[], object] | None = None  # a library case: must raise VitmusicError (expect=error)
    check: Callable[[], str | None] | None = None  # after the run: a problem, or None
    max_lines: int = 1
    timeout_s: int = 60
    group: str = ""
    setup: Callable[[], object] | None = None  # run just before the case (e.g. fill a disk); not counted
    says: str | None = None  # text the error line must hold (the right error, not any error)


@dataclass
class Outcome:
    name: str
    group: str
    outcome: str
    detail: str = ""


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def run_case(case: Case) -> Outcome:
    from vitmusic import cli
    from vitmusic.errors import VitmusicError

    out, err = io.StringIO(), io.StringIO()
    rc, escaped = None, None
    if case.setup is not None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            case.setup()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(case.timeout_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if case.argv is not None:
                try:
                    rc = cli.main(case.argv)
                except SystemExit as e:
                    rc = e.code if isinstance(e.code, int) else 2
            else:
                try:
                    case.fn()
                    rc = 0
                except VitmusicError as e:
                    rc = 2
                    print(str(e), file=sys.stderr)
    except _Timeout:
        return Outcome(case.name, case.group, "timeout", f"over {case.timeout_s} s")
    except AssertionError as e:  # a probe's own check failed (wrong status, server gone)
        return Outcome(case.name, case.group, "wrong", str(e)[:300])
    except BaseException as e:  # noqa: BLE001 - anything escaping is what this script counts
        escaped = "".join(traceback.format_exception_only(type(e), e)).strip()
    finally:
        signal.alarm(0)
    text = err.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    if escaped is not None or "Traceback (most recent call last)" in text:
        return Outcome(case.name, case.group, "traceback", (escaped or (lines[-1] if lines else ""))[:300])
    if case.check is not None:
        problem = case.check()
        if problem:
            return Outcome(case.name, case.group, "leftover" if "left" in problem else "wrong", problem)
    if case.expect == "ok" and rc != 0:
        return Outcome(case.name, case.group, "wrong", f"exit {rc}: {lines[-1] if lines else ''}"[:300])
    if case.expect == "error" and rc == 0:
        return Outcome(case.name, case.group, "silent", out.getvalue().strip()[-200:])
    if case.expect in ("error", "either") and rc not in (0, 2):
        return Outcome(case.name, case.group, "wrong", f"exit {rc}")
    if rc == 2 and len(lines) > case.max_lines:
        return Outcome(case.name, case.group, "noise", " | ".join(lines)[:300])
    if case.says is not None and case.says not in text:
        return Outcome(case.name, case.group, "wrong", f"not the error due: {lines[-1] if lines else ''}"[:300])
    return Outcome(case.name, case.group, "pass", lines[0][:200] if lines else "")


# ------------------------------------------------------------------------------------------ inputs
def write_wav(path: Path, y: np.ndarray, sr: int = 16000, subtype: str | None = None) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, sr, subtype=subtype)
    return path


def tone(seconds: float, sr: int = 16000, f: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def write_video(path: Path, num_frames: int, fps=10, size=(32, 48)) -> Path:
    from vitmusic.data.videowriter import write_video as wv

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(num_frames).integers(0, 255, (num_frames, *size, 3), dtype=np.uint8)
    return wv(path, frames, fps)


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def absent(*paths: Path) -> Callable[[], str | None]:
    def check():
        for p in paths:
            if p.exists():
                return f"left {p}"
        return None
    return check


def make_piece(root: Path, number: int, name: str, insts: list[str], seconds: float, video: bytes | None = None,
               mix: bytes | None = None) -> Path:
    from vitmusic.data.urmp import mix_file_name, piece_folder_name, stem_file_name, video_file_name

    folder = root / piece_folder_name(number, name, insts)
    folder.mkdir(parents=True, exist_ok=True)
    y = tone(seconds, 8000)
    if mix is None:
        write_wav(folder / mix_file_name(folder), y, 8000)
    else:
        (folder / mix_file_name(folder)).write_bytes(mix)
    for k, code in enumerate(insts, start=1):
        write_wav(folder / stem_file_name("AuSep", k, code, number, name), y, 8000)
    if video is not None:
        (folder / video_file_name(folder)).write_bytes(video)
    return folder
