"""Per-part scores: MIDI parts of the generated side against their instrument-matched stems."""

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from vitmusic import cli
from vitmusic.metrics import parts


def test_match_parts_by_program_in_track_order():
    assert parts.match_parts([40, 40, 42], [40, 42, 40]) == [0, 2, 1]
    assert parts.match_parts([40], [40, 43]) == [0, None]


def test_notes_to_f0_takes_the_highest_sounding_note():
    notes = np.array([[0.0, 220.0, 1.0], [0.5, 330.0, 0.2]])
    assert list(parts.notes_to_f0(notes, np.array([0.1, 0.6, 0.8, 1.2]))) == [220.0, 330.0, 220.0, 0.0]


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    from bench_helpers import one_chorale

    return one_chorale(tmp_path_factory.mktemp("parts"), 5.0)


def test_evaluate_writes_per_part_csv(ensemble, tmp_path):
    from bench_helpers import reference_as_output

    from vitmusic.generators.midi.export import notes_to_midi, write_midi

    gen = tmp_path / "gen"
    piece, stem_notes, codes = reference_as_output(ensemble, gen)
    # the MIDI path's output: one track per performer; here the true parts, the top one transposed
    shifted = [stem_notes[0] * np.array([1.0, 2 ** (2 / 12), 1.0])] + stem_notes[1:]
    write_midi(notes_to_midi(shifted, codes), gen / f"{piece.id}.mid")
    out = tmp_path / "out"
    assert cli.main(["evaluate", "--urmp", str(ensemble), "--gen", str(gen), "--out", str(out),
                     "--metrics", "chroma", "--quiet"]) == 0
    rows = list(csv.DictReader(open(out / "per_part.csv")))
    assert [int(r["stem"]) for r in rows] == list(range(1, len(codes) + 1))
    assert [r["instrument"] for r in rows] == codes
    assert float(rows[0]["notes.f1"]) == 0.0 and float(rows[0]["pitch.raw_pitch_accuracy"]) < 0.1
    for r in rows[1:]:
        assert float(r["notes.f1_no_offset"]) == pytest.approx(1.0)
        assert float(r["pitch.raw_pitch_accuracy"]) > 0.8  # notes vs the performed f0 (vibrato, glides)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["per_part"]["notes.f1_no_offset"]["n"] == len(codes)
    assert "Per part" in (out / "report.md").read_text()
    # a part missing from the MIDI: that stem's row is nan with the reason
    write_midi(notes_to_midi(stem_notes[1:], codes[1:]), gen / f"{piece.id}.mid")
    assert cli.main(["evaluate", "--urmp", str(ensemble), "--gen", str(gen), "--out", str(out),
                     "--metrics", "chroma", "--quiet"]) == 0
    rows = list(csv.DictReader(open(out / "per_part.csv")))
    same = [k for k, c in enumerate(codes) if c == codes[0]]
    if len(same) == 1:
        assert math.isnan(float(rows[0]["notes.f1"])) and "no generated part" in rows[0]["reason"]


def test_per_voice_rows_ceilings_and_a_missing_voice(ensemble, tmp_path):
    from vitmusic.data import urmp

    piece = urmp.discover_pieces(ensemble)[0]
    stems = [sf.read(s.audio, dtype="float32")[0] for s in piece.stems]
    counts = [len(urmp.read_notes(s.notes)) for s in piece.stems]
    figures = {}
    for name, audio in (("full", np.sum(stems, axis=0)), ("minus1", np.sum(stems[1:], axis=0))):
        gen = tmp_path / name
        gen.mkdir()
        sf.write(gen / f"{piece.id}.wav", audio, 22050)
        out = tmp_path / f"out_{name}"
        assert cli.main(["evaluate", "--urmp", str(ensemble), "--gen", str(gen), "--out", str(out),
                         "--metrics", "notes", "--quiet"] + (["--no-voice-ceilings"] if name == "minus1" else [])) == 0
        rows = list(csv.DictReader(open(out / "per_part.csv")))
        figures[name] = (rows, json.loads((out / "summary.json").read_text()), out)
    rows, summary, out = figures["full"]
    assert sorted({r["part"] for r in rows}) == ["audio", "referee", "referee-mix"]
    ceilings = [r for r in rows if r["part"] == "referee"]
    assert [r["instrument"] for r in ceilings] == [s.instrument for s in piece.stems]
    assert all(0.0 <= float(r["notes.f1_no_offset"]) <= 1.0 for r in ceilings)
    assert set(summary["per_voice"]) == {"audio", "referee-mix", "referee"}
    assert summary["metrics"]["notes.voice_recall"]["mean"] == pytest.approx(1.0)
    report = (out / "report.md").read_text()
    assert "## Per voice" in report and (out / "voices.png").is_file() and "Per part" not in report
    # the top voice removed: voice recall loses about its share of the notes; no ceiling rows when switched off
    rows2, summary2, _ = figures["minus1"]
    assert "referee" not in {r["part"] for r in rows2}
    share = counts[0] / sum(counts)
    assert 1.0 - summary2["metrics"]["notes.voice_recall"]["mean"] >= 0.8 * share
    top = [r for r in rows2 if r["part"] == "audio" and r["stem"] == "1"][0]
    assert float(top["notes.voice_recall"]) < 0.2
