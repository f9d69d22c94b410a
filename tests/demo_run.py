"""The demo's output, produced once per test session and shared by test_demo.py and test_notebook.py.

Both modules call :func:`demo_output` from their session fixtures; the first call runs ``vitmusic demo`` into
the session's base temp folder, later calls find its ``report.md`` and reuse it (no conftest needed).
"""

import contextlib
import dataclasses
import io
from pathlib import Path

from vitmusic import cli
from vitmusic.workflow import demo
from vitmusic.workflow.demo import MidiSettings

# the demo's code path on fewer pieces and training steps (the default takes minutes): 10 pieces, 7 train,
# 1 val, 2 test (4 test clips); the MIDI head trains 60 steps
SMALL = dataclasses.replace(demo.DemoSettings(), pieces=10, midi=MidiSettings(steps=60))


def demo_output(tmp_path_factory) -> tuple[Path, str]:
    """(the demo folder, what the CLI printed on stdout) -- the demo runs at most once per session."""
    out = tmp_path_factory.getbasetemp() / "vitmusic_demo"
    log = out.parent / "vitmusic_demo.stdout"
    if not (out / "report.md").is_file():
        code, stdout = run_small_demo(out)
        assert code == 0, stdout
        log.write_text(stdout)
    return out, log.read_text()


def run_small_demo(out: Path) -> tuple[int, str]:
    """``vitmusic demo --out OUT`` with :data:`SMALL` in place of the default settings: (exit code, stdout)."""
    old = demo.DEFAULT_SETTINGS  # presets go to the session's VITMUSIC_CACHE (tests/conftest.py)
    demo.DEFAULT_SETTINGS = SMALL
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            code = cli.main(["demo", "--out", str(out), "--no-progress"])
    finally:
        demo.DEFAULT_SETTINGS = old
    return code, buf.getvalue()

