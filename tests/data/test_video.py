"""VideoReader / probe_video / write_video / mux_audio: content, sampling, streaming, bad input."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import shutil
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from media_helpers import H, W, decode_indices, encode_index, make_index_video

from vitmusic.data.audio import load_audio
from vitmusic.data.video import Frames, VideoReader, probe_video
from vitmusic.data.videowriter import mux_audio, parse_fps, rgb_to_yuv420p, write_video
from vitmusic.errors import DataError, VitmusicError

BACKENDS = ["pyav"]
try:
    import decord  # noqa: F401

    BACKENDS.append("decord")
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="module")
def video25(tmp_path_factory):
    """100 frames at 25 fps (4 s), frame i shows i; GOP 12 so reads seek."""
    path, _ = make_index_video(tmp_path_factory.mktemp("v") / "v25.mp4", 100, 25, gop=12)
    return path


# ---------------------------------------------------------------- writing


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("29.97", Fraction(30000, 1001)),
        (29.97, Fraction(30000, 1001)),
        ("23.976", Fraction(24000, 1001)),
        ("25", Fraction(25)),
        (30, Fraction(30)),
        ("30000/1001", Fraction(30000, 1001)),
        (12.5, Fraction(25, 2)),
    ],
)
def test_parse_fps(spec, expected):
    assert parse_fps(spec) == expected


@pytest.mark.parametrize("bad", ["0", -3, "fast", "1/0"])
def test_parse_fps_rejects(bad):
    with pytest.raises(ValueError, match="fps"):
        parse_fps(bad)


def test_write_video_exact_rate_and_codecs(tmp_path):
    frames = np.stack([encode_index(i) for i in range(30)])
    audio = 0.1 * np.sin(np.linspace(0, 2000, 48000 * 1)).astype(np.float32)
    out = write_video(
        tmp_path / "sub" / "a.mp4", frames, "29.97", audio=np.stack([audio, audio]), sample_rate=48000
    )
    assert out == tmp_path / "sub" / "a.mp4"
    assert [p.name for p in out.parent.iterdir()] == ["a.mp4"]  # no temp file left behind
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert v.average_rate == Fraction(30000, 1001)
        assert a.codec_context.name == "aac" and a.codec_context.channels == 2
    info = probe_video(out)
    assert (info.num_frames, info.width, info.height) == (30, W, H)
    assert info.duration_s == pytest.approx(30 * 1001 / 30000)


def test_write_video_streams_an_iterable(tmp_path):
    def gen():
        for i in range(12):
            yield encode_index(i)

    out = write_video(tmp_path / "g.mp4", gen(), 25)
    with VideoReader(out, backend="pyav") as r:
        assert decode_indices(r.read().data) == list(range(12))


def test_rgb_to_yuv420p_round_trips_and_is_layout_independent(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    smooth = np.repeat(np.repeat(base[:, ::4, ::4], 4, 1), 4, 2)[:, :16, :24]  # 4x4 blocks: chroma exact
    yuv = rgb_to_yuv420p(smooth[0])
    assert yuv.shape == (24, 24) and yuv.dtype == np.uint8
    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_ndarray(format="rgb24")
    assert np.abs(frame.astype(int) - smooth[0]).max() <= 4  # BT.601 limited range, as decoders assume
    # the same pixels in another memory layout (a strided view) give the same bytes, on disk too
    wide = np.zeros((2, 16, 48, 3), np.uint8)
    wide[:, :, ::2] = smooth
    assert rgb_to_yuv420p(np.ascontiguousarray(wide[0, :, ::2])).tobytes() == yuv.tobytes()
    write_video(tmp_path / "a.mp4", smooth, 10)
    write_video(tmp_path / "b.mp4", (f for f in wide[:, :, ::2]), 10)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def _textured_clip(n: int = 75, h: int = 128, w: int = 288) -> np.ndarray:
    """Blocks of colour, three moving discs and sensor noise: enough motion for x264's inter decisions."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.integers(0, 256, (h // 8, w // 8, 3)).repeat(8, 0).repeat(8, 1).astype(np.float64)
    frames = []
    for t in range(n):
        f = base.copy()
        for k in range(3):
            cx, cy = 40 + 90 * k + 20 * np.sin(t / (5 + k)), 64 + 30 * np.cos(t / (7 + k))
            f[(xx - cx) ** 2 + (yy - cy) ** 2 < 300] = (255 * (k == 0), 200, 60 * k)
        frames.append(np.clip(f + rng.normal(0, 6, f.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="dirties the heap through glibc's malloc")
def test_write_video_bytes_do_not_depend_on_the_heap(tmp_path):
    """The same frames give the same bytes whatever the process's heap holds (x264's mbtree read memory it had
    not written: the cause of synthetic videos differing between processes)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    frames, rng, digests = _textured_clip(), np.random.default_rng(1), set()
    for k in range(6):
        sizes = rng.integers(16, 200_000, 300)
        blocks = [libc.malloc(int(n)) for n in sizes]
        for block, n, value in zip(blocks, sizes, rng.integers(0, 256, 300)):
            ctypes.memset(block, int(value), int(n))
        for block in blocks[::2]:  # freed dirty chunks are what the encoder's allocations get next
            libc.free(block)
        path = write_video(tmp_path / f"v{k}.mp4", frames, 30)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
        for block in blocks[1::2]:
            libc.free(block)
    assert len(digests) == 1


def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((3, 47, 64, 3), np.uint8), 25)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((3, 48, 64, 3), np.float32), 25)
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "e.mp4", iter([]), 25)
    with pytest.raises(ValueError, match="sample_rate"):
        write_video(tmp_path / "a.mp4", np.zeros((3, 48, 64, 3), np.uint8), 25, audio=np.zeros(100))
    frames = [np.zeros((48, 64, 3), np.uint8), np.zeros((32, 64, 3), np.uint8)]
    with pytest.raises(ValueError, match="differs"):
        write_video(tmp_path / "m.mp4", frames, 25)
    assert list(tmp_path.iterdir()) == []  # failures leave nothing behind


@pytest.mark.parametrize("audio_s", [1.5, 6.0])
def test_mux_audio_copies_video_and_fits_audio(tmp_path, video25, audio_s):
    sr = 16000
    t = np.arange(int(audio_s * sr)) / sr
    y = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = mux_audio(video25, y, sr, tmp_path / "muxed.mp4")
    with av.open(str(video25)) as a, av.open(str(out)) as b:
        pa = [bytes(p) for p in a.demux(a.streams.video[0]) if p.size]
        pb = [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]
    assert pa == pb  # video packets copied, not re-encoded
    z, zsr = load_audio(out)
    assert zsr == sr
    assert len(z) == pytest.approx(4.0 * sr, abs=0.01 * sr)  # trimmed / padded to the video's 4 s
    n_sig = int(min(audio_s, 4.0) * sr)
    rms = lambda v: float(np.sqrt(np.mean(v**2)))  # noqa: E731
    assert rms(z[1000 : n_sig - 1000]) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    if audio_s < 4.0:
        assert rms(z[n_sig + 2000 :]) < 1e-3  # the padding is silence


def test_mux_audio_replaces_existing_track(tmp_path):
    src, _ = make_index_video(tmp_path / "clicks.mp4", 25, 25, click_every=5)
    out = mux_audio(src, np.zeros(8000, np.float32), 8000, src)  # in place
    assert out == src
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1 and c.streams.audio[0].codec_context.sample_rate == 8000
    y, _ = load_audio(out)
    assert np.abs(y).max() < 1e-3


# ---------------------------------------------------------------- reading


def test_probe_video(video25):
    info = probe_video(video25)
    assert info.fps == 25.0 and info.num_frames == 100 and info.duration_s == pytest.approx(4.0)
    assert (info.width, info.height, info.has_audio, info.audio_sample_rate) == (W, H, False, None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_ranges_and_sampling(video25, backend):
    with VideoReader(video25, backend=backend) as r:
        assert r.backend == backend
        f = r.read()
        assert isinstance(f, Frames) and f.data.dtype == np.uint8 and f.data.shape == (100, H, W, 3)
        assert decode_indices(f.data) == list(range(100))
        np.testing.assert_allclose(f.times_s, np.arange(100) / 25)
        # [t0, t1) is half-open; a frame exactly at t1 is left out
        assert decode_indices(r.read(1.0, 1.4).data) == list(range(25, 35))
        assert decode_indices(r.read(1.01, 1.4).data) == list(range(26, 35))
        # resampled at 10 fps: the frame on screen at each 0.1 s tick
        f10 = r.read(0.0, 2.0, fps=10)
        assert decode_indices(f10.data) == [round(2.5 * k - 0.5 * (k % 2)) for k in range(20)]
        # above the native rate frames repeat, times say so
        f50 = r.read(2.0, 2.2, fps=50)
        assert decode_indices(f50.data) == [50, 50, 51, 51, 52, 52, 53, 53, 54, 54]
        np.testing.assert_allclose(f50.times_s, np.repeat(np.arange(50, 55) / 25, 2))
        # uniform sampling includes both ends of the range
        assert decode_indices(r.read(num_frames=5).data) == [0, 25, 50, 74, 99]
        assert decode_indices(r.read(3.0, num_frames=3).data) == [75, 87, 99]
        # going backwards works after reading the end
        assert decode_indices(r.read(0.4, 0.5).data) == [10, 11, 12]


def test_resize_is_the_same_for_both_backends(video25):
    outs = []
    for backend in BACKENDS:
        with VideoReader(video25, backend=backend, size=(24, 32)) as r:
            f = r.read(num_frames=6)
            assert f.data.shape == (6, 24, 32, 3)
            outs.append(f.data)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_windows_tile_the_video_exactly_once(video25, backend):
    with VideoReader(video25, backend=backend) as r:
        windows = list(r.iter_windows(0.7))
        assert len(windows) == 6  # 4 s / 0.7 s, last one cut short
        seen = [i for w in windows for i in decode_indices(w.data)]
        assert seen == list(range(100))
        times = np.concatenate([w.times_s for w in windows])
        np.testing.assert_allclose(times, np.arange(100) / 25)
        # fixed-rate windows: 8 fps in 1 s windows -> 8 frames each, the same as read() over each window
        win8 = list(r.iter_windows(1.0, fps=8))
        assert [len(w) for w in win8] == [8, 8, 8, 8]
        for k, w in enumerate(win8):
            assert np.array_equal(w.data, r.read(k, k + 1, fps=8).data)
        # overlapping windows (hop < window) reuse frames and still match read()
        over = list(r.iter_windows(1.0, 0.5, num_frames=4))
        assert len(over) == 8
        for k, w in enumerate(over):
            ref = r.read(0.5 * k, min(0.5 * k + 1.0, 4.0), num_frames=4)
            assert np.array_equal(w.data, ref.data) and np.array_equal(w.times_s, ref.times_s)


def test_windows_do_not_accumulate_frames(video25, monkeypatch):
    # streaming must decode each frame once, in order, no matter how many windows
    with VideoReader(video25, backend="pyav") as r:
        calls = []
        orig = r._decoder.get
        monkeypatch.setattr(r._decoder, "get", lambda idx: calls.append(list(idx)) or orig(idx))
        for _ in r.iter_windows(0.5, 0.25):
            pass
        flat = [i for c in calls for i in c]
        assert flat == list(range(100))


# ---------------------------------------------------------------- bad input


def _bad_files(tmp_path, video25):
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video25.read_bytes()[: video25.stat().st_size // 2])
    wav = tmp_path / "sound.mp4"
    import soundfile as sf

    sf.write(str(tmp_path / "s.wav"), np.zeros(8000, np.float32), 8000)
    shutil.copy(tmp_path / "s.wav", wav)
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    return {
        "missing": (tmp_path / "nope.mp4", "no such file"),
        "zero": (zero, "empty"),
        "garbage": (garbage, "cannot open"),
        "truncated": (truncated, "cannot open|corrupt|truncated"),
        "wav": (wav, "no video stream"),
        "folder": (folder, "not a file"),
    }


@pytest.mark.parametrize("case", ["missing", "zero", "garbage", "truncated", "wav", "folder"])
@pytest.mark.parametrize("opener", ["probe", "auto", "pyav"])
def test_bad_files_raise_one_line_data_error(tmp_path, video25, case, opener):
    path, pattern = _bad_files(tmp_path, video25)[case]
    with pytest.raises(DataError, match=pattern) as exc:
        if opener == "probe":
            probe_video(path)
        else:
            with VideoReader(path, backend=opener) as r:
                r.read()
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg


def test_truncated_mid_stream_with_index_up_front(tmp_path, video25):
    # moov first (faststart): opening works, the cut shows while decoding
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg CLI not installed")
    fast = tmp_path / "fast.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(video25),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(fast),
        ],
        check=True,
        capture_output=True,
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fast.read_bytes()[: int(fast.stat().st_size * 0.6)])
    with pytest.raises(DataError, match=str(cut)):
        with VideoReader(cut, backend="pyav") as r:
            r.read()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_ranges_and_arguments(video25, backend):
    with VideoReader(video25, backend=backend) as r:
        for t0, t1 in [(-0.5, None), (4.0, None), (9.0, 10.0), (2.0, 1.0), (1.0, 1.0), (0.0, 4.5)]:
            with pytest.raises(DataError, match="outside|past the end|empty time range"):
                r.read(t0, t1)
        # an end within a frame of the video's end (e.g. from the soundtrack's length) is clamped
        assert decode_indices(r.read(3.88, 4.03).data) == [97, 98, 99]
        with pytest.raises(VitmusicError, match="not both"):
            r.read(fps=2, num_frames=3)
        with pytest.raises(VitmusicError, match="fps"):
            r.read(fps=0)
        with pytest.raises(VitmusicError, match="window_s"):
            next(r.iter_windows(0.0))
    with pytest.raises(VitmusicError, match="backend"):
        VideoReader(video25, backend="opencv")
    with pytest.raises(VitmusicError, match="size"):
        VideoReader(video25, size=(0, 10))


def test_closed_reader_says_so(video25):
    r = VideoReader(video25, backend="pyav")
    r.close()
    r.close()
    with pytest.raises(VitmusicError, match="closed"):
        r.read()


def test_a_width_decord_cannot_copy_falls_back_to_pyav(tmp_path):
    """decord fails on 48-px-wide frames (its row buffer is padded): such a valid file is read, not "corrupt"."""
    from vitmusic.data.video import VideoReader
    from vitmusic.data.videowriter import write_video

    frames = np.random.default_rng(0).integers(0, 255, (10, 32, 48, 3), dtype=np.uint8)
    path = write_video(tmp_path / "narrow.mp4", frames, 10)
    with VideoReader(path) as auto, VideoReader(path, backend="pyav") as pyav:
        assert np.array_equal(auto.read(0, 1.0, fps=10).data, pyav.read(0, 1.0, fps=10).data)
        assert auto.read(0, 1.0, fps=10).data.shape == (10, 32, 48, 3)
