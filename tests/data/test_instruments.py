"""The instrument vocabulary: URMP codes + General MIDI names + drum kit, aliases, ranges, folder names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vitmusic.data.instruments import (
    DRUM_KIT,
    GM_NAMES,
    URMP_INSTRUMENTS,
    VOCABULARY,
    canonical_code,
    find_instrument,
    get_instrument,
    instrument_for_program,
    normalize_name,
)
from vitmusic.data.urmp import INSTRUMENTS, load_piece, parse_piece_name, stem_file_name
from vitmusic.errors import ConfigError, DataError


def test_gm_names_are_pretty_midis():
    import pretty_midi

    assert GM_NAMES == tuple(pretty_midi.program_to_instrument_name(p) for p in range(128))


def test_vocabulary_shape():
    assert INSTRUMENTS is URMP_INSTRUMENTS and len(VOCABULARY) == 128 + 1
    # frozen order: URMP's 13 sorted codes first (the embedding rows of the first heads), the kit last
    assert list(VOCABULARY)[:13] == sorted(URMP_INSTRUMENTS) and list(VOCABULARY)[-1] == DRUM_KIT
    programs = sorted(i.gm_program for i in VOCABULARY.values() if not i.is_drum)
    assert programs == list(range(128))  # every GM program exactly once
    for code, info in VOCABULARY.items():
        assert code == info.code and "_" not in code and normalize_name(code) == code
        assert find_instrument(code) is info
        if info.is_drum:
            assert info.low_midi is None and info.high_midi is None
        else:
            assert find_instrument(GM_NAMES[info.gm_program]) is info
            assert 0 <= info.low_midi < info.high_midi <= 127, code
    for code, urmp in URMP_INSTRUMENTS.items():  # URMP entries keep URMP's numbers
        v = VOCABULARY[code]
        assert (v.name, v.gm_program, v.low_midi, v.high_midi, v.family, v.urmp) == (
            urmp.name, urmp.gm_program, urmp.low_midi, urmp.high_midi, urmp.family, True)


@pytest.mark.parametrize("name, code, program", [
    ("violin", "vn", 40), ("VN", "vn", 40), ("saxphone", "sax", 65), ("Alto Sax", "sax", 65),
    ("french horn", "hn", 60), ("contrabass", "db", 43), ("harp", "orchestral-harp", 46),
    ("Orchestral Harp", "orchestral-harp", 46), ("piano", "acoustic-grand-piano", 0),
    ("acoustic guitar", "acoustic-guitar-nylon", 24), ("Acoustic Guitar (steel)", "acoustic-guitar-steel", 25),
    ("acoustic_guitar_nylon", "acoustic-guitar-nylon", 24), ("Lead 8 (bass + lead)", "lead-8-bass-lead", 87),
    ("drum kit", DRUM_KIT, 0), ("drums", DRUM_KIT, 0),
])
def test_names_and_aliases(name, code, program):
    info = get_instrument(name)
    assert (info.code, info.gm_program) == (code, program) and canonical_code(name) == code


def test_ranges_are_plausible():
    assert (VOCABULARY["acoustic-grand-piano"].low_midi, VOCABULARY["acoustic-grand-piano"].high_midi) == (21, 108)
    assert VOCABULARY["orchestral-harp"].low_midi < VOCABULARY["db"].low_midi
    assert VOCABULARY["piccolo"].low_midi > VOCABULARY["fl"].low_midi
    assert VOCABULARY["electric-bass-finger"].high_midi < VOCABULARY["acoustic-guitar-nylon"].high_midi
    assert VOCABULARY[DRUM_KIT].is_drum and instrument_for_program(0, is_drum=True).code == DRUM_KIT
    assert instrument_for_program(46).code == "orchestral-harp" and instrument_for_program(40).code == "vn"
    with pytest.raises(DataError, match="0-127"):
        instrument_for_program(128)


def test_unknown_names_suggest_close_ones():
    with pytest.raises(DataError, match=r"unknown instrument code 'hp' \(did you mean harp"):
        get_instrument("hp")
    with pytest.raises(ConfigError, match="unknown instrument code 'guitr'"):
        get_instrument("guitr", ConfigError)
    assert find_instrument("nope") is None


def test_urmp_folder_names_take_vocabulary_names(tmp_path: Path):
    assert parse_piece_name("05_Prelude_piano") == (5, "Prelude", ["piano"])
    assert parse_piece_name("06_Duo_orchestral-harp_fl") == (6, "Duo", ["orchestral-harp", "fl"])
    assert parse_piece_name("02_Sonata_Piano_vn") == (2, "Sonata_Piano", ["vn"])  # capitalised: a word
    with pytest.raises(DataError, match="unknown instrument code 'hp'.*harp"):
        parse_piece_name("07_Solo_hp")
    folder = tmp_path / "06_Duo_harp_drums"
    folder.mkdir()
    (folder / stem_file_name("AuSep", 1, "harp", 6, "Duo")).write_bytes(b"")
    (folder / stem_file_name("Notes", 2, "drums", 6, "Duo")).write_text("0.5\t110.0\t0.1\n")
    piece = load_piece(folder)
    assert piece.instruments == ["orchestral-harp", DRUM_KIT]
    assert piece.stems[0].audio.name == "AuSep_1_harp_06_Duo.wav"
    np.testing.assert_allclose(piece.stems[1].load_notes(), [[0.5, 110.0, 0.1]])
