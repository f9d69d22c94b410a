"""The trainable bridge from encoder embeddings to generator conditioning, plus the PCA-whitening baseline.

``build_projection(kind, in_dim, out_dim, **kw)`` with kind ``"linear"``, ``"mlp"``, ``"transformer"`` or
``"pca"``; every projection maps ``(embeds [B, T, D], mask [B, T])`` to ``(tokens [B, S, out_dim], mask
[B, S])`` and saves/loads as ``model.safetensors`` + ``config.json``.
"""

from vitmusic.projection.base import Projection, pool_time
from vitmusic.projection.io import PROJECTIONS, build_projection, load_projection, read_projection_config
from vitmusic.projection.layers import LinearProjection, MLPProjection
from vitmusic.projection.pca import PCAProjection
from vitmusic.projection.transformer import TransformerProjection

__all__ = [
    "PROJECTIONS",
    "LinearProjection",
    "MLPProjection",
    "PCAProjection",
    "Projection",
    "TransformerProjection",
    "build_projection",
    "load_projection",
    "pool_time",
    "read_projection_config",
]
