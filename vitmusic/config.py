"""Typed run configuration: dataclasses are the schema, YAML presets and ``key.sub=value`` overrides merge on.

The dataclass defaults below are the base configuration (VideoMAE-base -> MusicGen-small; ``configs/base.yaml``
spells the same values out for reading). A preset file such as ``configs/tiny.yaml`` is simply a set of overrides of that base: it lists only
the keys it changes, in the same nested layout. Command-line overrides (``train.lr=3e-4``) are applied last.

Merging is OmegaConf's structured merge, so an unknown key or a value of the wrong type fails at once; both
are reported as one-line :class:`~vitmusic.errors.ConfigError` messages, e.g. ``unknown config key
'train.lrr'``. Values with a fixed set of choices are checked by :func:`validate`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitmusic.errors import ConfigError


@dataclass
class DataConfig:
    """Which clips to use: a manifest written by ``vitmusic prepare`` and its split names."""

    manifest: str = ""  # path to manifest.jsonl or the folder holding it
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    max_clips: int | None = None  # cap per split (debugging)


@dataclass
class LoraConfig:
    """Low-rank adapters in the (otherwise frozen) vision encoder; ``rank == 0`` disables them."""

    rank: int = 0
    alpha: float = 16.0
    dropout: float = 0.0


@dataclass
class EncoderConfig:
    """The frozen pretrained vision encoder (a tiny preset name, hub id or local folder)."""

    name: str = "MCG-NJU/videomae-base"
    kind: str | None = None  # "videomae" | "vit" | "clip" | "efficientnet"; inferred from the model config when unset
    revision: str | None = None
    rate_hz: float = 4.0  # embeddings per second of video
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class ProjectionConfig:
    """The trainable bridge from encoder embeddings to the generator's conditioning width."""

    kind: str = "mlp"  # "linear" | "mlp" | "transformer" | "pca"
    hidden_dim: int = 1024
    num_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.1
    stride: int = 1  # temporal pooling of the embeddings before projecting
    n_components: int | None = None  # pca only: principal components kept (default min(in, out) dims)


@dataclass
class GeneratorConfig:
    """The frozen MusicGen model that the projection conditions."""

    name: str = "facebook/musicgen-small"
    kind: str | None = None  # "musicgen" | "musicgen-melody"; inferred when unset
    revision: str | None = None
    entry: str = "encoder_outputs"  # "encoder_outputs" | "inputs_embeds"
    text_prompt: str | None = None
    cond_dropout: float = 0.1  # probability of dropping a clip's conditioning (for classifier-free guidance)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping of one training run (``output_dir`` is the run folder)."""

    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 8
    grad_accum: int = 1
    max_steps: int = 2000  # optimizer steps
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    max_grad_norm: float = 1.0  # <= 0 disables clipping
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16"
    eval_every: int = 200
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    output_dir: str = "runs/default"
    log_with: str = "tensorboard"  # "tensorboard" | "none"
    num_workers: int = 0


@dataclass
class ExtractConfig:
    """The feature cache written by ``vitmusic extract`` and reused by ``vitmusic train``."""

    cache_dir: str = "cache/features"
    batch_size: int = 4  # clips encoded together
    shard_size: int = 64  # clips per on-disk shard (the unit of resumption)


@dataclass
class GenerateConfig:
    """Sampling settings for ``vitmusic generate``."""

    guidance_scale: float = 3.0
    window_s: float = 10.0
    context_s: float = 5.0
    top_k: int = 250
    seed: int = 0


@dataclass
class TranscriptionConfig:
    """The video -> notes path (``task: transcription``): head, decoding thresholds and synthesizer."""

    hidden_dim: int = 128
    num_layers: int = 3  # residual temporal convolutions
    kernel_size: int = 5  # odd, in embedding steps
    dropout: float = 0.1
    min_midi: int = 21  # pitch axis: num_pitches MIDI notes from min_midi (default the 88 piano keys)
    num_pitches: int = 88
    onset_pos_weight: float = 5.0  # weight of the rare positive steps in the onset/frame/offset losses
    onset_threshold: float = 0.5
    frame_threshold: float = 0.5
    offset_threshold: float = 0.5
    frame_onsets: int = 0  # > 0: a run of this many sounding steps without an onset peak is a note too
    slots: str = "equal"  # parts' crops: "equal" horizontal slots | "located" from motion (generators/midi/slots.py)
    synth: str = "builtin"  # "builtin" | "fluidsynth" | "diffusion"
    soundfont: str | None = None  # fluidsynth: .sf2 file (default: pretty_midi's bundled TimGM6mb.sf2)
    sample_rate: int = 44100  # builtin / fluidsynth output rate


