"""Difficulty levels and nuisance of the synthetic benchmark: reproducible bytes, what the picture says about
pitch (painted >> fingering > hidden = nothing), the performer boxes, and the defaults left unchanged."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from vitmusic import cli
from vitmusic.data.synth import generate_benchmark
from vitmusic.data.synth.figures import (
    OPEN_STRINGS,
    brass_fingerings,
    string_fingerings,
    wind_fingerings,
)
from vitmusic.data.synth.nuisance import (
    BACKGROUNDS,
    FPS_CHOICES,
    NUISANCES,
    draw_nuisance,
    load_background,
    parse_nuisance,
)
from vitmusic.data.synth.performer import player_state
from vitmusic.data.synth.scene import Scene, part_box
from vitmusic.data.synth.scores import make_performance
from vitmusic.data.urmp import INSTRUMENTS, discover_pieces
from vitmusic.data.video import probe_video
from vitmusic.errors import DataError

CODES = ["vn", "va", "vc", "db", "fl", "ob", "cl", "sax", "bn", "tpt", "hn", "tbn", "tba"]
KW = dict(duration_s=1.5, width_per_player=64, height=96, progress=False, sample_rate=8000, plot=False)


def _scene(level, perf, nuisance=(), number=1, transpose=0, w=64, h=96, num_frames=45, fps=30.0):
    times = np.arange(num_frames) / fps
    infos = [INSTRUMENTS[c] for c in perf.instruments]
    states, midis = [], []
    for p, i in zip(perf.parts, infos):
        m = p.midi + transpose
        notes = p.notes.copy()
        notes[:, 1] *= 2.0 ** (transpose / 12)
        states.append(player_state(notes, m, p.velocities, i.low_midi, i.high_midi, times))
        midis.append(m)
    draws = draw_nuisance(3, number, tuple(nuisance), len(perf.parts), w, h, times, part_box(level, perf.instruments))
    return Scene(level, perf.instruments, [i.family for i in infos], midis, states, draws, w, h, fps, (3, number))


def _perf(number=1, source="mixed", duration_s=2.0):
    return make_performance(np.random.default_rng([3, number]), source, duration_s, (66.0, 112.0), 0.04,
                            chorale=(3, number))


def test_default_pictures_are_the_original_ones():
    """``painted`` without nuisance draws exactly what the benchmark drew before levels existed (frames hashed
    with the code of main at 100267d, the commit before the levels)."""
    h = hashlib.sha256()
    for number in (1, 2, 3):
        perf = make_performance(np.random.default_rng([5, number]), "mixed", 3.0, (66.0, 112.0), 0.04,
                                chorale=(5, number))
        times = np.arange(90) / 30.0
        infos = [INSTRUMENTS[c] for c in perf.instruments]
        states = [player_state(p.notes, p.midi, p.velocities, i.low_midi, i.high_midi, times)
                  for p, i in zip(perf.parts, infos)]
        draws = draw_nuisance(5, number, (), len(perf.parts), 64, 96, times, part_box("painted", perf.instruments))
        scene = Scene("painted", perf.instruments, [i.family for i in infos], [p.midi for p in perf.parts], states,
                      draws, 64, 96, 30.0)
        for f in scene.frames():
            h.update(np.ascontiguousarray(f).tobytes())
    assert h.hexdigest() == "d8cf4e1c2a43e5faa75a4cf642c305e87b51ba830b7f1ecf4878058da6d203c0"


@pytest.mark.parametrize("level", ["painted", "fingering", "hidden"])
def test_every_level_with_all_nuisance_is_byte_reproducible(tmp_path, level):
    a = generate_benchmark(tmp_path / "a", 2, seed=4, level=level, nuisance="all", **KW)
    b = generate_benchmark(tmp_path / "b", 2, seed=4, level=level, nuisance="all", workers=2, **KW)
    for fa, fb in zip(a, b):
        assert fa.name == fb.name
        for f in fa.iterdir():  # every file byte for byte: the mp4 and the performer boxes included
            assert f.read_bytes() == (fb / f.name).read_bytes(), f.name
    c = generate_benchmark(tmp_path / "c", 1, seed=4, level=level, nuisance="layout", **KW)[0]
    # the music depends on the seed only: same notes and mix at every level and nuisance
    assert (c / f"AuMix_{c.name}.wav").read_bytes() == (a[0] / f"AuMix_{c.name}.wav").read_bytes()
    assert (c / f"Vid_{c.name}.mp4").read_bytes() != (a[0] / f"Vid_{c.name}.mp4").read_bytes()


@pytest.mark.slow
def test_levels_and_nuisance_byte_identical_across_processes(tmp_path):
    import subprocess
    import sys

    args = ["--pieces", "3", "--duration", "3", "--source", "mixed", "--width", "96", "--height", "128",
            "--level", "fingering", "--nuisance", "all", "--no-plot", "--no-progress"]
    for name, hashseed in (("a", "0"), ("b", "12345")):
        subprocess.run([sys.executable, "-m", "vitmusic.cli", "synth-data", "--out", str(tmp_path / name), *args],
                       check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": hashseed})
    from synth_compare import assert_same_benchmark

    assert_same_benchmark(tmp_path / "a", tmp_path / "b", n_videos=3)


@pytest.mark.parametrize("nuisance", [(), NUISANCES])
def test_hidden_has_no_pitch_in_the_picture(nuisance):
    """Every instrument, the same timing and loudness, the notes transposed: identical frames."""
    for number in (1, 2, 3, 4):
        perf = _perf(number)
        base = _scene("hidden", perf, nuisance, number)
        for shift in (-5, 7):
            moved = _scene("hidden", perf, nuisance, number, transpose=shift)
            for i in range(0, base.num_frames, 4):
                np.testing.assert_array_equal(base.frame(i), moved.frame(i))
        # ... while the fingering level does show the pitch
        fingering = _scene("fingering", perf, nuisance, number)
        transposed = _scene("fingering", perf, nuisance, number, transpose=7)
        assert any(np.any(fingering.frame(i) != transposed.frame(i)) for i in range(0, base.num_frames, 4))


def _one_note(level, code, midi, w=160, h=240):
    info = INSTRUMENTS[code]
    times = np.arange(20) / 30.0
    st = player_state(np.array([[0.1, 440.0, 0.5]]), np.array([midi]), np.array([0.8]), info.low_midi,
                      info.high_midi, times)
    draws = draw_nuisance(0, 1, (), 1, w, h, times, part_box(level, [code]))
    return Scene(level, [code], [info.family], [np.array([midi])], [st], draws, w, h, 30.0).frame(10)


def test_fingering_cue_is_a_few_pixels():
    """A pitch change moves at most ~1 % of a performer's panel at ``fingering`` (a hand, a finger, keys, valves,
    a slide), against the painted hand marker and arm that move several times more."""
    panel = 160 * 240
    for code in CODES:
        info = INSTRUMENTS[code]
        lo = info.low_midi + 2
        changed = []
        for a, b in ((lo, lo + 1), (lo, lo + 2), (lo + 3, lo + 10), (lo + 10, lo + 14)):
            fa, fb = _one_note("fingering", code, a), _one_note("fingering", code, b)
            changed.append(int(np.any(fa != fb, axis=-1).sum()))
        painted = int(np.any(_one_note("painted", code, lo) != _one_note("painted", code, lo + 10), axis=-1).sum())
        assert max(changed) <= 0.01 * panel, (code, changed)
        assert max(changed) > 0, code  # there is a cue
        assert painted >= 3 * np.median(changed), (code, painted, changed)


def test_fingerings_are_instrument_like_and_ambiguous():
    # strings: an A4 (69) is the open A string of a violin, or the D string's 7th semitone in a high position
    s, n, pos = string_fingerings(np.array([69]), "vn")
    assert (OPEN_STRINGS["vn"][s[0]] + n[0]) == 69
    s, n, pos = string_fingerings(np.array([62, 64, 66, 67, 69]), "vn")  # a scale stays in first position
    assert set(pos.tolist()) == {2} and np.all(np.asarray(OPEN_STRINGS["vn"])[s] + n == [62, 64, 66, 67, 69])
    s, n, pos = string_fingerings(np.array([76, 88]), "vn")  # a leap up the E string shifts the hand
    assert pos[1] > pos[0] and s[1] == 3
    # woodwinds: twelve patterns per octave, the register key tells the 1st octave from the 2nd, not above
    keys = wind_fingerings(np.arange(60, 96), "fl")
    assert len({tuple(k) for k in keys[:12]}) == 12
    np.testing.assert_array_equal(keys[:12, :7], keys[12:24, :7])
    assert not keys[:12, 7].any() and keys[12:, 7].all()
    np.testing.assert_array_equal(keys[12:24], keys[24:36])
    # brass: one valve combination serves several pitches (the lips choose the partial)
    lowering = brass_fingerings(np.arange(58, 83), "tpt")
    assert set(lowering.tolist()) <= set(range(7))
    assert np.sum(lowering == 0) >= 5


def test_nuisance_parsing_and_independent_draws():
    assert parse_nuisance("none") == () and parse_nuisance(None) == () and parse_nuisance("all") == NUISANCES
    assert parse_nuisance("noise, layout") == ("layout", "noise")
    with pytest.raises(DataError, match="unknown nuisance 'rain'"):
        parse_nuisance("layout,rain")
    times = np.arange(60) / 30.0
    box = part_box("painted", ["vn", "va", "vc"])
    one = draw_nuisance(2, 5, ("layout",), 3, 64, 96, times, box)
    many = draw_nuisance(2, 5, ("layout", "camera", "noise"), 3, 64, 96, times, box)
    for field in ("x", "y", "w", "h", "drift"):  # turning other nuisances on leaves the layout's draws alone
        np.testing.assert_array_equal(getattr(one.layout, field), getattr(many.layout, field))
    assert many.camera is not None and many.noise_sigma > 0 and one.camera is None
    # unequal sizes and positions, left to right, inside the canvas
    L = draw_nuisance(2, 5, ("layout",), 4, 160, 240, times, part_box("fingering", ["vn", "fl", "tbn", "db"])).layout
    assert len(set(L.w.tolist())) > 1 and np.all(np.diff(L.x) > 0)
    for name in BACKGROUNDS:
        photo = load_background(name)
        assert photo.dtype == np.uint8 and photo.ndim == 3 and min(photo.shape[:2]) >= 256


def test_boxes_level_and_nuisance_are_recorded(tmp_path):
    folders = generate_benchmark(tmp_path, 3, seed=2, level="fingering", nuisance="layout,camera,fps", **KW)
    doc = json.loads((tmp_path / "synth_data.json").read_text())
    assert doc["arguments"]["level"] == "fingering" and doc["arguments"]["nuisance"] == ["layout", "camera", "fps"]
    for folder, entry in zip(folders, doc["pieces"]):
        boxes = json.loads((folder / f"Boxes_{folder.name}.json").read_text())
        assert entry["picture"]["level"] == boxes["level"] == "fingering"
        assert boxes["fps"] in FPS_CHOICES and entry["picture"]["fps"] == boxes["fps"]
        info = probe_video(folder / f"Vid_{folder.name}.mp4")
        assert len(boxes["boxes"]) == info.num_frames
        b = np.asarray(boxes["boxes"])  # [T, P, 4]
        assert b.shape[1] == len(boxes["instruments"]) == len(discover_pieces(folder)[0].stems)
        assert np.all(b[..., 2] > b[..., 0]) and np.all(b[..., 3] > b[..., 1])
        assert b[..., 2].max() <= info.width and b[..., 3].max() <= info.height
        centres = (b[..., 0] + b[..., 2]) / 2
        assert np.all(np.diff(centres, axis=1) > 0)  # left to right, as the parts are numbered


def test_cli_level_and_nuisance(tmp_path, capsys):
    out = tmp_path / "out"
    common = ["--duration", "1.5", "--width", "64", "--height", "96", "--sample-rate", "8000", "--no-progress",
              "--no-plot", "--pieces", "1"]
    assert cli.main(["synth-data", "--out", str(out), "--level", "hidden", "--nuisance", "noise,lighting",
                     *common]) == 0
    capsys.readouterr()
    for bad in (["--level", "cartoon"], ["--nuisance", "fog"]):
        assert cli.main(["synth-data", "--out", str(out), *common, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("vitmusic synth-data: error:") and "\n" not in err, err
