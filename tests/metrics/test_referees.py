"""The polyphonic referee (basic-pitch, ONNX, bundled weights) and the ensemble scoring around it."""

import builtins
import types

import numpy as np
import pytest

from vitmusic.metrics import ensemble, referees

SR = 22050


def harmonic(midi, onset_s, dur_s, total_s=2.0):
    t = np.arange(int(total_s * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    env = ((t >= onset_s) & (t < onset_s + dur_s)) * np.exp(-2 * np.clip(t - onset_s, 0, None))
    return env * sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 6))


@pytest.fixture(scope="module")
def chord():
    # C4 + G4 from 0.2 s, then E5 alone
    y = harmonic(60, 0.2, 0.8) + harmonic(67, 0.2, 0.8) + harmonic(76, 1.1, 0.7)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def test_basic_pitch_transcribes_a_chord_and_its_multif0(chord):
    bp = referees.basic_pitch()
    notes, (times, freqs) = bp.analyze(chord, SR)
    midi = sorted({int(round(69 + 12 * np.log2(f / 440))) for f in notes[:, 1]})
    assert {60, 67, 76} <= set(midi), notes
    onsets = {int(round(69 + 12 * np.log2(f / 440))): o for o, f, _ in notes}
    assert abs(onsets[60] - 0.2) < 0.05 and abs(onsets[76] - 1.1) < 0.05
    mid = np.argmin(np.abs(times - 0.5))
    assert {60, 67} <= {int(round(69 + 12 * np.log2(f / 440))) for f in freqs[mid]}


def test_too_short_audio_is_a_value_error():
    with pytest.raises(ValueError, match="long"):
        referees.basic_pitch().analyze(np.zeros(int(0.2 * SR), np.float32), SR)


