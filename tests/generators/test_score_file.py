"""Reading a piece's score: per-part notes in score time; a score that does not fit the performers is refused."""

import numpy as np
import pretty_midi
import pytest

from vitmusic.errors import DataError
from vitmusic.generators.score.score_file import find_score, read_score, score_slice


def _write(path, programs, notes_per_part=2):
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    for k, program in enumerate(programs):
        inst = pretty_midi.Instrument(program=program, name=f"{k + 1}")
        for n in range(notes_per_part):
            inst.notes.append(pretty_midi.Note(velocity=80, pitch=60 + k, start=0.5 * n, end=0.5 * n + 0.4))
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


def test_read_score_per_part(tmp_path):
    parts = read_score(_write(tmp_path / "s.mid", [40, 42]), ["vn", "vc"])  # GM violin, cello
    assert len(parts) == 2 and parts[0].shape == (2, 3)
    np.testing.assert_allclose(parts[1], [[0.0, 277.18, 0.4], [0.5, 277.18, 0.4]], atol=0.01)


def test_a_score_without_instruments_is_not_checked_for_them(tmp_path):
    assert len(read_score(_write(tmp_path / "s.mid", [0, 0]), ["vn", "fl"])) == 2  # all programs 0: unnamed


@pytest.mark.parametrize("programs, codes, match", [
    ([40, 42], ["vn", "va", "vc"], "2 part.*3 performer"),
    ([40, 42], ["vn", "fl"], "part 2 is a Cello.*plays flute"),
])
def test_a_score_that_does_not_fit_the_performers(tmp_path, programs, codes, match):
    with pytest.raises(DataError, match=match):
        read_score(_write(tmp_path / "s.mid", programs), codes)


def test_missing_empty_unreadable_or_noteless_scores(tmp_path):
    with pytest.raises(DataError, match="no score"):
        read_score(None, ["vn"])
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(DataError, match="missing or empty"):
        read_score(tmp_path / "empty.mid", ["vn"])
    (tmp_path / "bad.mid").write_bytes(b"MThd not a midi file at all")
    with pytest.raises(DataError, match="unreadable MIDI"):
        read_score(tmp_path / "bad.mid", ["vn"])
    with pytest.raises(DataError, match="no notes"):
        read_score(_write(tmp_path / "none.mid", [40], notes_per_part=0), ["vn"])


def test_find_score_next_to_a_urmp_video(tmp_path):
    folder = tmp_path / "01_Jupiter_vn_vc"
    folder.mkdir()
    (folder / "Vid_01_Jupiter_vn_vc.mp4").write_bytes(b"x")
    assert find_score(folder / "Vid_01_Jupiter_vn_vc.mp4") is None
    _write(folder / "Sco_01_Jupiter_vn_vc.mid", [40, 42])
    assert find_score(folder / "Vid_01_Jupiter_vn_vc.mp4") == folder / "Sco_01_Jupiter_vn_vc.mid"


def test_score_slice():
    parts = [np.array([[0.0, 440.0, 1.0], [1.0, 440.0, 1.0], [2.5, 440.0, 1.0]])]
    np.testing.assert_allclose(score_slice(parts, 1.0, 3.0)[0], [[0.0, 440.0, 1.0], [1.5, 440.0, 0.5]])
