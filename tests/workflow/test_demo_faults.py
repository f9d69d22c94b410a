"""The demo after a fault in its first stage: an unfinished synthetic benchmark (synth_data.json says
``"complete": false``) is written again, not taken as done; a manifest prepared from it is prepared again."""

from __future__ import annotations

import dataclasses
import json

import pytest

from vitmusic.data.synth import writer
from vitmusic.workflow import demo

TINY = dataclasses.replace(demo.DemoSettings(), pieces=3, duration_s=2.0, clip_s=1.0, workers=1,
                           width_per_player=64, height=96, splits=("train", "val", "test"))


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".wav", ".txt", ".json")}


def test_an_unfinished_benchmark_is_finished_by_the_rerun(tmp_path, monkeypatch):
    reference = demo._benchmark(tmp_path / "ref", TINY, False)
    assert demo.benchmark_is_complete(reference, TINY)

    real = writer._make_piece

    def stops_at_3(out, number, **kw):  # a SIGTERM / full disk while the 3rd piece is written
        if number == 3:
            raise KeyboardInterrupt
        return real(out, number, **kw)

    monkeypatch.setattr(writer, "_make_piece", stops_at_3)
    root = tmp_path / "urmp"
    with pytest.raises(KeyboardInterrupt):
        demo._benchmark(root, TINY, False)
    monkeypatch.undo()
    doc = json.loads((root / "synth_data.json").read_text())
    assert doc["complete"] is False and len(doc["pieces"]) == 2  # what the old check took as finished
    assert not demo.benchmark_is_complete(root, TINY)
    # the old demo prepared this state (no test piece) and failed later; the rerun finishes the benchmark
    prepared = demo._prepare(root, tmp_path / "prepared", TINY)
    assert demo._benchmark(root, TINY, False) == root and demo.benchmark_is_complete(root, TINY)
    assert _files(root) == _files(reference)  # what an undisturbed run wrote
    demo._prepare(root, prepared, TINY)
    from vitmusic.data.manifest import read_manifest

    clips = read_manifest(prepared)
    assert {c["piece"] for c in clips} == {d.name for d in root.iterdir() if d.is_dir()}
    assert {c["split"] for c in clips} == {"train", "val", "test"}


def test_a_benchmark_of_other_settings_is_not_reused(tmp_path):
    root = demo._benchmark(tmp_path / "urmp", TINY, False)
    assert not demo.benchmark_is_complete(root, dataclasses.replace(TINY, seed=1))
    (root / "synth_data.json").write_text("{garbage")
    assert not demo.benchmark_is_complete(root, TINY)
