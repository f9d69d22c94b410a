"""The encoder interface: frames in, a time sequence of embeddings out.

Every encoder follows the conditioning contract ``encode_frames(frames [B, T, H, W, 3] uint8) ->
(embeds [B, T', D] float, mask [B, T'] bool)``. ``T'`` is a time axis at a known rate (``output_rate``)
so downstream modules (projection, generator) can line conditioning tokens up with music time.

Encoders are frozen by default: parameters have ``requires_grad=False``, the wrapped model stays in eval
mode even when a parent module calls ``.train()``, and encoding runs under ``torch.no_grad``. Enabling LoRA
adapters (see :mod:`vitmusic.encoders.lora`) makes exactly the adapter parameters trainable.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import torch
from torch import nn

from vitmusic.errors import ConfigError, VitmusicError


def as_uint8_frames(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """Validate a batch of RGB frames and return it as a numpy ``uint8 [B, T, H, W, 3]`` array.

    Args:
        frames: ``[B, T, H, W, 3]`` uint8 (numpy or torch); a single clip ``[T, H, W, 3]`` is accepted
            and given a batch axis of 1.

    Raises:
        VitmusicError: wrong rank, channel count or dtype.
    """
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim == 4:
        frames = frames[None]
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise VitmusicError(f"frames must have shape [B, T, H, W, 3], got {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        raise VitmusicError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    if frames.shape[1] == 0:
        raise VitmusicError("frames has no time steps (T = 0)")
    return frames


def as_frame_mask(mask: np.ndarray | torch.Tensor | None, batch: int, num_frames: int) -> torch.Tensor:
    """Return a bool ``[B, T]`` frame-validity mask (all True when ``mask`` is None)."""
    if mask is None:
        return torch.ones(batch, num_frames, dtype=torch.bool)
    mask = torch.as_tensor(np.asarray(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask))
    if tuple(mask.shape) != (batch, num_frames):
        raise VitmusicError(f"frame mask must have shape {(batch, num_frames)}, got {tuple(mask.shape)}")
    return mask.bool()


class VisionEncoder(nn.Module, abc.ABC):
    """Base class of the vision encoders.

    Attributes:
        kind: ``"videomae"``, ``"vit"`` or ``"clip"``.
        embed_dim: ``D``, width of the returned embeddings.
        name_or_path: the preset name, hub id or local dir the encoder was loaded from.
        rate_hz: default embedding rate used by :meth:`sample_fps` when no rate is given (may be None).
    """

    kind: str = ""

    def __init__(self, name_or_path: str, rate_hz: float | None = None) -> None:
        super().__init__()
        self.name_or_path = str(name_or_path)
        self.rate_hz = rate_hz
        self.lora_config: dict[str, Any] | None = None

    # ----- interface every encoder implements -------------------------------------------------------
    @property
    @abc.abstractmethod
    def embed_dim(self) -> int:
        """Width ``D`` of the embeddings."""

    @property
    @abc.abstractmethod
    def frames_per_step(self) -> int:
        """How many decoded frames make one output time step (1 per frame; ``tubelet_size`` for VideoMAE)."""

    @abc.abstractmethod
    def _encode(self, frames: np.ndarray, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode validated ``uint8 [B, T, H, W, 3]`` frames; returns ``([B, T', D], [B, T'])``."""

    @abc.abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """A JSON-able dict identifying weights + preprocessing + adapters, for feature cache keys."""

    # ----- shared behaviour -------------------------------------------------------------------------
    def sample_fps(self, rate_hz: float | None = None) -> float:
        """Frame rate (frames/s) to decode video at so embeddings come out at ``rate_hz`` steps/s.

        Args:
            rate_hz: wanted embedding rate; defaults to the rate given to :func:`load_encoder`.
        """
        rate = self.rate_hz if rate_hz is None else rate_hz
        if rate is None:
            raise ConfigError(f"encoder {self.name_or_path!r}: no embedding rate given (rate_hz)")
        if not rate > 0:
            raise ConfigError(f"encoder rate_hz must be > 0, got {rate}")
        return float(rate) * self.frames_per_step

    def output_rate(self, fps: float) -> float:
        """Embedding steps per second produced from frames decoded at ``fps``."""
        return float(fps) / self.frames_per_step

    @property
    def is_trainable(self) -> bool:
        """True when some parameter requires grad (LoRA adapters enabled)."""
        return any(p.requires_grad for p in self.parameters())

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that require grad: empty when frozen, exactly the LoRA adapters otherwise."""
        return [p for p in self.parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """State of the trainable (LoRA) parameters only, for a checkpoint's ``model.safetensors``."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in names}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load the tensors written by :meth:`trainable_state_dict` (strict on names and shapes)."""
        expected = {n for n, p in self.named_parameters() if p.requires_grad}
        if set(state) != expected:
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
            raise VitmusicError(
                f"encoder adapter state mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        self.load_state_dict(state, strict=False)

    def freeze(self) -> VisionEncoder:
        """Make every parameter non-trainable and keep the model in eval mode."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.train(False)

    def train(self, mode: bool = True) -> VisionEncoder:
        # A frozen encoder must never switch to train mode (dropout would make cached features
        # non-deterministic), even when the module that owns it calls .train().
        return super().train(mode and self.is_trainable)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def encode_frames(
        self,
        frames: np.ndarray | torch.Tensor,
        mask: np.ndarray | torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode RGB frames into a time sequence of embeddings.

        Args:
            frames: ``uint8 [B, T, H, W, 3]`` frames decoded at :meth:`sample_fps` (numpy or torch).
            mask: optional ``bool [B, T]`` frame validity (for batches of clips padded to a common T).

        Returns:
            ``(embeds float [B, T', D], mask bool [B, T'])`` on the encoder's device; ``T' = T`` for
            per-frame encoders, ``ceil(T / F) * F / tubelet_size`` for VideoMAE (padded slots masked).
            Masked positions hold zeros.
        """
        arr = as_uint8_frames(frames)
        frame_mask = as_frame_mask(mask, arr.shape[0], arr.shape[1])
        with torch.set_grad_enabled(self.is_trainable and torch.is_grad_enabled()):
            embeds, out_mask = self._encode(arr, frame_mask)
        out_mask = out_mask.to(embeds.device)
        embeds = embeds * out_mask.unsqueeze(-1).to(embeds.dtype)
        return embeds, out_mask

    forward = encode_frames
