"""Note metrics that see each voice: the referee's onset selection (held notes are not split), per-voice recall
(a missing voice costs its share of the notes) and the per-voice rows, on synthetic and (when present) real audio."""

import math
import os
import types
from pathlib import Path

import numpy as np
import pytest

from vitmusic.metrics import ensemble, notes, parts, referees

SR = 22050
BACH10 = Path(os.environ.get("VITMUSIC_REAL", "/work/shared/real")) / "bach10-dev"


# ------------------------------------------------------------------------------ onset selection (no model)
def _held(T=60, P=5, pitch=2, start=10):
    frames = np.zeros((T, P))
    frames[start:, pitch] = 0.8
    onsets = np.zeros((T, P))
    onsets[start, pitch] = 0.9
    return frames, onsets


def test_a_weak_peak_on_a_sounding_pitch_starts_no_note():
    frames, onsets = _held()
    onsets[30, 2] = 0.6  # a bow change / vibrato cycle: above the onset threshold, below the re-onset one
    out = referees.select_onsets(onsets, frames, 0.5, 0.3, reonset_threshold=0.7)
    assert np.argwhere(out).tolist() == [[10, 2]]
    # basic-pitch's own rule keeps it; a strong re-articulation is kept by both
    assert np.argwhere(referees.select_onsets(onsets, frames, 0.5, 0.3, reonset_threshold=None)).tolist() == [
        [10, 2], [30, 2]]
    onsets[30, 2] = 0.8
    assert np.argwhere(referees.select_onsets(onsets, frames, 0.5, 0.3)).tolist() == [[10, 2], [30, 2]]


def test_the_same_peak_on_a_silent_pitch_starts_a_note():
    frames, onsets = _held()
    frames[25:, 2] = 0.0  # the note has ended: a new one may start with an ordinary onset
    onsets[30, 2] = 0.6
    assert np.argwhere(referees.select_onsets(onsets, frames, 0.5, 0.3)).tolist() == [[10, 2], [30, 2]]


def test_close_peaks_of_one_pitch_keep_the_strongest_only():
    frames = np.zeros((60, 5))
    onsets = np.zeros((60, 5))
    onsets[[10, 14, 30], 1] = [0.6, 0.9, 0.7]
    onsets[12, 3] = 0.8  # another pitch is untouched
    out = referees.select_onsets(onsets, frames, 0.5, 0.3, nms_frames=7)
    assert np.argwhere(out).tolist() == [[12, 3], [14, 1], [30, 1]]
    assert out[14, 1] == 0.9


# ------------------------------------------------------------------------------ per-voice recall (no model)
def _voices():
    rng = np.random.default_rng(0)
    return [np.column_stack([np.sort(rng.uniform(0, 20, n)), np.full(n, 220.0 * 2 ** (k / 2)), np.full(n, 0.3)])
            for k, n in enumerate((30, 10, 20))]


def test_voice_recall_loses_the_removed_voices_share():
    voices = _voices()
    heard = [v[: int(0.8 * len(v))] for v in voices]  # the referee hears 80 % of each voice in the reference
    ref_est = np.concatenate(heard)
    full = ensemble.voice_recall(ensemble.voice_recalls(voices, ref_est, ref_est))
    assert full == pytest.approx(1.0)
    for k, v in enumerate(voices):
        gen = np.concatenate([h for j, h in enumerate(heard) if j != k])
        per_voice = ensemble.voice_recalls(voices, ref_est, gen)
        share = len(v) / sum(len(x) for x in voices)
        assert ensemble.voice_recall(per_voice) == pytest.approx(1 - share)
        assert per_voice[k]["voice_recall"] == 0.0 and per_voice[k]["recall_ref"] == pytest.approx(0.8, abs=0.04)


def test_notes_doubled_in_unison_count_for_no_voice():
    """Two voices on one pitch at one onset: the audio still has it when either voice is gone, so the note is
    left out of voice_recall; removing a voice then costs exactly the share of the notes it plays alone."""
    voices = _voices()
    voices[1] = np.vstack([voices[1], voices[0][:5]])  # voice 1 doubles voice 0's first 5 notes
    voices[1] = voices[1][np.argsort(voices[1][:, 0])]
    doubled = ensemble.unison_doubled(voices)
    assert [int(d.sum()) for d in doubled] == [5, 5, 0]
    ref_est = np.concatenate(voices)
    per_voice = ensemble.voice_recalls(voices, ref_est, ref_est)
    assert [v["n_doubled"] for v in per_voice] == [5, 5, 0] and ensemble.voice_recall(per_voice) == 1.0
    alone = [len(v) - int(d.sum()) for v, d in zip(voices, doubled)]
    for k in range(3):
        gen = np.concatenate([v for j, v in enumerate(voices) if j != k])
        per_voice = ensemble.voice_recalls(voices, ref_est, gen)
        assert 1.0 - ensemble.voice_recall(per_voice) == pytest.approx(alone[k] / sum(alone))
        # the removed voice's doubled notes still sound: counted, they would have hidden part of the loss
        assert per_voice[k]["recall_gen"] == pytest.approx(int(doubled[k].sum()) / len(voices[k]))
        assert per_voice[k]["voice_recall"] == 0.0


