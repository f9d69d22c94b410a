"""Named tiny random-init encoder presets for tests, the debug config and CI.

A tiny preset is materialised once with ``save_pretrained`` (model + Pil image processor) into
``$VITMUSIC_CACHE/presets/<name>`` (default ``~/.cache/vitmusic/presets/<name>``) and then loaded through the
very same ``from_pretrained`` path as a real checkpoint. Weights come from a fixed seed, so every
materialisation on every machine gives identical tensors.

Real encoders need no preset: pass a hub id (``"MCG-NJU/videomae-base"``,
``"google/vit-base-patch16-224-in21k"``, ``"openai/clip-vit-base-patch32"``) or a local directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitmusic.atomic import publish_dir
from vitmusic.errors import ConfigError
from vitmusic.hf_quiet import hf_model_build, hf_progress

PRESET_SEED = 0
# Stored in each preset's config.json; a folder written by an older recipe is rebuilt (and the encoder's
# fingerprint, hence every feature-cache key, changes with it). 2: tiny ViT / CLIP outputs calibrated.
PRESET_VERSION = 2

# Real checkpoints the configs refer to (hub ids, loaded by users with network or a warm HF cache).
REAL_ENCODERS = {
    "videomae-base": "MCG-NJU/videomae-base",
    "vit-base": "google/vit-base-patch16-224-in21k",
    "clip-vit-base": "openai/clip-vit-base-patch32",
}


def _tiny_videomae() -> tuple[Any, Any]:
    from transformers import VideoMAEConfig, VideoMAEImageProcessorPil, VideoMAEModel

    config = VideoMAEConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        num_frames=8,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        use_mean_pooling=False,
    )
    processor = VideoMAEImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return VideoMAEModel(config), processor


def _vit(image_size: int, hidden_size: int, num_heads: int, standardise: bool) -> tuple[Any, Any]:
    """A random-init 2-layer ViT (patch 8) with its Pil processor; ``standardise`` rescales its CLS output on
    drawn performer frames (see :func:`_standardise_output`)."""
    from transformers import ViTConfig, ViTImageProcessorPil, ViTModel

    config = ViTConfig(
        image_size=image_size,
        patch_size=8,
        num_channels=3,
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
    )
    processor = ViTImageProcessorPil(size={"height": image_size, "width": image_size})
    model = ViTModel(config, add_pooling_layer=False)
    if standardise:
        _standardise_output(model.layernorm, lambda pv: model(pixel_values=pv).last_hidden_state[:, 0], processor)
    return model, processor


def _tiny_vit() -> tuple[Any, Any]:
    return _vit(32, 32, 2, standardise=True)


def _small_vit() -> tuple[Any, Any]:
    """A random-init ViT that sees 96x96 pixels: fine spatial detail (e.g. a performer's hand height) survives
    the resize that a 32x32 tiny preset blurs away; still cheap on a CPU."""
    return _vit(96, 64, 4, standardise=False)


def _tiny_clip() -> tuple[Any, Any]:
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        projection_dim=24,
    )
    processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    model = CLIPVisionModelWithProjection(config)
    vision = model.vision_model
    _standardise_output(vision.post_layernorm, lambda pv: vision(pixel_values=pv).pooler_output, processor)
    return model, processor


def calibration_frames() -> list[np.ndarray]:
    """A fixed bank of synthetic performer frames ([H, W, 3] uint8): every ensemble line-up of the synthetic
    benchmark (2, 3 and 4 players), each in a few seeded playing states."""
    from vitmusic.data.synth.performer import PlayerState, Stage
    from vitmusic.data.synth.scores import ENSEMBLES
    from vitmusic.data.urmp import INSTRUMENTS

    rng = np.random.default_rng(PRESET_SEED)
    frames = []
    for lineups in ENSEMBLES.values():
        for lineup in lineups:
            for n in (2, 3, 4):
                codes = lineup[:n]
                stage = Stage(codes, [INSTRUMENTS[c].family for c in codes], width_per_player=96, height=128)
                for _ in range(4):
                    states = [PlayerState(*(np.array([v]) for v in (rng.uniform(), rng.uniform(0, 1.2),
                                                                    rng.uniform(0, 1), rng.uniform(-0.5, 0.5))))
                              for _ in codes]
                    frames.append(stage.draw(states, 0))
    return frames


@torch.no_grad()
def _standardise_output(norm: torch.nn.LayerNorm, features: Callable[[torch.Tensor], torch.Tensor], processor) -> None:
    """Fold a per-dimension standardisation over :func:`calibration_frames` into the final layernorm's affine.

    A random-init ViT's CLS output is nearly the same vector for every image (its own token and biases
    dominate), the picture content a small deviation; a pretrained encoder's features vary with the content.
    With zero mean and unit variance per dimension on performer frames, the tiny features carry the content at
    a usable scale (the outputs stay an affine function of the same layernorm, nothing else changes).
    """
    pv = processor(images=calibration_frames(), return_tensors="pt")["pixel_values"]
    feats = features(pv)  # [N, D]
    mean, std = feats.mean(0), feats.std(0).clamp_min(1e-6)
    norm.weight.div_(std)
    norm.bias.sub_(mean).div_(std)


TINY_PRESETS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "tiny-videomae": _tiny_videomae,
    "tiny-vit": _tiny_vit,
    "tiny-clip": _tiny_clip,
    "small-vit": _small_vit,
}


def cache_root() -> Path:
    """``$VITMUSIC_CACHE`` or ``~/.cache/vitmusic``."""
    env = os.environ.get("VITMUSIC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vitmusic"


def preset_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """Folder a tiny preset lives in: ``root/<name>`` or ``cache_root()/presets/<name>``."""
    base = Path(root).expanduser() if root is not None else cache_root() / "presets"
    return base / name


def _is_materialised(folder: Path) -> bool:
    if not ((folder / "model.safetensors").is_file() and (folder / "preprocessor_config.json").is_file()):
        return False
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return config.get("vitmusic_preset_version") == PRESET_VERSION


def materialize_tiny_preset(name: str, root: str | os.PathLike | None = None) -> Path:
    """Write a tiny random-init encoder (model + image processor) with ``save_pretrained``; return its dir.

    Idempotent: an already complete folder is returned as is. The folder appears atomically (written
    next to it, then renamed), so an interrupted run never leaves a half-written preset behind, and
    processes materialising the same preset at once (accelerate workers) all end up with one copy.

    Args:
        name: one of :data:`TINY_PRESETS` (``"tiny-videomae"``, ``"tiny-vit"``, ``"tiny-clip"``).
        root: parent folder of the presets; default ``$VITMUSIC_CACHE/presets`` (``~/.cache/vitmusic``).
    """
    if name not in TINY_PRESETS:
        raise ConfigError(f"unknown tiny encoder preset {name!r}; known: {', '.join(sorted(TINY_PRESETS))}")
    folder = preset_dir(name, root)
    if _is_materialised(folder):
        return folder
    # fork_rng: materialising must not disturb the caller's global RNG stream.
    with hf_model_build(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(PRESET_SEED)
        model, processor = TINY_PRESETS[name]()
    model.config.vitmusic_preset_version = PRESET_VERSION

    def write(tmp: Path) -> None:
        with hf_progress(False):
            model.save_pretrained(tmp, safe_serialization=True)
            processor.save_pretrained(tmp)

    return publish_dir(folder, write, _is_materialised)