@dataclass
class DiffusionConfig:
    """The MIDI -> log-mel diffusion synthesizer (``task: diffusion``): features, denoiser, schedule, sampling."""

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 256  # mel frames per second = sample_rate / hop_length
    n_mels: int = 64
    fmin_hz: float = 30.0
    fmax_hz: float = 8000.0  # <= sample_rate / 2
    db_min: float = -80.0  # log-mel magnitudes [db_min, db_max] dB map to [-1, 1]
    db_max: float = 20.0
    min_midi: int = 21  # piano-roll pitch axis: num_pitches MIDI notes from min_midi
    num_pitches: int = 88
    hidden_dim: int = 128
    num_layers: int = 8  # gated residual 1-D convolutions over time, dilations 1, 2, 4, ... cycling
    kernel_size: int = 3  # odd
    dilation_cycle: int = 4
    schedule: str = "cosine"  # "cosine" | "linear" beta schedule
    train_timesteps: int = 1000
    segment_s: float = 2.0  # training crops of the clips' stems
    sample_steps: int = 50  # DDIM steps at synthesis
    eta: float = 0.0  # DDIM stochasticity (0: deterministic given the seed)
    griffin_lim_iters: int = 32


@dataclass
class Config:
    """The whole run configuration (``task`` picks the model kind: what trains, how it generates)."""

    task: str = "musicgen"  # a registered model kind: "musicgen" | "transcription" | "diffusion" | a plug-in
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    transcription: TranscriptionConfig = field(default_factory=TranscriptionConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    # settings of a plug-in model kind (vitmusic.plugins), free-form here and checked by the kind itself
    kind_options: dict[str, Any] = field(default_factory=dict)


_CHOICES: dict[str, tuple[str, ...]] = {
    "diffusion.schedule": ("cosine", "linear"),
    "transcription.synth": ("builtin", "fluidsynth", "diffusion"),
    "transcription.slots": ("equal", "located"),
    "projection.kind": ("linear", "mlp", "transformer", "pca"),
    "generator.entry": ("encoder_outputs", "inputs_embeds"),
    "train.mixed_precision": ("no", "fp16", "bf16"),
    "train.log_with": ("tensorboard", "none"),
}
# Allowed ranges of the numeric keys: (low, high, low included, high included); None: unbounded on that side.
# Every float key must also be finite. The bounds keep a typo or an absurd value (lr=1e30, hidden_dim=1e9,
# max_steps=2**63, rate_hz=1e9) from training to a non-finite model, allocating terabytes or running forever;
# they are wide enough for any real setting. docs/reliability.md lists them.
_SEED = (0, 2**32 - 1, True, True)  # numpy / torch generators take 0 .. 2**32 - 1
_SIZE = (1, 65536, True, True)  # layer widths, batch sizes
_LAYERS = (1, 256, True, True)
_STEPS = (1, 10**9, True, True)
_UNIT = (0.0, 1.0, True, False)  # dropouts, probabilities, thresholds: [0, 1)
_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "data.max_clips": (1, None, True, True),
    "encoder.rate_hz": (0.0, 240.0, False, True),  # embeddings per second; video is decoded at (a multiple of) it
    "encoder.lora.rank": (0, 1024, True, True),
    "encoder.lora.alpha": (0.0, 1e4, False, True),
    "encoder.lora.dropout": _UNIT,
    "projection.hidden_dim": _SIZE,
    "projection.num_layers": _LAYERS,
    "projection.num_heads": _LAYERS,
    "projection.dropout": _UNIT,
    "projection.stride": (1, 1024, True, True),
    "projection.n_components": _SIZE,
    "generator.cond_dropout": _UNIT,
    # lr <= 1 and weight_decay <= 1 keep AdamW's decoupled decay factor (1 - lr * weight_decay) in [0, 1)
    "train.lr": (0.0, 1.0, False, True),
    "train.weight_decay": (0.0, 1.0, True, True),
    "train.batch_size": _SIZE,
    "train.grad_accum": _SIZE,
    "train.max_steps": _STEPS,
    "train.warmup_steps": (0, 10**9, True, True),
    "train.min_lr_ratio": (0.0, 1.0, True, True),
    "train.max_grad_norm": (None, None, True, True),  # finite; <= 0 disables clipping
    "train.eval_every": _STEPS,
    "train.save_every": _STEPS,
    "train.log_every": _STEPS,
    "train.seed": _SEED,
    "train.num_workers": (0, 256, True, True),
    "extract.batch_size": _SIZE,
    "extract.shard_size": (1, 10**6, True, True),
    "generate.guidance_scale": (0.0, 100.0, True, True),
    # MusicGen's 2048 positions at 50 codes/s are 40.96 s (it was trained on 30 s windows)
    "generate.window_s": (0.0, 40.0, False, True),
    "generate.context_s": (0.0, None, True, True),  # and < generate.window_s
    "generate.top_k": (0, 65536, True, True),  # 0: no top-k filtering
    "generate.seed": _SEED,
    "transcription.hidden_dim": _SIZE,
    "transcription.num_layers": _LAYERS,
    "transcription.kernel_size": (1, 255, True, True),
    "transcription.dropout": _UNIT,
    "transcription.min_midi": (0, 127, True, True),
    "transcription.num_pitches": (1, 128, True, True),
    "transcription.onset_pos_weight": (0.0, 1e4, False, True),
    "transcription.onset_threshold": _UNIT,
    "transcription.frame_threshold": _UNIT,
    "transcription.offset_threshold": _UNIT,
    "transcription.frame_onsets": (0, 10**4, True, True),
    "transcription.sample_rate": (4000, 384000, True, True),
    "diffusion.sample_rate": (4000, 384000, True, True),
    "diffusion.n_fft": (16, 65536, True, True),
    "diffusion.hop_length": (1, 65536, True, True),
    "diffusion.n_mels": (1, 1024, True, True),
    "diffusion.fmin_hz": (0.0, None, True, True),
    "diffusion.fmax_hz": (0.0, None, False, True),
    "diffusion.db_min": (None, None, True, True),
    "diffusion.db_max": (None, None, True, True),
    "diffusion.min_midi": (0, 127, True, True),
    "diffusion.num_pitches": (1, 128, True, True),
    "diffusion.hidden_dim": _SIZE,
    "diffusion.num_layers": _LAYERS,
    "diffusion.kernel_size": (1, 255, True, True),
    "diffusion.dilation_cycle": (1, 16, True, True),
    "diffusion.train_timesteps": (1, 10**5, True, True),
    "diffusion.segment_s": (0.0, 3600.0, False, True),
    "diffusion.sample_steps": (1, 10**5, True, True),
    "diffusion.eta": (0.0, 1.0, True, True),
    "diffusion.griffin_lim_iters": (1, 10**4, True, True),
}


