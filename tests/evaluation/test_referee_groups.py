"""``vitmusic evaluate`` with the trained-referee groups (rhythm, harmony) and the emotion referee switch: which
reference each clip used, ceilings, the referee and its licence in every result, bad input as one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from metrics_signals import harmonic_tone, midi_hz

from vitmusic import cli
from vitmusic.data.beats import beats_file_name, write_beats
from vitmusic.data.urmp import mix_file_name, stem_file_name, write_notes
from vitmusic.errors import ConfigError
from vitmusic.evaluation import runner
from vitmusic.metrics import beat_trackers
from vitmusic.metrics.referees import RefereeUnavailableError

SR = 22050
# a four-voice progression, one chord a second, each struck twice (onsets every 0.5 s: 120 BPM)
PROGRESSION = [[48, 64, 67, 72], [53, 65, 69, 72], [55, 62, 67, 71], [48, 64, 67, 72],
               [45, 64, 69, 72], [50, 65, 69, 74], [43, 62, 67, 71], [48, 64, 67, 72]]


def render(progression, beat_s=0.5, transpose=0):
    """(stems: bass / upper voices audio, stems' notes) of the progression, two beats per chord."""
    stems, notes = [np.zeros(0, np.float32), np.zeros(0, np.float32)], [[], []]
    t = 0.0
    for chord in progression:
        for _ in range(2):
            for k, voices in enumerate((chord[:1], chord[1:])):
                tone = sum(harmonic_tone(midi_hz(m + transpose), beat_s, SR, amp=0.2, release_s=0.05) for m in voices)
                stems[k] = np.concatenate([stems[k], tone])
                notes[k] += [(t, midi_hz(m + transpose), beat_s - 0.05) for m in voices]
            t += beat_s
    return stems, [np.asarray(n) for n in notes]


@pytest.fixture(scope="module")
def piece(tmp_path_factory):
    """A URMP piece folder with both stems' Notes and a Beats file, and generated variants of its mix."""
    root = tmp_path_factory.mktemp("urmp")
    folder = root / "01_Chorale_vc_vn"
    folder.mkdir()
    stems, notes = render(PROGRESSION)
    for k, (code, stem, n) in enumerate(zip(("vc", "vn"), stems, notes), start=1):
        sf.write(folder / stem_file_name("AuSep", k, code, 1, "Chorale"), stem, SR)
        write_notes(folder / stem_file_name("Notes", k, code, 1, "Chorale"), n)
    mix = stems[0] + stems[1]
    sf.write(folder / mix_file_name(folder), mix, SR)
    beat_times = np.arange(len(PROGRESSION) * 2) * 0.5
    write_beats(folder / beats_file_name(folder), np.stack([beat_times, np.arange(beat_times.size) % 4 + 1], 1))
    gen = tmp_path_factory.mktemp("gen")
    variants = {"copy": mix, "transposed": sum(render(PROGRESSION, transpose=2)[0]),
                "faster": sum(render(PROGRESSION, beat_s=0.4)[0])}
    for name, y in variants.items():
        (gen / name).mkdir()
        sf.write(gen / name / f"{folder.name}.wav", y[: mix.size], SR)
    return root, gen


def _evaluate(tmp_path, root, gen_dir, *extra):
    out = tmp_path / "out"
    code = cli.main(["evaluate", "--urmp", str(root), "--gen", str(gen_dir), "--out", str(out),
                     "--metrics", "rhythm,harmony", "--quiet", *extra])
    assert code == 0
    return json.loads((out / "summary.json").read_text())["metrics"], out


def test_copy_scores_its_ceiling_against_the_annotations(tmp_path, piece, capsys):
    metrics, out = _evaluate(tmp_path, piece[0], piece[1] / "copy")
    for name in ("rhythm.beat_f_measure", "rhythm.tempo_p_score", "harmony.chord_majmin", "harmony.key_weighted"):
        m = metrics[name]
        assert m["n"] == 1 and m["mean"] == pytest.approx(m["referee_ceiling"]["mean"])
        assert m["reference"] == {"annotations": 1}
    assert metrics["rhythm.tempo_p_score"]["mean"] == 1.0
    assert metrics["harmony.chord_majmin"]["mean"] >= 0.8 and metrics["harmony.key_weighted"]["mean"] == 1.0
    assert metrics["rhythm.downbeat_f_measure"]["n"] == 0  # librosa's tracker has no bars
    (referee,) = metrics["rhythm.beat_f_measure"]["referee"]
    assert referee.startswith("librosa") and "ISC" in referee
    (referee,) = metrics["harmony.chord_root"]["referee"]
    assert "MIT" in referee
    assert "referee: librosa" in (out / "report.md").read_text()
    printed = capsys.readouterr().out
    assert "referee: vitmusic chroma templates" in printed and "ISC" in printed


def test_transposition_moves_harmony_and_a_faster_tempo_moves_rhythm(tmp_path, piece):
    copy, _ = _evaluate(tmp_path / "a", piece[0], piece[1] / "copy")
    up, _ = _evaluate(tmp_path / "b", piece[0], piece[1] / "transposed")
    assert up["harmony.chord_majmin"]["mean"] <= 0.2 < copy["harmony.chord_majmin"]["mean"]
    assert up["harmony.key_weighted"]["mean"] < 1.0
    assert up["rhythm.tempo_p_score"]["mean"] == 1.0  # the tempo did not change
    fast, _ = _evaluate(tmp_path / "c", piece[0], piece[1] / "faster")
    assert fast["rhythm.tempo_p_score"]["mean"] == 0.0  # 150 BPM against 120 annotated
    assert fast["rhythm.bpm_abs_error"]["mean"] == pytest.approx(30, abs=6)
    assert copy["rhythm.bpm_abs_error"]["mean"] < 6


def test_without_annotations_the_referee_reads_the_reference_audio(tmp_path, piece):
    root, gen = piece
    ref = tmp_path / "ref"
    ref.mkdir()
    folder = next(p for p in root.iterdir() if p.name.startswith("01_"))
    sf.write(ref / f"{folder.name}.wav", sf.read(folder / mix_file_name(folder))[0], SR)
    out = tmp_path / "out"
    assert cli.main(["evaluate", "--ref", str(ref), "--gen", str(gen / "copy"), "--out", str(out),
                     "--metrics", "rhythm,harmony", "--quiet"]) == 0
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    assert metrics["rhythm.beat_f_measure"]["reference"] == {"reference audio (no beat annotation)": 1}
    assert list(metrics["harmony.chord_majmin"]["reference"])[0].startswith("reference audio")
    assert metrics["harmony.chord_majmin"]["mean"] == 1.0 and "referee_ceiling" not in metrics["harmony.chord_majmin"]


def test_referee_not_installed_is_null_with_the_reason(tmp_path, piece, monkeypatch):
    class Missing:
        def __init__(self):
            raise RefereeUnavailableError("BeatNet is not installed (test); install it with REFEREES=ccby ...")

    beat_trackers.beat_tracker.cache_clear()
    monkeypatch.setitem(beat_trackers._TRACKERS, "beatnet", Missing)
    try:
        metrics, out = _evaluate(tmp_path, piece[0], piece[1] / "copy", "--beat-referee", "beatnet")
    finally:
        beat_trackers.beat_tracker.cache_clear()
    m = metrics["rhythm.beat_f_measure"]
    assert m["mean"] is None and m["n"] == 0
    assert list(m["undefined_reasons"]) == ["BeatNet is not installed (test); install it with REFEREES=ccby ..."]
    assert metrics["harmony.chord_majmin"]["n"] == 1  # the other group is unaffected


def test_short_clip_and_chordless_reference_are_null_with_the_reason(tmp_path):
    ref, gen = tmp_path / "ref", tmp_path / "gen"
    ref.mkdir(), gen.mkdir()
    y = harmonic_tone(440.0, 3.0, SR)  # 3 s, one voice
    for d in (ref, gen):
        sf.write(d / "a.wav", y, SR)
    cfg = runner.EvalConfig(gen_dir=gen, ref_dir=ref, metrics=("rhythm",), sample_rate=SR)
    result = runner.evaluate_dirs(cfg, progress=False)
    assert "needs at least 4 s of audio" in next(iter(result.summary["metrics"]["rhythm.beat_f_measure"]
                                                      ["undefined_reasons"]))
    from vitmusic.evaluation import referee_groups
    from vitmusic.evaluation.schema import ClipInput

    clip = ClipInput("a", y, y, SR, ref_notes=np.array([[0.0, 440.0, 3.0]]))
    with pytest.raises(Exception, match="no chord"):
        referee_groups.score_harmony(clip, {}, None)


def test_unknown_referees_are_one_line(tmp_path, piece, capsys):
    with pytest.raises(ConfigError, match="unknown chord referee 'x'"):
        runner.evaluate_dirs(runner.EvalConfig(gen_dir=piece[1] / "copy", urmp_root=piece[0], chord_referee="x"),
                             progress=False)
    with pytest.raises(ConfigError, match="give one"):
        runner.evaluate_dirs(runner.EvalConfig(gen_dir=piece[1] / "copy", urmp_root=piece[0], emotion_model="m",
                                               emotion_referee="vibenet"), progress=False)
    with pytest.raises(SystemExit) as e:
        cli.main(["evaluate", "--gen", "g", "--out", str(tmp_path / "o"), "--beat-referee", "nope"])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
