"""The demo's output, produced once per test session and shared by test_demo.py and test_notebook.py.

Both modules call :func:`demo_output` from their session fixtures; the first call runs ``vitmusic demo`` into
the session's base temp folder, later calls find its ``report.md`` and reuse it (no conftest needed).
"""

import contextlib
import io
from pathlib import Path

from vitmusic import cli


def demo_output(tmp_path_factory) -> tuple[Path, str]:
    """(the demo folder, what the CLI printed on stdout) -- the demo runs at most once per session."""
    out = tmp_path_factory.getbasetemp() / "vitmusic_demo"
    log = out.parent / "vitmusic_demo.stdout"
    if not (out / "report.md").is_file():
        buf = io.StringIO()  # presets go to the session's VITMUSIC_CACHE (tests/conftest.py)
        with contextlib.redirect_stdout(buf):
            code = cli.main(["demo", "--out", str(out), "--no-progress"])
        assert code == 0, buf.getvalue()
        log.write_text(buf.getvalue())
    return out, log.read_text()
