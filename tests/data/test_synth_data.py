"""Synthetic URMP benchmark: layout, annotation/audio agreement, mix, video, determinism, CLI."""

from __future__ import annotations

import json
import os

import librosa
import mir_eval
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from vitmusic import cli
from vitmusic.data.audio import load_audio
from vitmusic.data.synth import generate_benchmark, render_notes, render_part
from vitmusic.data.synth.instruments import timbre
from vitmusic.data.synth.performer import player_state
from vitmusic.data.synth.scores import choose_ensemble, fit_to_range, generate_melodies, perform, range_cost
from vitmusic.data.urmp import INSTRUMENTS, discover_pieces, parse_piece_name, read_f0, read_notes
from vitmusic.data.video import VideoReader, probe_video
from vitmusic.errors import VitmusicError

SR = 48000
DUR = 5.0


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    folders = generate_benchmark(out, 2, seed=3, duration_s=DUR, width_per_player=64, height=96, progress=False)
    return out, folders


def _cents(a, b):
    return 1200 * np.abs(np.log2(np.asarray(a) / np.asarray(b)))


def test_layout_is_urmp(bench):
    out, folders = bench
    pieces = discover_pieces(out)
    assert [p.folder for p in pieces] == folders
    assert [p.number for p in pieces] == [1, 2]
    for p in pieces:
        assert p.missing == []
        number, name, codes = parse_piece_name(p.folder.name)
        assert name == "Chorale" and 2 <= len(codes) <= 4
        assert p.video.name == f"Vid_{p.id}.mp4" and p.mix.name == f"AuMix_{p.id}.wav"
        assert p.score.name == f"Sco_{p.id}.mid"
        for k, stem in enumerate(p.stems, start=1):
            assert stem.audio.name == f"AuSep_{k}_{codes[k - 1]}_{number:02d}_{name}.wav"
    # nothing half-written left behind, and the summary names every piece
    assert not [q for q in out.iterdir() if q.name.startswith(".")]
    summary = json.loads((out / "synth_data.json").read_text())
    assert [s["piece"] for s in summary["pieces"]] == [f.name for f in folders]
    assert (out / "synth_data.png").stat().st_size > 1000


def test_score_midi_is_the_written_score_of_the_notes(bench):
    """``Sco_`` holds the performed notes as written: same notes and pitches, onsets on the fixed tempo's beat
    grid (the performance drifts away from it), written lengths."""
    out, _ = bench
    drift = []
    for piece in discover_pieces(out):
        pm = pretty_midi.PrettyMIDI(str(piece.score))
        assert len(pm.instruments) == len(piece.stems)
        beat_s = 60.0 / pm.get_tempo_changes()[1][0]
        for inst, stem in zip(pm.instruments, piece.stems):
            assert inst.program == INSTRUMENTS[stem.instrument].gm_program and not inst.is_drum
            notes = read_notes(stem.notes)
            mid = np.array([[n.start, n.pitch, n.end - n.start] for n in sorted(inst.notes, key=lambda n: n.start)])
            assert mid.shape == notes.shape
            np.testing.assert_allclose(librosa.midi_to_hz(mid[:, 1]), notes[:, 1], rtol=1e-4)
            beats = mid[:, 0] / beat_s
            np.testing.assert_allclose(beats * 24, np.round(beats * 24), atol=1e-2)  # on a 1/24-beat grid
            assert {n.velocity for n in inst.notes} == {80}
            drift.append(np.abs(mid[:, 0] - notes[:, 0]).max())
    assert max(drift) > 0.1  # the performance is not the score played deadpan


