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
    kind: str | None = None  # "videomae" | "vit" | "clip"; inferred from the model config when unset
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
    """The whole run configuration (``task`` picks what trains: the MusicGen projection or the notes head)."""

    task: str = "musicgen"  # "musicgen" | "transcription" | "diffusion"
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    transcription: TranscriptionConfig = field(default_factory=TranscriptionConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)


_CHOICES: dict[str, tuple[str, ...]] = {
    "task": ("musicgen", "transcription", "diffusion"),
    "diffusion.schedule": ("cosine", "linear"),
    "transcription.synth": ("builtin", "fluidsynth", "diffusion"),
    "projection.kind": ("linear", "mlp", "transformer", "pca"),
    "generator.entry": ("encoder_outputs", "inputs_embeds"),
    "train.mixed_precision": ("no", "fp16", "bf16"),
    "train.log_with": ("tensorboard", "none"),
}
_POSITIVE = (
    "encoder.rate_hz",
    "projection.hidden_dim",
    "projection.num_layers",
    "projection.num_heads",
    "projection.stride",
    "train.lr",
    "train.batch_size",
    "train.grad_accum",
    "train.max_steps",
    "train.eval_every",
    "train.save_every",
    "train.log_every",
    "extract.batch_size",
    "extract.shard_size",
    "transcription.hidden_dim",
    "transcription.num_layers",
    "transcription.kernel_size",
    "transcription.num_pitches",
    "transcription.onset_pos_weight",
    "transcription.sample_rate",
    "diffusion.sample_rate",
    "diffusion.n_fft",
    "diffusion.hop_length",
    "diffusion.n_mels",
    "diffusion.fmax_hz",
    "diffusion.num_pitches",
    "diffusion.hidden_dim",
    "diffusion.num_layers",
    "diffusion.kernel_size",
    "diffusion.dilation_cycle",
    "diffusion.train_timesteps",
    "diffusion.segment_s",
    "diffusion.sample_steps",
    "diffusion.griffin_lim_iters",
)


def _get(config: Config, dotted: str) -> Any:
    obj: Any = config
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def validate(config: Config) -> Config:
    """Check values that the type system cannot (choices, ranges); raise :class:`ConfigError`."""
    for key, choices in _CHOICES.items():
        value = _get(config, key)
        if value not in choices:
            raise ConfigError(f"config key '{key}' must be one of {', '.join(choices)}; got {value!r}")
    for key in _POSITIVE:
        if not _get(config, key) > 0:
            raise ConfigError(f"config key '{key}' must be > 0; got {_get(config, key)!r}")
    for key in ("transcription.frame_onsets", "train.warmup_steps", "train.weight_decay", "train.min_lr_ratio", "train.num_workers"):
        if _get(config, key) < 0:
            raise ConfigError(f"config key '{key}' must be >= 0; got {_get(config, key)!r}")
    for key in ("generator.cond_dropout", "projection.dropout", "encoder.lora.dropout", "transcription.dropout",
                "transcription.onset_threshold", "transcription.frame_threshold", "transcription.offset_threshold"):
        if not 0.0 <= _get(config, key) < 1.0:
            raise ConfigError(f"config key '{key}' must be in [0, 1); got {_get(config, key)!r}")
    d = config.diffusion
    if not 0.0 <= d.fmin_hz < d.fmax_hz <= d.sample_rate / 2:
        raise ConfigError(f"config keys 'diffusion.fmin_hz' < 'diffusion.fmax_hz' <= sample_rate / 2 must hold; "
                          f"got {d.fmin_hz}, {d.fmax_hz} at {d.sample_rate} Hz")
    if not d.db_min < d.db_max:
        raise ConfigError(f"config key 'diffusion.db_min' must be < 'diffusion.db_max'; got {d.db_min}, {d.db_max}")
    if d.kernel_size % 2 == 0:
        raise ConfigError(f"config key 'diffusion.kernel_size' must be odd; got {d.kernel_size}")
    if not 0.0 <= d.eta <= 1.0:
        raise ConfigError(f"config key 'diffusion.eta' must be in [0, 1]; got {d.eta!r}")
    if config.encoder.lora.rank < 0:
        raise ConfigError(f"config key 'encoder.lora.rank' must be >= 0; got {config.encoder.lora.rank}")
    return config


def _one_line(e: Exception) -> str:
    """OmegaConf's messages are multi-line with a 'full_key:' trailer; keep the first line and the key."""
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

    key = getattr(e, "full_key", None) if isinstance(e, OmegaConfBaseException) else None
    if isinstance(e, (ConfigKeyError, AttributeError)) and key:
        return f"unknown config key '{key}'"
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"invalid value for config key '{key}': {first}" if key else f"invalid config: {first}"


def _quote_choice(override: str) -> str:
    """``train.mixed_precision=no`` keeps the string ``no``: a choice value is taken verbatim, not as YAML.

    (YAML 1.1, which OmegaConf parses dotlist values with, reads ``no``/``off``/``yes`` as booleans.)
    """
    key, _, value = override.partition("=")
    if key.strip() in _CHOICES and value and value[0] not in "'\"":
        return f"{key}={json.dumps(value)}"
    return override


def _yaml_bools_as_choices(layer: Any) -> Any:
    """In a YAML file, ``mixed_precision: no`` parses as ``False``: map it back to the choice ``no``.

    Only for keys with a fixed set of string choices that contain ``no`` (``False``) or ``yes`` (``True``);
    any other boolean there is left for :func:`validate` to reject.
    """
    from omegaconf import OmegaConf

    for key, choices in _CHOICES.items():
        value = OmegaConf.select(layer, key, default=None)
        if isinstance(value, bool) and ("yes" if value else "no") in choices:
            OmegaConf.update(layer, key, "yes" if value else "no", merge=False)
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
        layers.append((str(p), _yaml_bools_as_choices(layer)))
    bad = [o for o in overrides if "=" not in o or o.startswith("=")]
    if bad:
        raise ConfigError(f"override {bad[0]!r} is not of the form key.sub=value")
    if overrides:
        try:
            layers.append(("overrides", OmegaConf.from_dotlist([_quote_choice(o) for o in overrides])))
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
