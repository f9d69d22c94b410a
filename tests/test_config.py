"""Typed config: presets and dotlist overrides merge onto the schema; bad keys/types fail in one line."""

from pathlib import Path

import pytest

from vitmusic import cli
from vitmusic.config import Config, config_to_yaml, flat_config, load_config, save_config
from vitmusic.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_and_base_yaml_agree():
    assert load_config() == Config()
    assert load_config(CONFIGS / "base.yaml") == Config()


@pytest.mark.parametrize("preset", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_preset_loads(preset):
    cfg = load_config(CONFIGS / preset)
    assert isinstance(cfg, Config)


def test_preset_then_overrides(tmp_path):
    cfg = load_config(CONFIGS / "tiny.yaml", ["train.lr=0.5", "encoder.kind=vit", "data.max_clips=3"])
    assert cfg.encoder.name == "tiny-vit" and cfg.generator.name == "tiny-musicgen"  # from the preset
    assert cfg.train.lr == 0.5 and isinstance(cfg.train.lr, float)  # override wins
    assert cfg.encoder.kind == "vit" and cfg.data.max_clips == 3
    assert cfg.train.weight_decay == 0.0 and cfg.train.grad_accum == 1  # preset value / base default
    assert load_config(CONFIGS / "tiny.yaml", ["encoder.kind=null"]).encoder.kind is None


def test_resolved_config_round_trip(tmp_path):
    cfg = load_config(CONFIGS / "tiny.yaml", ["train.seed=7", "encoder.lora.rank=4"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(path) == cfg
    assert "seed: 7" in config_to_yaml(cfg)
    flat = flat_config(cfg)
    assert flat["train.seed"] == 7 and flat["encoder.lora.rank"] == 4 and flat["encoder.kind"] == ""


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lrr=1", "unknown config key 'train.lrr'"),
        ("trian.lr=1", "unknown config key 'trian'"),
        ("encoder.lora.rnk=2", "unknown config key 'encoder.lora.rnk'"),
        ("train.lr=fast", "invalid value for config key 'train.lr'"),
        ("train.batch_size=2.5", "invalid value for config key 'train.batch_size'"),
        ("train.mixed_precision=fp8", "'train.mixed_precision' must be one of no, fp16, bf16"),
        ("projection.kind=lstm", "'projection.kind' must be one of"),
        ("train.max_steps=0", "'train.max_steps' must be > 0"),
        ("generator.cond_dropout=1.5", "'generator.cond_dropout' must be in [0, 1)"),
        ("train.lr", "not of the form key.sub=value"),
    ],
)
def test_bad_overrides_are_one_line_config_errors(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(overrides=[override])
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        load_config(bad)
    flat = tmp_path / "flat.yaml"
    flat.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(flat)
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  batch_sise: 4\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'train.batch_sise' \(in .*typo.yaml\)"):
        load_config(typo)


@pytest.mark.parametrize("command", ["train", "extract"])
def test_cli_reports_config_errors_in_one_line(command, capsys):
    assert cli.main([command, "--config", str(CONFIGS / "tiny.yaml"), "train.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"vitmusic {command}: error: unknown config key 'train.lrr' (in overrides)"


def test_cli_missing_manifest_is_one_line(tmp_path, capsys):
    code = cli.main(["extract", "--config", str(CONFIGS / "tiny.yaml"), f"data.manifest={tmp_path / 'none'}",
                     f"extract.cache_dir={tmp_path / 'cache'}", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vitmusic extract: error: manifest not found") and "\n" not in err


@pytest.mark.parametrize("value", ["no", "fp16", "bf16", "'no'", '"no"'])
def test_choice_overrides_take_the_spelling_the_help_names(value):
    # YAML 1.1 (OmegaConf's dotlist parser) reads a bare `no` as False; a choice value is taken verbatim
    cfg = load_config(overrides=[f"train.mixed_precision={value}"])
    assert cfg.train.mixed_precision == value.strip("'\"")


def test_choice_no_in_a_yaml_file(tmp_path):
    path = tmp_path / "mp.yaml"
    path.write_text("train:\n  mixed_precision: no\n  log_with: none\n")
    assert load_config(path).train.mixed_precision == "no"
    path.write_text("projection:\n  kind: no\n")  # a boolean where `no` is no choice stays an error
    with pytest.raises(ConfigError, match="'projection.kind' must be one of"):
        load_config(path)
