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
    assert runs.read_model_config(tmp_path) == {"kind": "linear", "extra": {"a": 1}}
    back = nn.Linear(3, 2)
    back.load_state_dict(runs.load_weights(tmp_path))
    assert torch.equal(back.weight, module.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "trainer_state.json"]
    with pytest.raises(TypeError):  # nothing written for a config that is not JSON
        runs.save_module(module, tmp_path / "bad", {"x": object()})
    assert not (tmp_path / "bad" / runs.WEIGHTS_NAME).exists()


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
