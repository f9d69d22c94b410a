"""Test videos whose frames show their own index, with optional click tracks (used by the reader tests)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from vitmusic.data.videowriter import parse_fps, write_video

H, W = 48, 64  # 2 x 4 blocks of 24 x 16 pixels = 8 bits per frame
BITS = 8


def encode_index(i: int, height: int = H, width: int = W) -> np.ndarray:
    """A frame whose 8 big black/white blocks spell ``i`` in binary (survives H.264)."""
    f = np.zeros((height, width, 3), np.uint8)
    bh, bw = height // 2, width // 4
    for b in range(BITS):
        if (i >> b) & 1:
            r, c = divmod(b, 4)
            f[r * bh : (r + 1) * bh, c * bw : (c + 1) * bw] = 255
    return f


def decode_index(frame: np.ndarray) -> int:
    height, width = frame.shape[:2]
    bh, bw = height // 2, width // 4
    value = 0
    for b in range(BITS):
        r, c = divmod(b, 4)
        block = frame[r * bh + bh // 4 : (r + 1) * bh - bh // 4, c * bw + bw // 4 : (c + 1) * bw - bw // 4]
        value |= int(block.mean() > 128) << b
    return value


def decode_indices(frames: np.ndarray) -> list[int]:
    return [decode_index(f) for f in frames]


def click_track(click_times_s: list[float], duration_s: float, sample_rate: int) -> np.ndarray:
    """Silence with a 2 ms decaying click starting at each time (sample index = round(t * sample_rate))."""
    y = np.zeros(int(round(duration_s * sample_rate)), np.float32)
    n = int(0.002 * sample_rate)
    burst = (0.9 * np.exp(-np.arange(n) / (n / 4))).astype(np.float32)
    burst[1::2] *= -1  # broadband, so AAC keeps its onset sharp
    for t in click_times_s:
        k = int(round(t * sample_rate))
        y[k : k + n] += burst[: len(y) - k]
    return y


def click_onsets(y: np.ndarray, sample_rate: int, min_gap_s: float = 0.05) -> np.ndarray:
    """Sample index where each click starts (first sample above half the peak, clicks >= min_gap_s apart)."""
    env = np.abs(y)
    above = np.flatnonzero(env > 0.5 * env.max())
    onsets = [above[0]]
    for k in above[1:]:
        if k - onsets[-1] > min_gap_s * sample_rate:
            onsets.append(k)
    return np.asarray(onsets)


def make_index_video(
    path: Path,
    num_frames: int,
    fps: str | float | Fraction,
    *,
    click_every: int | None = None,
    sample_rate: int = 48000,
    gop: int | None = None,
) -> tuple[Path, list[int]]:
    """Write an index video; with ``click_every`` add a click at the start of every that-many-th frame.

    Returns the path and the clicked frame indices.
    """
    rate = parse_fps(fps)
    frames = (encode_index(i) for i in range(num_frames))
    if click_every is None:
        write_video(path, frames, rate, gop=gop)
        return Path(path), []
    clicked = list(range(3, num_frames, click_every))
    duration_s = float(num_frames / rate)
    audio = click_track([float(k / rate) for k in clicked], duration_s, sample_rate)
    write_video(path, frames, rate, audio=audio, sample_rate=sample_rate, gop=gop)
    return Path(path), clicked


def write_vfr_video(path: Path, pts_ms: list[int]) -> Path:
    """An H.264 mp4 with irregular frame timestamps (ms), written packet by packet with PyAV."""
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"preset": "veryfast", "crf": "20"}
        for i, p in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(encode_index(i), format="rgb24")
            frame.pts = p
            frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return Path(path)


def moving_square_video(path: Path, num_frames: int, fps, seed: int = 0, size=(48, 64)) -> Path:
    """A bright square moving over a dark background (content differs by seed), with a quiet soundtrack."""
    h, w = size
    frames = np.full((num_frames, h, w, 3), 20, np.uint8)
    for t in range(num_frames):
        x = (t * (seed + 2) * 3) % (w - 16)
        frames[t, 10:30, x:x + 16] = 230
    return write_video(path, frames, fps)
