"""Chord labels from notes, the chord/key referees (vitmusic.metrics.chords) and the harmony metrics."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from metrics_signals import A_MINOR_CHORDS, C_MAJOR_CHORDS, SR, chord_progression, midi_hz

from vitmusic.metrics import chords, harmony, referee_packages
from vitmusic.metrics.referees import RefereeUnavailableError


def _notes(progression, chord_s=1.0, transpose=0):
    """The [N, 3] notes of ``metrics_signals.chord_progression``."""
    return np.array([(i * chord_s, midi_hz(m + transpose), chord_s) for i, c in enumerate(progression) for m in c])


def _madmom() -> bool:
    try:
        referee_packages.import_madmom()
    except RefereeUnavailableError:
        return False
    return True


# ------------------------------------------------------------------------------------------ symbolic labels
@pytest.mark.parametrize("midis, label", [
    ([60, 64, 67, 72], "C:maj"), ([57, 60, 64], "A:min"), ([55, 59, 62, 65], "G:7"), ([62, 65, 69, 72], "D:min7"),
    ([59, 62, 65], "B:dim"), ([60, 64], "C:maj"),  # a dyad: the triad whose root sounds
    ([61, 65, 68], "C#:maj"), ([63, 66, 70], "Eb:min"),
])
def test_pardo_birmingham_labels(midis, label):
    iv, labels = chords.label_notes(np.array([(0.0, midi_hz(m), 1.0) for m in midis]))
    assert labels == [label] and iv.tolist() == [[0.0, 1.0]]


def test_single_voice_and_silence():
    _, labels = chords.label_notes(np.array([(0.0, midi_hz(60), 1.0), (1.0, midi_hz(72), 1.0)]))
    assert labels == ["X"]  # one pitch class at a time: no chord
    iv, labels = chords.label_notes(np.array([(0.0, midi_hz(m), 1.0) for m in (60, 64, 67)] +
                                             [(2.0, midi_hz(m), 1.0) for m in (57, 60, 64)]))
    assert labels == ["C:maj", "N", "A:min"] and iv.tolist() == [[0, 1], [1, 2], [2, 3]]
    assert chords.label_notes(np.zeros((0, 3))) == (pytest.approx(np.zeros((0, 2))), [])


def test_beat_segments_absorb_a_passing_tone():
    notes = np.array([(0.0, midi_hz(48), 1.0), (0.0, midi_hz(64), 1.0), (0.0, midi_hz(67), 0.75),
                      (0.75, midi_hz(65), 0.25)])  # C major, the G passing down to F for the last eighth
    assert chords.label_notes(notes)[1] == ["C:maj", "F:maj7"]  # onset segments: C E F alone reads as F A C E
    assert chords.label_notes(notes, beats_s=np.array([0.0, 1.0]))[1] == ["C:maj"]


def test_key_from_notes():
    assert chords.key_from_notes(_notes(C_MAJOR_CHORDS)) == "C major"
    assert chords.key_from_notes(_notes(A_MINOR_CHORDS)) == "A minor"
    assert chords.key_from_notes(_notes(C_MAJOR_CHORDS, transpose=2)) == "D major"
    assert chords.key_from_notes(np.zeros((0, 3))) is None


# ------------------------------------------------------------------------------------------ metrics
def test_harmony_metrics():
    iv, labels = chords.label_notes(_notes(C_MAJOR_CHORDS))
    same = harmony.evaluate(iv, labels, iv, labels, "C major", "C major")
    assert list(same) == list(harmony.METRIC_NAMES) and all(v == 1.0 for v in same.values())
    none = harmony.evaluate(iv, labels, np.zeros((0, 2)), [], "C major", None)  # the estimate found nothing
    assert none["harmony.chord_majmin"] == 0.0 and none["harmony.key_weighted"] == 0.0
    relative = harmony.evaluate(iv, labels, iv, ["A:min"] * len(labels), "C major", "A minor")
    assert relative["harmony.key_weighted"] == pytest.approx(0.3)
    assert relative["harmony.chord_root"] < 1.0
    undefined = harmony.evaluate(np.array([[0.0, 2.0]]), ["X"], iv, labels, None, "C major")
    assert all(math.isnan(v) for v in undefined.values())


def test_majmin_ignores_diminished_reference_chords_and_reduces_sevenths():
    ref_iv, est_iv = np.array([[0, 1], [1, 2], [2, 3]], float), np.array([[0, 3]], float)
    s = harmony.evaluate(ref_iv, ["G:7", "B:dim", "G:maj"], est_iv, ["G:maj"])
    assert s["harmony.chord_majmin"] == 1.0  # G:7 reads as G:maj; B:dim is out of the majmin vocabulary
    assert s["harmony.chord_root"] == pytest.approx(2 / 3)


def test_validate():
    with pytest.raises(ValueError, match="estimated chords"):
        harmony.evaluate(np.array([[0.0, 1.0]]), ["C:maj"], np.array([[0.0, 1.0]]), ["C:nonsense"])
    with pytest.raises(ValueError, match="one label each"):
        harmony.evaluate(np.array([[0.0, 1.0]]), ["C:maj", "D:min"], np.array([[0.0, 1.0]]), ["C:maj"])


# ------------------------------------------------------------------------------------------ audio referees
def _score(referee, audio, notes):
    iv, labels = chords.label_notes(notes)
    est_iv, est_labels = referee.chords(audio, SR)
    return harmony.evaluate(iv, labels, est_iv, est_labels, chords.key_from_notes(notes), referee.key(audio, SR))


def test_template_referee_reads_a_progression_and_follows_a_transposition():
    ref = chords.chord_referee("template")
    y = np.tile(chord_progression(C_MAJOR_CHORDS), 2)
    notes = _notes(C_MAJOR_CHORDS * 2)
    s = _score(ref, y, notes)
    assert s["harmony.chord_majmin"] >= 0.9 and s["harmony.key_weighted"] == 1.0
    up = np.tile(chord_progression([[m + 2 for m in c] for c in C_MAJOR_CHORDS]), 2)
    moved = _score(ref, up, notes)  # D major audio against the C major score
    assert moved["harmony.chord_majmin"] <= 0.1 and moved["harmony.key_weighted"] <= 0.5
    assert _score(ref, up, _notes(C_MAJOR_CHORDS * 2, transpose=2))["harmony.chord_majmin"] >= 0.9
    minor = _score(ref, np.tile(chord_progression(A_MINOR_CHORDS), 2), _notes(A_MINOR_CHORDS * 2))
    assert minor["harmony.chord_majmin"] >= 0.9 and minor["harmony.key_weighted"] == 1.0
    iv, labels = ref.chords(np.zeros(2 * SR, np.float32), SR)
    assert labels == ["N"] and ref.key(np.zeros(2 * SR, np.float32), SR) is None
    assert "MIT" in ref.describe()


def test_unknown_chord_referee_and_missing_madmom(monkeypatch):
    with pytest.raises(ValueError, match="unknown chord referee"):
        chords.chord_referee("nope")
    referee_packages.import_madmom.cache_clear()
    chords.chord_referee.cache_clear()
    monkeypatch.setitem(sys.modules, "madmom", None)
    try:
        with pytest.raises(RefereeUnavailableError, match="REFEREES=nc"):
            chords.chord_referee("madmom")
    finally:
        referee_packages.import_madmom.cache_clear()
        chords.chord_referee.cache_clear()


@pytest.mark.referees
@pytest.mark.skipif(not _madmom(), reason="optional referee madmom not installed")
def test_madmom_chords_and_key():
    ref = chords.chord_referee("madmom")
    s = _score(ref, np.tile(chord_progression(C_MAJOR_CHORDS), 2), _notes(C_MAJOR_CHORDS * 2))
    assert s["harmony.chord_majmin"] >= 0.7 and s["harmony.key_weighted"] >= 0.5
    assert "CC BY-NC-SA" in ref.describe()
