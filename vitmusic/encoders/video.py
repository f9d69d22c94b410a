"""Decoded video -> encoder embeddings: the one windowed loop, and clips encoded several at a time.

Frames are always decoded at ``encoder.sample_fps(rate_hz)`` on ticks ``t0_s + k / fps`` (the frame on
screen at each tick, :meth:`VideoReader.read <vitmusic.data.video.VideoReader.read>`), and always turned
into embeddings by :func:`encode_clips`: clips of one frame size share an encoder call, time padded with
masked frames. Its callers:

* :func:`embed_video`: a video (or a span of it) window by window, in bounded memory;
* the feature cache (:mod:`vitmusic.training.features`): manifest clips read by :func:`read_clip_frames`,
  a batch at a time, each cut after its last valid step.

Windows are whole multiples of the encoder's input unit (:func:`frame_unit`: ``num_frames`` F for VideoMAE, the
frames of one step otherwise) at the decoding rate, about :data:`ENCODE_WINDOW_S` seconds long, so VideoMAE
chunks never straddle a window boundary and the result equals encoding all frames at once (only the final,
shorter window is padded, by the encoder, repeating its last frame; its padding slots are masked).

Both generation paths (:mod:`vitmusic.inference`) encode through :func:`embed_video`; the MIDI path passes
its part-slot view of the encoder (:class:`~vitmusic.generators.midi.slots.PartSlotEncoder`), its cache the
same view over slot-major frames.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "ENCODE_WINDOW_S",
    "FramesVideo",
    "VideoEmbeddings",
    "clip_batches",
    "embed_video",
    "encode_clips",
    "encode_video",
    "frame_unit",
    "preprocess_clips",
    "read_clip_frames",
    "window_frames",
]

ENCODE_WINDOW_S = 4.0  # seconds of frames decoded at a time (rounded to whole encoder units)


def frame_unit(encoder) -> int:
    """Frames of one whole encoder input (1 for per-frame encoders, VideoMAE: its clip length)."""
    return math.lcm(int(getattr(encoder, "clip_frames", 1)), int(encoder.frames_per_step))


def window_frames(encoder, fps: float, window_s: float | None = None) -> int:
    """Frames decoded per window: whole :func:`frame_unit` multiples, about ``window_s`` seconds at ``fps``."""
    unit = frame_unit(encoder)
    window_s = ENCODE_WINDOW_S if window_s is None else window_s
    return unit * max(1, round(window_s * fps / unit))


@dataclass
class VideoEmbeddings:
    """Encoder output for one video (or a span of it).

    Attributes:
        embeds: float ``[1, T, D]`` (CPU).
        mask: bool ``[1, T]``.
        times_s: float64 ``[T]``: presentation time of each step's first frame, seconds from the span start.
        duration_s: length of the music to generate for it (the video's, or ``t1_s - t0_s``).
    """

    embeds: torch.Tensor
    mask: torch.Tensor
    times_s: np.ndarray
    duration_s: float


def read_clip_frames(path: str | os.PathLike, start_s: float, end_s: float, fps: float) -> np.ndarray:
    """uint8 frames ``[T, H, W, 3]`` of ``[start_s, end_s)`` on ticks ``start_s + k / fps``.

    The frames :func:`embed_video` decodes for the same span (its windows keep the same ticks).
    """
    from vitmusic.data.video import VideoReader

    with VideoReader(path) as reader:
        return reader.read(start_s, end_s, fps=fps).data


def clip_batches(
    clips: Sequence[np.ndarray], *, by_length: bool = False
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """Group decoded clips (``uint8 [T_i, H, W, 3]`` each) whose frame size agrees into padded batches.

    Args:
        clips: decoded clips.
        by_length: also group by ``T_i`` (no time padding at all).

    Yields:
        ``(indices, batch uint8 [b, T, H, W, 3], frame_mask bool [b, T])``, time padded with masked frames.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, f in enumerate(clips):
        groups.setdefault(f.shape[:3] if by_length else f.shape[1:3], []).append(i)
    for idx in groups.values():
        t_max = max(len(clips[i]) for i in idx)
        h, w = clips[idx[0]].shape[1:3]
        batch = np.zeros((len(idx), t_max, h, w, 3), np.uint8)
        frame_mask = np.zeros((len(idx), t_max), bool)
        for j, i in enumerate(idx):
            batch[j, : len(clips[i])] = clips[i]
            frame_mask[j, : len(clips[i])] = True
        yield idx, batch, frame_mask


@torch.no_grad()
def encode_clips(
    encoder, clips: Sequence[np.ndarray], *, trim: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Encode decoded clips, those of one frame size in one ``encode_frames`` call (time padded, masked).

    Batching does not change a clip's steps: the encoders keep masked frames out of the model (VideoMAE
    pads each clip after its last valid frame with that frame), up to float rounding of batched matmuls.

    Args:
        encoder: anything with ``encode_frames(frames [B, T, H, W, 3], mask [B, T])``.
        clips: ``uint8 [T_i, H, W, 3]`` each, ``T_i > 0``.
        trim: cut each clip after its last valid step (the feature cache's rows). False: keep every step the
            encoder gives the clip on its own (VideoMAE: the masked slots padding a partial last chunk), as
            :func:`embed_video` concatenates them; clips then share a call only with clips of equal length.

    Returns:
        Per clip ``(embeds float32 [T', D], mask bool [T'])``, on the CPU.
    """
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(clips)
    for idx, batch, frame_mask in clip_batches(clips, by_length=not trim):
        embeds, mask = encoder.encode_frames(batch, frame_mask)  # [b, T', D], [b, T']
        embeds, mask = embeds.float().cpu().numpy(), mask.cpu().numpy().astype(bool)
        for j, i in enumerate(idx):
            n = (int(mask[j].nonzero()[0].max()) + 1 if mask[j].any() else 0) if trim else mask.shape[1]
            out[i] = (embeds[j, :n], mask[j, :n])
    return out  # type: ignore[return-value]


def preprocess_clips(encoder, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Decoded clips (``uint8 [T_i, H, W, 3]`` each) through the encoder's image processor, batched as in
    :func:`encode_clips`: ``uint8 [T_i, C, h, w]`` each (``VisionEncoder.preprocess_frames``)."""
    out: list[np.ndarray | None] = [None] * len(clips)
    for idx, batch, frame_mask in clip_batches(clips):
        pixels = encoder.preprocess_frames(batch, frame_mask).numpy()  # [b, T, C, h, w]
        for j, i in enumerate(idx):
            out[i] = pixels[j, : len(clips[i])]
    return out  # type: ignore[return-value]


class FramesVideo:
    """Decoded frames held in memory, read like a :class:`~vitmusic.data.video.VideoReader` (frame ``i`` is on
    screen from ``i / fps``): what :func:`embed_video` (and so every generation pipeline) takes in place of a
    file, e.g. frames from a camera or a notebook.

    Args:
        frames: uint8 RGB ``[T, H, W, 3]``.
        fps: their frame rate.
        name: what error messages call it.

    Raises:
        DataError: not ``[T, H, W, 3]`` uint8 frames with ``T > 0``, or ``fps <= 0``.
    """

    def __init__(self, frames: np.ndarray, fps: float, name: str = "<frames>") -> None:
        from pathlib import Path

        from vitmusic.data.video import VideoInfo
        from vitmusic.errors import DataError

        data = np.asarray(frames)
        if data.ndim != 4 or data.shape[-1] != 3 or data.dtype != np.uint8 or len(data) == 0:
            raise DataError(f"{name}: frames must be uint8 [T, H, W, 3] with T > 0, got {data.dtype} "
                            f"{tuple(data.shape)}")
        if not float(fps) > 0:
            raise DataError(f"{name}: fps must be > 0, got {fps}")
        self.data, self.fps, self.path = data, float(fps), name
        self.info = VideoInfo(Path(name), self.fps, len(data), len(data) / self.fps, data.shape[2], data.shape[1],
                              False, None)

    def __enter__(self) -> FramesVideo:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __str__(self) -> str:
        return self.path

    def read(self, t0: float = 0.0, t1: float | None = None, *, fps: float | None = None):
        """The frames on screen in ``[t0, t1)``: all of them, or one per tick of ``fps`` (as VideoReader)."""
        from vitmusic.data.video import Frames
        from vitmusic.errors import DataError

        end = self.info.duration_s
        t1 = end if t1 is None else min(float(t1), end)
        if not 0.0 <= t0 < t1:
            raise DataError(f"{self.path}: empty or outside time range [{t0:.3f}, {t1:.3f}) s of {end:.3f} s")
        if fps is None:
            idx = np.arange(int(np.ceil(t0 * self.fps - 1e-9)), int(np.ceil(t1 * self.fps - 1e-9)))
        else:
            ticks = t0 + np.arange(max(1, int(np.ceil((t1 - t0) * fps - 1e-9)))) / fps
            idx = np.floor(ticks * self.fps + 1e-6).astype(int)
        idx = np.clip(idx, 0, len(self.data) - 1)
        return Frames(self.data[idx], idx / self.fps)

    def iter_windows(self, window_s: float, hop_s: float | None = None, *, fps: float | None = None):
        """Consecutive windows ``[k * hop_s, k * hop_s + window_s)`` over all the frames."""
        hop_s = window_s if hop_s is None else hop_s
        k = 0
        while k * hop_s < self.info.duration_s - 1e-9:
            yield self.read(k * hop_s, k * hop_s + window_s, fps=fps)
            k += 1


def _frame_windows(reader, t0_s: float, t1_s: float, fps: float, n_frames: int):
    window_s = n_frames / fps
    if t0_s == 0.0 and t1_s >= reader.info.duration_s:
        yield from reader.iter_windows(window_s, fps=fps)  # one sequential pass, bounded memory
        return
    k = 0
    while t0_s + k * window_s < t1_s - 1e-9:
        yield reader.read(t0_s + k * window_s, min(t0_s + (k + 1) * window_s, t1_s), fps=fps)
        k += 1


@torch.no_grad()
def embed_video(
    encoder,
    video: str | os.PathLike | FramesVideo,
    *,
    rate_hz: float | None = None,
    t0_s: float = 0.0,
    t1_s: float | None = None,
    window_s: float | None = None,
    clip_to_video: bool = False,
    progress: bool = False,
) -> VideoEmbeddings:
    """Encoder embeddings of a video's ``[t0_s, t1_s)`` (default: all of it), decoded window by window.

    Frames are decoded at ``encoder.sample_fps(rate_hz)`` on ticks ``k / fps`` from ``t0_s`` (the frame on
    screen at each tick).

    Args:
        encoder: a loaded :class:`~vitmusic.encoders.VisionEncoder`, or anything with its ``sample_fps``,
            ``frames_per_step``, ``clip_frames`` and ``encode_frames``.
        video: video file, or frames in memory (:class:`FramesVideo`).
        rate_hz: embedding rate; defaults to the encoder's own.
        t0_s, t1_s: span in seconds (``t1_s`` None: the end of the video).
        window_s: decoding window (default :data:`ENCODE_WINDOW_S`; rounded to whole encoder units).
        clip_to_video: a ``t1_s`` past the end of the video means its end (else it is an error, unless within a
            frame of the end, and ``duration_s`` keeps the span asked for).
        progress: show a tqdm bar on stderr.

    Returns:
        :class:`VideoEmbeddings` (``embeds [1, T, D]``, ``mask [1, T]``, step times from ``t0_s``).

    Raises:
        DataError: missing, empty or corrupt video, or a range outside it.
    """
    from tqdm.auto import tqdm

    from vitmusic.data.video import VideoReader
    from vitmusic.errors import DataError

    fps = encoder.sample_fps(rate_hz)
    step_frames = int(encoder.frames_per_step)
    with video if isinstance(video, FramesVideo) else VideoReader(video) as reader:
        end = reader.info.duration_s
        t1 = end if t1_s is None else min(float(t1_s), end) if clip_to_video else float(t1_s)
        if not 0.0 <= t0_s < t1:
            raise DataError(f"{video}: empty or negative time range [{t0_s:.3f}, {t1:.3f}) s")
        check_one_window(video, min(t1, end) - t0_s, encoder, fps)  # a still image / 1-frame video: one line
        n_win = window_frames(encoder, fps, window_s)
        total = math.ceil((min(t1, end) - t0_s) * fps / n_win - 1e-9)
        embeds, masks, times = [], [], []
        bar = tqdm(total=total, desc="encode video", unit="window", disable=not progress, leave=False)
        for frames in _frame_windows(reader, float(t0_s), t1, fps, n_win):
            if len(frames) == 0:
                continue
            e, m = encode_clips(encoder, [frames.data], trim=False)[0]  # [T', D], [T']
            first = np.minimum(np.arange(len(e)) * step_frames, len(frames) - 1)
            embeds.append(torch.from_numpy(e)[None])
            masks.append(torch.from_numpy(m)[None])
            times.append(frames.times_s[first] - t0_s)
            bar.update(1)
        bar.close()
    if not embeds:
        raise DataError(f"{video}: no frames in [{t0_s:.3f}, {t1:.3f}) s")
    return VideoEmbeddings(torch.cat(embeds, 1), torch.cat(masks, 1).bool(), np.concatenate(times),
                           float(t1 - t0_s))


def encode_video(
    encoder,
    path: str | os.PathLike,
    *,
    rate_hz: float | None = None,
    window_s: float | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of a whole video at ``rate_hz`` steps/s, valid steps only (see :func:`embed_video`).

    Returns:
        ``(embeds float32 [T', D], times_s float64 [T'])``: step ``j`` starts at ``times_s[j] = j / rate_hz``.

    Raises:
        DataError: missing or unreadable video.
    """
    emb = embed_video(encoder, path, rate_hz=rate_hz, window_s=window_s, progress=progress)
    embeds = emb.embeds[0][emb.mask[0]].numpy().astype(np.float32)
    times_s = np.arange(len(embeds), dtype=np.float64) * encoder.frames_per_step / encoder.sample_fps(rate_hz)
    return embeds, times_s


def check_one_window(video: str | os.PathLike, span_s: float, encoder, fps: float) -> None:
    """Refuse a span shorter than one whole encoder window (``lcm(clip_frames, frames_per_step)`` frames at
    ``fps``): such an input (a 1-frame video, a still image renamed ``.mp4``) would otherwise "succeed" with
    a few hundredths of a second of audio.

    Raises:
        DataError: ``span_s`` below one window (with 1 ms tolerance for frame-time rounding).
    """
    from vitmusic.errors import DataError

    unit = frame_unit(encoder)
    window_s = unit / float(fps)
    if span_s < window_s - 1e-3:
        raise DataError(f"{video}: {span_s:.3f} s of video is shorter than one encoder window "
                        f"({unit} frame(s) at {fps:g} fps = {window_s:.3f} s)")
