"""Metrics of what video can tell apart from pitch (vitmusic.metrics.performance): metamorphic checks -- a copy
scores the ceiling, shuffled onsets lower onset F1, a time-stretch lowers tempo agreement, an opposite gain ramp
flips the dynamics correlation, a dropped part lowers instrumentation -- and the groups through ``evaluate``."""

import csv
import json
import math

import numpy as np
import pytest
from metrics_signals import SR, click_train, harmonic_tone

from vitmusic.metrics import performance as perf

RNG = np.random.default_rng(0)


def beats_with_tempo(bpm_fn, duration_s=12.0, t0=0.2):
    """Beat times of a (time-varying) tempo ``bpm_fn(t)``."""
    t, out = t0, []
    while t < duration_s:
        out.append(t)
        t += 60.0 / bpm_fn(t)
    return np.asarray(out)


# ------------------------------------------------------------------------------------------------- onsets
def test_onsets_copy_is_perfect_and_shuffled_onsets_score_lower():
    ref = np.arange(0.2, 10, 0.33) + RNG.uniform(0, 0.1, 30)
    assert perf.evaluate_onsets(ref, ref)["onsets.f_measure"] == pytest.approx(1.0)
    shuffled = np.sort(RNG.uniform(0, 10, ref.size))
    assert perf.evaluate_onsets(ref, shuffled)["onsets.f_measure"] < 0.4
    # pitch plays no part; chords (onsets within 30 ms) count as one attack on both sides
    chords = np.sort(np.concatenate([ref, ref + 0.01]))
    assert perf.evaluate_onsets(chords, ref)["onsets.f_measure"] == pytest.approx(1.0)


