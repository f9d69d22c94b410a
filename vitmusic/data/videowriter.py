"""Write H.264/AAC mp4 files and replace a video's audio track (mux), atomically.

Used to render synthetic benchmark videos, to attach generated music to a performance video
(``vitmusic generate --mux``) and to build listening-test stimuli. Frames may be an iterable so long
videos stream through the encoder without being held in memory.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from vitmusic.atomic import atomic_path
from vitmusic.errors import DataError

__all__ = ["parse_fps", "rgb_to_yuv420p", "write_video", "mux_audio"]

_AUDIO_BIT_RATE = 192_000


def parse_fps(fps: float | int | Fraction | str) -> Fraction:
    """Turn a frame rate into an exact fraction.

    NTSC rates written in decimal ("29.97", 23.976, "59.94") become ``n*1000/1001``; other values are
    taken exactly ("25", 30, "30000/1001", Fraction(24)).

    Raises:
        ValueError: for a non-positive or unparsable rate.
    """
    try:
        f = fps if isinstance(fps, Fraction) else Fraction(str(fps).strip())
    except (ValueError, ZeroDivisionError) as e:
        raise ValueError(
            f"invalid fps {fps!r}: expected a number, a fraction like '30000/1001' or '29.97'"
        ) from e
    if f <= 0:
        raise ValueError(f"invalid fps {fps!r}: must be > 0")
    n = round(f * Fraction(1001, 1000))
    ntsc = Fraction(n * 1000, 1001)
    # 29.97 / 23.976 / 59.94 are rounded spellings of n*1000/1001, never meant literally.
    if f != ntsc and f.denominator != 1 and abs(f - ntsc) < Fraction(1, 200):
        return ntsc
    return f.limit_denominator(1_000_000)


def _as_audio(audio: np.ndarray, what: str) -> np.ndarray:
    """Return float32 planar audio ``[C, N]`` clipped to [-1, 1] (C in 1, 2)."""
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or y.shape[0] not in (1, 2):
        raise ValueError(
            f"{what}: audio must be [N] or [C, N] with C in (1, 2), got shape {tuple(np.shape(audio))}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{what}: audio contains NaN or inf")
    return np.ascontiguousarray(np.clip(y, -1.0, 1.0))


def _check_frame(frame: np.ndarray, shape: tuple[int, ...] | None, index: int) -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
        raise ValueError(f"frame {index}: expected uint8 [H, W, 3], got {f.dtype} {tuple(f.shape)}")
    if shape is not None and f.shape != shape:
        raise ValueError(f"frame {index}: shape {tuple(f.shape)} differs from the first frame's {shape}")
    return np.ascontiguousarray(f)


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV 4:2:0 of an RGB frame, in integer arithmetic (the same bytes on every run).

    Args:
        rgb: uint8 ``[H, W, 3]``, H and W even.

    Returns:
        uint8 ``[H * 3 // 2, W]``: the Y plane, then the U and V planes (``[H/2, W/2]`` each) row-major, the
        layout ``av.VideoFrame.from_ndarray(..., format="yuv420p")`` takes.
    """
    h, w = rgb.shape[:2]
    x = rgb.astype(np.int32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    # chroma of each 2x2 block's mean colour (sums of 4 pixels, so the shift grows by 2)
    q = x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]  # 5x faster than a reshaped .sum()
    r4, g4, b4 = q[..., 0], q[..., 1], q[..., 2]
    u = ((-38 * r4 - 74 * g4 + 112 * b4 + 512) >> 10) + 128
    v = ((112 * r4 - 94 * g4 - 18 * b4 + 512) >> 10) + 128
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = np.clip(y, 0, 255)
    out[h:].reshape(-1)[: h * w // 4] = np.clip(u, 0, 255).reshape(-1)
    out[h:].reshape(-1)[h * w // 4:] = np.clip(v, 0, 255).reshape(-1)
    return out


def _iter_frames(frames: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"frames must be uint8 [T, H, W, 3], got shape {tuple(frames.shape)}")
        return iter(frames)
    return iter(frames)


class _AudioEncoder:
    """Encode planar float audio to AAC packets for ``stream``, pulled up to a given time."""

    def __init__(self, stream, y: np.ndarray, sample_rate: int):
        import av

        self.stream = stream
        self.y = y
        self.sample_rate = sample_rate
        self.layout = "mono" if y.shape[0] == 1 else "stereo"
        self.frame_size = stream.codec_context.frame_size or 1024
        self.pos = 0
        self._av = av

    def packets_until(self, t_s: float | None) -> list:
        """Encode audio frames covering samples up to time ``t_s`` (all remaining if None), flush at end."""
        n_total = self.y.shape[1]
        stop = n_total if t_s is None else min(n_total, int(np.ceil(t_s * self.sample_rate)))
        out = []
        while self.pos < stop:
            chunk = self.y[:, self.pos : self.pos + self.frame_size]
            frame = self._av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="fltp", layout=self.layout
            )
            frame.sample_rate = self.sample_rate
            frame.pts = self.pos
            frame.time_base = Fraction(1, self.sample_rate)
            out.extend(self.stream.encode(frame))
            self.pos += chunk.shape[1]
        if t_s is None:
            out.extend(self.stream.encode(None))
        return out


def _add_audio_stream(container, y: np.ndarray, sample_rate: int) -> _AudioEncoder:
    stream = container.add_stream("aac", rate=int(sample_rate))
    stream.codec_context.layout = "mono" if y.shape[0] == 1 else "stereo"
    stream.codec_context.format = "fltp"
    stream.codec_context.bit_rate = _AUDIO_BIT_RATE
    stream.codec_context.time_base = Fraction(1, int(sample_rate))
    return _AudioEncoder(stream, y, int(sample_rate))


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float | int | Fraction | str,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 23,
    *,
    preset: str = "veryfast",
    gop: int | None = None,
) -> Path:
    """Encode frames (and optionally audio) to an H.264 yuv420p mp4 (+ AAC), written atomically.

    Frame ``i`` gets presentation time ``i / fps`` exactly (constant frame rate, ``fps`` kept as a fraction);
    audio sample ``n`` plays at ``n / sample_rate`` on the same clock.

    Args:
        path: output ``.mp4`` path (parent folders are created).
        frames: uint8 array ``[T, H, W, 3]`` (RGB) or an iterable of ``[H, W, 3]`` frames (streamed).
            Height and width must be even (yuv420p).
        fps: frame rate: number, Fraction, or string ("25", "29.97" -> 30000/1001, "30000/1001").
        audio: optional float audio ``[N]`` or ``[C, N]`` (C = 1 or 2) in [-1, 1].
        sample_rate: audio sample rate in Hz (required with ``audio``).
        crf: x264 constant rate factor (lower = better quality, 0 = lossless-ish).
        preset: x264 speed preset.
        gop: maximum keyframe interval in frames (x264's default when None).

    Returns:
        The output path.

    Raises:
        ValueError: bad arguments (odd size, no frames, wrong dtype/shape, missing sample_rate).
    """
    import av

    rate = parse_fps(fps)
    y = None
    if audio is not None:
        if not sample_rate or sample_rate <= 0:
            raise ValueError("write_video: sample_rate is required (> 0) when audio is given")
        y = _as_audio(audio, "write_video")
    it = _iter_frames(frames)
    try:
        first = next(it)
    except StopIteration:
        raise ValueError("write_video: no frames to write") from None
    first = _check_frame(first, None, 0)
    height, width = first.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(
            f"write_video: width and height must be even for H.264 yuv420p, got {width}x{height}"
        )
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            vstream = container.add_stream("libx264", rate=rate)
            vstream.width, vstream.height = width, height
            vstream.pix_fmt = "yuv420p"
            vstream.codec_context.time_base = 1 / rate
            # the same frames must give the same bytes in every process (seeded benchmarks, cached embeddings):
            # - one x264 thread: with frame threads the bytes varied from run to run;
            # - no macroblock tree: x264's mbtree reads heap memory it has not written, so the bytes followed the
            #   process's allocation history (one synthetic video in three test runs; 4 distinct files in 8
            #   encodes of the same frames in one process between which the heap was dirtied, 1 without mbtree)
            vstream.options = {"crf": str(int(crf)), "preset": preset, "threads": "1", "x264-params": "mbtree=0"}
            if gop is not None:
                vstream.codec_context.gop_size = int(gop)
            aenc = _add_audio_stream(container, y, sample_rate) if y is not None else None
            for i, arr in enumerate(itertools.chain([first], it)):
                arr = _check_frame(arr, first.shape, i)
                # converted here, not by libswscale: its rgb24 -> yuv420p path gave run-to-run differences for
                # the same frames (one synthetic video in five), so a seed did not give byte-identical files
                vf = av.VideoFrame.from_ndarray(rgb_to_yuv420p(arr), format="yuv420p")
                vf.pts = i
                vf.time_base = vstream.codec_context.time_base
                container.mux(vstream.encode(vf))
                if aenc is not None:
                    # keep the two streams interleaved so the muxer never buffers a whole track
                    container.mux(aenc.packets_until(float((i + 1) / rate)))
            container.mux(vstream.encode(None))
            if aenc is not None:
                container.mux(aenc.packets_until(None))
    return path


