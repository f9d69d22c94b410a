"""Pretrained vision encoders (VideoMAE, ViT, CLIP; EfficientNet-Lite0 with ImageNet weights) returning ``(embeds [B, T, D], mask [B, T])``.

Typical use::

    enc = load_encoder("tiny-vit", rate_hz=4.0)          # or "MCG-NJU/videomae-base", or a local dir
    frames = reader.read(fps=enc.sample_fps()).data       # uint8 [T, H, W, 3]
    embeds, mask = enc.encode_frames(frames[None])        # [1, T', D], [1, T']
    embeds, times_s = encode_video(enc, "performance.mp4")  # whole file, bounded memory: [T', D], [T']
"""

from vitmusic.encoders.base import VisionEncoder
from vitmusic.encoders.efficientnet import EfficientNetEncoder
from vitmusic.encoders.hf import CLIPEncoder, VideoMAEEncoder, ViTEncoder, load_encoder
from vitmusic.encoders.presets import REAL_ENCODERS, TINY_PRESETS, materialize_tiny_preset
from vitmusic.encoders.video import encode_video

__all__ = [
    "CLIPEncoder",
    "EfficientNetEncoder",
    "REAL_ENCODERS",
    "TINY_PRESETS",
    "VideoMAEEncoder",
    "ViTEncoder",
    "VisionEncoder",
    "encode_video",
    "load_encoder",
    "materialize_tiny_preset",
]
