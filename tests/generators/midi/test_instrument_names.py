"""Instruments beyond URMP's 13 on the MIDI path: MIDI export, the head's instrument table (old heads load and
map by name), the pipeline's instrument names, per-part scoring programs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vitmusic.data.instruments import DRUM_KIT, URMP_INSTRUMENTS, VOCABULARY
from vitmusic.errors import ConfigError
from vitmusic.generators.midi.export import (
    instrument_code,
    midi_to_parts,
    notes_to_midi,
    read_midi,
    render_midi,
    write_midi,
)
from vitmusic.generators.midi.transcription import (
    INSTRUMENT_CODES,
    HeadConfig,
    TranscriptionHead,
    instrument_index,
    instrument_table_size,
    load_head,
)

NOTES = np.array([[0.1, 220.0, 0.3], [0.5, 440.0, 0.2]])  # A3, A4: exact MIDI notes


def test_midi_export_names_any_instrument(tmp_path):
    pm = notes_to_midi([NOTES, NOTES, NOTES[:1], NOTES], ["piano", "harp", "drum kit", "violin"])
    assert [(i.program, i.is_drum) for i in pm.instruments] == [(0, False), (46, False), (0, True), (40, False)]
    assert [i.name for i in pm.instruments] == ["1 Acoustic Grand Piano", "2 Orchestral Harp", "3 drum kit", "4 violin"]
    back, codes, _ = midi_to_parts(read_midi(write_midi(pm, tmp_path / "x.mid")))
    assert codes == ["acoustic-grand-piano", "orchestral-harp", DRUM_KIT, "vn"]
    np.testing.assert_allclose(back[1], NOTES, atol=1e-3)
    with pytest.raises(ConfigError, match="unknown instrument code 'hp'"):
        notes_to_midi([NOTES], ["hp"])


def test_instrument_code_of_tracks():
    import pretty_midi

    assert instrument_code(pretty_midi.Instrument(program=73)) == "fl"
    assert instrument_code(pretty_midi.Instrument(program=24)) == "acoustic-guitar-nylon"
    assert instrument_code(pretty_midi.Instrument(program=0, is_drum=True)) == DRUM_KIT
    # a track whose program was never set (0) but whose name says what it is
    assert instrument_code(pretty_midi.Instrument(program=0, name="2 cello")) == "vc"
    assert instrument_code(pretty_midi.Instrument(program=0, name="Piano")) == "acoustic-grand-piano"


def test_builtin_synth_refuses_instruments_without_a_timbre():
    pm = notes_to_midi([NOTES, NOTES], ["vn", "piano"])
    with pytest.raises(ConfigError, match="builtin synth has timbres for URMP's 13 instruments only.*fluidsynth"):
        render_midi(pm, 8000, 1.0)
    assert render_midi(notes_to_midi([NOTES], ["violin"]), 8000, 1.0).shape == (8000,)


def test_instrument_table_is_a_prefix_of_the_vocabulary():
    # the first heads' table was tuple(sorted(URMP codes)): those rows keep their meaning
    assert INSTRUMENT_CODES[:13] == tuple(sorted(URMP_INSTRUMENTS)) == tuple(VOCABULARY)[:13]
    assert instrument_index("vn") == instrument_index("violin") == INSTRUMENT_CODES.index("vn")
    assert instrument_index("harp") == instrument_index(None) == instrument_index("nope") == 13
    harp = INSTRUMENT_CODES.index("orchestral-harp")
    assert instrument_table_size(["vn", "cl"]) == 13 and instrument_table_size(["vn", "harp"]) == harp + 1
    assert instrument_index("harp", harp + 1) == harp and instrument_index("drums", harp + 1) == harp + 1


def test_old_head_loads_and_maps_new_names_to_unknown(tmp_path):
    torch.manual_seed(0)
    old = TranscriptionHead(HeadConfig(in_dim=8, hidden_dim=16, num_layers=1, kernel_size=3))
    old.save_pretrained(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "config.json").read_text())
    assert meta["hparams"]["num_instruments"] == 14  # the format heads were saved in before the vocabulary
    head = load_head(tmp_path / "old")
    assert head.instrument_codes == tuple(sorted(URMP_INSTRUMENTS)) and head.num_codes == 13
    rows = torch.tensor([[instrument_index(c, head.num_codes) for c in ("vn", "harp", "piano")]])
    e, m = torch.randn(1, 3, 5, 8), torch.ones(1, 3, 5, dtype=torch.bool)
    out = head.predict(e, m, rows)
    assert out["frame"].shape == (1, 3, 5, 88)
    # harp and piano both get the unknown row: identical embeddings in, identical outputs out
    same = head.predict(e[:, [1, 1]], m[:, :2], rows[:, 1:])
    np.testing.assert_allclose(same["frame"][0, 0], same["frame"][0, 1], atol=1e-6)


def test_head_with_a_longer_table_round_trips(tmp_path):
    size = instrument_table_size(["vn", "harp", "piano"])
    head = TranscriptionHead(HeadConfig(in_dim=8, hidden_dim=16, num_layers=1, kernel_size=3, num_instruments=size + 1))
    head.save_pretrained(tmp_path / "h")
    back = load_head(tmp_path / "h")
    assert back.instrument_codes[-1] == "orchestral-harp" and "acoustic-grand-piano" in back.instrument_codes
    rows = torch.tensor([[instrument_index("harp", back.num_codes), instrument_index("drums", back.num_codes)]])
    e, m = torch.randn(1, 2, 4, 8), torch.ones(1, 2, 4, dtype=torch.bool)
    np.testing.assert_array_equal(head.predict(e, m, rows)["onset"], back.predict(e, m, rows)["onset"])
    with pytest.raises(ConfigError, match="instrument rows"):
        HeadConfig(in_dim=8, num_instruments=len(INSTRUMENT_CODES) + 2).check()


def test_pipeline_names_and_per_part_programs():
    from vitmusic.inference.midi import instruments_from_name

    assert instruments_from_name("Vid_03_Duo_harp_vc.mp4") == ["orchestral-harp", "vc"]
    assert instruments_from_name("01_Solo_drums.mp4") == [DRUM_KIT]
    assert instruments_from_name("holiday.mp4") is None


def test_per_part_scores_match_new_instruments_by_program(tmp_path):
    from vitmusic.evaluation.inputs import Reference
    from vitmusic.evaluation.runner import _score_parts
    from vitmusic.evaluation.schema import ClipInput

    midi = write_midi(notes_to_midi([NOTES, NOTES], ["harp", "drums"]), tmp_path / "gen.mid")
    clip = ClipInput("c", np.zeros(8000, np.float32), np.zeros(8000, np.float32), 8000)
    clip.stem_notes, clip.stem_f0s = [NOTES, NOTES], [None, None]  # 1 s of audio at 8 kHz
    ref = Reference(instruments=["orchestral-harp", DRUM_KIT])
    rows = _score_parts(clip, ref, midi, [])
    assert rows[0]["program"] == 46 and rows[0]["notes.f1"] == pytest.approx(1.0) and rows[0]["part"] == 1
    assert rows[1]["program"] == -1 and np.isnan(rows[1]["notes.f1"]) and "no generated part" in rows[1]["reason"]