def _get(config: Config, dotted: str) -> Any:
    obj: Any = config
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def range_text(key: str) -> str:
    """The allowed range of a numeric key in interval notation, e.g. ``(0, 1]`` or ``>= 0``."""
    lo, hi, lo_in, hi_in = _RANGES[key]

    def num(x: float) -> str:
        return f"{x:g}" if isinstance(x, float) else ("2**32 - 1" if x == 2**32 - 1 else str(x))

    if lo is None and hi is None:
        return "finite"
    if hi is None:
        return f"{'>=' if lo_in else '>'} {num(lo)}"
    if lo is None:
        return f"{'<=' if hi_in else '<'} {num(hi)}"
    return f"{'[' if lo_in else '('}{num(lo)}, {num(hi)}{']' if hi_in else ')'}"


def _numeric_fields(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, value)`` of every int / float value of a config (bools excluded)."""
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out += _numeric_fields(value, f"{prefix}{f.name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((f"{prefix}{f.name}", value))
    return out


def _check_range(key: str, value: float) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}' must be a finite number; got {value!r}")
    if key not in _RANGES:
        return
    lo, hi, lo_in, hi_in = _RANGES[key]
    ok = (lo is None or (value >= lo if lo_in else value > lo)) and (hi is None or (value <= hi if hi_in else value < hi))
    if not ok:
        raise ConfigError(f"config key '{key}' must be {'in ' if lo is not None and hi is not None else ''}"
                          f"{range_text(key)}; got {value!r}")


def validate(config: Config) -> Config:
    """Check values that the type system cannot (choices, finiteness, ranges); raise :class:`ConfigError`.

    The message names the key and its allowed range, e.g. ``config key 'train.lr' must be in (0, 1]; got 1e+30``.
    """
    from vitmusic.plugins import ENV_VAR, kind_names

    if config.task not in kind_names():
        raise ConfigError(f"config key 'task' must be a registered model kind ({', '.join(kind_names())}); got "
                          f"{config.task!r} (load a plug-in kind with --plugin MODULE or {ENV_VAR}=MODULE)")
    for key, choices in _CHOICES.items():
        value = _get(config, key)
        if value not in choices:
            raise ConfigError(f"config key '{key}' must be one of {', '.join(choices)}; got {value!r}")
    for key, value in _numeric_fields(config):
        _check_range(key, value)
    g = config.generate
    if not g.context_s < g.window_s:
        raise ConfigError(f"config key 'generate.context_s' must be < 'generate.window_s'; got {g.context_s}, "
                          f"{g.window_s}")
    d = config.diffusion
    if not 0.0 <= d.fmin_hz < d.fmax_hz <= d.sample_rate / 2:
        raise ConfigError(f"config keys 'diffusion.fmin_hz' < 'diffusion.fmax_hz' <= sample_rate / 2 must hold; "
                          f"got {d.fmin_hz}, {d.fmax_hz} at {d.sample_rate} Hz")
    if not d.db_min < d.db_max:
        raise ConfigError(f"config key 'diffusion.db_min' must be < 'diffusion.db_max'; got {d.db_min}, {d.db_max}")
    for key in ("diffusion.kernel_size", "transcription.kernel_size"):
        if _get(config, key) % 2 == 0:
            raise ConfigError(f"config key '{key}' must be odd; got {_get(config, key)}")
    for section in ("transcription", "diffusion"):
        s = getattr(config, section)
        if s.min_midi + s.num_pitches > 128:
            raise ConfigError(f"config keys '{section}.min_midi' + '{section}.num_pitches' must be <= 128 (MIDI "
                              f"notes 0..127); got {s.min_midi} + {s.num_pitches}")
    return config


def _one_line(e: Exception) -> str:
    """OmegaConf's messages are multi-line with a 'full_key:' trailer; keep the first line and the key."""
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

    key = getattr(e, "full_key", None) if isinstance(e, OmegaConfBaseException) else None
    if isinstance(e, (ConfigKeyError, AttributeError)) and key:
        return f"unknown config key '{key}'"
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"invalid value for config key '{key}': {first}" if key else f"invalid config: {first}"