def test_missing_package_is_one_clear_line(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("basic_pitch"):
            raise ImportError("No module named 'basic_pitch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(referees.RefereeUnavailableError, match="pip install --no-deps basic-pitch"):
        referees.BasicPitch()


def _clip(ref, gen, stem_notes=None, stem_f0s=None, n_voices=2, problems=()):
    return types.SimpleNamespace(ref_audio=ref, gen_audio=gen, sample_rate=SR, duration_s=len(gen) / SR,
                                 cache={}, n_voices=n_voices, stem_notes=stem_notes, stem_f0s=stem_f0s,
                                 stem_problems=list(problems), ref_notes=None)


def test_ensemble_scores_against_all_stems_with_ceiling(chord):
    stems = [np.array([[0.2, 261.63, 0.8], [1.1, 659.26, 0.7]]), np.array([[0.2, 392.0, 0.8]])]
    t = np.arange(200) * 0.01
    f0s = [(t, np.where((t >= 0.2) & (t < 1.0), 261.63, np.where((t >= 1.1) & (t < 1.8), 659.26, 0.0))),
           (t, np.where((t >= 0.2) & (t < 1.0), 392.0, 0.0))]
    clip = _clip(chord, chord, stems, f0s)
    s = ensemble.score_notes(clip, {}, None, mono=None)
    assert s["notes.f1_no_offset"] == pytest.approx(s["referee.notes.f1_no_offset"])
    assert s["notes.recall"] > 0.6
    m = ensemble.score_multipitch(clip, {}, None)
    assert m["multipitch.recall"] > 0.8 and m["multipitch.accuracy"] == m["referee.multipitch.accuracy"]
    # the generated side without the G4: recall drops
    no_g = harmonic(60, 0.2, 0.8) + harmonic(76, 1.1, 0.7)
    clip2 = _clip(chord, (0.3 * no_g / np.abs(no_g).max()).astype(np.float32), stems, f0s)
    m2 = ensemble.score_multipitch(clip2, {}, None)
    assert m2["multipitch.recall"] < m["multipitch.recall"] - 0.2
    assert m2["referee.multipitch.recall"] == m["referee.multipitch.recall"]  # same reference, same ceiling


def test_missing_or_malformed_stem_annotation_falls_back_to_the_reference_audio(chord):
    t = np.arange(200) * 0.01
    clip = _clip(chord, chord, [np.zeros((0, 3)), None], [(t, np.zeros(200)), None])
    clip.reference_used = {}
    notes = ensemble.score_notes(clip, {}, None, mono=None)
    multi = ensemble.score_multipitch(clip, {}, None)
    # a copy of the reference against the referee on the reference: perfect, and no ceiling is claimed
    assert notes["notes.f1_no_offset"] == pytest.approx(1.0) and multi["multipitch.accuracy"] == pytest.approx(1.0)
    assert not any(k.startswith("referee.") for k in {**notes, **multi})
    assert clip.reference_used == {"notes": "reference audio (stem 2 has no Notes annotation)",
                                   "multipitch": "reference audio (stem 2 has no F0s annotation)"}
    bad = _clip(chord, chord, [None], [None], problems=["stem 1 F0s annotation unreadable: line 3: not a number"])
    bad.reference_used = {}
    ensemble.score_multipitch(bad, {}, None)
    assert "unreadable" in bad.reference_used["multipitch"]
    short = _clip(chord, chord[: int(0.2 * SR)], [np.array([[0.0, 440.0, 0.1]])], [(t, np.zeros(200))], 1)
    with pytest.raises(referees.MetricUndefinedError, match="generated audio unusable"):
        ensemble.score_multipitch(short, {}, None)


def test_union_notes_merges_unisons():
    a = np.array([[0.0, 440.0, 1.0], [1.0, 220.0, 0.5]])
    b = np.array([[0.02, 441.0, 0.5], [1.0, 330.0, 0.5]])
    u = ensemble.union_notes([a, b])
    assert u.shape == (3, 3) and u[0, 2] == 1.0
    assert ensemble.union_notes([]).shape == (0, 3)


def test_runner_reports_a_missing_referee_as_null_with_reason(tmp_path, monkeypatch):
    import json
    import shutil

    from vitmusic import cli
    from vitmusic.data import urmp
    from vitmusic.data.synth import generate_benchmark

    generate_benchmark(tmp_path / "urmp", 1, 0, duration_s=3.0, source="chorales", sample_rate=SR,
                       width_per_player=64, height=96, progress=False, plot=False)
    piece = urmp.discover_pieces(tmp_path / "urmp")[0]
    (tmp_path / "gen").mkdir()
    shutil.copy(piece.mix, tmp_path / "gen" / f"{piece.id}.wav")

    def unavailable():
        raise referees.RefereeUnavailableError("the polyphonic transcriber basic-pitch is not installed")

    monkeypatch.setattr(ensemble, "basic_pitch", unavailable)
    piece.stems[1].f0.write_text("0.0\tnot-a-number\n")  # a malformed stem annotation
    out = tmp_path / "out"
    assert cli.main(["evaluate", "--urmp", str(tmp_path / "urmp"), "--gen", str(tmp_path / "gen"), "--out",
                     str(out), "--metrics", "notes,multipitch", "--quiet"]) == 0
    m = json.loads((out / "summary.json").read_text())["metrics"]
    assert m["notes.f1"]["mean"] is None
    assert any("not installed" in r for r in m["notes.f1"]["undefined_reasons"])
    assert m["multipitch.recall"]["mean"] is None  # the referee itself is missing: no fallback can help
    assert any("not installed" in r for r in m["multipitch.recall"]["undefined_reasons"])


def test_manifest_stems_keep_per_stem_annotations_and_mark_unannotated_ones():
    from vitmusic.evaluation.inputs import _manifest_stems

    clip = {"stems": [{"instrument": "vn", "f0": "/a/F0s_1", "notes": "/a/Notes_1"},
                      {"instrument": "vc", "f0": None, "notes": "/a/Notes_2"}],
            "f0": [{"times_s": [0.0, 0.01], "f0_hz": [440.0, 0.0]}, {"times_s": [], "f0_hz": []}],
            "notes": [[[0.0, 440.0, 0.5]], []]}
    got = _manifest_stems(clip)
    assert got["instruments"] == ["vn", "vc"]
    assert np.allclose(got["stem_f0s"][0][1], [440.0, 0.0]) and got["stem_f0s"][1] is None
    assert got["stem_notes"][0].shape == (1, 3) and got["stem_notes"][1].shape == (0, 3)
