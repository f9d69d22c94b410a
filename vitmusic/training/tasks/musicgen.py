"""The video -> MusicGen task: a trainable projection conditions the frozen generator, from a cache.

Per batch (shapes): cached ``embeds [B, T, D]`` + ``mask [B, T]`` -> projection -> ``tokens [B, S, cond_dim]``
-> ``generator.teacher_forced(tokens, mask, codes [B, K, T_a])`` -> next-code logits ``[B, K, L, V]`` (the
generator builds the delay pattern) -> the loss, here (:func:`codebook_cross_entropy`): the cross-entropy of the
clip's own audio codes per codebook, averaged over the ``K`` codebooks (as audiocraft and transformers do). The
per-codebook values are logged next to it (``ce_codebook_<k>`` in ``history.json``). Only the projection trains; the vision encoder only
matters through the feature cache (its fingerprint is part of the cache key), the generator is frozen.

With ``encoder.lora.rank > 0`` the encoder's LoRA adapters train too. The cache is then a frame cache
(:mod:`vitmusic.training.features`, ``store="frames"``: preprocessed uint8 frames ``pixels [B, T, 3, h, w]``),
and the trainable module is a :class:`LoraConditioner`: the encoder with its adapters in the graph, then the
projection, on the fly. The encoder's base weights stay frozen (they are in ``Task.frozen()``, so the loop's
``check_frozen`` proves it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vitmusic.config import Config
from vitmusic.data.manifest import read_clips
from vitmusic.errors import ConfigError, DataError
from vitmusic.runs import FINAL_DIR
from vitmusic.training.features import (
    FeatureDataset,
    collate_features,
    extract_features,
    load_cache,
    load_train_val,
)

log = logging.getLogger(__name__)


def codebook_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per codebook in nats per code: ``[K]``, each the mean over the codes to predict.

    Args:
        logits: ``[B, K, L, V]`` next-code logits.
        labels: long ``[B, L, K]``; -100 where there is nothing to predict.
    """
    B, K, L, V = logits.shape
    flat = logits.float().permute(1, 0, 2, 3).reshape(K, B * L, V)  # [K, B*L, V]
    target = labels.permute(2, 0, 1).reshape(K, B * L)  # [K, B*L]
    return torch.stack([nn.functional.cross_entropy(flat[k], target[k], ignore_index=-100) for k in range(K)])


def projection_kwargs(config: Config) -> dict[str, Any]:
    """Constructor keyword arguments of the configured projection kind."""
    p = config.projection
    by_kind = {
        "linear": {"stride": p.stride},
        "mlp": {
            "hidden_dim": p.hidden_dim,
            "num_layers": p.num_layers,
            "dropout": p.dropout,
            "stride": p.stride,
        },
        "transformer": {
            "d_model": p.hidden_dim,
            "rate_hz": config.encoder.rate_hz / p.stride,
            "num_layers": p.num_layers,
            "num_heads": p.num_heads,
            "dropout": p.dropout,
            "stride": p.stride,
        },
        "pca": {"stride": p.stride, "n_components": p.n_components, "seed": config.train.seed},
    }
    return by_kind[p.kind]


def load_models(config: Config):
    """The configured encoder and generator for training.

    Both are frozen, except that with ``encoder.lora.rank > 0`` the encoder carries fresh trainable LoRA
    adapters (seeded with ``train.seed``).
    """
    from vitmusic.inference.models import load_run_models

    return load_run_models(config, adapters=True)


def load_frozen_models(config: Config):
    """The configured encoder without any adapters and the generator, both frozen."""
    from vitmusic.inference.models import load_run_models

    return load_run_models(config, adapters=False)


def build_cache(config: Config, encoder=None, generator=None, progress: bool = True) -> Path:
    """Extract (or find) the cache of the configured manifest, encoder and generator.

    A frozen encoder gets a feature cache (embeddings); one whose adapters train (``encoder.lora.rank > 0``
    when the models are loaded here) a frame cache (``store="frames"``, see :mod:`vitmusic.training.features`).
    """
    clips = read_clips(config)  # before loading models: a bad manifest fails fast
    if encoder is None or generator is None:
        encoder, generator = load_models(config)
    return extract_features(
        clips,
        encoder,
        generator,
        config.extract.cache_dir,
        rate_hz=config.encoder.rate_hz,
        store="frames" if encoder.is_trainable else "embeddings",
        batch_size=config.extract.batch_size,
        shard_size=config.extract.shard_size,
        progress=progress,
    )


