"""notebooks/analysis.ipynb executes (nbclient, a kernel on this interpreter) on the demo's outputs."""

import json
import sys
from pathlib import Path

import pytest
from demo_run import demo_output

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analysis.ipynb"


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    return demo_output(tmp_path_factory)


def test_notebook_defines_no_logic():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "import vitmusic" in code or "from vitmusic" in code
    assert "def " not in code and "class " not in code and "lambda" not in code
    assert nb.cells[1].source.startswith("# parameters") and "VITMUSIC_RESULTS" in nb.cells[1].source


@pytest.mark.slow
def test_notebook_executes_on_demo_outputs(demo, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    out, _ = demo
    # a kernel spec for this very interpreter, so a fresh machine needs no `ipykernel install`
    spec = tmp_path / "jupyter" / "kernels" / "vitmusic-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "vitmusic (tests)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("VITMUSIC_RESULTS", str(out))
    monkeypatch.setenv("VITMUSIC_FIGURES", str(tmp_path / "figures"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="vitmusic-test", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert (tmp_path / "figures" / "results.png").stat().st_size > 0
    assert (tmp_path / "figures" / "per_clip.png").stat().st_size > 0
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # results, per-clip, loss curve
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert str(out) in text
