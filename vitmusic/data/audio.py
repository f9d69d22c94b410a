"""Audio reading/writing: wav/flac (soundfile) or a video's audio stream (PyAV), soxr resampling.

Sample ``n`` of what :func:`load_audio` returns plays at ``t0 + n / sample_rate`` seconds on the clock
shared with :mod:`vitmusic.data.video` (pts minus the video stream's start, so a video's first frame is at 0);
encoder priming is dropped by placing every decoded frame at its own pts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vitmusic.atomic import atomic_path
from vitmusic.data.video import _open, _origin_s, _reason, check_media_file
from vitmusic.errors import DataError, VitmusicError

__all__ = ["load_audio", "resample", "write_audio", "audio_duration"]


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample ``[N]`` or ``[C, N]`` float audio with soxr (high quality); float32 out, same layout."""
    import soxr

    y = np.asarray(y, dtype=np.float32)
    if orig_sr <= 0 or target_sr <= 0:
        raise VitmusicError(f"sample rates must be > 0, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return y
    if y.ndim == 1:
        return soxr.resample(y, orig_sr, target_sr).astype(np.float32, copy=False)
    if y.ndim != 2:
        raise VitmusicError(f"audio must be [N] or [C, N], got shape {y.shape}")
    # soxr wants [N, C]
    return np.ascontiguousarray(soxr.resample(y.T, orig_sr, target_sr).T, dtype=np.float32)


def _soundfile_info(path: Path):
    import soundfile as sf

    try:
        return sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, TypeError):
        return None  # not a format libsndfile reads: try the container route


def _load_soundfile(path: Path, info, t0: float, t1: float | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    sr = int(info.samplerate)
    start = int(round(t0 * sr))
    stop = None if t1 is None else int(round(t1 * sr))
    try:
        data, sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise DataError(f"{path}: cannot read audio ({_reason(e)})") from e
    return np.ascontiguousarray(data.T), int(sr)


def _load_container(path: Path, t0: float, t1: float | None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream, placing each frame at its pts so the result starts exactly at t0."""
    import av

    container = _open(path)
    try:
        if not container.streams.audio:
            raise DataError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        sr = int(stream.codec_context.sample_rate)
        channels = int(stream.codec_context.channels) or 1
        tb = float(stream.time_base)
        origin = _origin_s(container)
        end_s = None
        if stream.duration is not None:
            start = stream.start_time or 0
            end_s = (start + stream.duration) * tb - origin
        if t1 is not None:
            end_s = t1 if end_s is None else min(end_s, t1)
        if t0 > 1.0:  # long files: jump near t0 (the packet placement below makes this exact)
            container.seek(int((t0 + origin - 0.5) / tb), stream=stream, backward=True)
        resampler = av.AudioResampler(format="fltp", layout="stereo" if channels >= 2 else "mono", rate=sr)
        channels = 2 if channels >= 2 else 1
        chunks: list[np.ndarray] = []
        first = int(round(t0 * sr))  # absolute sample index of output sample 0
        filled = first  # absolute index up to which the output is written
        last = None if end_s is None else int(round(end_s * sr))
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                pos = int(round((frame.pts * tb - origin) * sr))
                for rf in resampler.resample(frame):
                    arr = rf.to_ndarray().reshape(channels, -1)
                    if pos > filled:  # a gap (stream starts late, or missing packets): silence
                        chunks.append(np.zeros((channels, pos - filled), np.float32))
                        filled = pos
                    skip = filled - pos
                    if skip < arr.shape[1]:
                        chunks.append(arr[:, skip:])
                        filled = pos + arr.shape[1]
                    pos += arr.shape[1]
                if last is not None and filled >= last:
                    break
        except av.FFmpegError as e:
            raise DataError(f"{path}: corrupt audio stream ({_reason(e)})") from e
    finally:
        container.close()
    y = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), np.float32)
    if last is not None:
        y = y[:, : max(last - first, 0)]
    return np.ascontiguousarray(y, dtype=np.float32), sr


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = True,
    t0: float = 0.0,
    t1: float | None = None,
) -> tuple[np.ndarray, int]:
    """Load audio from a sound file (wav/flac/ogg...) or a video file's first audio stream.

    Args:
        path: audio or video file.
        sample_rate: resample to this rate (Hz); None keeps the file's rate.
        mono: average channels to ``[N]``; False returns ``[C, N]``.
        t0: start time in seconds (for a video file: on its frame clock, first frame at 0).
        t1: end time in seconds (exclusive), None for the end.

    Returns:
        ``(y, sample_rate)`` with ``y`` float32 ``[N]`` (mono) or ``[C, N]``.

    Raises:
        DataError: missing/empty/corrupt file, no audio stream, or ``t0``/``t1`` outside the audio.
    """
    p = check_media_file(path)
    if t0 < 0 or (t1 is not None and t1 <= t0):
        raise DataError(f"{p}: invalid time range t0={t0} s, t1={t1} s")
    duration = audio_duration(p)
    if t0 >= duration:
        raise DataError(f"{p}: t0={t0:.3f} s is outside the audio (0 .. {duration:.3f} s)")
    if t1 is not None and t1 > duration + 0.05:
        raise DataError(f"{p}: t1={t1:.3f} s is past the end of the audio ({duration:.3f} s)")
    info = _soundfile_info(p)
    if info is not None:
        y, sr = _load_soundfile(p, info, t0, t1)
    else:
        y, sr = _load_container(p, t0, t1)
    if mono:
        y = y.mean(axis=0)
    if sample_rate is not None and sample_rate != sr:
        y = resample(y, sr, int(sample_rate))
        sr = int(sample_rate)
    return np.ascontiguousarray(y, dtype=np.float32), int(sr)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds of a sound file, or of a video file's first audio stream (no decoding).

    Raises:
        DataError: missing/empty/corrupt file or no audio stream.
    """
    p = check_media_file(path)
    info = _soundfile_info(p)
    if info is not None:
        return float(info.frames) / float(info.samplerate)
    container = _open(p)
    try:
        if not container.streams.audio:
            raise DataError(f"{p}: no audio stream")
        stream = container.streams.audio[0]
        if stream.duration is not None:
            return float(((stream.start_time or 0) + stream.duration) * stream.time_base) - _origin_s(
                container
            )
        if container.duration is not None:
            return container.duration / 1_000_000
        end = 0.0
        for packet in container.demux(stream):  # no duration in the header: scan packets
            if packet.pts is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        return end - _origin_s(container)
    except Exception as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{p}: cannot read audio stream ({_reason(e)})") from e
    finally:
        container.close()


def write_audio(path: str | os.PathLike, y: np.ndarray, sample_rate: int, subtype: str | None = None) -> Path:
    """Write ``[N]`` or ``[C, N]`` float audio atomically; format from the suffix (.wav, .flac, .ogg).

    Args:
        path: output file.
        y: float audio in [-1, 1] (clipped on write for integer formats).
        sample_rate: Hz.
        subtype: soundfile subtype ("PCM_16", "PCM_24", "FLOAT"...); None = the format's default.

    Returns:
        The output path.
    """
    import soundfile as sf

    y = np.asarray(y, dtype=np.float32)
    if y.ndim not in (1, 2):
        raise VitmusicError(f"audio must be [N] or [C, N], got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise VitmusicError(f"{path}: audio contains NaN or inf")
    data = y if y.ndim == 1 else y.T
    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, int(sample_rate), subtype=subtype)
    return path
