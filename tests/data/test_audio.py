"""load_audio / resample / write_audio / audio_duration: formats, channels, slicing, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from media_helpers import make_index_video

from vitmusic.data.audio import audio_duration, load_audio, resample, write_audio
from vitmusic.errors import DataError, VitmusicError


def _tone(freq_hz: float, duration_s: float, sample_rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _peak_hz(y: np.ndarray, sample_rate: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * sample_rate / len(y))


@pytest.fixture()
def stereo_wav(tmp_path):
    left, right = _tone(440, 2.0, 22050, 0.5), _tone(660, 2.0, 22050, 0.25)
    path = write_audio(tmp_path / "st.wav", np.stack([left, right]), 22050, subtype="FLOAT")
    return path, left, right


def test_write_and_load_stereo_wav(stereo_wav):
    path, left, right = stereo_wav
    y, sr = load_audio(path, mono=False)
    assert sr == 22050 and y.dtype == np.float32 and y.shape == (2, 44100)
    np.testing.assert_array_equal(y, np.stack([left, right]))
    m, _ = load_audio(path)  # mono = channel mean
    assert m.shape == (44100,)
    np.testing.assert_allclose(m, (left + right) / 2, atol=1e-7)
    assert audio_duration(path) == pytest.approx(2.0)


def test_flac_pcm16_round_trip_and_mono_as_one_channel(tmp_path):
    y = _tone(300, 1.0, 16000)
    path = write_audio(tmp_path / "m.flac", y, 16000)
    z, sr = load_audio(path, mono=False)
    assert sr == 16000 and z.shape == (1, 16000)
    np.testing.assert_allclose(z[0], y, atol=1 / 2**15)
    assert [p.name for p in tmp_path.iterdir()] == ["m.flac"]


def test_slice_in_seconds(stereo_wav):
    path, left, right = stereo_wav
    y, sr = load_audio(path, mono=False, t0=0.5, t1=1.25)
    np.testing.assert_array_equal(y, np.stack([left, right])[:, 11025:27562])
    y, _ = load_audio(path, t0=1.5)
    assert len(y) == 11025


def test_load_resamples(stereo_wav):
    path, *_ = stereo_wav
    y, sr = load_audio(path, sample_rate=16000, mono=False)
    assert sr == 16000 and y.shape == (2, 32000)
    assert _peak_hz(y[0], sr) == pytest.approx(440, abs=1)
    assert _peak_hz(y[1], sr) == pytest.approx(660, abs=1)


@pytest.mark.parametrize(("orig", "target"), [(48000, 16000), (16000, 44100), (22050, 22050)])
def test_resample_keeps_pitch_length_and_level(orig, target):
    y = _tone(1000, 1.0, orig)
    z = resample(y, orig, target)
    assert z.dtype == np.float32 and len(z) == target
    assert _peak_hz(z, target) == pytest.approx(1000, abs=1)
    core = z[target // 10 : -target // 10]
    assert np.sqrt(np.mean(core**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    zz = resample(np.stack([y, y]), orig, target)
    assert zz.shape == (2, target)
    np.testing.assert_allclose(zz[0], z, atol=1e-6)


def test_resample_rejects_bad_rates():
    with pytest.raises(VitmusicError):
        resample(np.zeros(10), 0, 16000)


def test_audio_from_video_stream(tmp_path):
    path, clicked = make_index_video(tmp_path / "v.mp4", 50, 25, click_every=10, sample_rate=44100)
    assert audio_duration(path) == pytest.approx(2.0, abs=0.01)
    y, sr = load_audio(path)
    assert sr == 44100 and len(y) == pytest.approx(88200, abs=50)
    y16, sr16 = load_audio(path, sample_rate=16000)
    assert sr16 == 16000 and len(y16) == pytest.approx(32000, abs=20)
    st, _ = load_audio(path, mono=False)
    assert st.shape[0] == 1  # written mono


def test_write_audio_rejects_nan(tmp_path):
    with pytest.raises(VitmusicError, match="NaN"):
        write_audio(tmp_path / "x.wav", np.array([0.0, np.nan]), 8000)
    assert not (tmp_path / "x.wav").exists()


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_audio(empty)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF" + bytes(range(256)) * 10)
    with pytest.raises(DataError, match=str(garbage)):
        load_audio(garbage)
    silent_video, _ = make_index_video(tmp_path / "silent.mp4", 10, 25)
    with pytest.raises(DataError, match="no audio stream"):
        load_audio(silent_video)
    with pytest.raises(DataError, match="no audio stream"):
        audio_duration(silent_video)
    wav = write_audio(tmp_path / "ok.wav", np.zeros(8000, np.float32), 8000)
    for t0, t1 in [(2.0, None), (-1.0, None), (0.5, 0.2), (0.0, 3.0)]:
        with pytest.raises(DataError, match="outside|invalid time range|past the end"):
            load_audio(wav, t0=t0, t1=t1)
    sf.write(str(tmp_path / "fine.wav"), np.zeros(10), 8000)
    assert load_audio(tmp_path / "fine.wav")[0].shape == (10,)
