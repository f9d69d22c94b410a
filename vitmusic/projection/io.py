"""Build projections by kind and load saved ones (``model.safetensors`` + ``config.json``)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from vitmusic.errors import ConfigError, DataError
from vitmusic.projection.base import FORMAT_VERSION, Projection
from vitmusic.projection.layers import LinearProjection, MLPProjection
from vitmusic.projection.pca import PCAProjection
from vitmusic.projection.transformer import TransformerProjection
from vitmusic.runs import CONFIG_NAME, WEIGHTS_NAME, load_weights, read_model_config

PROJECTIONS: dict[str, type[Projection]] = {
    "linear": LinearProjection,
    "mlp": MLPProjection,
    "transformer": TransformerProjection,
    "pca": PCAProjection,
}


def build_projection(kind: str, in_dim: int, out_dim: int, **kwargs: Any) -> Projection:
    """Create a projection.

    Args:
        kind: ``"linear"``, ``"mlp"``, ``"transformer"`` or ``"pca"``.
        in_dim: encoder embedding width.
        out_dim: conditioning width (the generator's ``cond_dim``).
        **kwargs: hyperparameters of that kind (see its class); unknown names raise ConfigError.
    """
    if kind not in PROJECTIONS:
        raise ConfigError(f"unknown projection kind {kind!r}; known: {', '.join(PROJECTIONS)}")
    cls = PROJECTIONS[kind]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "in_dim", "out_dim"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for projection {kind!r}; known: {sorted(allowed)}")
    return cls(int(in_dim), int(out_dim), **kwargs)


def read_projection_config(load_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a saved projection (``extra`` included)."""
    path = Path(load_dir) / CONFIG_NAME
    config = read_model_config(load_dir, what="projection")
    if not {"kind", "in_dim", "out_dim"} <= set(config):
        raise DataError(f"{path}: not a projection config (needs kind, in_dim, out_dim)")
    if config.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise DataError(f"{path}: projection format {config['format_version']} is newer than this vitmusic")
    return config


def load_projection(load_dir: str | os.PathLike, device: str | None = None) -> Projection:
    """Rebuild a projection saved with :meth:`Projection.save_pretrained`, weights included.

    Raises:
        DataError: missing/corrupt files or weights that do not match the config.
    """
    folder = Path(load_dir)
    config = read_projection_config(folder)
    try:
        projection = build_projection(
            config["kind"], config["in_dim"], config["out_dim"], **config.get("hparams", {})
        )
    except ConfigError as exc:
        raise DataError(f"{folder / CONFIG_NAME}: {exc}") from exc
    except (TypeError, ValueError, RuntimeError) as exc:  # hparams.hidden_dim "sixty-four" or -5, not a mapping
        raise DataError(f"{folder / CONFIG_NAME}: invalid projection settings ({exc})") from exc
    weights = folder / WEIGHTS_NAME
    state = load_weights(folder, device, what="projection")
    try:
        projection.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise DataError(f"{weights}: weights do not match config.json ({first})") from exc
    if device is not None:
        projection = projection.to(device)
    return projection
