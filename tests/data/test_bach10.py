"""The Bach10 importer on synthetic Bach10-layout folders (scipy.io.savemat + soundfile), its bad inputs, and
the real Bach10 pieces when ``../shared/real`` is there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import soundfile as sf

from vitmusic.cli import main
from vitmusic.data.layouts import detect_layout, discover_pieces
from vitmusic.data.layouts.bach10 import FIRST_FRAME_S, HOP_S, PARTS, read_gt_f0s, read_gt_notes
from vitmusic.data.manifest import prepare_manifest, read_manifest
from vitmusic.errors import DataError

SR = 8000


def _real_material() -> Path:
    """``$VITMUSIC_REAL``, else the first ``shared/real`` beside a folder above this file (the project's real
    recordings; never part of the repository)."""
    if os.environ.get("VITMUSIC_REAL"):
        return Path(os.environ["VITMUSIC_REAL"])
    found = (p / "shared" / "real" for p in Path(__file__).resolve().parents)
    return next((p for p in found if p.is_dir()), Path("/nonexistent"))


REAL = _real_material() / "bach10-dev"
# soprano to bass: each part holds one pitch per 0.5 s note
VOICES = np.array([[72, 74, 76, 77], [64, 65, 67, 69], [60, 62, 64, 65], [48, 50, 52, 53]], dtype=float)


def note_cells(notes_per_part: list[list[tuple[int, int, float]]]) -> np.ndarray:
    """A MATLAB cell array like Bach10's GTNotes: 4 cells, each a cell array of [2, L] (frames; MIDI) notes."""
    cells = np.empty((len(notes_per_part), 1), dtype=object)
    for k, notes in enumerate(notes_per_part):
        part = np.empty((len(notes), 1), dtype=object)
        for i, (first, last, midi) in enumerate(notes):
            frames = np.arange(first, last + 1, dtype=float)
            part[i, 0] = np.stack([frames, np.full(len(frames), midi)])
        cells[k, 0] = part
    return cells