class LoraConditioner(nn.Module):
    """The trainable module of a LoRA run: preprocessed frames -> encoder (adapters train) -> projection.

    The encoder is referenced, not registered as a sub-module: its base weights belong to the task's
    ``frozen()`` modules (so the loop's ``check_frozen`` proves them frozen and counts them), and only its
    adapter sub-modules, registered here as ``adapters``, are optimised, checkpointed and moved with this
    module. The encoder's base model stays in eval mode (dropout only inside the adapters).

    Args:
        encoder: a :class:`~vitmusic.encoders.VisionEncoder` with trainable LoRA adapters.
        projection: the trainable :class:`~vitmusic.projection.Projection`.
    """

    def __init__(self, encoder, projection: nn.Module) -> None:
        super().__init__()
        self.projection = projection
        self.adapters = encoder.adapter_modules()
        self.__dict__["encoder"] = encoder  # a plain attribute, see the class docstring

    def forward(self, pixels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``pixels`` uint8 ``[B, T, 3, h, w]``, ``mask`` ``[B, T]`` -> (tokens ``[B, S, cond_dim]``, ``[B, S]``)."""
        embeds, embed_mask = self.encoder.encode_preprocessed(pixels, mask)  # [B, T', D], [B, T']
        return self.projection(embeds, embed_mask)


class VideoMusicGenTask:
    """Train a projection (and, with LoRA, the encoder's adapters) to condition a frozen MusicGen.

    Args:
        config: resolved config.
        generator: the frozen :class:`~vitmusic.generators.musicgen.model.MusicGenGenerator`.
        cache: the cache folder (from :func:`build_cache`): a feature cache, or a frame cache with ``encoder``.
        encoder_fingerprint: stored in checkpoints (``frozen_models.encoder``).
        encoder: the encoder whose LoRA adapters train (frame caches only); None trains the projection alone.
    """

    def __init__(
        self, config: Config, generator, cache: Path, encoder_fingerprint: dict[str, Any], encoder=None
    ) -> None:
        from vitmusic.projection import build_projection

        self.config, self.generator, self.cache = config, generator, Path(cache)
        self.encoder_fingerprint = encoder_fingerprint
        self._train, self._val, ref = load_train_val(cache, config.data.train_split, config.data.val_split)
        frames = "pixels" in ref.column_names
        if frames != (encoder is not None and encoder.is_trainable):
            raise ConfigError(
                f"cache {cache}: a frame cache goes with an encoder whose LoRA adapters train, a feature "
                "cache with a frozen encoder"
            )
        if frames and config.projection.kind == "pca":
            raise ConfigError("projection.kind=pca is fitted, not trained: use encoder.lora.rank=0 with it")
        self.encoder = encoder if frames else None
        in_dim = encoder.embed_dim if frames else int(ref[0]["embeds"].shape[-1])
        torch.manual_seed(config.train.seed)  # the projection's init is part of the run's seed
        self.projection = build_projection(
            config.projection.kind, in_dim, generator.cond_dim, **projection_kwargs(config)
        )
        self._conditioner: LoraConditioner | None = None
        self.cond_dropout = config.generator.cond_dropout
        if config.projection.kind == "pca":  # the no-training baseline: fitted here, never trained
            data = collate_features([FeatureDataset(self._train)[i] for i in range(len(self._train))])
            self.projection.fit(data["embeds"], data["mask"])

    # ------------------------------------------------------------------ Task protocol
    def trainable(self) -> nn.Module:
        if self.encoder is None:
            return self.projection
        # built around the current projection (callers may swap in a loaded one), then kept
        if self._conditioner is None or self._conditioner.projection is not self.projection:
            self._conditioner = LoraConditioner(self.encoder, self.projection)
        return self._conditioner

    def frozen(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, **({"encoder": self.encoder} if self.encoder is not None else {})}

    def train_dataset(self) -> FeatureDataset:
        return FeatureDataset(self._train)

    def val_dataset(self) -> FeatureDataset:
        return FeatureDataset(self._val)

    def clip_pieces(self, split: str) -> dict[str, str]:
        """``{clip_id: piece}`` of a split of the cache (the donor rule's input)."""
        ds = load_cache(self.cache, split)
        return {str(c): str(p) for c, p in zip(ds["clip_id"], ds["piece"])}

    def split_dataset(self, split: str, donors: dict[str, str] | None = None):
        """Any split of the cache (e.g. the test split for held-out evaluation).

        ``donors`` (clip id -> clip id of the same split) gives each listed clip the video of its donor and
        keeps its own audio codes: the shuffled-video control (:func:`vitmusic.data.donors.donor_map`).
        """
        ds = FeatureDataset(load_cache(self.cache, split))
        return DonorVideos(ds, donors) if donors else ds

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_features(items)

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``{"loss": mean CE over the codebooks, "ce_codebook_<k>": CE of codebook k}`` (nats per code)."""
        device = self.generator.device
        video = batch["pixels"] if "pixels" in batch else batch["embeds"]  # [B, T, 3, h, w] or [B, T, D]
        tokens, mask = model(video.to(device), batch["mask"].to(device))  # [B, S, cond_dim], [B, S]
        # condition dropout teaches the null condition for classifier-free guidance; never at evaluation
        p = self.cond_dropout if model.training else 0.0
        logits, labels = self.generator.teacher_forced(tokens, mask, batch["codes"].to(device), cond_dropout=p)
        ce = codebook_cross_entropy(logits, labels)  # [K]
        return {"loss": ce.mean(), **{f"ce_codebook_{k}": c.detach() for k, c in enumerate(ce)}}

    def to(self, device: torch.device) -> VideoMusicGenTask:
        self.generator.to(device)
        if self.encoder is not None:
            self.encoder.to(device)
        return self

    def describe(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder_fingerprint,
            "generator": self.generator.fingerprint(),
            "feature_cache": self.cache.name,
        }

    def save_pretrained(self, model: nn.Module, out_dir: Path, meta: dict[str, Any]) -> None:
        """``model.safetensors`` + ``config.json`` of the projection; with LoRA also the adapters' file.

        The LoRA config (as the encoder normalised it) is recorded under ``extra.encoder_adapters``.
        """
        from vitmusic.encoders.lora import ADAPTERS_NAME, save_adapters

        if isinstance(model, LoraConditioner):
            save_adapters(model.encoder, out_dir)
            meta = {**meta, "encoder_adapters": {"file": ADAPTERS_NAME, "lora": dict(model.encoder.lora_config)}}
            model = model.projection
        model.save_pretrained(out_dir, extra=meta)


class DonorVideos(torch.utils.data.Dataset):
    """A cached split whose listed clips carry their donor's video (embeddings or frames, and mask)."""

    def __init__(self, ds: FeatureDataset, donors: dict[str, str]) -> None:
        self.ds, self.donors = ds, donors
        self.index = {str(c): i for i, c in enumerate(ds.ds["clip_id"])}
        missing = sorted(set(donors.values()) - set(self.index))
        if missing:
            raise DataError(f"donor clip {missing[0]} is not in the cached split")

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.ds[i]
        donor = self.donors.get(item["clip_id"])
        if donor is None:
            return item
        video = self.ds[self.index[donor]]
        key = self.ds.video_key
        return {**item, key: video[key], "mask": video["mask"]}


def build_task(config: Config, *, progress: bool = True) -> VideoMusicGenTask:
    """Load the models, find or build the matching cache (features, or frames for LoRA), set up the task."""
    read_clips(config)  # fail fast on a bad manifest, before loading models
    encoder, generator = load_models(config)
    # under `accelerate launch` the processes share the extraction (vitmusic.training.distributed)
    cache = build_cache(config, encoder, generator, progress=progress)
    return VideoMusicGenTask(
        config, generator, cache, encoder.fingerprint(), encoder=encoder if encoder.is_trainable else None
    )


def run_training(config: Config, task, *, resume=None, progress: bool = True) -> Path:
    """:func:`~vitmusic.training.loop.train` for trainable projections; the PCA baseline is only exported.

    Returns:
        ``RUN/final`` (``model.safetensors`` + ``config.json``).
    """
    from vitmusic import __version__
    from vitmusic.atomic import atomic_path
    from vitmusic.config import config_to_dict, save_config
    from vitmusic.training.loop import train

    if config.projection.kind != "pca":
        return train(config, task, resume=resume, progress=progress)
    run_dir = Path(config.train.output_dir)
    save_config(config, run_dir / "config.yaml")
    meta = {
        "config": config_to_dict(config),
        "frozen_models": task.describe(),
        "vitmusic_version": __version__,
    }
    with atomic_path(run_dir / FINAL_DIR, is_dir=True) as tmp:
        task.save_pretrained(task.trainable(), tmp, meta)
    log.info("pca projection fitted on %d clips (nothing to train)", len(task.train_dataset()))
    return run_dir / FINAL_DIR
