"""Encode a whole video file in bounded memory: decode in windows, encode, concatenate.

Windows are whole multiples of the encoder's input clip (``num_frames`` F for VideoMAE, 1 frame
otherwise) at the decoding rate, so VideoMAE chunks never straddle a window boundary and the result equals
encoding all frames at once (only the final, shorter window is padded; its padding slots are dropped).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from vitmusic.encoders.base import VisionEncoder


def encode_video(
    encoder: VisionEncoder,
    path: str | os.PathLike,
    *,
    rate_hz: float | None = None,
    window_s: float = 32.0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of a whole video at ``rate_hz`` steps/s.

    Frames are decoded at ``encoder.sample_fps(rate_hz)`` on ticks ``k / fps`` from the video's start
    (the frame on screen at each tick), one window at a time.

    Args:
        encoder: a loaded :class:`VisionEncoder`.
        path: video file.
        rate_hz: embedding rate; defaults to the encoder's own ``rate_hz``.
        window_s: decoding window (rounded to whole encoder clips); bounds memory.
        progress: show a tqdm bar on stderr.

    Returns:
        ``(embeds float32 [T', D], times_s float64 [T'])``: step ``j`` starts at ``times_s[j] = j / rate_hz``.

    Raises:
        DataError: missing or unreadable video.
    """
    from tqdm.auto import tqdm

    from vitmusic.data.video import VideoReader

    fps = encoder.sample_fps(rate_hz)
    clip = int(getattr(encoder, "clip_frames", 1))
    frames_per_window = max(1, round(window_s * fps / clip)) * clip
    window_s = frames_per_window / fps
    chunks: list[np.ndarray] = []
    with VideoReader(path) as reader:
        total = math.ceil(reader.info.duration_s / window_s - 1e-9)
        bar = tqdm(total=total, desc=f"encode {os.fspath(path)}", unit="window", disable=not progress)
        with torch.no_grad(), bar:
            for frames in reader.iter_windows(window_s, fps=fps):
                if len(frames.data):
                    embeds, mask = encoder.encode_frames(frames.data[None])
                    chunks.append(embeds[0][mask[0]].float().cpu().numpy())
                bar.update(1)
    embeds = np.concatenate(chunks) if chunks else np.zeros((0, encoder.embed_dim), np.float32)
    times_s = np.arange(len(embeds), dtype=np.float64) * encoder.frames_per_step / fps
    return embeds, times_s


def check_one_window(video: str | os.PathLike, span_s: float, encoder, fps: float) -> None:
    """Refuse a span shorter than one whole encoder window (``lcm(clip_frames, frames_per_step)`` frames at
    ``fps``): such an input (a 1-frame video, a still image renamed ``.mp4``) would otherwise "succeed" with
    a few hundredths of a second of audio.

    Raises:
        DataError: ``span_s`` below one window (with 1 ms tolerance for frame-time rounding).
    """
    from vitmusic.errors import DataError

    unit = math.lcm(int(getattr(encoder, "clip_frames", 1)), int(encoder.frames_per_step))
    window_s = unit / float(fps)
    if span_s < window_s - 1e-3:
        raise DataError(f"{video}: {span_s:.3f} s of video is shorter than one encoder window "
                        f"({unit} frame(s) at {fps:g} fps = {window_s:.3f} s)")
