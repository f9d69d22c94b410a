"""Video frame times and audio sample positions share one clock; both backends return identical frames."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest
from media_helpers import (
    click_onsets,
    click_track,
    decode_indices,
    make_index_video,
    write_vfr_video,
)

from vitmusic.data.audio import load_audio
from vitmusic.data.video import VideoReader, probe_video
from vitmusic.data.videowriter import mux_audio, parse_fps
from vitmusic.errors import DataError

SR = 48000

try:
    import decord  # noqa: F401

    HAVE_DECORD = True
except ImportError:  # pragma: no cover - decord has no wheel for this platform
    HAVE_DECORD = False

needs_decord = pytest.mark.skipif(not HAVE_DECORD, reason="decord not installed")


def _check_clicks_match_frames(path, clicked: list[int], fps: Fraction, backend: str = "pyav") -> None:
    y, sr = load_audio(path)
    assert sr == SR
    onsets = click_onsets(y, sr)
    assert len(onsets) == len(clicked), (len(onsets), len(clicked))
    with VideoReader(path, backend=backend) as reader:
        frames = reader.read()
    index = decode_indices(frames.data)
    assert index == list(range(len(index)))  # every frame decoded once, in order
    half_frame = 0.5 / float(fps)
    for k, onset in zip(clicked, onsets):
        t_frame = frames.times_s[index.index(k)]
        t_click = onset / sr
        assert abs(t_frame - t_click) < half_frame, (k, t_frame, t_click)
        # and on the writer's clock: frame k is shown at k / fps
        assert abs(t_frame - float(k / fps)) < 1e-6


@pytest.mark.parametrize("fps", ["25", "29.97", "30"])
def test_frame_times_agree_with_click_samples(tmp_path, fps):
    rate = parse_fps(fps)
    path, clicked = make_index_video(tmp_path / f"clicks_{fps}.mp4", 60, rate, click_every=7, sample_rate=SR)
    info = probe_video(path)
    assert info.num_frames == 60 and info.has_audio and info.audio_sample_rate == SR
    assert info.fps == pytest.approx(float(rate))
    assert info.duration_s == pytest.approx(60 / float(rate), abs=1e-6)
    _check_clicks_match_frames(path, clicked, rate)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg CLI not installed")
def test_nonzero_container_start_is_removed_from_both_clocks(tmp_path):
    # MPEG-TS starts its clock at 1.4 s and keeps the AAC priming in ADTS packets: frame times and audio
    # samples must still agree, relative to the container start.
    src, clicked = make_index_video(tmp_path / "clicks.mp4", 45, 25, click_every=5, sample_rate=SR)
    ts = tmp_path / "clicks.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c", "copy", str(ts)],
        check=True,
        capture_output=True,
    )
    with VideoReader(ts, backend="pyav") as reader:
        assert reader.frame_times_s[0] == pytest.approx(0.0, abs=1e-6)
    _check_clicks_match_frames(ts, clicked, Fraction(25))
    # seeking inside TS lands late: frames must still be the requested ones
    with VideoReader(ts, backend="pyav") as reader:
        assert decode_indices(reader.read(0.4, 0.6).data) == [10, 11, 12, 13, 14]
        assert decode_indices(reader.read(0.0, 0.1).data) == [0, 1, 2]
    # decord returns frames off by several positions in TS after seeks: auto picks PyAV, forcing it fails
    if HAVE_DECORD:
        with VideoReader(ts) as reader:
            assert reader.backend == "pyav"
        with pytest.raises(DataError, match="decord backend returns wrong frames"):
            VideoReader(ts, backend="decord")
    # muxing new audio onto a TS video shifts the video to start at 0, where the audio starts
    y = click_track([k / 25 for k in clicked], 45 / 25, SR)
    muxed = mux_audio(ts, y, SR, tmp_path / "muxed.mp4")
    _check_clicks_match_frames(muxed, clicked, Fraction(25))


def test_audio_slice_keeps_the_clock(tmp_path):
    path, clicked = make_index_video(tmp_path / "v.mp4", 75, 25, click_every=10, sample_rate=SR)
    t0, t1 = 1.1, 2.5
    y, sr = load_audio(path, t0=t0, t1=t1)
    assert len(y) == int(round((t1 - t0) * sr))
    onsets = click_onsets(y, sr) / sr + t0
    expected = [k / 25 for k in clicked if t0 <= k / 25 < t1 - 0.01]
    np.testing.assert_allclose(onsets, expected, atol=0.5 / 25)


def test_variable_frame_rate_reads_back_real_pts(tmp_path):
    pts_ms = [0, 40, 70, 150, 160, 300, 333, 400, 410, 500, 620, 700]
    path = write_vfr_video(tmp_path / "vfr.mp4", pts_ms)
    with VideoReader(path, backend="pyav") as reader:
        frames = reader.read()
        np.testing.assert_allclose(frames.times_s, np.asarray(pts_ms) / 1000, atol=1e-6)
        assert decode_indices(frames.data) == list(range(len(pts_ms)))
        # at 10 fps, the frame on screen at each 100 ms tick
        ticks = reader.read(fps=10)
        on_screen = [max(i for i, p in enumerate(pts_ms) if p <= t) for t in range(0, 800, 100)]
        assert decode_indices(ticks.data) == on_screen
        # a range between frames
        assert decode_indices(reader.read(0.151, 0.34).data) == [4, 5, 6]


def _backend_requests(duration_s: float):
    rng = np.random.default_rng(0)
    yield {}
    yield {"num_frames": 16}
    yield {"fps": 7.0}
    yield {"fps": 60.0, "t0": 1.0, "t1": 1.5}
    for _ in range(6):
        t0 = float(rng.uniform(0, duration_s - 0.5))
        t1 = float(rng.uniform(t0 + 0.1, duration_s))
        yield {"t0": t0, "t1": t1, "num_frames": int(rng.integers(1, 9))}


@needs_decord
@pytest.mark.parametrize("fps", ["25", "29.97"])
def test_backends_return_identical_frames(tmp_path, fps):
    # short GOP so requests seek between keyframes (where decord has been seen to go off by one)
    path, _ = make_index_video(tmp_path / "v.mp4", 120, fps, gop=10)
    with VideoReader(path, backend="decord") as a, VideoReader(path, backend="pyav") as b:
        assert (a.backend, b.backend) == ("decord", "pyav")
        np.testing.assert_array_equal(a.frame_times_s, b.frame_times_s)
        for req in _backend_requests(a.info.duration_s):
            fa, fb = a.read(**req), b.read(**req)
            np.testing.assert_array_equal(fa.times_s, fb.times_s)
            assert np.array_equal(fa.data, fb.data), req
            # and they are the frames the times say
            expected = np.round(fa.times_s * float(parse_fps(fps))).astype(int).tolist()
            assert decode_indices(fa.data) == expected
        # out-of-order access after reading the end (decoders must seek back correctly)
        assert np.array_equal(a.read(0.2, 0.5).data, b.read(0.2, 0.5).data)
        wa = [w.data for w in a.iter_windows(1.0, 0.5, fps=6)]
        wb = [w.data for w in b.iter_windows(1.0, 0.5, fps=6)]
        assert len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


@needs_decord
def test_backends_identical_on_variable_frame_rate(tmp_path):
    path = write_vfr_video(tmp_path / "vfr.mp4", [0, 40, 70, 150, 160, 300, 333, 400, 410, 500, 620, 700])
    with VideoReader(path, backend="decord") as a, VideoReader(path, backend="pyav") as b:
        for req in ({}, {"fps": 13.0}, {"num_frames": 5, "t0": 0.1}):
            fa, fb = a.read(**req), b.read(**req)
            np.testing.assert_array_equal(fa.times_s, fb.times_s)
            assert np.array_equal(fa.data, fb.data), req


@needs_decord
def test_auto_backend_prefers_decord_and_falls_back(tmp_path):
    path, _ = make_index_video(tmp_path / "v.mp4", 10, 25)
    with VideoReader(path) as reader:
        assert reader.backend == "decord"
    # a stream decord cannot open (MJPEG in a matroska file): auto falls back to PyAV
    import av

    mkv = tmp_path / "v.mkv"
    with av.open(str(mkv), "w") as out:
        s = out.add_stream("mjpeg", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        from media_helpers import encode_index

        for i in range(5):
            f = av.VideoFrame.from_ndarray(encode_index(i), format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    with VideoReader(mkv) as reader:
        frames = reader.read()
        assert decode_indices(frames.data) == list(range(5))