def _string_keys(cls: type = Config, prefix: str = "") -> dict[str, bool]:
    """``{dotted key: may be None}`` of every string-typed key of the schema (``str`` or ``str | None``)."""
    import typing

    out: dict[str, bool] = {}
    for name, hint in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(hint):
            out.update(_string_keys(hint, f"{prefix}{name}."))
        elif hint is str or set(typing.get_args(hint)) == {str, type(None)}:
            out[f"{prefix}{name}"] = hint is not str
    return out


_STRING_KEYS = _string_keys()


def _is_quoted(text: str) -> bool:
    return len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""


def _verbatim_string(override: str) -> str:
    """``train.output_dir=0755`` keeps the text ``0755``: a string-typed key takes the value as typed.

    OmegaConf parses dotlist values as YAML 1.1, which reads ``0755`` as 493, ``1e3`` as 1000.0, ``yes`` /
    ``no`` as booleans and cuts ``run #2`` at the comment. For a string key (``data.manifest``,
    ``train.output_dir``, ``train.mixed_precision``, ...) the value is quoted before parsing, so it arrives
    unchanged; a value already in quotes is left to YAML, and ``null`` still means None for a key that may be
    None (``encoder.kind=null``).
    """
    key, _, value = override.partition("=")
    key = key.strip()
    if key not in _STRING_KEYS or _is_quoted(value) or (_STRING_KEYS[key] and value == "null"):
        return override
    return f"{key}={json.dumps(value, ensure_ascii=False)}"


