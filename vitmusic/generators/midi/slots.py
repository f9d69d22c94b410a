"""Part slots: a frozen encoder seen through ``P`` equal horizontal slots of the frame, one per performer.

Parts. A piece has ``P`` parts (performers) that vary per piece. The synthetic benchmark (and URMP's videos,
roughly) shows the performers side by side, part ``k`` in the ``k``-th of ``P`` equal horizontal slots, so
each slot is cropped and encoded on its own: the embeddings of a clip are ``[P, T, D]`` and one shared head
transcribes every part, told which instrument the part plays by a learned instrument embedding (the same
hand height means a different pitch on a violin and on a cello). Batches pad parts up to the largest ``P``
and mask the padding (``mask [B, P, T]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vitmusic.encoders.video import frame_unit
from vitmusic.errors import DataError

__all__ = ["SLOT_LAYOUT", "PartSlotEncoder", "frame_unit", "split_slots"]

SLOT_LAYOUT = "horizontal-equal-v1"  # how frames are cut into parts (recorded in feature-cache keys)


def split_slots(frames: np.ndarray, num_parts: int) -> np.ndarray:
    """``uint8 [..., H, W, 3]`` -> ``[P, ..., H, W // P, 3]``: part ``k`` is the ``k``-th slot from the left."""
    if num_parts < 1:
        raise DataError(f"need at least one part, got {num_parts}")
    w = frames.shape[-2] // num_parts
    if w < 1:
        raise DataError(f"frames {frames.shape[-2]} px wide cannot hold {num_parts} parts")
    return np.stack([frames[..., :, k * w:(k + 1) * w, :] for k in range(num_parts)])


class PartSlotEncoder:
    """A frozen encoder seen through the part slots.

    With ``num_parts`` set, :meth:`encode_frames` takes whole frames ``[B, T, H, W, 3]`` and returns the
    parts' embeddings side by side, ``[B, T', P * D]`` (used with :func:`vitmusic.encoders.video.embed_video`
    at generation time). With ``num_parts=None`` the frames are already slot-major (the cache's reader)
    and it only delegates; either way :meth:`fingerprint` records the slot layout.
    """

    def __init__(self, encoder, num_parts: int | None = None) -> None:
        self.encoder, self.num_parts = encoder, num_parts
        self.frames_per_step = encoder.frames_per_step
        self.clip_frames = int(getattr(encoder, "clip_frames", 1))

    @property
    def embed_dim(self) -> int:
        return self.encoder.embed_dim * (self.num_parts or 1)

    def sample_fps(self, rate_hz: float | None = None) -> float:
        return self.encoder.sample_fps(rate_hz)

    def fingerprint(self) -> dict[str, Any]:
        return {**self.encoder.fingerprint(), "part_slots": SLOT_LAYOUT}

    def encode_frames(self, frames, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.num_parts is None:
            return self.encoder.encode_frames(frames, mask)
        arr = np.asarray(frames)
        B, T, P = arr.shape[0], arr.shape[1], self.num_parts
        slots = split_slots(arr, P).swapaxes(0, 1)  # [B, P, T, H, w, 3]
        m = None if mask is None else np.repeat(np.asarray(mask), P, axis=0)
        e, em = self.encoder.encode_frames(slots.reshape(B * P, T, *slots.shape[3:]), m)  # [B*P, T', D]
        e = e.reshape(B, P, e.shape[1], -1).permute(0, 2, 1, 3).reshape(B, e.shape[1], -1)
        return e, em.reshape(B, P, -1)[:, 0]