def test_voice_recall_without_heard_notes_is_undefined():
    voices = _voices()
    per_voice = ensemble.voice_recalls(voices, np.zeros((0, 3)), voices[0])
    assert all(v["n_heard"] == 0 and math.isnan(v["voice_recall"]) for v in per_voice)
    assert math.isnan(ensemble.voice_recall(per_voice))


def test_matched_reference_agrees_with_mir_eval_recall():
    voices = _voices()
    ref = np.concatenate(voices)
    est = ref[::3] * np.array([1.0, 1.0, 2.0])
    for ratio in (None, 0.2):
        recall = notes.precision_recall_f1(ref, est, offset_ratio=ratio)[1]
        assert notes.matched_reference(ref, est, offset_ratio=ratio).mean() == pytest.approx(recall)


def test_voice_rows_carry_the_ceiling_and_the_reason_when_a_stem_is_unusable():
    voices = _voices()[:2]
    per_voice = ensemble.voice_recalls(voices, voices[0], voices[0])
    rows = parts.voice_rows("c", ["vn", "bn"], [40, 70], voices, [None, None], per_voice,
                            [voices[0], ValueError("audio too short")])
    kinds = [(r["part"], r["stem"]) for r in rows]
    assert kinds == [("audio", 1), ("referee-mix", 1), ("audio", 2), ("referee-mix", 2), ("referee", 1),
                     ("referee", 2)]
    assert rows[4]["notes.f1_no_offset"] == pytest.approx(1.0) and rows[4]["instrument"] == "vn"
    assert math.isnan(rows[5]["notes.f1"]) and "too short" in rows[5]["reason"]
    assert math.isnan(rows[2]["notes.voice_recall"])  # the bassoon is not heard in this reference


# ------------------------------------------------------------------------------ with the referee
def _vibrato(midi, onset_s, dur_s, total_s=3.0, depth_cents=30.0, rate_hz=6.0, tremolo=0.3):
    t = np.arange(int(total_s * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12) * 2 ** (depth_cents / 1200 * np.sin(2 * np.pi * rate_hz * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    env = ((t >= onset_s) & (t < onset_s + dur_s)) * (1 - tremolo * (0.5 + 0.5 * np.sin(2 * np.pi * rate_hz * t)))
    y = env * sum(np.sin(k * phase) / k for k in range(1, 8))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def test_a_held_vibrato_note_is_one_note_not_one_per_cycle():
    bp = referees.basic_pitch()
    post = bp.posteriors(_vibrato(67, 0.3, 2.2), SR)

    def g4(est):
        return est[np.round(69 + 12 * np.log2(est[:, 1] / 440)) == 67]

    new = g4(bp.notes_from(post))
    old = g4(referees.BasicPitch(reonset_threshold=None, onset_nms_ms=0).notes_from(post))
    assert len(old) >= 5  # basic-pitch's own note creation: a note per vibrato cycle
    assert len(new) == 1 and abs(new[0, 0] - 0.3) < 0.05 and new[0, 2] > 2.0


@pytest.mark.slow
@pytest.mark.skipif(not BACH10.is_dir(), reason="real Bach10 pieces absent")
def test_removing_the_real_violin_costs_its_share_of_voice_recall():
    from vitmusic.data.layouts import discover_pieces
    from vitmusic.evaluation.inputs import load_mono

    piece = discover_pieces(BACH10)[0]
    stems = [load_mono(s.audio, SR) for s in piece.stems]
    n = min(map(len, stems))
    stems = [s[:n] for s in stems]
    voices = [s.load_notes() for s in piece.stems]
    violin = [s.instrument for s in piece.stems].index("vn")
    mix = np.sum(stems, axis=0)
    gen = np.sum([s for k, s in enumerate(stems) if k != violin], axis=0)

    def clip(g):
        return types.SimpleNamespace(ref_audio=mix, gen_audio=g, sample_rate=SR, duration_s=n / SR, cache={},
                                     n_voices=4, stem_notes=voices, stem_f0s=None, stem_problems=[], ref_notes=None,
                                     reference_used={})

    full, minus = (ensemble.score_notes(clip(g), {}, None, mono=None) for g in (mix, gen))
    share = len(voices[violin]) / sum(map(len, voices))
    assert full["notes.voice_recall"] == pytest.approx(1.0)
    assert full["notes.voice_recall"] - minus["notes.voice_recall"] >= 0.9 * share
    assert minus["notes.f1_no_offset"] < full["notes.f1_no_offset"] - 0.03
    assert minus["notes.f1"] <= full["notes.f1"]  # offset-aware F1 no longer rises without the melody
