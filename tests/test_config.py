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
        ("train.max_steps=0", "'train.max_steps' must be in [1, 1000000000]"),
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr=inf", "'train.lr' must be a finite number; got inf"),
        ("train.lr=1e30", "'train.lr' must be in (0, 1]; got 1e+30"),
        ("train.weight_decay=nan", "'train.weight_decay' must be a finite number"),
        ("train.weight_decay=inf", "'train.weight_decay' must be a finite number"),
        ("train.max_grad_norm=nan", "'train.max_grad_norm' must be a finite number"),
        ("train.min_lr_ratio=nan", "'train.min_lr_ratio' must be a finite number"),
        ("train.min_lr_ratio=2", "'train.min_lr_ratio' must be in [0, 1]"),
        ("generate.guidance_scale=nan", "'generate.guidance_scale' must be a finite number"),
        ("generate.seed=-1", "'generate.seed' must be in [0, 2**32 - 1]; got -1"),
        ("train.seed=-1", "'train.seed' must be in [0, 2**32 - 1]"),
        (f"train.seed={2**64}", "'train.seed' must be in [0, 2**32 - 1]"),
        ("projection.hidden_dim=1000000000", "'projection.hidden_dim' must be in [1, 65536]"),
        ("projection.hidden_dim=1e9", "'projection.hidden_dim'"),
        ("encoder.rate_hz=1e9", "'encoder.rate_hz' must be in (0, 240]"),
        ("encoder.rate_hz=inf", "'encoder.rate_hz' must be a finite number"),
        ("generate.window_s=0", "'generate.window_s' must be in (0, 40]"),
        ("generate.window_s=nan", "'generate.window_s' must be a finite number"),
        ("generate.context_s=12", "'generate.context_s' must be < 'generate.window_s'"),
        ("generate.top_k=-1", "'generate.top_k' must be in [0, 65536]"),
        (f"train.max_steps={2**63}", "'train.max_steps' must be in [1, 1000000000]"),
        ("transcription.kernel_size=4", "'transcription.kernel_size' must be odd"),
        ("transcription.min_midi=100", "'transcription.min_midi' + 'transcription.num_pitches' must be <= 128"),
    ],
)
def test_impossible_settings_are_refused_naming_the_key_and_range(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(overrides=[override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_every_numeric_key_has_a_range_and_the_doc_lists_them():
    from vitmusic.config import _RANGES, _numeric_fields, range_text

    numeric = {k for k, _ in _numeric_fields(Config())} | {"data.max_clips", "projection.n_components"}
    assert numeric == set(_RANGES)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    for key in _RANGES:
        assert f"`{key}` | {range_text(key)}" in doc, key


def test_the_edges_of_a_range_are_accepted():
    cfg = load_config(overrides=["train.lr=1", "train.weight_decay=1", "train.seed=4294967295", "generate.top_k=0",
                                 "generate.window_s=40", "generate.context_s=0", "encoder.rate_hz=240"])
    assert cfg.train.lr == 1.0 and cfg.train.seed == 2**32 - 1


@pytest.mark.parametrize("text", ["0755", "run #2", "yes", "1e3", "no", "~", "True", "1_000", "a: b", "[x]", "{y}",
                                  "é #ü"])
def test_string_keys_keep_the_text_typed(text):
    cfg = load_config(overrides=[f"train.output_dir={text}", f"data.manifest={text}", f"generator.text_prompt={text}"])
    assert cfg.train.output_dir == text and cfg.data.manifest == text and cfg.generator.text_prompt == text


def test_string_keys_quotes_null_and_interpolation():
    assert load_config(overrides=["train.output_dir='run #2'"]).train.output_dir == "run #2"
    assert load_config(overrides=["encoder.kind=null"]).encoder.kind is None
    assert load_config(overrides=["train.output_dir=null"]).train.output_dir == "null"  # a str key: never None
    cfg = load_config(overrides=["data.manifest=prep", "train.output_dir=${data.manifest}/run"])
    assert cfg.train.output_dir == "prep/run"
    assert load_config(overrides=["train.lr=1e-3"]).train.lr == 1e-3  # numbers are still YAML


def test_string_keys_in_a_yaml_file_keep_their_text(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("data:\n  manifest: 1e3\ntrain:\n  output_dir: 0755\n  lr: 1e-3\nencoder:\n  kind: ~\n"
                    "  revision:\n")
    cfg = load_config(path)
    assert (cfg.data.manifest, cfg.train.output_dir, cfg.train.lr) == ("1e3", "0755", 1e-3)
    assert cfg.encoder.kind is None and cfg.encoder.revision is None


def test_cli_writes_the_run_where_the_text_says(tmp_path, monkeypatch, capsys):
    """train.output_dir=0755 is the folder 0755 (not 493/): the preflight names it when the manifest is missing."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--config", str(CONFIGS / "tiny.yaml"), "train.output_dir=0755",
                     "data.manifest=run #2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "run #2" in err and "\n" not in err.strip()
