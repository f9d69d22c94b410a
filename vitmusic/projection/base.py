"""Projection base class: ``(embeds [B, T, D], mask [B, T]) -> (tokens [B, S, out_dim], mask [B, S])``.

Every projection can first pool time by an integer ``stride`` (masked mean over groups of ``stride``
steps, ``S = ceil(T / stride)``; a group is valid when it holds at least one valid step). Tokens at
masked positions are zeros, so a consumer that ignores the mask still sees no padding content.

A projection saves as a folder: ``model.safetensors`` (parameters and buffers) + ``config.json`` (kind,
dims, hyperparameters, and the caller's ``extra`` dict, e.g. encoder/generator ids and revisions).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vitmusic.errors import ConfigError
from vitmusic.runs import save_module

FORMAT_VERSION = 1


def pool_time(embeds: torch.Tensor, mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean over consecutive groups of ``stride`` steps.

    Args:
        embeds: ``[B, T, D]``.
        mask: ``bool [B, T]``.
        stride: group size; 1 returns the inputs unchanged.

    Returns:
        ``([B, ceil(T / stride), D], bool [B, ceil(T / stride)])``.
    """
    if stride == 1:
        return embeds, mask
    b, t, d = embeds.shape
    s = math.ceil(t / stride)
    pad = s * stride - t
    weights = mask.to(embeds.dtype)
    if pad:
        embeds = nn.functional.pad(embeds, (0, 0, 0, pad))
        weights = nn.functional.pad(weights, (0, pad))
    weights = weights.view(b, s, stride, 1)
    summed = (embeds.view(b, s, stride, d) * weights).sum(2)
    count = weights.sum(2)
    return summed / count.clamp_min(1.0), count.squeeze(-1) > 0


class Projection(nn.Module):
    """Base of all projections. Subclasses implement :meth:`project` on pooled inputs.

    Args:
        in_dim: encoder embedding width ``D``.
        out_dim: conditioning width (the generator's ``cond_dim``).
        stride: temporal pooling factor applied before projecting.
    """

    kind = ""

    def __init__(self, in_dim: int, out_dim: int, stride: int = 1) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ConfigError(f"projection dims must be >= 1, got in_dim={in_dim}, out_dim={out_dim}")
        if stride < 1:
            raise ConfigError(f"projection stride must be >= 1, got {stride}")
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.stride = int(stride)

    def hparams(self) -> dict[str, Any]:
        """Constructor keyword arguments (besides in/out dims) that rebuild this projection."""
        return {"stride": self.stride}

    def project(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Map pooled ``[B, S, in_dim]`` (mask ``[B, S]``) to ``[B, S, out_dim]``."""
        raise NotImplementedError

    def forward(
        self, embeds: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Project encoder embeddings to conditioning tokens.

        Args:
            embeds: ``float [B, T, in_dim]``.
            mask: ``bool [B, T]`` (True = valid); None means all valid.

        Returns:
            ``(tokens [B, S, out_dim], mask bool [B, S])`` with ``S = ceil(T / stride)``; masked tokens are 0.
        """
        if embeds.dim() != 3 or embeds.shape[-1] != self.in_dim:
            raise ValueError(
                f"{self.kind} projection expects embeds [B, T, {self.in_dim}], got {tuple(embeds.shape)}"
            )
        if mask is None:
            mask = torch.ones(embeds.shape[:2], dtype=torch.bool, device=embeds.device)
        if tuple(mask.shape) != tuple(embeds.shape[:2]):
            raise ValueError(
                f"mask shape {tuple(mask.shape)} does not match embeds {tuple(embeds.shape[:2])}"
            )
        mask = mask.to(device=embeds.device, dtype=torch.bool)
        pooled, mask = pool_time(embeds, mask, self.stride)
        tokens = self.project(pooled, mask)
        return tokens * mask.unsqueeze(-1).to(tokens.dtype), mask

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that require grad (none for the PCA baseline)."""
        return [p for p in self.parameters() if p.requires_grad]

    def config_dict(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        from vitmusic import __version__

        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "hparams": self.hparams(),
            "vitmusic_version": __version__,
            "extra": extra or {},
        }

    def save_pretrained(self, save_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into ``save_dir`` (each file atomically).

        Other files already in ``save_dir`` (a training checkpoint's own files) are left alone.

        Args:
            save_dir: destination folder (created).
            extra: JSON-able dict stored under ``config["extra"]`` (ids/revisions of frozen models, ...).
        """
        return save_module(self, save_dir, self.config_dict(extra), metadata={"kind": self.kind, "format": "pt"})