def test_notes_and_f0_agree_with_audio(bench):
    out, _ = bench
    checked = 0
    for piece in discover_pieces(out):
        for stem in piece.stems:
            y, sr = sf.read(stem.audio, dtype="float32")
            assert sr == SR and len(y) == int(DUR * SR)
            notes = read_notes(stem.notes)
            times, f0 = read_f0(stem.f0)
            info = INSTRUMENTS[stem.instrument]
            lo, hi = librosa.midi_to_hz(info.low_midi - 2), librosa.midi_to_hz(info.high_midi + 2)
            assert np.all((notes[:, 1] >= lo) & (notes[:, 1] <= hi)), "notes outside the instrument range"
            assert np.all(np.diff(times) > 0) and abs(times[1] - times[0] - 0.01) < 1e-6
            for onset, hz, dur in notes:
                if dur < 0.25:
                    continue
                centre = onset + dur / 2
                seg = y[int((centre - 0.06) * sr): int((centre + 0.06) * sr)]
                est = np.median(librosa.yin(seg, fmin=lo * 0.9, fmax=hi * 1.1, sr=sr, frame_length=4096))
                assert _cents(est, hz) < 50, f"{stem.audio.name}: audio {est:.1f} Hz vs Notes {hz:.1f} Hz"
                frames = (times > onset + 0.05) & (times < onset + dur - 0.02)
                assert np.all(_cents(f0[frames], hz) < 50), "F0s drift more than 50 cents from the note"
                checked += 1
            # silence is unvoiced: before the first onset and after the last note
            assert np.all(f0[times < notes[0, 0] - 0.01] == 0)
            release_s = timbre(stem.instrument).release_s
            assert np.all(f0[times > notes[-1, 0] + notes[-1, 2] + release_s + 0.01] == 0)
    assert checked >= 8


def test_note_onsets_are_energy_rises(bench):
    out, _ = bench
    found = total = 0
    for piece in discover_pieces(out):
        for stem in piece.stems:
            y, sr = sf.read(stem.audio, dtype="float32")
            notes = read_notes(stem.notes)
            env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=256)
            est = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=256, units="time",
                                             backtrack=False)
            matched = len(mir_eval.util.match_events(notes[:, 0], est, 0.06))
            assert matched >= 0.8 * len(notes), f"{stem.audio.name}: {matched}/{len(notes)} onsets in the audio"
            found, total = found + matched, total + len(notes)
    assert found >= 0.9 * total


def test_mix_is_sum_of_stems(bench):
    out, _ = bench
    for piece in discover_pieces(out):
        mix, _ = sf.read(piece.mix, dtype="float64")
        stems = [sf.read(s.audio, dtype="float64")[0] for s in piece.stems]
        assert np.max(np.abs(mix - np.sum(stems, axis=0))) <= len(stems) / 32768 + 1e-9
        assert 0.5 < np.max(np.abs(mix)) < 0.95  # normalised, not clipped
        for s in stems:
            assert np.sqrt(np.mean(s**2)) > 1e-3  # every player is audible


def test_video_timing_audio_and_motion(bench):
    out, _ = bench
    piece = discover_pieces(out)[0]
    info = probe_video(piece.video)
    assert abs(info.fps - 30) < 1e-6 and info.num_frames == int(DUR * 30)
    assert abs(info.duration_s - DUR) < 0.05
    assert info.has_audio and info.audio_sample_rate == SR
    assert info.width == 64 * len(piece.stems) and info.height == 96
    # the soundtrack is the mix (through AAC)
    track, _ = load_audio(piece.video, sample_rate=SR)
    mix, _ = sf.read(piece.mix, dtype="float32")
    n = min(len(track), len(mix))
    assert abs(len(track) - len(mix)) < 0.05 * SR
    assert np.corrcoef(track[:n], mix[:n])[0, 1] > 0.95
    with VideoReader(piece.video, backend="pyav") as r:
        frames = r.read().data.astype(np.float32)
    diff = np.abs(np.diff(frames, axis=0))  # diff[i] = change from frame i to i + 1
    fps = 30.0
    for k, stem in enumerate(piece.stems):
        panel = diff[:, :, 64 * k: 64 * (k + 1)].mean(axis=(1, 2, 3))
        notes = read_notes(stem.notes)
        onset_frames = np.ceil(notes[1:, 0] * fps).astype(int) - 1
        onset_frames = onset_frames[(onset_frames >= 0) & (onset_frames < len(panel))]
        mids = np.round((notes[:, 0] + notes[:, 2] / 2) * fps).astype(int)
        mids = mids[(notes[:, 2] > 0.3) & (mids < len(panel))]
        at_onset = panel[onset_frames].mean()
        assert at_onset > 0.5, "the picture must change when a note starts"
        if len(mids):
            assert at_onset > 1.5 * panel[mids].mean(), "onsets should move the picture more than held notes"