def _yaml_strings_verbatim(layer: Any, path: Path) -> Any:
    """In a YAML file, a string key keeps the text written: ``output_dir: 0755`` is ``"0755"``, not 493,
    ``mixed_precision: no`` is ``"no"``, not False (``null`` / ``~`` / nothing still mean None)."""
    import yaml
    from omegaconf import OmegaConf

    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # every scalar as its text
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return layer  # OmegaConf read it; leave the layer as it parsed it
    if not isinstance(raw, dict):
        return layer
    for key in _STRING_KEYS:
        value = OmegaConf.select(layer, key, default=None, throw_on_missing=False)
        if value is None or isinstance(value, str):
            continue
        text: Any = raw
        for part in key.split("."):
            text = text.get(part) if isinstance(text, dict) else None
        if isinstance(text, str):
            OmegaConf.update(layer, key, text, merge=False)
    return layer


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Config:
    """Build a :class:`Config`: schema defaults, then the YAML preset at ``path``, then dotlist overrides.

    Args:
        path: a YAML file of overrides (e.g. ``configs/tiny.yaml``); ``None`` keeps the defaults.
        overrides: ``key.sub=value`` strings, applied last (``train.lr=3e-4``, ``encoder.kind=null``).

    Returns:
        The merged and validated config.

    Raises:
        ConfigError: missing/unreadable YAML, unknown key, wrong type or invalid value (one-line message).
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = OmegaConf.structured(Config)
    layers = []
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            layer = OmegaConf.load(p)
        except Exception as e:  # yaml.YAMLError and friends
            raise ConfigError(f"cannot parse config file {p}: {str(e).splitlines()[0]}") from e
        if layer is None or not OmegaConf.is_dict(layer):
            raise ConfigError(f"config file {p} must hold a mapping of sections (data:, train:, ...)")
        layers.append((str(p), _yaml_strings_verbatim(layer, p)))
    bad = [o for o in overrides if "=" not in o or o.startswith("=")]
    if bad:
        raise ConfigError(f"override {bad[0]!r} is not of the form key.sub=value")
    if overrides:
        try:
            layers.append(("overrides", OmegaConf.from_dotlist([_verbatim_string(o) for o in overrides])))
        except OmegaConfBaseException as e:
            raise ConfigError(f"cannot parse overrides: {_one_line(e)}") from e
    return _merge_layers(base, layers)


def _merge_layers(base: Any, layers: Sequence[tuple[str, Any]]) -> Config:
    """Structured-merge ``layers`` (``(where, DictConfig)``) onto ``base`` and validate the result."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    merged = base
    for where, layer in layers:
        try:
            merged = OmegaConf.merge(merged, layer)
        except (OmegaConfBaseException, ValueError) as e:
            raise ConfigError(f"{_one_line(e)} (in {where})") from e
    try:
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(_one_line(e)) from e
    if not isinstance(config, Config):
        raise ConfigError(f"invalid config: expected a Config, got {type(config).__name__}")
    return validate(config)


def config_from_dict(data: dict[str, Any], where: str = "config dict") -> Config:
    """Rebuild a :class:`Config` from :func:`config_to_dict` output (e.g. the one stored in a checkpoint).

    The same checks as :func:`load_config` apply; ``where`` names the source in error messages.

    Raises:
        ConfigError: not a mapping, unknown key, wrong type or invalid value (one-line message).
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the config must be a mapping of sections, got {type(data).__name__}")
    try:
        layer = OmegaConf.create(data)
    except (OmegaConfBaseException, ValueError) as e:
        raise ConfigError(f"cannot read {where}: {_one_line(e)}") from e
    return _merge_layers(OmegaConf.structured(Config), [(where, layer)])


def config_to_dict(config: Config) -> dict[str, Any]:
    """A plain nested dict of the config (JSON/YAML serialisable)."""
    return dataclasses.asdict(config)


def config_to_yaml(config: Config) -> str:
    """The resolved config as YAML text (loadable again with :func:`load_config`)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(config))


def save_config(config: Config, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML, atomically; returns the path."""
    from vitmusic.atomic import atomic_write_text

    return atomic_write_text(path, config_to_yaml(config))


def flat_config(config: Config) -> dict[str, Any]:
    """``{"train.lr": 1e-4, ...}`` with scalar values only (for experiment trackers)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, d: dict[str, Any]) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            else:
                out[f"{prefix}{k}"] = "" if v is None else v

    walk("", config_to_dict(config))
    return out
