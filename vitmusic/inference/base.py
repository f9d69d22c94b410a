"""What every generation path offers (:class:`Pipeline`), and the per-item seed both paths sample with."""

from __future__ import annotations

import hashlib
import os
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Pipeline", "item_seed"]


@runtime_checkable
class Pipeline(Protocol):
    """A loaded video -> audio model (:class:`~vitmusic.inference.musicgen.MusicGenPipeline`,
    :class:`~vitmusic.inference.midi.MidiPipeline`, or a plug-in kind's), as ``vitmusic generate``, the
    workflows and :func:`vitmusic.load_pipeline` use it; a model kind's ``load_pipeline`` returns one."""

    @property
    def sample_rate(self) -> int:
        """Sample rate of the generated audio in Hz."""

    @property
    def default_seed(self) -> int:
        """The run's ``generate.seed``."""

    def describe(self) -> dict[str, Any]:
        """What generated the audio (for reports next to the outputs)."""

    def generate_video(self, video: str | os.PathLike, **options: Any) -> np.ndarray:
        """float32 wav ``[round((t1_s - t0_s) * sample_rate)]`` for a video's ``[t0_s, t1_s)`` (a file, or frames
        in memory: :class:`vitmusic.encoders.video.FramesVideo`); the options every path takes: ``t0_s``,
        ``t1_s``, ``guidance_scale`` (ignored where nothing is guided), ``seed``, ``progress``."""


def item_seed(seed: int, name: str) -> int:
    """A per-item seed from a base seed and the item's name (stable across runs, machines and orderings)."""
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
