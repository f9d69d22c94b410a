"""The Python API: ``import vitmusic`` stays light, and every snippet of docs/api.md runs."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vitmusic
from vitmusic import cli

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"


def test_import_vitmusic_is_light():
    code = "import sys, vitmusic; vitmusic.__version__; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_api_names():
    for name in ("load_pipeline", "frames", "load_encoder", "embed_video", "evaluate", "ModelKind", "System",
                 "SystemContext", "register_kind", "load_plugins"):
        assert name in dir(vitmusic) and callable(getattr(vitmusic, name))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vitmusic.nope  # noqa: B018


def test_load_pipeline_refuses_unknown_options(tmp_path):
    from vitmusic.errors import ConfigError

    with pytest.raises(ConfigError, match="checkpoint not found"):
        vitmusic.load_pipeline(tmp_path / "nope")


def doc_snippets(text: str) -> list[str]:
    return re.findall(r"<!-- run -->\n```python\n(.*?)```", text, re.S)


@pytest.mark.slow
def test_docs_api_snippets_run(tmp_path, monkeypatch):
    from vitmusic.data.manifest import prepare_manifest
    from vitmusic.data.synth import generate_benchmark

    folders = generate_benchmark(tmp_path / "urmp", 4, seed=3, duration_s=2.0, source="melodies", progress=False,
                                 plot=False, width_per_player=64, height=96)
    split = tmp_path / "split.csv"
    split.write_text("piece,split\n" + "".join(f"{f.name},{s}\n" for f, s in
                                               zip(folders, ["train", "train", "val", "test"])))
    prepare_manifest(tmp_path / "urmp", tmp_path / "prepared", 2.0, split_file=split, plot=False, progress=False)
    shutil.copy(next(folders[0].glob("Vid_*.mp4")), tmp_path / "Vid_01_Jupiter_vn_vc.mp4")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--config", str(ROOT / "configs" / "tiny-midi.yaml"), "data.manifest=prepared",
                     "extract.cache_dir=cache", "train.output_dir=runs/tiny-midi", "train.max_steps=3",
                     "train.eval_every=3", "train.save_every=3", "train.log_with=none", "transcription.hidden_dim=16",
                     "transcription.sample_rate=16000", "--no-progress"]) == 0
    snippets = doc_snippets(DOC.read_text())
    assert len(snippets) == 4 and "three lines" in DOC.read_text()
    namespace: dict = {}
    for code in snippets:
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 -- the documented code, as a user runs it
    pipe = namespace["pipe"]
    assert len(namespace["audio"]) == round(2.0 * pipe.sample_rate)
    assert Path("jupiter.mid").is_file() and namespace["notes"].instruments == ["vn", "vc"]
    assert namespace["emb"].embeds.shape[:2] == namespace["emb"].mask.shape
    assert namespace["summary"]["metrics"]["chroma.cosine"]["n"] == 1
