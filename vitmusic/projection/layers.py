"""Per-token projections: linear and MLP (no mixing across time)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vitmusic.errors import ConfigError
from vitmusic.projection.base import Projection


class LinearProjection(Projection):
    """``LayerNorm (optional) -> Linear(in_dim, out_dim)`` per token.

    Args:
        in_dim: encoder width.
        out_dim: conditioning width.
        norm: LayerNorm the encoder embeddings first (their scale differs a lot between encoders).
        stride: temporal pooling factor.
    """

    kind = "linear"

    def __init__(self, in_dim: int, out_dim: int, *, norm: bool = True, stride: int = 1) -> None:
        super().__init__(in_dim, out_dim, stride)
        self.norm_input = bool(norm)
        self.norm = nn.LayerNorm(in_dim) if norm else nn.Identity()
        self.linear = nn.Linear(in_dim, out_dim)

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "norm": self.norm_input}

    def project(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(embeds))


class MLPProjection(Projection):
    """``LayerNorm -> [Linear -> GELU -> Dropout] x (num_layers - 1) -> Linear`` per token.

    Args:
        in_dim: encoder width.
        out_dim: conditioning width.
        hidden_dim: width of the hidden layers (default ``max(in_dim, out_dim)``).
        num_layers: number of Linear layers (>= 2).
        dropout: dropout after each hidden activation.
        stride: temporal pooling factor.
    """

    kind = "mlp"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden_dim: int | None = None,
        num_layers: int = 2,
        dropout: float = 0.0,
        stride: int = 1,
    ) -> None:
        super().__init__(in_dim, out_dim, stride)
        if num_layers < 2:
            raise ConfigError(f"mlp projection needs num_layers >= 2 (use 'linear' for 1), got {num_layers}")
        self.hidden_dim = int(hidden_dim or max(in_dim, out_dim))
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        layers: list[nn.Module] = [nn.LayerNorm(in_dim)]
        width = in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, self.hidden_dim), nn.GELU(), nn.Dropout(self.dropout)]
            width = self.hidden_dim
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def hparams(self) -> dict[str, Any]:
        return {
            **super().hparams(),
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
        }

    def project(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(embeds)
