"""The encoder interface: frames in, a time sequence of embeddings out.

Every encoder follows the conditioning contract ``encode_frames(frames [B, T, H, W, 3] uint8) ->
(embeds [B, T', D] float, mask [B, T'] bool)``. ``T'`` is a time axis at a known rate (``output_rate``)
so downstream modules (projection, generator) can line conditioning tokens up with music time.

``encode_frames`` is two public steps, so a cache can store what lies between them::

    pixels = enc.preprocess_frames(frames)        # uint8 [B, T, 3, h, w]: the processor's resize / crop only
    embeds, mask = enc.encode_preprocessed(pixels)  # rescale + normalize (exact, cheap), then the model

(the frame cache of LoRA runs, :mod:`vitmusic.training.features` ``store="frames"``, stores ``pixels``).

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


def _check_batch(shape: tuple[int, ...], is_uint8: bool, dtype: Any, what: str, layout: str, rgb_last: bool) -> None:
    if len(shape) != 5 or (rgb_last and shape[-1] != 3):
        raise VitmusicError(f"{what} must have shape {layout}, got {shape}")
    if not is_uint8:
        raise VitmusicError(f"{what} must be uint8 RGB, got dtype {dtype}")
    if shape[1] == 0:
        raise VitmusicError(f"{what} has no time steps (T = 0)")


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
    frames = frames[None] if frames.ndim == 4 else frames
    _check_batch(tuple(frames.shape), frames.dtype == np.uint8, frames.dtype, "frames", "[B, T, H, W, 3]", True)
    return frames


def as_uint8_pixels(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Validate preprocessed frames and return them as a torch ``uint8 [B, T, C, h, w]`` tensor.

    Args:
        pixels: ``[B, T, C, h, w]`` uint8 (numpy or torch, any device), as returned by
            :meth:`VisionEncoder.preprocess_frames`; a single clip ``[T, C, h, w]`` gets a batch axis of 1.

    Raises:
        VitmusicError: wrong rank or dtype, or no time steps.
    """
    if not isinstance(pixels, torch.Tensor):
        pixels = torch.from_numpy(np.ascontiguousarray(pixels))
    pixels = pixels[None] if pixels.ndim == 4 else pixels
    _check_batch(tuple(pixels.shape), pixels.dtype == torch.uint8, pixels.dtype, "preprocessed frames",
                 "[B, T, C, h, w]", False)
    return pixels


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
        kind: ``"videomae"``, ``"vit"``, ``"clip"`` or ``"efficientnet"`` (per frame, ImageNet weights).
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
    def _preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """Resize / crop ``uint8 [N, H, W, 3]`` frames -> ``uint8 [N, C, h, w]`` (no rescale / normalize)."""

    @abc.abstractmethod
    def _encode(self, pixels: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode validated ``uint8 [B, T, C, h, w]`` preprocessed frames; returns ``([B, T', D], [B, T'])``."""

    @abc.abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """A JSON-able dict identifying weights + preprocessing + adapters, for feature cache keys."""

    @abc.abstractmethod
    def preprocess_fingerprint(self) -> dict[str, Any]:
        """A JSON-able dict identifying what :meth:`preprocess_frames` does (not weights), for frame cache keys."""

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(h, w)`` of the frames :meth:`encode_preprocessed` takes (None: any size)."""
        return None

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

    def adapter_modules(self) -> nn.ModuleList:
        """The LoRA sub-modules (shared, not copied): exactly the trainable parameters, for a trainer to own.

        Raises:
            VitmusicError: a trainable parameter outside the adapters (the base weights must stay frozen).
        """
        from vitmusic.encoders.lora import adapter_modules

        adapters = adapter_modules(self)
        trainable = {id(p) for p in self.trainable_parameters()}
        if {id(p) for p in adapters.parameters()} != trainable:
            raise VitmusicError(f"encoder {self.name_or_path!r}: trainable parameters outside its LoRA adapters")
        return adapters

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

    def preprocess_frames(
        self,
        frames: np.ndarray | torch.Tensor,
        mask: np.ndarray | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The checkpoint's image preprocessing up to the model's input size, kept as uint8.

        Only the processor's geometric steps run here (resize, center crop); rescaling and normalisation
        happen in :meth:`encode_preprocessed`. What this returns does not depend on the weights or adapters.

        Args:
            frames: ``uint8 [B, T, H, W, 3]`` RGB frames (numpy or torch).
            mask: optional ``bool [B, T]`` frame validity; masked frames are not processed (left zero).

        Returns:
            ``uint8 [B, T, C, h, w]`` on the CPU (``C = 3``, ``h, w`` the model's input size).
        """
        arr = as_uint8_frames(frames)
        b, t = arr.shape[:2]
        valid = np.flatnonzero(as_frame_mask(mask, b, t).reshape(-1).numpy())
        flat = arr.reshape(b * t, *arr.shape[2:])
        done = self._preprocess(flat[valid] if len(valid) else flat[:1])  # [n, C, h, w]
        out = torch.zeros(b * t, *done.shape[1:], dtype=torch.uint8)
        if len(valid):
            out[torch.from_numpy(valid)] = done
        return out.view(b, t, *done.shape[1:])

    def encode_preprocessed(
        self,
        pixels: np.ndarray | torch.Tensor,
        mask: np.ndarray | torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode frames already passed through :meth:`preprocess_frames`.

        Runs with gradient (LoRA adapters in the graph) when the encoder is trainable and grad is enabled.

        Args:
            pixels: ``uint8 [B, T, C, h, w]`` (numpy or torch, CPU or the encoder's device).
            mask: optional ``bool [B, T]`` frame validity.

        Returns:
            ``(embeds float [B, T', D], mask bool [B, T'])`` as :meth:`encode_frames`.
        """
        pixels = as_uint8_pixels(pixels)
        size = self.input_size
        if size is not None and tuple(pixels.shape[-2:]) != tuple(size):
            raise VitmusicError(
                f"encoder {self.name_or_path!r} takes {size[0]}x{size[1]} frames, got "
                f"{pixels.shape[-2]}x{pixels.shape[-1]}: the frames were preprocessed (cached) for another "
                "encoder; rebuild the cache with this encoder (vitmusic extract)"
            )
        frame_mask = as_frame_mask(mask, pixels.shape[0], pixels.shape[1])
        with torch.set_grad_enabled(self.is_trainable and torch.is_grad_enabled()):
            embeds, out_mask = self._encode(pixels, frame_mask)
        out_mask = out_mask.to(embeds.device)
        embeds = embeds * out_mask.unsqueeze(-1).to(embeds.dtype)
        return embeds, out_mask

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
            Masked positions hold zeros. Same as ``encode_preprocessed(preprocess_frames(frames, mask), mask)``.
        """
        return self.encode_preprocessed(self.preprocess_frames(frames, mask), mask)

    forward = encode_frames