def test_player_state_is_a_function_of_the_notes():
    notes = np.array([[0.5, 440.0, 0.4], [1.0, 880.0, 0.4]])
    midi = np.array([69, 81])
    t = np.array([0.2, 0.7, 0.9, 1.2, 2.5])
    st = player_state(notes, midi, np.array([0.5, 1.0]), 57, 93, t)
    assert st.loudness[0] == 0 and st.loudness[-1] < 1e-3  # silent before the first note / long after
    np.testing.assert_allclose(st.pitch_pos[1], (69 - 57) / 36)
    np.testing.assert_allclose(st.pitch_pos[3], (81 - 57) / 36)
    assert st.pitch_pos[3] > st.pitch_pos[1]
    assert st.loudness[3] > st.loudness[1]  # louder note -> bigger motion
    # the bow moves one way during the first note and the other way during the second
    s = player_state(notes, midi, np.array([0.5, 1.0]), 57, 93, np.array([0.6, 0.8, 1.1, 1.3])).stroke
    assert (s[1] - s[0]) * (s[3] - s[2]) < 0
    # same notes, same picture state; a different pitch moves the hand
    again = player_state(notes, midi, np.array([0.5, 1.0]), 57, 93, t)
    np.testing.assert_array_equal(again.pitch_pos, st.pitch_pos)


def test_determinism_per_seed(tmp_path):
    kw = dict(duration_s=3.0, width_per_player=64, height=96, progress=False, sample_rate=16000)
    a, a2 = generate_benchmark(tmp_path / "a", 2, seed=11, **kw)
    b, b2 = generate_benchmark(tmp_path / "b", 2, seed=11, workers=2, **kw)  # parallel: same files
    c = generate_benchmark(tmp_path / "c", 1, seed=12, **kw)[0]
    assert a.name == b.name and a2.name == b2.name
    assert (a2 / f"AuMix_{a2.name}.wav").read_bytes() == (b2 / f"AuMix_{b2.name}.wav").read_bytes()
    for f in a.iterdir():  # every file byte for byte, the mp4 included
        assert f.read_bytes() == (b / f.name).read_bytes(), f.name
    notes_a = sorted(p.read_text() for p in a.glob("Notes_*"))
    notes_c = sorted(p.read_text() for p in c.glob("Notes_*"))
    assert notes_a != notes_c


