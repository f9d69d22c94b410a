"""Optional LoRA adapters on a frozen encoder (an ablation: does adapting the vision side help?).

Adapters are injected with peft into the wrapped transformers model in place, so the model class, its
forward and its output names stay the same. Only the adapter matrices are trainable afterwards. peft's
default init sets ``lora_B`` to zero, so a freshly adapted encoder computes exactly the frozen features.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vitmusic.errors import ConfigError, DataError

# Attention query/value projections; the names differ between models and transformers versions
# (ViT uses q_proj/v_proj in transformers 5, query/value before), so defaults are matched on the model.
DEFAULT_TARGETS = ("q_proj", "v_proj", "query", "value")

_KEYS = {"r", "rank", "alpha", "dropout", "target_modules", "seed"}
ADAPTERS_NAME = "encoder_adapters.safetensors"  # the trained adapters, next to a run's model.safetensors


def normalize_lora_config(lora: dict[str, Any] | None, model: nn.Module) -> dict[str, Any] | None:
    """Validate a user LoRA dict (``{"r": 8, "alpha": 16, "target_modules": [...]}``) and fill defaults.

    ``rank`` is accepted as a synonym of ``r``; ``alpha`` defaults to ``2 * r``, ``dropout`` to 0.

    ``target_modules`` defaults to the attention query/value projections found in ``model``.
    Returns None when ``lora`` is None/empty or has ``r == 0`` (adapters disabled).
    """
    if not lora:
        return None
    unknown = set(lora) - _KEYS
    if unknown:
        raise ConfigError(f"unknown LoRA option(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    if "r" in lora and "rank" in lora and lora["r"] != lora["rank"]:
        raise ConfigError(f"LoRA options r={lora['r']} and rank={lora['rank']} disagree")
    r = int(lora.get("r", lora.get("rank", 8)))  # "rank" = vitmusic.config's name for r
    if r == 0:
        return None
    if r < 0:
        raise ConfigError(f"LoRA rank r must be >= 0, got {r}")
    targets = lora.get("target_modules")
    if not targets:
        leaf_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        targets = [t for t in DEFAULT_TARGETS if t in leaf_names]
    return {
        "r": r,
        "alpha": float(lora.get("alpha", 2 * r)),
        "dropout": float(lora.get("dropout", 0.0)),
        "target_modules": sorted(str(t) for t in targets),
        "seed": int(lora.get("seed", 0)),
    }


def add_lora(model: nn.Module, config: dict[str, Any]) -> nn.Module:
    """Inject LoRA adapters into ``model`` in place; freeze everything except the adapters.

    Args:
        model: a transformers vision model.
        config: output of :func:`normalize_lora_config`.
    """
    from peft import LoraConfig, inject_adapter_in_model

    peft_config = LoraConfig(
        r=config["r"],
        lora_alpha=config["alpha"],
        lora_dropout=config["dropout"],
        target_modules=config["target_modules"],
        bias="none",
    )
    for p in model.parameters():
        p.requires_grad_(False)
    # Seeded so two runs with the same config start from the same adapters.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["seed"])
        try:
            model = inject_adapter_in_model(peft_config, model)
        except ValueError as exc:
            raise ConfigError(
                f"LoRA target_modules {config['target_modules']} not found in the encoder: {exc}"
            ) from exc
    n = 0
    for name, p in model.named_parameters():
        is_adapter = "lora_" in name
        p.requires_grad_(is_adapter)
        n += int(is_adapter)
    if n == 0:
        raise ConfigError(f"LoRA target_modules {config['target_modules']} matched no layer of the encoder")
    return model


def adapter_modules(model: nn.Module) -> nn.ModuleList:
    """The adapter sub-modules peft injected (``lora_A``, ``lora_B``, ``lora_dropout``, ...), not copies."""
    return nn.ModuleList(m for name, m in model.named_modules() if name.rsplit(".", 1)[-1].startswith("lora_"))


def adapters_sha256(model: nn.Module) -> str:
    """sha256 of the adapter tensors (names, shapes, dtypes, values) of ``model``."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if "lora_" in name:
            t = p.detach().cpu().contiguous()
            h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_adapters(encoder, folder: str | os.PathLike) -> Path:
    """Write the encoder's trainable adapter tensors to ``folder/encoder_adapters.safetensors`` (atomically).

    Args:
        encoder: a :class:`~vitmusic.encoders.VisionEncoder` with LoRA adapters.
        folder: destination folder (a run's ``final/`` or a checkpoint).
    """
    from safetensors.torch import save_file

    from vitmusic.atomic import atomic_path
    from vitmusic.runs import sort_safetensors_metadata

    path = Path(folder) / ADAPTERS_NAME
    state = {k: v.cpu().contiguous() for k, v in encoder.trainable_state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "content": "lora_adapters"})
        sort_safetensors_metadata(tmp)
    return path


def load_adapters(encoder, folder: str | os.PathLike) -> None:
    """Load ``folder/encoder_adapters.safetensors`` into an encoder built with the same LoRA config.

    Raises:
        DataError: the file is missing, unreadable or does not match the encoder's adapters (one line).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vitmusic.errors import VitmusicError

    path = Path(folder) / ADAPTERS_NAME
    if not path.is_file():
        raise DataError(f"{path} not found: this run trained encoder LoRA adapters and needs their weights")
    from vitmusic.runs import check_weights

    check_weights(path)  # refuses adapters changed since training (sha256 in config.json)
    try:
        state = load_file(str(path), device=str(encoder.device))
    except (OSError, SafetensorError) as exc:
        raise DataError(f"{path}: unreadable safetensors file ({exc})") from exc
    try:
        encoder.load_trainable_state_dict(state)
    except (VitmusicError, RuntimeError) as exc:
        raise DataError(f"{path}: {' '.join(str(exc).split())[:300]}") from exc
