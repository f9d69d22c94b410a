"""The run / checkpoint format: model folders, final/ and step folders, atomic save and load of a module."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from vitmusic import runs
from vitmusic.errors import ConfigError, DataError


def _model(folder, seed=0, extra=None):
    torch.manual_seed(seed)
    module = nn.Linear(3, 2)
    runs.save_module(module, folder, {"kind": "linear", "extra": extra or {}})
    return module


def test_save_module_round_trip_and_keeps_other_files(tmp_path):
    (tmp_path / "trainer_state.json").write_text("{}")
    module = _model(tmp_path, extra={"a": 1})
    assert runs.has_model(tmp_path) and (tmp_path / "trainer_state.json").read_text() == "{}"
    config = runs.read_model_config(tmp_path)
    assert config == {"kind": "linear", "extra": {"a": 1},
                      runs.HASHES_KEY: {"model.safetensors": runs.file_sha256(tmp_path / "model.safetensors")}}
    back = nn.Linear(3, 2)
    back.load_state_dict(runs.load_weights(tmp_path))
    assert torch.equal(back.weight, module.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "trainer_state.json"]
    with pytest.raises(TypeError):  # nothing written for a config that is not JSON
        runs.save_module(module, tmp_path / "bad", {"x": object()})
    assert not (tmp_path / "bad" / runs.WEIGHTS_NAME).exists()


def test_the_same_weights_give_the_same_bytes(tmp_path):
    """safetensors writes its metadata mapping in a changing order; saved twice, a module must give the same
    file (its sha256 is recorded, so otherwise a re-save of the same weights reads as "changed since")."""
    from safetensors import safe_open

    torch.manual_seed(0)
    module = nn.Linear(3, 2)
    meta = {"kind": "linear", "format": "pt", "content": "test", "é": "ü"}
    files = set()
    for i in range(12):
        runs.save_module(module, tmp_path / str(i), {"kind": "linear"}, metadata=meta)
        files.add((tmp_path / str(i) / runs.WEIGHTS_NAME).read_bytes())
    assert len(files) == 1
    with safe_open(str(tmp_path / "0" / runs.WEIGHTS_NAME), framework="pt") as f:
        assert f.metadata() == meta and torch.equal(f.get_tensor("weight"), module.weight.detach())
    back = nn.Linear(3, 2)
    back.load_state_dict(runs.load_weights(tmp_path / "0"))
    assert torch.equal(back.weight, module.weight)


def test_read_errors(tmp_path):
    with pytest.raises(DataError, match="head config not found"):
        runs.read_model_config(tmp_path, what="head")
    (tmp_path / runs.CONFIG_NAME).write_text("[1, 2]")
    with pytest.raises(DataError, match="not a model config"):
        runs.read_model_config(tmp_path)
    (tmp_path / runs.CONFIG_NAME).write_text("{")
    with pytest.raises(DataError, match="unreadable model config"):
        runs.read_model_config(tmp_path)
    with pytest.raises(DataError, match="weights not found"):
        runs.load_weights(tmp_path)


def test_step_folders_and_resolution(tmp_path):
    run = tmp_path / "run"
    for step in (10, 2):
        _model(runs.step_dir(run, step))
    (run / "checkpoints" / ".step_12.tmp").mkdir()  # an unfinished one
    (run / "checkpoints" / "step_x").mkdir()
    assert [p.name for p in runs.list_steps(run)] == ["step_2", "step_10"]
    assert runs.step_of(run / "checkpoints" / "step_10") == 10 and runs.step_of("step_x") is None
    assert runs.list_steps(run, containing="trainer_state.json") == []
    with pytest.raises(ConfigError, match="no trained model in .*latest checkpoint is .*step_10"):
        runs.resolve_checkpoint(run)
    assert runs.resolve_checkpoint(run, latest_step=True) == runs.step_dir(run, 10)
    assert runs.resolve_checkpoint(runs.step_dir(run, 2)) == runs.step_dir(run, 2)
    _model(run / runs.FINAL_DIR)
    assert runs.resolve_checkpoint(run) == run / "final"
    with pytest.raises(ConfigError, match="checkpoint not found"):
        runs.resolve_checkpoint(tmp_path / "nope")


def test_read_run_needs_a_run_config(tmp_path):
    _model(tmp_path)
    with pytest.raises(ConfigError, match="no run config stored"):
        runs.read_run(tmp_path)
    from vitmusic.config import Config, config_to_dict

    config = json.loads((tmp_path / runs.CONFIG_NAME).read_text())
    config["extra"] = {"config": config_to_dict(Config()), "frozen_models": {"encoder": {"kind": "vit"}}}
    (tmp_path / runs.CONFIG_NAME).write_text(json.dumps(config))
    folder, cfg, frozen = runs.read_run(tmp_path)
    assert folder == tmp_path and cfg.task == "musicgen" and frozen == {"encoder": {"kind": "vit"}}


def _alter(path, scale=1.001):
    """Change a safetensors file's values, keeping names, shapes and dtypes (a valid file)."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    save_file({k: v * scale for k, v in state.items()}, str(path))


def test_altered_weights_are_refused_in_one_line_unless_accepted(tmp_path, caplog):
    import logging

    module = _model(tmp_path)
    _alter(tmp_path / runs.WEIGHTS_NAME)
    with pytest.raises(DataError) as e:
        runs.load_weights(tmp_path)
    msg = str(e.value)
    assert "model.safetensors: its content differs from the sha256 recorded" in msg and "\n" not in msg
    assert "--accept-changed-weights" in msg
    with caplog.at_level(logging.WARNING, logger="vitmusic"), runs.accept_changed_weights():
        state = runs.load_weights(tmp_path)
    assert torch.allclose(state["weight"], module.weight.detach() * 1.001)
    assert any("used anyway" in r.getMessage() for r in caplog.records)
    with pytest.raises(DataError):  # the acceptance ends with the block
        runs.load_weights(tmp_path)


def test_model_folders_of_older_versions_without_hashes_still_load(tmp_path):
    _model(tmp_path)
    config = runs.read_model_config(tmp_path)
    del config[runs.HASHES_KEY]
    (tmp_path / runs.CONFIG_NAME).write_text(json.dumps(config))
    _alter(tmp_path / runs.WEIGHTS_NAME)
    assert set(runs.load_weights(tmp_path)) == {"weight", "bias"}


def test_every_weights_file_of_the_folder_is_recorded(tmp_path):
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2)}, str(tmp_path / "encoder_adapters.safetensors"))  # written first by a LoRA run
    _model(tmp_path)
    hashes = runs.read_model_config(tmp_path)[runs.HASHES_KEY]
    assert set(hashes) == {"model.safetensors", "encoder_adapters.safetensors"}
    save_file({"a": torch.ones(2)}, str(tmp_path / "encoder_adapters.safetensors"))
    with pytest.raises(DataError, match="encoder_adapters.safetensors: its content differs"):
        runs.check_weights(tmp_path / "encoder_adapters.safetensors")


def test_run_lock_is_exclusive_and_leaves_nothing(tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    with runs.run_lock(run):
        assert runs.lock_holder(run) is not None
        child = subprocess.run([sys.executable, "-c", "import sys; from vitmusic import runs\n"
                                "with runs.run_lock(sys.argv[1]): pass", str(run)], capture_output=True, text=True)
        assert child.returncode == 1 and f"run folder {run} is in use by another training (process" in child.stderr
    assert not run.exists()  # created by the lock, nothing written: removed again
    run.mkdir()
    (run / "config.yaml").write_text("x")
    with runs.run_lock(run):
        pass
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"] and runs.lock_holder(run) is None