@pytest.mark.slow
def test_synth_data_byte_identical_across_processes(tmp_path):
    """Two separate ``synth-data`` processes with the same seed write the same bytes, the mp4s included
    (tests/synth_compare.py says what made them differ before).

    Before the writer converted RGB to YUV itself, piece 05 of exactly this benchmark (seed 0, 10 melody
    pieces of 8 s, 96x128 per player) encoded differently from one process to the next.
    """
    import subprocess
    import sys

    args = ["--pieces", "10", "--duration", "8", "--source", "melodies", "--width", "96", "--height", "128",
            "--no-plot", "--no-progress"]
    for name, hashseed in (("a", "0"), ("b", "12345")):  # different interpreters, different heap histories
        subprocess.run([sys.executable, "-m", "vitmusic.cli", "synth-data", "--out", str(tmp_path / name), *args],
                       check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": hashseed})
    from synth_compare import assert_same_benchmark

    assert_same_benchmark(tmp_path / "a", tmp_path / "b", n_videos=10)


@pytest.mark.parametrize("fps, expected", [("25", 25.0), ("29.97", 30000 / 1001)])
def test_fps_options(tmp_path, fps, expected):
    folder = generate_benchmark(tmp_path, 1, seed=0, duration_s=2.0, fps=fps, width_per_player=64, height=96,
                                source="melodies", sample_rate=16000, progress=False)[0]
    assert folder.name.split("_")[1] == "Melody"
    info = probe_video(folder / f"Vid_{folder.name}.mp4")
    assert abs(info.fps - expected) < 1e-3
    assert info.num_frames == round(2.0 * expected)


def test_fluidsynth_renderer(tmp_path):
    pytest.importorskip("fluidsynth")
    folder = generate_benchmark(tmp_path, 1, seed=1, duration_s=2.0, renderer="fluidsynth", width_per_player=64,
                                height=96, sample_rate=22050, progress=False)[0]
    piece = discover_pieces(tmp_path)[0]
    assert piece.folder == folder and piece.missing == []
    mix, sr = sf.read(piece.mix, dtype="float64")
    stems = [sf.read(s.audio, dtype="float64")[0] for s in piece.stems]
    assert sr == 22050 and len(mix) == 2 * 22050
    assert np.max(np.abs(mix - np.sum(stems, axis=0))) <= len(stems) / 32768 + 1e-9
    assert all(np.sqrt(np.mean(s**2)) > 1e-3 for s in stems)


def test_builtin_timbres_differ_by_family():
    sr = 22050
    note = np.array([[0.0, 220.0, 0.5]])

    def harmonics(code):
        y = render_notes(note, code, sr, duration_s=0.6)
        seg = y[int(0.2 * sr): int(0.45 * sr)] * np.hanning(int(0.25 * sr))
        spec = np.abs(np.fft.rfft(seg, 1 << 15))
        freqs = np.fft.rfftfreq(1 << 15, 1 / sr)
        return np.array([spec[np.argmin(np.abs(freqs - 220 * k))] for k in range(1, 7)])

    cl, vn, fl = harmonics("cl"), harmonics("vn"), harmonics("fl")
    assert cl[1] < 0.2 * cl[2]  # clarinet: even harmonics weak
    assert vn[1] > 0.3 * vn[0]  # bowed string: all harmonics
    assert fl[0] > 3 * fl[2]  # flute: fundamental dominates
    # no clicks: the note fades in and out smoothly
    y = render_notes(note, "tpt", sr)
    assert abs(y[0]) < 1e-3 and abs(y[-1]) < 1e-3
    r = render_part(note, "vn", sr, f0_hop_s=0.01)
    voiced = r.f0_hz[(r.f0_times_s > 0.05) & (r.f0_times_s < 0.45)]
    assert np.all(_cents(voiced, 220.0) < 20)  # vibrato stays within ~14 cents


def test_scores_fit_instrument_ranges():
    rng = np.random.default_rng(0)
    score = generate_melodies(rng, [76.0, 60.0, 45.0], num_bars=8)
    assert len(score.parts) == 3 and score.length_beats == 32
    perf = perform(score, ["fl", "cl", "bn"], rng, duration_s=30.0, tempo_bpm=90.0)
    for part in perf.parts:
        info = INSTRUMENTS[part.instrument]
        assert part.midi.min() >= info.low_midi and part.midi.max() <= info.high_midi
        ends = part.notes[:, 0] + part.notes[:, 2]
        assert ends.max() <= 30.0 and np.all(part.notes[1:, 0] - ends[:-1] >= 0.029)
        # 32 beats at ~90 BPM last ~21 s: the score was looped to fill 30 s
        assert part.notes[-1, 0] > 25.0
    assert np.all(fit_to_range(np.array([30.0, 100.0]), "vn") >= INSTRUMENTS["vn"].low_midi)


def test_ensemble_is_chosen_by_range():
    soprano, bass = np.array([67.0, 72, 74, 79]), np.array([40.0, 43, 36, 45])
    assert range_cost(soprano, "vn") == 0 and range_cost(bass, "vn") > 0
    for seed in range(5):
        # a bass line goes to an instrument that can play it untransposed
        codes = choose_ensemble(np.random.default_rng(seed), 2, "brass", voices=[soprano, bass])
        assert codes == ["tpt", "tba"]  # not tpt + trombone, whose range stops at E2
    picks = {tuple(choose_ensemble(np.random.default_rng(s), 4)) for s in range(20)}
    assert len(picks) > 3  # seeded variety


def test_cli_and_bad_inputs(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    common = ["--duration", "2", "--width", "64", "--height", "96", "--sample-rate", "16000", "--no-progress"]
    assert cli.main(["synth-data", "--out", str(out), "--pieces", "1", "--seed", "5", *common]) == 0
    assert len(discover_pieces(out)) == 1
    capsys.readouterr()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    bad = [
        ["--out", str(out), "--pieces", "0"],
        ["--out", str(a_file), "--pieces", "1"],
        ["--out", str(out), "--pieces", "1", "--renderer", "timidity"],
        ["--out", str(out), "--pieces", "1", "--source", "jazz"],
        ["--out", str(out), "--pieces", "1", "--fps", "-3"],
        ["--out", str(out), "--pieces", "1", "--seed", "-1"],
        ["--out", str(out), "--pieces", "1", "--tempo", "200:100"],
        ["--out", str(out), "--pieces", "1", "--duration", "0"],
    ]
    for argv in bad:
        assert cli.main(["synth-data", *common, *argv]) == 2, argv  # later flags win
        err = capsys.readouterr().err.strip()
        assert err.startswith("vitmusic synth-data: error:") and "\n" not in err, err
    # FluidSynth missing -> one clear line, not an ImportError traceback
    monkeypatch.setitem(__import__("sys").modules, "fluidsynth", None)
    assert cli.main(["synth-data", "--out", str(out), "--pieces", "1", "--renderer", "fluidsynth", *common]) == 2
    assert "pyfluidsynth" in capsys.readouterr().err


def test_rerun_replaces_its_own_pieces_and_refuses_foreign_ones(tmp_path):
    kw = dict(duration_s=1.5, width_per_player=64, height=96, progress=False, sample_rate=8000, plot=False)
    generate_benchmark(tmp_path / "b", 3, seed=1, **kw)
    again = generate_benchmark(tmp_path / "b", 1, seed=2, **kw)
    assert [p.folder for p in discover_pieces(tmp_path / "b")] == again  # no stale pieces 2 and 3
    doc = json.loads((tmp_path / "b" / "synth_data.json").read_text())
    assert doc["complete"] and doc["stale"] == [] and doc["arguments"]["seed"] == 2
    foreign = tmp_path / "urmp" / "07_Jupiter_vn_vc"
    foreign.mkdir(parents=True)
    with pytest.raises(VitmusicError, match="not written by synth-data"):
        generate_benchmark(tmp_path / "urmp", 1, seed=0, **kw)
    assert foreign.is_dir()


def test_chorales_are_drawn_without_replacement():
    from vitmusic.data.synth.scores import nth_chorale

    # seeds 4 and 7 repeated a chorale across splits of 36-piece benchmarks when draws were independent
    for seed in (4, 7):
        titles = [nth_chorale(seed, k).title for k in range(1, 13)]  # distinct by construction up to 371
        assert len(set(titles)) == len(titles), seed
    assert nth_chorale(4, 3).title == nth_chorale(4, 3).title  # a function of (seed, piece number) only
    assert [nth_chorale(5, k).title for k in (1, 2)] != [nth_chorale(4, k).title for k in (1, 2)]
