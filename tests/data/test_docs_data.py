"""docs/data.md's importer example runs as written, and layouts can come from installed packages."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vitmusic.data import layouts
from vitmusic.data.manifest import prepare_manifest, read_manifest
from vitmusic.errors import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def doc_example(marker: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"no python block after <!-- example: {marker} --> in {DOC}"
    return match.group(1)


@pytest.fixture
def clean_layouts():
    before = dict(layouts.LAYOUTS)
    yield
    layouts.LAYOUTS.clear()
    layouts.LAYOUTS.update(before)


def make_takes(root: Path) -> None:
    sr = 8000
    for take, insts in (("take01", ("piano", "harp")), ("take02", ("cello", "piano"))):
        d = root / take
        d.mkdir(parents=True)
        sf.write(d / f"{take}.wav", np.zeros(6 * sr, np.float32), sr)
        lines = ["instrument,audio,notes"]
        for inst in insts:
            sf.write(d / f"{inst}.wav", np.zeros(6 * sr, np.float32), sr)
            notes = f"{inst}_notes.csv" if inst != "harp" else ""
            if notes:
                (d / notes).write_text("0.5,60,1.0\n3.0,64,2.5\n")
            lines.append(f"{inst},{inst}.wav,{notes}")
        (d / "parts.csv").write_text("\n".join(lines) + "\n")


def test_the_documented_importer_runs(tmp_path, clean_layouts):
    exec(compile(doc_example("takes-layout"), str(DOC), "exec"), {"__name__": "docs_example"})
    assert "takes" in layouts.LAYOUTS
    root = tmp_path / "my_recordings"
    make_takes(root)
    assert layouts.detect_layout(root).name == "takes"
    result = prepare_manifest(root, tmp_path / "prepared", 2.0, layout="auto", plot=False)
    assert result.layout == "takes"
    clips = read_manifest(tmp_path / "prepared")
    assert len(clips) == 6 and clips[0]["instruments"] == ["acoustic-grand-piano", "orchestral-harp"]
    first = clips[0]
    assert first["video"] is None and first["stems"][1]["notes"] is None
    np.testing.assert_allclose(first["notes"][0], [[0.5, 261.625565, 1.0]], atol=1e-5)
    np.testing.assert_allclose(clips[1]["notes"][0], [[1.0, 329.627557, 1.0]], atol=1e-5)  # clipped at 4 s


def test_layouts_from_installed_packages(monkeypatch, clean_layouts, tmp_path):
    import importlib.metadata

    namespace: dict = {"__name__": "plugin"}
    exec(compile(doc_example("takes-layout").replace("register_layout(TakesLayout())", ""), str(DOC), "exec"),
         namespace)

    class EntryPoint:
        name, value = "takes", "my_package.layouts:TakesLayout"

        def load(self):
            return namespace["TakesLayout"]

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [EntryPoint()] if group == "vitmusic.layouts" else [])
    assert "takes" in layouts.layout_names() and layouts.get_layout("takes").name == "takes"
    with pytest.raises(ConfigError, match="unknown dataset layout 'nope'; known: auto, urmp, bach10, takes"):
        layouts.get_layout("nope")


def test_ambiguous_roots_and_bad_layouts(tmp_path, clean_layouts):
    from vitmusic.errors import DataError

    root = tmp_path / "mixed"
    (root / "01_Jupiter_vn").mkdir(parents=True)
    (root / "02-Chorale").mkdir()
    (root / "02-Chorale" / "02-Chorale-GTF0s.mat").write_bytes(b"")
    with pytest.raises(DataError, match="several dataset layouts \\(urmp, bach10\\); choose one with --layout"):
        layouts.detect_layout(root)
    with pytest.raises(ConfigError, match="not a dataset layout"):
        layouts.register_layout(object())
    with pytest.raises(ConfigError, match="already registered"):
        layouts.register_layout(type("Other", (), {"name": "urmp", "description": "", "detect": lambda self, r: False,
                                                   "discover": lambda self, r: []})())