def test_onsets_undefined_and_failed_detection():
    assert math.isnan(perf.evaluate_onsets(np.zeros(0), np.array([1.0]))["onsets.f_measure"])
    silent = perf.evaluate_onsets(np.array([1.0]), np.zeros(0))
    assert silent["onsets.f_measure"] == 0.0 and math.isnan(silent["onsets.precision"])
    assert perf.evaluate_onsets(np.zeros(0), np.array([1.0]))["onsets.precision"] == 0.0
    with pytest.raises(ValueError, match="1-D"):
        perf.evaluate_onsets(np.zeros((2, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="non-negative"):
        perf.evaluate_onsets(np.array([-1.0]), np.zeros(0))


def test_onset_detector_finds_clicks():
    times = np.arange(0.3, 6.0, 0.37)
    found = perf.detect_onsets(click_train(times, 6.5), SR)
    assert perf.evaluate_onsets(times, found)["onsets.f_measure"] > 0.9
    assert perf.detect_onsets(np.zeros(SR), SR).size == 0


def test_note_onsets_ignore_pitch_and_merge_chords():
    notes = np.array([[0.0, 440.0, 0.5], [0.01, 550.0, 0.5], [1.0, 220.0, 0.2]])
    assert list(perf.note_onsets(notes)) == [0.0, 1.0]


# --------------------------------------------------------------------------------------------- tempo curve
def test_tempo_curve_copy_time_stretch_and_shape():
    accel = beats_with_tempo(lambda t: 90 + 4 * t)
    copy = perf.evaluate_tempo_curves(accel, accel)
    assert copy["tempo_curve.median_abs_log2_ratio"] == 0.0 and copy["tempo_curve.accuracy"] == 1.0
    assert copy["tempo_curve.correlation"] == pytest.approx(1.0)
    # a time-stretch (everything 25 % faster) keeps the shape but not the tempo
    stretched = perf.evaluate_tempo_curves(accel, accel[0] + (accel - accel[0]) / 1.25)
    assert stretched["tempo_curve.median_abs_log2_ratio"] > math.log2(1.25) - 0.02
    assert stretched["tempo_curve.accuracy"] == 0.0 and stretched["tempo_curve.correlation"] > 0.95
    steady = np.arange(0.1, 10, 0.5)
    ratio = perf.evaluate_tempo_curves(steady, steady / 1.25)["tempo_curve.median_abs_log2_ratio"]
    assert ratio == pytest.approx(math.log2(1.25))
    # the opposite tempo shape (slowing down) correlates negatively; a late start changes nothing
    rit = beats_with_tempo(lambda t: 138 - 4 * t)
    assert perf.evaluate_tempo_curves(accel, rit)["tempo_curve.correlation"] < -0.9
    assert perf.evaluate_tempo_curves(accel, accel + 0.7)["tempo_curve.median_abs_log2_ratio"] == pytest.approx(0.0, abs=1e-9)


def test_tempo_curve_undefined():
    out = perf.evaluate_tempo_curves(np.array([0.0, 0.5, 1.0]), np.arange(0, 5, 0.5))
    assert all(math.isnan(v) for v in out.values())  # too few beats
    steady = np.arange(0.1, 8, 0.5)
    out = perf.evaluate_tempo_curves(steady, steady)
    assert out["tempo_curve.accuracy"] == 1.0 and math.isnan(out["tempo_curve.correlation"])  # flat: no shape


def test_tempo_curve_from_audio_lower_after_time_stretch():
    ref = perf.track_beats(click_train(np.arange(0.1, 10, 0.6), 10.0), SR)
    gen = perf.track_beats(click_train(np.arange(0.1, 10, 0.6 / 1.25), 10.0), SR)
    same = perf.evaluate_tempo_curves(ref, ref)
    stretched = perf.evaluate_tempo_curves(ref, gen)
    assert same["tempo_curve.accuracy"] == 1.0
    assert stretched["tempo_curve.accuracy"] < 0.5
    assert stretched["tempo_curve.median_abs_log2_ratio"] > 0.2


# ------------------------------------------------------------------------------------------------ dynamics
def test_dynamics_copy_gain_and_opposite_ramp():
    tone = harmonic_tone(330.0, 6.0)
    ramp = (10 ** (np.linspace(-30.0, 0.0, tone.size) / 20)).astype(np.float32)  # a crescendo of 30 dB
    up, down = tone * ramp, tone * ramp[::-1]
    assert perf.evaluate_dynamics(up, up, SR)["dynamics.pearson"] == pytest.approx(1.0)
    quiet = perf.evaluate_dynamics(up, 0.05 * up, SR)  # level-invariant
    assert quiet["dynamics.pearson"] == pytest.approx(1.0, abs=1e-6)
    assert quiet["dynamics.spearman"] == pytest.approx(1.0, abs=1e-6)
    flipped = perf.evaluate_dynamics(up, down, SR)
    assert flipped["dynamics.pearson"] < -0.9 and flipped["dynamics.spearman"] < -0.9


def test_dynamics_undefined_for_silence_and_flat():
    tone = harmonic_tone(330.0, 3.0)
    assert math.isnan(perf.evaluate_dynamics(tone, np.zeros_like(tone), SR)["dynamics.pearson"])
    steady = np.sin(2 * np.pi * 330 * np.arange(3 * SR) / SR).astype(np.float32)
    assert math.isnan(perf.evaluate_dynamics(steady, steady, SR)["dynamics.pearson"])


# ----------------------------------------------------------------------------------------- instrumentation
PARTS = [np.array([[0.0, 440.0, 1.0], [2.0, 440.0, 1.0]]), np.array([[1.0, 220.0, 2.0]]),
         np.array([[0.5, 330.0, 3.0]])]


def test_instrumentation_copy_dropped_and_extra_part():
    full = perf.evaluate_instrumentation(PARTS, PARTS, [0, 1, 2], 4.0)
    assert full["instrumentation.activity_f1"] == pytest.approx(1.0)
    dropped = perf.evaluate_instrumentation(PARTS, PARTS[:2], [0, 1, None], 4.0)
    assert dropped["instrumentation.activity_recall"] < 0.7 and dropped["instrumentation.activity_precision"] == 1.0
    assert dropped["instrumentation.activity_f1"] < full["instrumentation.activity_f1"]
    extra = perf.evaluate_instrumentation(PARTS[:2], PARTS, [0, 1], 4.0)  # a part the reference does not have
    assert extra["instrumentation.activity_precision"] < 0.7 and extra["instrumentation.activity_recall"] == 1.0
    # the wrong part playing at the wrong times scores lower than the right one
    swapped = perf.evaluate_instrumentation(PARTS, PARTS, [2, 1, 0], 4.0)
    assert swapped["instrumentation.activity_f1"] < 0.8


def test_instrumentation_validates_the_match():
    with pytest.raises(ValueError, match="entries"):
        perf.evaluate_instrumentation(PARTS, PARTS, [0, 1], 4.0)
    with pytest.raises(ValueError, match="at most once"):
        perf.evaluate_instrumentation(PARTS, PARTS, [0, 0, 1], 4.0)


# ------------------------------------------------------------------------------- through vitmusic evaluate
@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    from bench_helpers import one_chorale

    return one_chorale(tmp_path_factory.mktemp("perf"), 6.0)


def _evaluate(root, gen, out):
    from vitmusic import cli

    assert cli.main(["evaluate", "--urmp", str(root), "--gen", str(gen), "--out", str(out), "--quiet",
                     "--metrics", "onsets,tempo_curve,dynamics,instrumentation"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    return summary, list(csv.DictReader(open(out / "per_clip.csv")))[0]


def test_groups_through_evaluate(ensemble, tmp_path):
    from bench_helpers import reference_as_output

    from vitmusic.generators.midi.export import notes_to_midi, write_midi

    gen = tmp_path / "gen"
    piece, stem_notes, codes = reference_as_output(ensemble, gen)  # the reference, with its true parts as MIDI
    write_midi(notes_to_midi(stem_notes, codes), gen / f"{piece.id}.mid")
    summary, row = _evaluate(ensemble, gen, tmp_path / "copy")
    assert summary["metrics"]["onsets.f_measure"]["reference"] == {"annotations": 1}
    assert float(row["onsets.f_measure"]) == pytest.approx(float(row["referee.onsets.f_measure"]))
    assert float(row["onsets.part_f_measure"]) == pytest.approx(1.0)
    assert float(row["instrumentation.activity_f1"]) == pytest.approx(1.0)
    assert float(row["dynamics.pearson"]) == pytest.approx(1.0)
    assert float(row["tempo_curve.accuracy"]) == pytest.approx(1.0)
    for name in ("onsets.f_measure", "tempo_curve.correlation", "dynamics.spearman", "instrumentation.activity_f1"):
        assert summary["definitions"][name]["doc"]
    # a dropped part lowers instrumentation and the per-part onsets; without a MIDI they are undefined
    write_midi(notes_to_midi(stem_notes[1:], codes[1:]), gen / f"{piece.id}.mid")
    _, dropped = _evaluate(ensemble, gen, tmp_path / "dropped")
    if codes[0] not in codes[1:]:
        assert float(dropped["instrumentation.activity_recall"]) < 0.9
        assert float(dropped["onsets.part_f_measure"]) < 0.9
    (gen / f"{piece.id}.mid").unlink()
    summary, row = _evaluate(ensemble, gen, tmp_path / "nomidi")
    assert math.isnan(float(row["instrumentation.activity_f1"])) and math.isnan(float(row["onsets.part_f_measure"]))
    assert "no generated MIDI" in json.dumps(summary["metrics"]["instrumentation.activity_f1"]["undefined_reasons"])
