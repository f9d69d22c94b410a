"""Clip manifests and ``vitmusic prepare`` end to end, on a tiny URMP-layout root built here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vitmusic.cli import main
from vitmusic.data.manifest import (
    clip_f0,
    clip_notes,
    clip_windows,
    piece_clips,
    piece_duration,
    prepare_manifest,
    read_manifest,
)
from vitmusic.data.urmp import (
    UrmpWarning,
    discover_pieces,
    mix_file_name,
    piece_folder_name,
    score_file_name,
    stem_file_name,
    video_file_name,
    write_f0,
    write_notes,
)
from vitmusic.errors import DataError, VitmusicError

SR = 4000
# notes of stem 1 of every piece: one sustained across 10 s, one inside [10, 20), one crossing 20 s
NOTES = np.array([[8.0, 440.0, 4.0], [12.0, 523.25, 1.5], [19.5, 392.0, 1.0]])


_VIDEO: list[bytes] = []


def tiny_video_bytes() -> bytes:
    """A real 2-frame mp4 (prepare opens every listed video); encoded once per test session."""
    if not _VIDEO:
        import tempfile

        from vitmusic.data.videowriter import write_video

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "v.mp4"
            write_video(path, (np.full((16, 16, 3), 40 * i, np.uint8) for i in range(2)), 1)
            _VIDEO.append(path.read_bytes())
    return _VIDEO[0]


def make_piece(root: Path, number: int, name: str, insts: list[str], duration_s: float, *,
               skip: tuple[str, ...] = ()) -> Path:
    folder = root / piece_folder_name(number, name, insts)
    folder.mkdir(parents=True)
    audio = np.zeros(int(round(duration_s * SR)), dtype=np.float32)
    if "mix" not in skip:
        sf.write(folder / mix_file_name(folder), audio, SR)
    if "video" not in skip:
        (folder / video_file_name(folder)).write_bytes(tiny_video_bytes())  # its duration is not used
    (folder / score_file_name(folder)).write_bytes(b"")
    for k, code in enumerate(insts, start=1):
        sf.write(folder / stem_file_name("AuSep", k, code, number, name), audio, SR)
        times = np.arange(0.0, duration_s, 0.5)
        write_f0(folder / stem_file_name("F0s", k, code, number, name), times, np.full(times.shape, 100.0 * k))
        if "notes" not in skip:
            notes = NOTES[NOTES[:, 0] < duration_s] if k == 1 else np.array([[1.0, 220.0, 0.5]])
            write_notes(folder / stem_file_name("Notes", k, code, number, name), notes)
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "urmp"
    make_piece(r, 1, "Jupiter", ["vn", "vc"], 25.0)
    make_piece(r, 2, "Sonata", ["fl", "cl"], 21.0)
    make_piece(r, 3, "Dance", ["tpt"], 30.2)
    make_piece(r, 4, "Hark", ["vn", "va", "vc"], 10.0)
    make_piece(r, 5, "Tiny", ["ob"], 4.0)
    return r


# ---------------------------------------------------------------------------------------------- pieces


def test_clip_windows():
    assert clip_windows(25.0, 10.0) == [(0.0, 10.0), (10.0, 20.0)]
    assert clip_windows(25.0, 10.0, 5.0) == [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0), (15.0, 25.0)]
    assert clip_windows(9.9999999, 10.0) == [(0.0, 10.0)]  # float noise in a header-derived duration
    assert clip_windows(9.9, 10.0) == []
    windows = clip_windows(100.0, 1.0, 0.1)
    assert len(windows) == 991 and windows[-1] == (99.0, 100.0) and windows[3] == (0.3, 1.3)
    with pytest.raises(ValueError):
        clip_windows(10.0, 0.0)


def test_clip_notes_clips_to_window():
    got = clip_notes(NOTES, 10.0, 20.0)
    # sustained from 8 s -> starts at 0 with 2 s left; the 19.5 s note is cut at the window end
    np.testing.assert_allclose(got, [[0.0, 440.0, 2.0], [2.0, 523.25, 1.5], [9.5, 392.0, 0.5]])
    assert clip_notes(NOTES, 0.0, 8.0).shape == (0, 3)  # ends exactly where the first note starts
    # a note ending exactly at the window start is out; one starting inside and running past is cut
    np.testing.assert_allclose(clip_notes(NOTES, 12.0, 13.0), [[0.0, 523.25, 1.0]])
    zero = np.array([[5.0, 440.0, 0.0]])
    assert clip_notes(zero, 5.0, 6.0).tolist() == [[0.0, 440.0, 0.0]]
    assert clip_notes(zero, 4.0, 5.0).shape == (0, 3)


def test_clip_f0():
    t, f = clip_f0(np.arange(0, 3, 0.5), np.arange(6) * 10.0, 1.0, 2.0)
    np.testing.assert_allclose(t, [0.0, 0.5])
    np.testing.assert_allclose(f, [20.0, 30.0])


def test_piece_clips_known_answers(root):
    (piece,) = [p for p in discover_pieces(root) if p.number == 1]
    assert piece_duration(piece) == pytest.approx(25.0)
    clips = piece_clips(piece, "val", 10.0)
    assert [c["clip_id"] for c in clips] == ["01_Jupiter_vn_vc_0000", "01_Jupiter_vn_vc_0001"]
    second = clips[1]
    assert (second["start_s"], second["end_s"], second["split"]) == (10.0, 20.0, "val")
    assert second["notes"][0] == [[0.0, 440.0, 2.0], [2.0, 523.25, 1.5], [9.5, 392.0, 0.5]]
    assert second["notes"][1] == []  # annotated, but nothing sounds in this window
    assert clips[0]["notes"][1] == [[1.0, 220.0, 0.5]]
    assert second["f0"][1]["times_s"] == [0.5 * i for i in range(20)]
    assert set(second["f0"][1]["f0_hz"]) == {200.0}
    assert second["stems"][1] == {
        "index": 2, "instrument": "vc",
        "audio": str((root / piece.id / "AuSep_2_vc_01_Jupiter.wav").resolve()),
        "f0": str((root / piece.id / "F0s_2_vc_01_Jupiter.txt").resolve()),
        "notes": str((root / piece.id / "Notes_2_vc_01_Jupiter.txt").resolve()),
    }
    with pytest.raises(DataError, match=r"clip window 30 s is longer than piece 01_Jupiter_vn_vc \(25.0 s\)"):
        piece_clips(piece, "train", 30.0)


def test_duration_from_video_when_no_mix(tmp_path):
    av = pytest.importorskip("av")
    folder = make_piece(tmp_path, 6, "Vid", ["vn"], 3.0, skip=("mix", "video"))
    with av.open(str(folder / video_file_name(folder)), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(25):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.warns(UrmpWarning, match="missing AuMix_06_Vid_vn.wav"):
        (piece,) = discover_pieces(tmp_path)
    assert piece.mix is None
    assert piece_duration(piece) == pytest.approx(2.5, abs=0.15)


# ---------------------------------------------------------------------------------------------- end to end


def test_prepare_cli_end_to_end(root, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["prepare", "--urmp", str(root), "--out", str(out), "--clip-seconds", "10", "--hop-seconds", "5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((out / "prepare.json").read_text())
    clips = read_manifest(out)
    # 25 s -> 4 windows, 21 s -> 3, 30.2 s -> 5, 10 s -> 1; the 4 s piece is skipped and reported
    per_piece = {p: sum(c["piece"] == p for c in clips) for p in report["splits"]}
    assert per_piece == {"01_Jupiter_vn_vc": 4, "02_Sonata_fl_cl": 3, "03_Dance_tpt": 5, "04_Hark_vn_va_vc": 1}
    assert report["skipped"] == {"05_Tiny_ob": "clip window 10 s is longer than the piece (4.0 s)"}
    assert report["counts"]["pieces_found"] == 5 and report["missing"] == {}
    assert sum(report["counts"]["clips"].values()) == len(clips) == 13
    assert set(report["splits"].values()) == {"train", "val", "test"}  # >= 3 pieces: every split used
    for c in clips:  # split recorded per clip = split of its piece; no piece in two splits
        assert c["split"] == report["splits"][c["piece"]]
        assert c["end_s"] - c["start_s"] == pytest.approx(10.0)
        assert len(c["notes"]) == len(c["f0"]) == len(c["stems"]) == len(c["instruments"])
        for stem_notes in c["notes"]:
            for onset, _, dur in stem_notes:
                assert 0.0 <= onset and onset + dur <= 10.0 + 1e-9
    assert "Prepared 13 clip(s) from 4 piece(s)" in captured.out and "05_Tiny_ob" in captured.out
    assert captured.err == ""
    test_clips = read_manifest(out / "manifest.jsonl", split="test")
    assert test_clips and all(c["split"] == "test" for c in test_clips)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "prepare.json", "prepare.png"]  # no temps
    assert (out / "prepare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prepare_is_deterministic_and_split_file_overrides(root, tmp_path):
    a = prepare_manifest(root, tmp_path / "a", 10.0, seed=3, plot=False)
    b = prepare_manifest(root, tmp_path / "b", 10.0, seed=3, plot=False)
    assert a.plot is None and not (tmp_path / "a" / "prepare.png").exists()
    assert (tmp_path / "a" / "manifest.jsonl").read_text() == (tmp_path / "b" / "manifest.jsonl").read_text()
    assert a.split_map == b.split_map
    split_file = tmp_path / "split.csv"
    split_file.write_text("piece,split\n01_Jupiter_vn_vc,test\n02_Sonata_fl_cl,test\n03_Dance_tpt,val\n"
                          "04_Hark_vn_va_vc,train\n")
    code = main(["prepare", "--urmp", str(root), "--out", str(tmp_path / "c"), "--clip-seconds", "10",
                 "--split-file", str(split_file), "--no-plot"])
    assert code == 0
    clips = read_manifest(tmp_path / "c")
    assert {c["piece"]: c["split"] for c in clips} == {
        "01_Jupiter_vn_vc": "test", "02_Sonata_fl_cl": "test", "03_Dance_tpt": "val", "04_Hark_vn_va_vc": "train"}


def test_missing_files_reported_or_required(root, tmp_path, capsys):
    make_piece(root, 7, "NoNotes", ["vn"], 12.0, skip=("notes",))
    out = tmp_path / "out"
    assert main(["prepare", "--urmp", str(root), "--out", str(out), "--clip-seconds", "10"]) == 0
    report = json.loads((out / "prepare.json").read_text())
    assert report["missing"] == {"07_NoNotes_vn": ["Notes_1_vn_07_NoNotes.txt"]}
    (clip,) = [c for c in read_manifest(out) if c["piece"] == "07_NoNotes_vn"]
    # not annotated: empty (same types as everywhere), and the stem's notes path is null
    assert clip["notes"] == [[]] and clip["stems"][0]["notes"] is None
    assert clip["stems"][0]["f0"] is not None and len(clip["f0"][0]["times_s"]) == 20
    assert "1 expected file(s) missing" in capsys.readouterr().out
    # --require notes: fatal by default, a reported skip with --skip-incomplete
    assert main(["prepare", "--urmp", str(root), "--out", str(tmp_path / "req"), "--clip-seconds", "10",
                 "--require", "notes,f0", "--skip-incomplete"]) == 0
    report = json.loads((tmp_path / "req" / "prepare.json").read_text())
    assert report["skipped"]["07_NoNotes_vn"] == "missing required notes"


def test_manifest_loads_with_datasets(root, tmp_path):
    datasets = pytest.importorskip("datasets")
    make_piece(root, 7, "NoNotes", ["vn"], 12.0, skip=("notes", "video"))
    prepare_manifest(root, tmp_path / "out", 10.0, plot=False)
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "out" / "manifest.jsonl"), split="train",
                               cache_dir=str(tmp_path / "hf_cache"))
    clips = read_manifest(tmp_path / "out")
    assert ds.num_rows == len(clips)
    assert ds[0]["clip_id"] == clips[0]["clip_id"] and ds[0]["notes"] == clips[0]["notes"]


# ---------------------------------------------------------------------------------------------- bad input


def _bad_urmp_roots(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """case -> (extra argv, expected error fragment); each root is built here."""
    cases: dict[str, tuple[list[str], str]] = {}
    cases["missing path"] = (["--urmp", str(tmp_path / "nope")], "URMP root not found")
    (tmp_path / "empty").mkdir()
    cases["empty folder"] = (["--urmp", str(tmp_path / "empty")], "no piece folders")
    (tmp_path / "badcode" / "01_Jupiter_vn_xyz").mkdir(parents=True)
    cases["unknown instrument"] = (["--urmp", str(tmp_path / "badcode")], "unknown instrument code 'xyz'")
    make_piece(tmp_path / "badnotes", 1, "Good", ["vn"], 12.0)  # streamed to the manifest before the failure
    folder = make_piece(tmp_path / "badnotes", 2, "Jupiter", ["vn", "vc"], 12.0)
    notes = folder / "Notes_2_vc_02_Jupiter.txt"
    notes.write_text("1.0\t220.0\t0.5\n\n2.0\t220.0\n")
    cases["malformed annotation"] = (["--urmp", str(tmp_path / "badnotes")],
                                     f"{notes}:3: expected 3 numbers, got '2.0\\t220.0'")
    make_piece(tmp_path / "short", 1, "Jupiter", ["vn"], 12.3)
    make_piece(tmp_path / "short", 2, "Sonata", ["vc"], 8.0)
    cases["window too long"] = (["--urmp", str(tmp_path / "short"), "--clip-seconds", "30"],
                                "clip window 30 s is longer than piece 01_Jupiter_vn (12.3 s)")
    make_piece(tmp_path / "nonotes", 1, "Jupiter", ["vn"], 12.0, skip=("notes",))
    cases["required missing"] = (["--urmp", str(tmp_path / "nonotes"), "--require", "notes"],
                                 "piece 01_Jupiter_vn: missing required notes")
    cases["unknown require"] = (["--urmp", str(tmp_path / "nonotes"), "--require", "lyrics"], "cannot require 'lyrics'")
    folder = make_piece(tmp_path / "corrupt", 1, "Jupiter", ["vn"], 12.0)
    (folder / mix_file_name(folder)).write_bytes(b"RIFF\x00\x00garbage")
    cases["corrupt mix"] = (["--urmp", str(tmp_path / "corrupt")], "cannot read audio")
    (tmp_path / "split.csv").write_text("piece,split\n02_Other_vn,train\n")
    cases["piece not in split file"] = (["--urmp", str(tmp_path / "nonotes"), "--split-file", str(tmp_path / "split.csv")],
                                        "piece '01_Jupiter_vn' is not in the split file")
    cases["missing split file"] = (["--urmp", str(tmp_path / "nonotes"), "--split-file", str(tmp_path / "no.csv")],
                                   "split file not found")
    cases["bad ratios"] = (["--urmp", str(tmp_path / "nonotes"), "--ratios", "1,x,1"], "--ratios")
    cases["zero clip"] = (["--urmp", str(tmp_path / "nonotes"), "--clip-seconds", "0"], "--clip-seconds must be positive")
    cases["negative hop"] = (["--urmp", str(tmp_path / "nonotes"), "--hop-seconds", "-1"], "--hop-seconds must be positive")
    (tmp_path / "a_file").write_text("x")
    cases["out is a file"] = (["--urmp", str(tmp_path / "nonotes"), "--out", str(tmp_path / "a_file")],
                              "output path exists and is not a folder")
    return cases


def test_read_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path)
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"clip_id": "a", "piece": "p", "split": "train"}\n\n{"clip_id": "b", "piece": "p"\n')
    with pytest.raises(DataError, match=r"manifest.jsonl:3: invalid JSON"):
        read_manifest(path)
    path.write_text('{"clip_id": "a", "piece": "p", "split": "train"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"manifest.jsonl:2: not a clip record"):
        read_manifest(tmp_path)
    with pytest.raises(VitmusicError, match="split must be one of"):
        read_manifest(path, split="training")


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    cases = _bad_urmp_roots(tmp_path)
    for i, (case, (argv, fragment)) in enumerate(cases.items()):
        out = tmp_path / f"out{i}"
        args = ["prepare", "--out", str(out), "--clip-seconds", "10", *argv]
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2, (case, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vitmusic prepare: error: "), (case, err)
        assert fragment in lines[0], (case, lines[0])
        assert "Traceback" not in err
        assert not (out / "manifest.jsonl").exists() and not (out / "prepare.json").exists(), case
        assert not out.exists() or not any(out.iterdir()), (case, list(out.iterdir()))
    assert (tmp_path / "a_file").read_text() == "x"


def test_one_score_in_two_splits_is_refused_unless_allowed(root, tmp_path, capsys):
    # the record synth-data writes: pieces 01 and 04 perform the same chorale
    pieces = [{"piece": "01_Jupiter_vn_vc", "source": "chorale", "title": "bwv2.6"},
              {"piece": "02_Sonata_fl_cl", "source": "chorale", "title": "bwv4.8"},
              {"piece": "03_Dance_tpt", "source": "melody", "title": "melody"},
              {"piece": "04_Hark_vn_va_vc", "source": "chorale", "title": "bwv2.6"},
              {"piece": "05_Tiny_ob", "source": "melody", "title": "melody"}]
    (root / "synth_data.json").write_text(json.dumps({"pieces": pieces}))
    split_file = tmp_path / "split.csv"
    split_file.write_text("piece,split\n01_Jupiter_vn_vc,train\n02_Sonata_fl_cl,train\n03_Dance_tpt,test\n"
                          "04_Hark_vn_va_vc,test\n05_Tiny_ob,test\n")
    args = ["prepare", "--urmp", str(root), "--out", str(tmp_path / "m"), "--clip-seconds", "4",
            "--split-file", str(split_file), "--no-plot"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bwv2.6" in err
    assert "01_Jupiter_vn_vc (train)" in err and "04_Hark_vn_va_vc (test)" in err and "melody" not in err
    assert not (tmp_path / "m" / "manifest.jsonl").exists()
    with pytest.raises(DataError, match="two splits"):
        prepare_manifest(root, tmp_path / "m", 4.0, split_file=split_file, plot=False)
    # generated melodies share no score; the same chorale within one split is no leak
    split_file.write_text("piece,split\n01_Jupiter_vn_vc,test\n02_Sonata_fl_cl,train\n03_Dance_tpt,train\n"
                          "04_Hark_vn_va_vc,test\n05_Tiny_ob,val\n")
    assert prepare_manifest(root, tmp_path / "ok", 4.0, split_file=split_file, plot=False).split_map
    split_file.write_text("piece,split\n01_Jupiter_vn_vc,train\n02_Sonata_fl_cl,train\n03_Dance_tpt,test\n"
                          "04_Hark_vn_va_vc,test\n05_Tiny_ob,test\n")
    assert main([*args[:4], str(tmp_path / "allowed"), *args[5:], "--allow-shared-scores"]) == 0


def _one_line_error(capsys, argv: list[str], fragment: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert fragment in err, err


def test_prepare_opens_every_media_file(tmp_path, capsys):
    """A 0-byte or garbage video, and a stem without samples, are found before any clip is cut."""
    r = tmp_path / "urmp"
    good = make_piece(r, 1, "Jupiter", ["vn"], 12.0)
    bad = make_piece(r, 2, "Sonata", ["vc"], 12.0)
    (bad / video_file_name(bad)).write_bytes(b"")
    out = tmp_path / "out"
    _one_line_error(capsys, ["prepare", "--urmp", str(r), "--out", str(out), "--clip-seconds", "5",
                             "--require", "video"], "1 broken media file(s) in 1 piece(s)")
    assert not out.exists()
    for data in (b"\x89PNG\r\n\x1a\n" + bytes(200), np.random.default_rng(0).bytes(100_000)):
        (bad / video_file_name(bad)).write_bytes(data)
        _one_line_error(capsys, ["prepare", "--urmp", str(r), "--out", str(out), "--clip-seconds", "5"],
                        "broken media file")
    assert main(["prepare", "--urmp", str(r), "--out", str(out), "--clip-seconds", "5", "--no-plot",
                 "--skip-incomplete"]) == 0
    report = json.loads((out / "prepare.json").read_text())
    assert list(report["broken_media"]) == ["02_Sonata_vc"]
    assert "broken media" in report["skipped"]["02_Sonata_vc"]
    assert {c["piece"] for c in read_manifest(out)} == {good.name}


def test_prepare_refuses_absurd_window_counts(root, tmp_path, capsys):
    import time

    t = time.perf_counter()
    for argv in (["--hop-seconds", "1e-9"], ["--clip-seconds", "1e-9"]):
        _one_line_error(capsys, ["prepare", "--urmp", str(root), "--out", str(tmp_path / "o"), "--clip-seconds",
                                 "5", *argv], "more than 100,000")
    assert time.perf_counter() - t < 30
    assert not (tmp_path / "o").exists()


def test_prepare_unwritable_output_is_one_line(root, tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("x")
    _one_line_error(capsys, ["prepare", "--urmp", str(root), "--out", str(tmp_path / "afile" / "sub"),
                             "--clip-seconds", "5"], "is a file, not a folder")
    # a read-only parent (simulated: the tests may run as root, who may write anywhere)
    import os

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path else real_access(p, mode))
    _one_line_error(capsys, ["prepare", "--urmp", str(root), "--out", str(tmp_path / "out"),
                             "--clip-seconds", "5"], "is not writable")
