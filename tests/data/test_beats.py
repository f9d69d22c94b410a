"""Reference beat annotations (vitmusic.data.beats): Beats files, MIDI beat grids, Bach10's score alignment, and
the synthetic benchmark's beats."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from vitmusic.data import beats
from vitmusic.data.synth.scores import Score, ScorePart, perform
from vitmusic.errors import DataError

# $VITMUSIC_REAL, else the first shared/real beside a folder above this file (as tests/data/test_bach10.py)
REAL = Path(os.environ["VITMUSIC_REAL"]) if os.environ.get("VITMUSIC_REAL") else next(
    (p / "shared" / "real" for p in Path(__file__).resolve().parents if (p / "shared" / "real").is_dir()),
    Path("/nonexistent"))
BACH10 = REAL / "bach10-dev"


def test_write_read_round_trip_and_bad_files(tmp_path):
    b = np.array([[0.5, 4], [1.0, 1], [1.51, 2]], float)
    p = beats.write_beats(tmp_path / "Beats_x.txt", b)
    assert np.allclose(beats.read_beats(p), b)
    (tmp_path / "bad.txt").write_text("0.5\t1\n0.4\t2\n")
    with pytest.raises(DataError, match="bad.txt: beat times must increase"):
        beats.read_beats(tmp_path / "bad.txt")
    (tmp_path / "frac.txt").write_text("0.5\t1.5\n")
    with pytest.raises(DataError, match="whole numbers"):
        beats.read_beats(tmp_path / "frac.txt")
    with pytest.raises(DataError, match="expected 2 numbers"):
        (tmp_path / "cols.txt").write_text("0.5 1 2\n")
        beats.read_beats(tmp_path / "cols.txt")


def _score_midi(path: Path, first_beat: int, numerator: int = 3, bpm: float = 120.0) -> Path:
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(numerator, 4, 0.0))
    inst = pretty_midi.Instrument(0)
    spb = 60.0 / bpm
    for k in range(first_beat, first_beat + 7):
        inst.notes.append(pretty_midi.Note(80, 60 + k % 5, k * spb, (k + 1) * spb))
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def test_score_beats_positions_follow_the_time_signature(tmp_path):
    grid = beats.score_beats(_score_midi(tmp_path / "s.mid", first_beat=2))  # 3/4, notes from the 3rd beat
    assert np.allclose(grid[:, 0], np.arange(9) * 0.5)
    assert grid[:, 1].tolist() == [1, 2, 3, 1, 2, 3, 1, 2, 3]


def test_bach10_style_alignment(tmp_path):
    piece = tmp_path / "07-Test"
    piece.mkdir()
    _score_midi(piece / "07-Test.mid", first_beat=2)  # score onsets 1.0 .. 4.0 s at 0.5 s per beat
    # the performance: 0.25 s late and 10 % slower; two notes share each score onset (two parts)
    rows = [(250 + 1.1 * (s - 1000), s, 60, part) for s in range(1000, 4001, 500) for part in (1, 2)]
    np.savetxt(piece / "07-Test.txt", np.array(rows), fmt="%d", delimiter="\t")
    got, source = beats.find_reference_beats(piece)
    assert source == "score alignment"
    assert np.allclose(got[:, 0], 0.25 + 1.1 * (np.arange(2, 9) * 0.5 - 1.0))  # beats inside the aligned span
    assert got[:, 1].tolist() == [3, 1, 2, 3, 1, 2, 3]
    (piece / "07-Test.txt").write_text("1 2 3\n")
    with pytest.raises(DataError, match="expected 4 numbers"):
        beats.find_reference_beats(piece)
    assert beats.find_reference_beats(tmp_path) is None


def test_beats_file_wins(tmp_path):
    piece = tmp_path / "01_Chorale_vn_vc"
    piece.mkdir()
    beats.write_beats(piece / beats.beats_file_name(piece), np.array([[0.1, 1], [0.7, 2]]))
    got, source = beats.find_reference_beats(piece)
    assert source == "Beats file" and got[:, 0].tolist() == [0.1, 0.7]


@pytest.mark.skipif(not BACH10.is_dir(), reason="real Bach10 material (../shared/real) not present")
def test_real_bach10_beats():
    got, source = beats.find_reference_beats(BACH10 / "02-AchLiebenChristen")
    assert source == "score alignment"
    assert got[0].tolist() == [pytest.approx(0.184), 4]  # the pickup beat, at the first aligned onset
    assert got[1, 1] == 1 and (np.diff(got[:, 0]) > 0).all()
    assert 85 < 60 / np.median(np.diff(got[:, 0])) < 110  # the score says 92 BPM; the players take it faster


def test_performed_beats_follow_the_tempo_map_and_the_pickup():
    part = ScorePart("S", np.array([[0.0, 67, 1], [1, 72, 1], [2, 71, 1], [3, 72, 2], [5, 74, 1], [6, 76, 2]],
                                   float), np.zeros(6, bool))
    score = Score("t", "chorale", [part, part], length_beats=8.0, beats_per_bar=4.0, bar_offset_beats=3.0)
    perf = perform(score, ["vn", "vc"], np.random.default_rng(0), duration_s=9.0, tempo_bpm=90.0)
    onsets = perf.parts[0].notes[:, 0]
    b = perf.beats
    # every note starts on a score beat: its onset is that beat's annotated time
    score_beats = np.concatenate([part.notes[:, 0] + r * 8 for r in range(3)])[: len(onsets)]
    assert np.allclose(onsets, np.interp(score_beats, np.arange(len(b)), b[:, 0]), atol=1e-9)
    assert b[:5, 1].tolist() == [4, 1, 2, 3, 4]  # a one-beat pickup, then bars of four
    assert b[8, 1] == 4  # the loop restarts the score with its pickup
    assert b[-1, 0] < 9.0 - 0.1 and 60 / np.median(np.diff(b[:, 0])) == pytest.approx(90, rel=0.06)
