"""The SCORE!-style baseline: PCA whitening fitted on training embeddings, no gradient training.

``tokens = ((x - mean) @ components.T * scales) @ mapping * output_scale`` per token, where

- ``mean [D]``, ``components [k, D]`` (principal axes, largest variance first) and
  ``scales [k] = 1 / sqrt(variance + eps)`` come from :meth:`PCAProjection.fit` on training embeddings, so
  the whitened coordinates have (near) identity covariance on that data;
- ``k = n_components`` (default ``min(in_dim, out_dim)``, at most ``in_dim``);
- ``mapping [k, out_dim]`` is FIXED, never trained, and takes the k whitened coordinates to the
  generator's width:
  * ``"pad"``: ``eye(k, out_dim)``: whitened coordinate i goes to output channel i; channels >= k are 0
    (when ``k > out_dim`` the last components are dropped).
  * ``"orthogonal"`` (default): the first k rows and out_dim columns of a seeded random orthogonal matrix
    (QR of a Gaussian ``[n, n]``, ``n = max(k, out_dim)``, seed ``seed``). For ``k <= out_dim`` its rows
    are orthonormal, so norms and inner products of whitened vectors are preserved while the energy is
    spread over all output channels (generators' input layers are not built for 0-padded inputs).

Everything is stored as buffers, so ``save_pretrained`` / ``load_projection`` round-trip a fitted PCA.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vitmusic.errors import ConfigError, VitmusicError
from vitmusic.projection.base import Projection

MAPPINGS = ("orthogonal", "pad")


def fixed_mapping(k: int, out_dim: int, kind: str, seed: int) -> torch.Tensor:
    """The non-trained ``[k, out_dim]`` matrix described in the module docstring."""
    if kind == "pad":
        return torch.eye(k, out_dim)
    n = max(k, out_dim)
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    # Sign fix makes the factorisation unique, so the matrix depends on the seed only.
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return q[:k, :out_dim].to(torch.float32).contiguous()


class PCAProjection(Projection):
    """PCA whitening + fixed mapping; fit once with :meth:`fit`, no trainable parameters.

    Args:
        in_dim: encoder width ``D``.
        out_dim: conditioning width.
        n_components: whitened components k (default ``min(in_dim, out_dim)``; capped at ``in_dim``).
        mapping: ``"orthogonal"`` or ``"pad"``.
        eps: added to the variances before inverting (avoids blowing up near-zero directions).
        output_scale: multiplies the tokens (whitened values have unit variance per component).
        seed: seed of the orthogonal mapping.
        stride: temporal pooling factor.
    """

    kind = "pca"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        n_components: int | None = None,
        mapping: str = "orthogonal",
        eps: float = 1e-5,
        output_scale: float = 1.0,
        seed: int = 0,
        stride: int = 1,
    ) -> None:
        super().__init__(in_dim, out_dim, stride)
        if mapping not in MAPPINGS:
            raise ConfigError(f"pca mapping must be one of {MAPPINGS}, got {mapping!r}")
        k = min(int(n_components or min(in_dim, out_dim)), in_dim)
        if k < 1:
            raise ConfigError(f"pca n_components must be >= 1, got {n_components}")
        self.n_components, self.mapping_kind = k, mapping
        self.eps, self.output_scale, self.seed = float(eps), float(output_scale), int(seed)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("components", torch.zeros(k, in_dim))
        self.register_buffer("scales", torch.zeros(k))
        self.register_buffer("explained_variance", torch.zeros(k))
        self.register_buffer("mapping", fixed_mapping(k, out_dim, mapping, self.seed))
        self.register_buffer("fitted", torch.tensor(False))

    def hparams(self) -> dict[str, Any]:
        return {
            **super().hparams(),
            "n_components": self.n_components,
            "mapping": self.mapping_kind,
            "eps": self.eps,
            "output_scale": self.output_scale,
            "seed": self.seed,
        }

    @torch.no_grad()
    def fit(
        self, embeds: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray | None = None
    ) -> PCAProjection:
        """Fit mean, principal axes and whitening scales.

        Args:
            embeds: ``[N, D]`` training embeddings, or ``[B, T, D]`` with ``mask [B, T]`` (valid steps only).
            mask: optional validity mask for the ``[B, T, D]`` form.

        Raises:
            VitmusicError: wrong width, or fewer than ``n_components + 1`` embeddings.
        """
        x = torch.as_tensor(np.asarray(embeds) if not isinstance(embeds, torch.Tensor) else embeds)
        if x.dim() == 3:
            if mask is None:
                x = x.reshape(-1, x.shape[-1])
            else:
                m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
                x = x[m.to(device=x.device, dtype=torch.bool)]
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise VitmusicError(f"pca fit expects embeddings [N, {self.in_dim}], got {tuple(x.shape)}")
        n, k = x.shape[0], self.n_components
        if n <= k:
            raise VitmusicError(f"pca fit needs more than n_components={k} embeddings, got {n}")
        x = x.detach().to(device="cpu", dtype=torch.float64)
        mean = x.mean(0)
        cov = (x - mean).T @ (x - mean) / (n - 1)
        variances, axes = torch.linalg.eigh(cov)  # ascending
        variances, axes = variances.flip(0)[:k].clamp_min(0.0), axes.flip(1)[:, :k].T  # [k], [k, D]
        # Deterministic sign: the largest-magnitude entry of each axis is positive.
        signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
        axes = axes * signs
        device = self.mean.device
        self.mean.copy_(mean.to(device))
        self.components.copy_(axes.to(device))
        self.explained_variance.copy_(variances.to(device))
        self.scales.copy_((1.0 / torch.sqrt(variances + self.eps)).to(device))
        self.fitted.fill_(True)
        return self

    def whiten(self, embeds: torch.Tensor) -> torch.Tensor:
        """``[..., D] -> [..., k]`` whitened coordinates (before the fixed mapping)."""
        if not bool(self.fitted):
            raise VitmusicError("pca projection used before fit(): fit it on training embeddings first")
        return ((embeds - self.mean) @ self.components.T) * self.scales

    def project(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (self.whiten(embeds) @ self.mapping) * self.output_scale