def make_bach10_piece(root: Path, folder: str, duration_s: float = 6.0, *, skip: tuple[str, ...] = (),
                      score_notes: bool = True) -> Path:
    """A Bach10-layout piece: 4 parts of 0.5 s notes (a rising line repeated), mix, .mat files, score MIDI."""
    import pretty_midi

    d = root / folder
    d.mkdir(parents=True)
    n_frames = int(round((duration_s - FIRST_FRAME_S) / HOP_S))
    gt = np.zeros((4, n_frames))
    notes: list[list[tuple[int, int, float]]] = [[] for _ in range(4)]
    t = np.arange(int(duration_s * SR)) / SR
    mix = np.zeros_like(t)
    frames_per_note = 50
    for j in range(n_frames // frames_per_note):
        a, b = j * frames_per_note, j * frames_per_note + 44  # 6 unvoiced frames between notes
        for k in range(4):
            midi = VOICES[k, j % 4] + (j // 4) % 3  # a melody of 10+ distinct steps for the tune signature
            gt[k, a:b] = midi
            notes[k].append((a + 1, b, midi))  # 1-based frame numbers, as MATLAB writes them
    for k, part in enumerate(PARTS):
        f0 = np.interp(t, FIRST_FRAME_S + HOP_S * np.arange(n_frames), 440 * 2 ** ((gt[k] - 69) / 12) * (gt[k] > 0))
        y = 0.2 * np.sin(2 * np.pi * np.cumsum(f0) / SR) * (f0 > 0)
        mix += y
        if part not in skip:
            sf.write(d / f"{folder}-{part}.flac", y, SR)
    sf.write(d / f"{folder}.flac", mix / 4, SR)
    scipy.io.savemat(d / f"{folder}-GTF0s.mat", {"GTF0s": gt})
    scipy.io.savemat(d / f"{folder}-GTNotes.mat", {"GTNotes": note_cells(notes)})
    pm = pretty_midi.PrettyMIDI()
    for k in range(4):
        inst = pretty_midi.Instrument(program=1, name=f"Instrument {k + 1}")
        if score_notes:
            inst.notes = [pretty_midi.Note(90, int(m), (a - 1) * HOP_S, b * HOP_S) for a, b, m in notes[k]]
        pm.instruments.append(inst)
    pm.write(str(d / f"{folder}.mid"))
    return d


@pytest.fixture
def bach10(tmp_path: Path) -> Path:
    root = tmp_path / "bach10"
    make_bach10_piece(root, "01-FirstChorale", 7.0)
    make_bach10_piece(root, "02-SecondChorale", 6.0)
    return root


def test_detects_and_reads_the_layout(bach10):
    assert detect_layout(bach10).name == "bach10"
    assert detect_layout(bach10 / "01-FirstChorale").name == "bach10"  # one piece folder
    pieces = discover_pieces(bach10)
    assert [p.id for p in pieces] == ["01-FirstChorale", "02-SecondChorale"]
    p = pieces[0]
    assert (p.number, p.name, p.layout, p.video, p.missing) == (1, "FirstChorale", "bach10", None, [])
    assert p.instruments == ["vn", "cl", "sax", "bn"] and [s.instrument for s in p.stems] == p.instruments
    assert p.mix.name == "01-FirstChorale.flac" and p.score.name == "01-FirstChorale.mid"
    assert p.stems[2].audio.name == "01-FirstChorale-saxphone.flac"


def test_annotations_in_urmp_conventions(bach10):
    stem = discover_pieces(bach10)[0].stems[0]
    times, f0 = stem.load_f0()
    np.testing.assert_allclose(times[:3], [0.023, 0.033, 0.043])
    assert f0[0] == pytest.approx(440 * 2 ** (3 / 12)) and f0[44] == 0.0  # MIDI 72; frame 45 is unvoiced
    notes = stem.load_notes()
    # frames 1..44 centred at 23 ms .. 453 ms: the note sounds from 18 ms for 44 hops, at MIDI 72
    np.testing.assert_allclose(notes[0], [0.018, 440 * 2 ** (3 / 12), 0.44], atol=1e-9)
    np.testing.assert_allclose(notes[1, 0], 0.518, atol=1e-9)
    bass = discover_pieces(bach10)[0].stems[3].load_notes()
    assert bass[0, 1] == pytest.approx(440 * 2 ** ((48 - 69) / 12))


def test_prepare_and_evaluate_a_bach10_manifest(bach10, tmp_path, capsys):
    out = tmp_path / "prepared"
    assert main(["prepare", "--data", str(bach10), "--out", str(out), "--clip-seconds", "2", "--no-plot"]) == 0
    assert "Layout: bach10" in capsys.readouterr().out
    clips = read_manifest(out)
    assert len(clips) == 3 + 3
    c = clips[0]
    assert c["video"] is None and c["instruments"] == ["vn", "cl", "sax", "bn"] and len(c["stems"]) == 4
    assert c["notes"][0][0] == pytest.approx([0.018, 440 * 2 ** (3 / 12), 0.44])
    report = json.loads((out / "prepare.json").read_text())
    assert report["layout"] == "bach10" and report["tunes"]["signature_source"]["01-FirstChorale"].startswith("score")
    # the two pieces play one tune (the same line): they are one group, in one split
    assert report["tunes"]["groups"][0]["pieces"] == ["01-FirstChorale", "02-SecondChorale"]
    assert len({c["split"] for c in clips}) == 1
    # "generated" = the reference mix cut to each clip: evaluation runs on the manifest without videos
    gen = tmp_path / "gen"
    gen.mkdir()
    for c in clips:
        y, sr = sf.read(c["mix"], start=int(c["start_s"] * SR), stop=int(c["end_s"] * SR))
        sf.write(gen / f"{c['clip_id']}.wav", y, sr)
    ev = tmp_path / "eval"
    assert main(["evaluate", "--manifest", str(out), "--gen", str(gen), "--out", str(ev), "--metrics", "chroma",
                 "--quiet"]) == 0
    summary = json.loads((ev / "summary.json").read_text())
    assert summary["metrics"]["chroma.cosine"]["n"] == 6
    assert summary["metrics"]["chroma.cosine"]["mean"] == pytest.approx(1.0, abs=1e-6)


def _one_line_error(capsys, argv: list[str], *fragments: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_bad_bach10_inputs_fail_in_one_line_naming_the_file(tmp_path, capsys):
    cases = {}
    root = tmp_path / "notmat"
    d = make_bach10_piece(root, "01-A")
    (d / "01-A-GTF0s.mat").write_bytes(b"this is not MATLAB")
    cases["not MATLAB"] = (root, ["01-A-GTF0s.mat", "not a MATLAB .mat file"])
    root = tmp_path / "shape"
    d = make_bach10_piece(root, "01-A")
    scipy.io.savemat(d / "01-A-GTF0s.mat", {"GTF0s": np.zeros((3, 100))})
    cases["wrong f0 shape"] = (root, ["01-A-GTF0s.mat", "shape [3, 100]", "violin, clarinet, saxphone, bassoon"])
    root = tmp_path / "noteshape"
    d = make_bach10_piece(root, "01-A")
    cells = note_cells([[(1, 10, 60)]] * 4)
    cells[2, 0][0, 0] = np.zeros((3, 10))
    scipy.io.savemat(d / "01-A-GTNotes.mat", {"GTNotes": cells})
    cases["wrong note shape"] = (root, ["01-A-GTNotes.mat", "part 3 (saxphone) note 1", "[2, frames]"])
    root = tmp_path / "flac"
    d = make_bach10_piece(root, "01-A")
    (d / "01-A-clarinet.flac").write_bytes(b"fLaC" + os.urandom(300))
    cases["corrupt flac"] = (root, ["01-A-clarinet.flac", "broken media"])
    for name, (root, fragments) in cases.items():
        out = tmp_path / f"out_{name.replace(' ', '_')}"
        _one_line_error(capsys, ["prepare", "--data", str(root), "--out", str(out), "--clip-seconds", "2"], *fragments)
        assert not out.exists() or not any(out.iterdir()), name  # nothing half-written
    # --skip-incomplete goes on without the piece and says why in prepare.json
    root = tmp_path / "notmat"
    make_bach10_piece(root, "02-B")
    out = tmp_path / "skipped"
    assert main(["prepare", "--data", str(root), "--out", str(out), "--clip-seconds", "2", "--skip-incomplete",
                 "--no-plot"]) == 0
    report = json.loads((out / "prepare.json").read_text())
    assert "not a MATLAB .mat file" in report["skipped"]["01-A"] and list(report["splits"]) == ["02-B"]
    assert "01-A-GTF0s.mat" in report["broken_annotations"]["01-A"][0]


def test_readers_refuse_malformed_mat_files(tmp_path):
    path = tmp_path / "x-GTF0s.mat"
    scipy.io.savemat(path, {"other": np.zeros((4, 10))})
    with pytest.raises(DataError, match="no variable 'GTF0s'"):
        read_gt_f0s(path)
    scipy.io.savemat(path, {"GTF0s": np.full((4, 10), 200.0)})
    with pytest.raises(DataError, match="MIDI pitches"):
        read_gt_f0s(path)
    notes = tmp_path / "x-GTNotes.mat"
    cells = note_cells([[(1, 3, 60)]] * 4)
    cells[1, 0][0, 0] = np.array([[3.0, 2.0, 1.0], [60.0, 60.0, 60.0]])  # frames run backwards
    scipy.io.savemat(notes, {"GTNotes": cells})
    with pytest.raises(DataError, match="increasing integers"):
        read_gt_notes(notes)
    scipy.io.savemat(notes, {"GTNotes": np.zeros((4, 3))})
    with pytest.raises(DataError, match="cell array of 4 parts"):
        read_gt_notes(notes)


def test_missing_part_and_empty_score(tmp_path, capsys):
    root = tmp_path / "b"
    make_bach10_piece(root, "01-A", skip=("bassoon",), score_notes=False)
    piece = discover_pieces(root)[0]
    assert piece.missing == ["01-A-bassoon.flac"] and piece.stems[3].audio is None
    assert piece.stems[3].load_notes() is not None  # the annotation does not depend on the part's audio
    out = tmp_path / "p"
    assert main(["prepare", "--data", str(root), "--out", str(out), "--clip-seconds", "2", "--no-plot"]) == 0
    report = json.loads((out / "prepare.json").read_text())
    assert report["missing"] == {"01-A": ["01-A-bassoon.flac"]}
    # a score MIDI without notes: named in one warning line, and the signature comes from the notes annotation
    assert any("01-A.mid" in w and "no notes" in w for w in report["warnings"])
    assert report["tunes"]["signature_source"]["01-A"] == "notes annotation"
    assert read_manifest(out)[0]["stems"][3]["audio"] is None
    _one_line_error(capsys, ["prepare", "--data", str(root), "--out", str(tmp_path / "q"), "--clip-seconds", "2",
                             "--require", "stems"], "01-A", "missing required stems")


def test_evaluate_names_a_malformed_annotation(tmp_path):
    from vitmusic.evaluation.runner import evaluate_dirs
    from vitmusic.evaluation.schema import EvalConfig

    root = tmp_path / "b"
    d = make_bach10_piece(root, "01-A", 3.0)
    (d / "01-A-GTF0s.mat").write_bytes(b"not MATLAB either")
    gen = tmp_path / "gen"
    gen.mkdir()
    sf.write(gen / "01-A.wav", sf.read(d / "01-A.flac")[0], SR)
    result = evaluate_dirs(EvalConfig(gen_dir=gen, urmp_root=root, metrics=("multipitch",)), progress=False)
    # the metric falls back to the reference audio, and the summary says why, naming the file
    used = result.summary["metrics"]["multipitch.accuracy"]["reference"]
    assert any(r.startswith("reference audio") and "01-A-GTF0s.mat" in r and "not a MATLAB" in r for r in used), used


def test_video_tasks_refuse_clips_without_video(bach10, tmp_path):
    from vitmusic.config import load_config
    from vitmusic.training.preflight import check_manifest_media

    prepare_manifest(bach10, tmp_path / "p", 2.0, plot=False)
    config = load_config(None, [f"data.manifest={tmp_path / 'p' / 'manifest.jsonl'}", "task=transcription"])
    with pytest.raises(DataError, match="have no video .*Bach10.*task=transcription learns from video"):
        check_manifest_media(config)
    config = load_config(None, [f"data.manifest={tmp_path / 'p' / 'manifest.jsonl'}", "task=diffusion"])
    assert check_manifest_media(config) == 6  # the diffusion synthesizer trains on the stems' audio and notes


@pytest.mark.skipif(not REAL.is_dir(), reason="real Bach10 pieces (../shared/real/bach10-dev) not here")
def test_real_bach10_pieces():
    pieces = discover_pieces(REAL)
    assert len(pieces) >= 4 and all(p.layout == "bach10" and not p.missing for p in pieces)
    for p in pieces:
        info = sf.info(str(p.mix))
        duration_s = info.frames / info.samplerate
        for stem in p.stems:
            times, f0 = stem.load_f0()
            assert abs(times[-1] - duration_s) < 0.1 and 0.7 < np.mean(f0 > 0) < 1.0
            notes = stem.load_notes()
            assert len(notes) > 30 and notes[:, 0].max() < duration_s and (notes[:, 2] > 0).all()
            lo, hi = 69 + 12 * np.log2(np.percentile(notes[:, 1], [5, 95]) / 440)
            from vitmusic.data.instruments import VOCABULARY

            info = VOCABULARY[stem.instrument]
            assert info.low_midi - 3 <= lo and hi <= info.high_midi + 3, (p.id, stem.instrument, lo, hi)
