"""Loading the frozen models a run config names, and checking them against what a run was trained with.

The one place that turns a config's ``encoder:`` / ``generator:`` sections into loaded models: generation
(both paths) and training (:mod:`vitmusic.training.tasks`) load through it, so they get the same ids, kinds,
revisions and LoRA setup.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from vitmusic.config import Config
from vitmusic.errors import ConfigError, DataError

__all__ = [
    "ENCODER_KEYS",
    "GENERATOR_KEYS",
    "load_run_encoder",
    "load_run_models",
    "lora_options",
    "mismatches",
]

# fingerprint fields that decide what the frozen models compute; anything else (e.g. a processor's JSON
# layout) may change with library versions without changing the outputs
ENCODER_KEYS = ("kind", "name_or_path", "revision", "weights_sha256", "output", "frames_per_step", "lora")
GENERATOR_KEYS = ("id", "kind", "revision", "config_sha256", "entry", "text_prompt", "cond_dim")


def mismatches(stored: dict[str, Any], loaded: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """``"key: trained with X, loaded Y"`` for every ``keys`` entry the stored fingerprint has and the loaded differs in."""
    return [f"{k}: trained with {stored.get(k)!r}, loaded {loaded.get(k)!r}" for k in keys
            if k in stored and stored.get(k) != loaded.get(k)]


def lora_options(config: Config) -> dict[str, Any] | None:
    """The LoRA dict :func:`~vitmusic.encoders.load_encoder` takes, or None when ``encoder.lora.rank == 0``.

    The adapters' initialisation is seeded with ``train.seed`` (part of the run's seed).
    """
    lora = config.encoder.lora
    if lora.rank == 0:
        return None
    return {"r": lora.rank, "alpha": lora.alpha, "dropout": lora.dropout, "seed": config.train.seed}


def load_run_encoder(
    config: Config,
    device: str | torch.device | None = None,
    *,
    adapters: str | os.PathLike | bool | None = None,
):
    """The encoder a run config names (same id, kind, revision and rate as training).

    Args:
        config: the run config.
        device: where to put it.
        adapters: what a run with ``encoder.lora.rank > 0`` gets: a folder (the trained
            ``encoder_adapters.safetensors`` in it, loaded, then frozen: generation), ``True`` (fresh trainable
            adapters, seeded: training), ``False`` (no adapters: the plain frozen encoder). Ignored when the
            rank is 0.

    Raises:
        ConfigError: a LoRA run without its adapters, or an adapter file that is missing or does not fit.
    """
    from vitmusic.encoders import load_encoder
    from vitmusic.encoders.lora import load_adapters

    e = config.encoder
    lora = lora_options(config) if adapters is not False else None
    if lora is not None and adapters is None:
        raise ConfigError(f"this run trained encoder LoRA adapters (encoder.lora.rank={e.lora.rank}): load it "
                          "from its run folder (load_pipeline / --checkpoint RUN)")
    encoder = load_encoder(e.name, kind=e.kind, revision=e.revision, rate_hz=e.rate_hz, lora=lora, device=device)
    if lora is not None and adapters is not True:
        try:
            load_adapters(encoder, adapters)
        except DataError as exc:
            raise ConfigError(str(exc)) from exc
        encoder.freeze()
    return encoder


def load_run_models(
    config: Config,
    device: str | torch.device | None = None,
    *,
    adapters: str | os.PathLike | bool | None = None,
):
    """The encoder (:func:`load_run_encoder`, same ``adapters``) and the MusicGen generator a run config names.

    Returns:
        ``(encoder, generator)``, frozen except fresh adapters.

    Raises:
        ConfigError: a LoRA run without its adapters, or an adapter file that is missing or does not fit.
    """
    from vitmusic.generators.musicgen.model import load_generator

    encoder = load_run_encoder(config, device, adapters=adapters)
    g = config.generator
    generator = load_generator(g.name, kind=g.kind, revision=g.revision, entry=g.entry, text_prompt=g.text_prompt)
    return encoder, generator.to(device) if device is not None else generator