def mux_audio(
    video_path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    out_path: str | os.PathLike,
) -> Path:
    """Copy a video's picture stream (no re-encode) and give it ``audio`` as its only audio track.

    The audio is trimmed or zero-padded to the video's duration and starts at the video's time 0.

    Args:
        video_path: input video (any container PyAV reads; the video codec must fit in mp4, e.g. H.264).
        audio: float audio ``[N]`` or ``[C, N]`` (C = 1 or 2) in [-1, 1].
        sample_rate: audio sample rate in Hz.
        out_path: output ``.mp4`` path, written atomically (it may equal ``video_path``: the input is
            fully read before the rename).

    Returns:
        The output path.

    Raises:
        DataError: missing/corrupt input or no video stream.
    """
    import av

    from vitmusic.data.video import open_container, probe_video

    if not sample_rate or sample_rate <= 0:
        raise ValueError("mux_audio: sample_rate must be > 0")
    y = _as_audio(audio, "mux_audio")
    video_path = Path(video_path)
    duration_s = probe_video(video_path).duration_s  # first frame to end of last frame
    n = int(round(duration_s * sample_rate))
    y = y[:, :n] if y.shape[1] >= n else np.pad(y, ((0, 0), (0, n - y.shape[1])))
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp, open_container(video_path) as inp:
        in_v = inp.streams.video[0]
        # shift the video so its first frame is at 0, where the new audio starts (e.g. MPEG-TS starts at 1.4 s)
        shift = in_v.start_time or 0
        tb = float(in_v.time_base)
        with av.open(str(tmp), mode="w", format="mp4") as out:
            out_v = out.add_stream_from_template(in_v)
            aenc = _add_audio_stream(out, y, sample_rate)
            apackets = aenc.packets_until(None)
            ai = 0
            try:
                for packet in inp.demux(in_v):
                    if packet.dts is None and packet.pts is None:
                        continue  # the demuxer's empty flush packet
                    if packet.pts is not None:
                        packet.pts -= shift
                    if packet.dts is not None:
                        packet.dts -= shift
                    t = packet.dts * tb if packet.dts is not None else 0.0
                    while ai < len(apackets) and float(apackets[ai].pts * apackets[ai].time_base) <= t:
                        out.mux(apackets[ai])
                        ai += 1
                    packet.stream = out_v
                    out.mux(packet)
            except av.FFmpegError as e:
                raise DataError(f"{video_path}: cannot read video packets ({e})") from e
            out.mux(apackets[ai:])
    return out_path
