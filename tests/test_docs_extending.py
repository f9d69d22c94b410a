"""docs/extending.md's worked example runs: a toy model kind in one module plus one registration, trained,
generated, ablated and evaluated through the command line, with nothing of vitmusic changed."""

import csv
import json
import re
import sys
from pathlib import Path

import pytest
import soundfile as sf

from vitmusic import cli, plugins

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"


def doc_files(text: str) -> dict[str, str]:
    """The code blocks of a docs page marked ``<!-- file: NAME -->``."""
    return {m.group(1): m.group(2) for m in re.finditer(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", text, re.S)}


@pytest.fixture
def fresh_registry(monkeypatch, no_plugins_env):
    """The test's plug-ins do not outlive it."""
    monkeypatch.setattr(plugins, "_KINDS", dict(plugins._KINDS))
    monkeypatch.setattr(plugins, "_LOADED", dict(plugins._LOADED))
    yield
    sys.modules.pop("vitmusic_plugin_toy_kind", None)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """6 synthetic pieces of 2 s, one clip each: 3 train, 1 val, 2 test pieces."""
    from bench_helpers import tiny_prepared

    return tiny_prepared(tmp_path_factory.mktemp("toy_data"), seed=2, duration_s=2.0)


def test_docs_name_the_files():
    files = doc_files(DOC.read_text())
    assert set(files) == {"toy_kind.py", "toy.yaml", "toy_experiment.yaml", "rms_metric.py"}
    assert files["toy_kind.py"].count("register_kind(") == 1  # one registration


@pytest.mark.slow
def test_toy_kind_from_the_docs(tmp_path, monkeypatch, prepared, capsys, fresh_registry):
    from vitmusic.data.manifest import read_manifest

    for name, text in doc_files(DOC.read_text()).items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    data = f"data.manifest={prepared}"
    # without the plug-in the kind is unknown: one line, exit 2
    assert cli.main(["train", "--config", "toy.yaml", data, "--no-progress"]) == 2
    assert "registered model kind" in capsys.readouterr().err

    plug = ["--plugin", "toy_kind.py"]
    assert cli.main([*plug, "train", "--config", "toy.yaml", data, "--no-progress"]) == 0
    final = tmp_path / "runs" / "toy" / "final"
    meta = json.loads((final / "config.json").read_text())
    assert meta["extra"]["config"]["task"] == "toy" and meta["extra"]["config"]["kind_options"] == {"fps": 4.0}
    history = json.loads((tmp_path / "runs" / "toy" / "history.json").read_text())
    losses = [h["loss"] for h in history if "loss" in h]
    assert losses[-1] < losses[0]  # the toy learns the pitch from the colours

    test = read_manifest(prepared, split="test")
    assert cli.main([*plug, "generate", "--video", test[0]["video"], "--checkpoint", "runs/toy", "--out", "toy.wav",
                     "--no-progress"]) == 0
    y, sr = sf.read("toy.wav")
    assert sr == 16000 and abs(len(y) / sr - 2.0) < 0.05 and abs(y).max() > 0.1
    assert cli.main([*plug, "generate", "--video", test[0]["video"], "--checkpoint", "runs/toy", "--out", "x.wav",
                     "--synth", "builtin"]) == 2  # an option the toy's pipeline does not take
    assert "not an option" in capsys.readouterr().err

    assert cli.main([*plug, "ablate", "toy_experiment.yaml", data, "--out", "runs/ablate/toy", "--no-progress"]) == 0
    out = tmp_path / "runs" / "ablate" / "toy"
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cos = {(r["variant"], r["seed"]) for r in rows if r["metric"] == "chroma.cosine"}
    assert cos == {(v, s) for v in ("model", "slow", "shuffled") for s in ("0", "1", "all")}
    pieces = {c["clip_id"]: c["piece"] for c in read_manifest(prepared)}
    sources = json.loads((out / "shuffled" / "seed1" / "systems.json").read_text())["clips"]
    assert all(pieces[c["source"]] != pieces[c["clip_id"]] for c in sources)
    assert not (out / "shuffled" / "seed0" / "run").exists()  # the control used the model's run
    assert (out / "slow" / "seed0" / "run" / "final").is_dir()  # kind_options.fps=2 trained its own

    assert cli.main(["evaluate", "--gen", str(out / "model" / "seed0" / "generated"), "--manifest", str(prepared),
                     "--out", "eval/toy", "--metrics", "chroma", "--quiet"]) == 0
    summary = json.loads((tmp_path / "eval" / "toy" / "summary.json").read_text())
    assert summary["metrics"]["chroma.cosine"]["n"] == 2
