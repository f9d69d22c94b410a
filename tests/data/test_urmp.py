"""URMP layout: names, discovery, tolerant-but-strict annotation readers, writers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vitmusic.data.urmp import (
    INSTRUMENTS,
    UrmpWarning,
    discover_pieces,
    mix_file_name,
    parse_piece_name,
    piece_folder_name,
    read_f0,
    read_notes,
    score_file_name,
    stem_file_name,
    video_file_name,
    write_f0,
    write_notes,
)
from vitmusic.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures" / "urmp_quirks"

F0_TIMES = np.array([0.0, 0.005805, 0.011610, 0.017415, 0.023220, 0.029025])
F0_HZ = np.array([0.0, 0.0, 440.25, 441.0, 0.0, 196.125])


# ---------------------------------------------------------------------------------------------- names


def test_instrument_table():
    assert sorted(INSTRUMENTS) == sorted("bn cl db fl hn ob sax tba tbn tpt va vc vn".split())
    assert INSTRUMENTS["vn"].gm_program == 40 and INSTRUMENTS["vn"].family == "strings"
    assert INSTRUMENTS["tpt"].gm_program == 56 and INSTRUMENTS["tpt"].family == "brass"
    assert INSTRUMENTS["fl"].gm_program == 73 and INSTRUMENTS["fl"].family == "woodwinds"
    for info in INSTRUMENTS.values():
        assert info.family in ("strings", "woodwinds", "brass")
        assert 0 <= info.gm_program < 128 and 0 < info.low_midi < info.high_midi < 128
    assert INSTRUMENTS["db"].low_midi < INSTRUMENTS["vc"].low_midi < INSTRUMENTS["va"].low_midi


@pytest.mark.parametrize(
    "folder, expected",
    [
        ("43_Chorale_tpt_tpt_hn_tbn_tba", (43, "Chorale", ["tpt", "tpt", "hn", "tbn", "tba"])),
        ("01_Jupiter_vn_vc", (1, "Jupiter", ["vn", "vc"])),
        ("7_Ode_sax", (7, "Ode", ["sax"])),
        ("12_Two_Words_fl_cl", (12, "Two_Words", ["fl", "cl"])),
    ],
)
def test_parse_piece_name(folder, expected):
    assert parse_piece_name(folder) == expected
    assert parse_piece_name(Path("/some/root") / folder) == expected


@pytest.mark.parametrize(
    "folder, fragment",
    [
        ("43_Chorale_tpt_xyz", "unknown instrument code 'xyz'"),
        ("43_Chorale_vx_tbn", "unknown instrument code 'vx'"),
        ("Chorale_vn_vc", "not a URMP piece folder"),
        ("01_Jupiter", "not a URMP piece folder"),
    ],
)
def test_parse_piece_name_errors(folder, fragment):
    with pytest.raises(DataError, match=fragment):
        parse_piece_name(folder)


def test_file_names_round_trip():
    folder = piece_folder_name(1, "Jupiter", ["vn", "vc"])
    assert folder == "01_Jupiter_vn_vc"
    assert parse_piece_name(folder) == (1, "Jupiter", ["vn", "vc"])
    assert stem_file_name("AuSep", 1, "vn", 1, "Jupiter") == "AuSep_1_vn_01_Jupiter.wav"
    assert stem_file_name("F0s", 1, "vn", 1, "Jupiter") == "F0s_1_vn_01_Jupiter.txt"
    assert stem_file_name("Notes", 2, "vc", 1, "Jupiter") == "Notes_2_vc_01_Jupiter.txt"
    assert video_file_name(folder) == "Vid_01_Jupiter_vn_vc.mp4"
    assert mix_file_name(Path("/x") / folder) == "AuMix_01_Jupiter_vn_vc.wav"
    assert score_file_name(folder) == "Sco_01_Jupiter_vn_vc.mid"
    with pytest.raises(DataError, match="unknown instrument code 'zz'"):
        piece_folder_name(3, "X", ["vn", "zz"])
    with pytest.raises(ValueError):
        stem_file_name("Foo", 1, "vn", 1, "Jupiter")


# ---------------------------------------------------------------------------------------------- readers


@pytest.mark.parametrize(
    "name", ["F0s_single_tab.txt", "F0s_double_tab.txt", "F0s_spaces.txt", "F0s_crlf_blank_trailing.txt"]
)
def test_read_f0_formatting_quirks(name):
    times_s, f0_hz = read_f0(FIXTURES / name)
    np.testing.assert_allclose(times_s, F0_TIMES)
    np.testing.assert_allclose(f0_hz, F0_HZ)
    assert times_s.dtype == np.float64 and f0_hz.shape == (6,)


def test_read_notes_formatting_quirks():
    notes = read_notes(FIXTURES / "Notes_mixed.txt")
    np.testing.assert_allclose(notes, [[0.5, 440.0, 0.25], [0.75, 493.8833, 0.5], [1.25, 523.25, 1.0]])


@pytest.mark.parametrize(
    "name, reader, message",
    [
        ("F0s_bad_text.txt", read_f0, "F0s_bad_text.txt:17: expected 2 numbers, got 'abc'"),
        ("F0s_nan.txt", read_f0, "F0s_nan.txt:2: non-finite value"),
        ("Notes_bad_columns.txt", read_notes, "Notes_bad_columns.txt:4: expected 3 numbers, got '1.5\\t440.0'"),
        ("Notes_negative_duration.txt", read_notes, "Notes_negative_duration.txt:2: negative duration"),
        ("Notes_non_numeric.txt", read_notes, "Notes_non_numeric.txt:2: expected 3 numbers, got '0.75\\tA4\\t0.25'"),
    ],
)
def test_malformed_lines_name_file_and_line(name, reader, message):
    with pytest.raises(DataError) as e:
        reader(FIXTURES / name)
    text = str(e.value)
    assert message in text, text
    assert str(FIXTURES / name) in text
    assert "\n" not in text


def test_read_old_mac_line_ends(tmp_path):
    path = tmp_path / "f0.txt"
    path.write_bytes(b"0.0\t0.0\r0.1\t440.0\r\r0.2\t0.0\r")
    times_s, f0_hz = read_f0(path)
    np.testing.assert_allclose(times_s, [0.0, 0.1, 0.2])
    np.testing.assert_allclose(f0_hz, [0.0, 440.0, 0.0])
    path.write_bytes(b"0.0\t0.0\r0.1\r")
    with pytest.raises(DataError, match=r"f0.txt:2: expected 2 numbers, got '0.1'"):
        read_f0(path)


def test_read_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_f0(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n\r\n  \n")
    t, f = read_f0(tmp_path / "empty.txt")
    assert t.shape == f.shape == (0,)
    assert read_notes(tmp_path / "empty.txt").shape == (0, 3)


def test_f0_content_checks(tmp_path):
    p = tmp_path / "f0.txt"
    p.write_text("0.0\t0.0\n0.1\t-3.0\n")
    with pytest.raises(DataError, match=r"f0.txt:2: negative f0"):
        read_f0(p)
    p.write_text("0.0\t0.0\n\n0.2\t0.0\n0.1\t0.0\n")
    with pytest.raises(DataError, match=r"f0.txt:4: time goes backwards"):
        read_f0(p)


def test_write_read_round_trip(tmp_path):
    times_s = np.arange(500) * 256 / 44100
    f0_hz = np.where(np.arange(500) % 5 == 0, 0.0, 220.0 * 2 ** (np.arange(500) / 120))
    path = write_f0(tmp_path / "sub" / "F0s_1_vn_01_Jupiter.txt", times_s, f0_hz)
    t, f = read_f0(path)
    np.testing.assert_allclose(t, times_s, atol=1e-6)
    np.testing.assert_allclose(f, f0_hz, atol=1e-4)
    notes = np.array([[0.0, 440.0, 0.5], [0.5, 261.6256, 1.25]])
    write_notes(tmp_path / "n.txt", notes)
    np.testing.assert_allclose(read_notes(tmp_path / "n.txt"), notes, atol=1e-4)
    write_notes(tmp_path / "empty.txt", np.zeros((0, 3)))
    assert read_notes(tmp_path / "empty.txt").shape == (0, 3)
    with pytest.raises(ValueError):
        write_notes(tmp_path / "bad.txt", np.array([[0.0, 440.0, -1.0]]))
    with pytest.raises(ValueError):
        write_f0(tmp_path / "bad.txt", times_s, f0_hz[:-1])
    assert not (tmp_path / "bad.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt", "n.txt", "sub"]  # no temp leftovers


def test_read_f0_large_file_line_numbers(tmp_path):
    # real F0s files have ~30k lines: the fast vectorised path must still name the right line
    n = 30_000
    path = write_f0(tmp_path / "big.txt", np.arange(n) * 0.0058, np.full(n, 440.0))
    lines = path.read_text().splitlines()
    assert read_f0(path)[0].shape == (n,)
    lines[28_123] = "0.5 440.0 1.0"
    path.write_text("\r\n".join(lines))
    with pytest.raises(DataError, match=r"big.txt:28124: expected 2 numbers, got '0.5 440.0 1.0'"):
        read_f0(path)


# ---------------------------------------------------------------------------------------------- discovery


def _make_piece(root: Path, number: int, name: str, insts: list[str], *, skip: tuple[str, ...] = (),
                duration_s: float = 1.0, sample_rate: int = 8000) -> Path:
    folder = root / piece_folder_name(number, name, insts)
    folder.mkdir(parents=True)
    silence = np.zeros(int(duration_s * sample_rate), dtype=np.float32)
    if "mix" not in skip:
        sf.write(folder / mix_file_name(folder), silence, sample_rate)
    if "video" not in skip:
        (folder / video_file_name(folder)).touch()
    if "score" not in skip:
        (folder / score_file_name(folder)).touch()
    for k, code in enumerate(insts, start=1):
        if "stems" not in skip:
            sf.write(folder / stem_file_name("AuSep", k, code, number, name), silence, sample_rate)
        if "f0" not in skip:
            write_f0(folder / stem_file_name("F0s", k, code, number, name), [0.0, 0.01], [0.0, 440.0])
        if "notes" not in skip:
            write_notes(folder / stem_file_name("Notes", k, code, number, name), [[0.0, 440.0, 0.5]])
    return folder


def test_discover_pieces(tmp_path):
    _make_piece(tmp_path, 43, "Chorale", ["tpt", "tpt", "hn", "tbn", "tba"])
    _make_piece(tmp_path, 1, "Jupiter", ["vn", "vc"], skip=("notes", "video"))
    _make_piece(tmp_path, 9, "Jesus", ["fl", "cl"])
    with pytest.warns(UrmpWarning, match="01_Jupiter_vn_vc: missing Vid_01_Jupiter_vn_vc.mp4"):
        pieces = discover_pieces(tmp_path)
    assert [p.id for p in pieces] == ["01_Jupiter_vn_vc", "09_Jesus_fl_cl", "43_Chorale_tpt_tpt_hn_tbn_tba"]
    jup, _, cho = pieces
    assert jup.video is None and jup.mix == tmp_path / jup.id / "AuMix_01_Jupiter_vn_vc.wav"
    assert jup.missing == ["Vid_01_Jupiter_vn_vc.mp4", "Notes_1_vn_01_Jupiter.txt", "Notes_2_vc_01_Jupiter.txt"]
    assert [(s.index, s.instrument) for s in jup.stems] == [(1, "vn"), (2, "vc")]
    assert jup.stems[1].audio.name == "AuSep_2_vc_01_Jupiter.wav" and jup.stems[1].notes is None
    assert [s.instrument for s in cho.stems] == ["tpt", "tpt", "hn", "tbn", "tba"]
    assert cho.stems[4].f0.name == "F0s_5_tba_43_Chorale.txt"
    assert cho.missing == [] and cho.number == 43 and cho.name == "Chorale"


def test_discover_accepts_near_miss_names(tmp_path):
    folder = _make_piece(tmp_path, 2, "Sonata", ["vn"], skip=("stems",))
    sf.write(folder / "ausep_1_vn_2_Sonata.wav", np.zeros(100, np.float32), 8000)  # unpadded, other case
    (piece,) = discover_pieces(tmp_path)
    assert piece.stems[0].audio == folder / "ausep_1_vn_2_Sonata.wav" and piece.missing == []


def test_discover_skips_unparsable_folders_with_warning(tmp_path):
    _make_piece(tmp_path, 1, "Jupiter", ["vn", "vc"])
    (tmp_path / "notes_and_stuff").mkdir()
    (tmp_path / "05_Bad_vn_xyz").mkdir()
    (tmp_path / ".hidden").mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pieces = discover_pieces(tmp_path)
    assert [p.id for p in pieces] == ["01_Jupiter_vn_vc"]
    messages = [str(w.message) for w in caught if issubclass(w.category, UrmpWarning)]
    assert any("notes_and_stuff" in m for m in messages)
    assert any("unknown instrument code 'xyz'" in m for m in messages)


def test_discover_errors(tmp_path):
    with pytest.raises(DataError, match="URMP root not found"):
        discover_pieces(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        discover_pieces(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no piece folders"):
        discover_pieces(empty)
    lone = tmp_path / "lone"
    (lone / "05_Bad_vn_xyz").mkdir(parents=True)
    with pytest.raises(DataError, match="unknown instrument code 'xyz'"):  # the only thing there: an error
        discover_pieces(lone)


def test_discover_single_piece_folder_as_root(tmp_path):
    folder = _make_piece(tmp_path, 4, "Dance", ["vn", "va"])
    (folder / "plots").mkdir()  # a sub-folder does not turn the piece folder into a root
    (piece,) = discover_pieces(folder)
    assert piece.id == "04_Dance_vn_va" and piece.missing == []
    empty_piece = tmp_path / "05_Empty_vn"
    empty_piece.mkdir()
    with pytest.raises(DataError, match="no piece folders"):
        discover_pieces(empty_piece)
