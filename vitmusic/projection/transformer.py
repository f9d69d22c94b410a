"""Temporal transformer projection: a few self-attention layers over the embedding sequence.

``Linear(in_dim, d_model) -> + time embedding -> TransformerEncoder (pre-norm, key-padding mask) ->
LayerNorm -> Linear(d_model, out_dim)``.

Time embeddings:

- ``"sinusoidal"`` (default): sin/cos of the token's time. With ``rate_hz`` (the rate of the OUTPUT tokens,
  i.e. encoder rate / stride) set, time is in seconds (``t_s = index / rate_hz``) and the periods run
  geometrically from 0.05 s to 2000 s, so a model trained at one token rate sees consistent times at
  another. Without ``rate_hz``, time is the token
  index with the classic periods 2 .. 10000 steps.
- ``"learned"``: a learned table of ``max_len`` positions (index based).
- ``"none"``: no time information besides what the encoder provides.

Padded positions are excluded as attention keys, so they cannot change valid outputs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from vitmusic.errors import ConfigError
from vitmusic.projection.base import Projection

TIME_EMBEDDINGS = ("sinusoidal", "learned", "none")
SECONDS_PERIODS = (0.05, 2000.0)
STEP_PERIODS = (2.0, 10000.0)


def sinusoidal_embedding(times: torch.Tensor, dim: int, min_period: float, max_period: float) -> torch.Tensor:
    """``[..., dim]`` sin/cos features of ``times`` with periods geometric in [min_period, max_period].

    Args:
        times: any shape, same unit as the periods (seconds or steps).
        dim: output width (even widths use dim/2 sin + dim/2 cos; an odd width gets one zero column).
    """
    half = dim // 2
    periods = torch.logspace(
        math.log10(min_period), math.log10(max_period), max(half, 1), dtype=torch.float64, device=times.device
    )[:half]
    angles = times.to(torch.float64).unsqueeze(-1) * (2 * math.pi / periods)
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    if dim % 2:
        emb = nn.functional.pad(emb, (0, 1))
    return emb.to(torch.float32)


class TransformerProjection(Projection):
    """Temporal transformer from encoder embeddings to conditioning tokens.

    Args:
        in_dim: encoder width.
        out_dim: conditioning width.
        d_model: transformer width.
        num_layers: encoder layers.
        num_heads: attention heads (must divide ``d_model``).
        ff_mult: feed-forward width = ``ff_mult * d_model``.
        dropout: dropout inside the layers.
        time_embedding: ``"sinusoidal"``, ``"learned"`` or ``"none"``.
        rate_hz: rate of the output tokens in tokens/s, i.e. the encoder's embedding rate divided by
            ``stride``; makes sinusoidal times be seconds.
        max_len: positions of the ``"learned"`` table.
        stride: temporal pooling factor.
    """

    kind = "transformer"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        d_model: int = 256,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_mult: int = 4,
        dropout: float = 0.1,
        time_embedding: str = "sinusoidal",
        rate_hz: float | None = None,
        max_len: int = 1024,
        stride: int = 1,
    ) -> None:
        super().__init__(in_dim, out_dim, stride)
        if time_embedding not in TIME_EMBEDDINGS:
            raise ConfigError(f"time_embedding must be one of {TIME_EMBEDDINGS}, got {time_embedding!r}")
        if d_model % num_heads:
            raise ConfigError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        if rate_hz is not None and not rate_hz > 0:
            raise ConfigError(f"rate_hz must be > 0, got {rate_hz}")
        self.d_model, self.num_layers, self.num_heads = int(d_model), int(num_layers), int(num_heads)
        self.ff_mult, self.dropout = int(ff_mult), float(dropout)
        self.time_embedding, self.rate_hz, self.max_len = time_embedding, rate_hz, int(max_len)
        self.input = nn.Linear(in_dim, d_model)
        self.positions = nn.Embedding(max_len, d_model) if time_embedding == "learned" else None
        layer = nn.TransformerEncoderLayer(
            d_model,
            num_heads,
            dim_feedforward=ff_mult * d_model,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # No nested-tensor fast path: it changes numerics between train and eval for padded batches.
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, out_dim)

    def hparams(self) -> dict[str, Any]:
        return {
            **super().hparams(),
            "d_model": self.d_model,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "ff_mult": self.ff_mult,
            "dropout": self.dropout,
            "time_embedding": self.time_embedding,
            "rate_hz": self.rate_hz,
            "max_len": self.max_len,
        }

    def token_times(self, num_tokens: int, device: torch.device | None = None) -> torch.Tensor:
        """Times of the (pooled) tokens: seconds when ``rate_hz`` is set, else token indices."""
        index = torch.arange(num_tokens, device=device, dtype=torch.float64)
        if self.rate_hz is None:
            return index
        return index / self.rate_hz

    def project(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, _ = embeds.shape
        x = self.input(embeds)  # [B, S, d_model]
        if self.time_embedding == "sinusoidal":
            periods = STEP_PERIODS if self.rate_hz is None else SECONDS_PERIODS
            pe = sinusoidal_embedding(self.token_times(s, x.device), self.d_model, *periods)
            x = x + pe.to(x.dtype)
        elif self.time_embedding == "learned":
            if s > self.max_len:
                raise ValueError(
                    f"sequence of {s} tokens exceeds the learned positions (max_len={self.max_len})"
                )
            x = x + self.positions(torch.arange(s, device=x.device))
        # A sequence with no valid token would make every attention row empty (NaN): let it attend
        # freely; its outputs are zeroed by the caller anyway.
        key_padding = ~mask & mask.any(dim=1, keepdim=True)
        x = self.encoder(x, src_key_padding_mask=key_padding)
        return self.output(self.norm(x))
