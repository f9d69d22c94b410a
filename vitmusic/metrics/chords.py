"""Chord and key referees (``--chord-referee``) and the symbolic labelling of reference notes.

A chord sequence is ``(intervals_s [S, 2], labels [S])`` with ``mir_eval.chord`` labels (``"C:maj"``,
``"A:min"``, ``"G:7"``, ``"N"`` = no chord, ``"X"`` = unknown); a key is a ``mir_eval.key`` string
(``"Eb major"``).

**Reference labels from the score** (:func:`label_notes`, :func:`key_from_notes`): the reference notes (the
union of the stems' annotated notes, i.e. the score at its performed times) are cut into segments — at the
annotated beats when there are any (a chorale's harmonic rhythm is the beat), else at every note onset and
offset (music21's ``chordify`` segmentation). Each segment's pitch classes, weighted by how long they sound in
it, are matched to the templates of eight chord qualities (maj, min, 7, min7, maj7, dim, hdim7, aug; 96
chords) by Pardo & Birmingham's rule (2002, "Algorithms for chordal analysis", CMJ 26(2)): score = weight of
the segment's pitch classes in the template - weight outside it - :data:`MISS_PENALTY` per template tone that
does not sound (weights normalised to sum 1 per segment); ties go to the template whose root sounds longest,
then to the simpler quality (the order above). A segment where nothing sounds is ``N``; one with a single
pitch class (a melody note, a unison) or whose best score is not positive is ``X`` (excluded from scoring), so
a single voice has no chords. The key is the Krumhansl-Schmuckler key with the cadence
rule of :func:`vitmusic.metrics.chroma.key_scores`, applied to a 10 ms piano roll of the notes folded to
pitch classes (the same estimator the audio side uses, on the symbolic chroma).

**Audio referees** (:func:`chord_referee`):

- ``template`` (default, MIT; no weights): CQT chroma (:func:`vitmusic.metrics.chroma.chromagram`, 22.05 kHz,
  hop 512), cosine similarity of each frame with 24 binary major/minor triad templates, turned into
  probabilities by a softmax with sharpness :data:`TEMPLATE_BETA`; frames quieter than
  :data:`vitmusic.metrics.chroma.SILENT_FRAME_RATIO` of the loudest are ``N``. A Viterbi pass
  (``librosa.sequence.viterbi_discriminative``) with a self-transition probability for chords lasting
  :data:`EXPECTED_CHORD_S` on average smooths the path. Key: :func:`vitmusic.metrics.chroma.estimate_key`
  with the cadence rule.
- ``madmom`` (models CC BY-NC-SA, non-commercial): the CNN chord features + CRF of Korzeniowski & Widmer
  (2016; 24 major/minor chords + N) and their CNN key classifier (2018), at 44.1 kHz.
"""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np

from vitmusic.metrics import referee_packages as packages
from vitmusic.metrics.audio_checks import is_silent, resample, validate_audio
from vitmusic.metrics.chroma import PITCH_CLASSES

__all__ = ["CHORD_REFEREES", "QUALITIES", "ChordReferee", "chord_referee", "key_from_notes", "label_notes",
           "note_segments", "notes_chroma"]

CHORD_REFEREES: tuple[str, ...] = ("template", "madmom")
#: chord qualities of the symbolic labeller (intervals above the root, semitones), simplest first
QUALITIES: dict[str, tuple[int, ...]] = {"maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10),
                                         "min7": (0, 3, 7, 10), "maj7": (0, 4, 7, 11), "dim": (0, 3, 6),
                                         "hdim7": (0, 3, 6, 10), "aug": (0, 4, 8)}
MISS_PENALTY = 0.25
#: template recogniser: softmax sharpness on cosine similarities, and the mean chord length of its Viterbi prior
TEMPLATE_BETA = 10.0
EXPECTED_CHORD_S = 0.5
ROLL_HOP_S = 0.01


# ------------------------------------------------------------------------------------- symbolic labels
def note_segments(notes: np.ndarray, beats_s: np.ndarray | None = None) -> np.ndarray:
    """Segment boundaries ``[K]`` (s) over the notes' span: the beats inside it when given, else every
    onset and offset; always the span's start and end."""
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    start, end = float(notes[:, 0].min()), float((notes[:, 0] + notes[:, 2]).max())
    if beats_s is not None and len(beats_s):
        inner = np.asarray(beats_s, dtype=np.float64)
    else:
        inner = np.concatenate([notes[:, 0], notes[:, 0] + notes[:, 2]])
    inner = inner[(inner > start + 1e-3) & (inner < end - 1e-3)]
    return np.unique(np.concatenate([[start], np.round(inner, 6), [end]]))


def _pitch_class(f0_hz: np.ndarray) -> np.ndarray:
    return np.mod(np.round(69 + 12 * np.log2(np.asarray(f0_hz, float) / 440.0)), 12).astype(int)


def _best_chord(weights: np.ndarray) -> str:
    """The Pardo & Birmingham label of one segment's pitch-class weights ``[12]`` (see the module docstring)."""
    total = weights.sum()
    if total <= 0:
        return "N"
    if np.count_nonzero(weights) < 2:  # one pitch class (a melody note, a unison) is no chord
        return "X"
    w = weights / total
    best, best_key = "X", (0.0, -1.0, 0)
    for q_rank, (quality, intervals) in enumerate(QUALITIES.items()):
        for root in range(12):
            tones = [(root + i) % 12 for i in intervals]
            inside = w[tones].sum()
            misses = sum(w[t] == 0 for t in tones)
            score = inside - (1.0 - inside) - MISS_PENALTY * misses
            key = (round(score, 9), w[root], -q_rank)
            if score > 0 and key > best_key:
                best, best_key = f"{PITCH_CLASSES[root]}:{quality}", key
    return best


def label_notes(notes: np.ndarray, beats_s: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Chord labels of reference notes ``[N, 3]`` (onset_s, f0_hz, duration_s), see the module docstring.

    Returns:
        ``(intervals_s [S, 2], labels [S])`` with equal neighbours merged; empty for no notes.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    notes = notes[(notes[:, 2] > 0) & (notes[:, 1] > 0)]
    if len(notes) == 0:
        return np.zeros((0, 2)), []
    bounds = note_segments(notes, beats_s)
    pcs = _pitch_class(notes[:, 1])
    on, off = notes[:, 0], notes[:, 0] + notes[:, 2]
    intervals, labels = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        overlap = np.clip(np.minimum(off, b) - np.maximum(on, a), 0.0, None)
        label = _best_chord(np.bincount(pcs, weights=overlap, minlength=12))
        if labels and labels[-1] == label:
            intervals[-1][1] = b
        else:
            intervals.append([a, b])
            labels.append(label)
    return np.asarray(intervals, dtype=np.float64), labels


def notes_chroma(notes: np.ndarray, hop_s: float = ROLL_HOP_S) -> np.ndarray:
    """Piano roll of ``notes`` [N, 3] folded to pitch classes: ``[12, T]`` frames of ``hop_s`` seconds."""
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    end = float((notes[:, 0] + notes[:, 2]).max()) if len(notes) else 0.0
    roll = np.zeros((12, int(np.ceil(end / hop_s)) + 1))
    for pc, on, dur in zip(_pitch_class(notes[:, 1]) if len(notes) else [], notes[:, 0], notes[:, 2]):
        roll[pc, int(round(on / hop_s)): max(int(round((on + dur) / hop_s)), int(round(on / hop_s)) + 1)] += 1.0
    return roll


def key_from_notes(notes: np.ndarray) -> str | None:
    """Krumhansl-Schmuckler key (cadence rule) of reference notes; None without notes."""
    from vitmusic.metrics import chroma

    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    if len(notes) == 0:
        return None
    return chroma.estimate_key(notes_chroma(notes), cadence=True)


# ------------------------------------------------------------------------------------- audio referees
class ChordReferee(Protocol):
    name: str

    def describe(self) -> str:
        ...

    def chords(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, list[str]]:
        """``(intervals_s [S, 2], labels [S])`` of mono ``audio``."""
        ...

    def key(self, audio: np.ndarray, sample_rate: int) -> str | None:
        """The key of ``audio`` (``mir_eval.key`` string), None for silence."""
        ...


def _segments(states: np.ndarray, names: list[str], hop_s: float, end_s: float) -> tuple[np.ndarray, list[str]]:
    """Frame states -> merged ``(intervals_s, labels)`` covering ``[0, end_s]``."""
    if states.size == 0:
        return np.zeros((0, 2)), []
    change = np.flatnonzero(np.diff(states)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [states.size]])
    intervals = np.minimum(np.stack([starts, ends], axis=1) * hop_s, end_s)
    intervals[-1, 1] = end_s
    keep = intervals[:, 1] > intervals[:, 0]
    return intervals[keep], [names[states[s]] for s, k in zip(starts, keep) if k]


class TemplateChords:
    """Triad templates on CQT chroma with Viterbi smoothing (see the module docstring)."""

    name = "template"

    def __init__(self, beta: float = TEMPLATE_BETA, expected_chord_s: float = EXPECTED_CHORD_S) -> None:
        self.beta, self.expected_chord_s = float(beta), float(expected_chord_s)
        templates, names = [], []
        for quality in ("maj", "min"):
            for root in range(12):
                t = np.zeros(12)
                t[[(root + i) % 12 for i in QUALITIES[quality]]] = 1.0
                templates.append(t / np.linalg.norm(t))
                names.append(f"{PITCH_CLASSES[root]}:{quality}")
        self.templates, self.names = np.asarray(templates), names + ["N"]

    def describe(self) -> str:
        return packages.referee_info("template").label(
            None, f"24 triads + N, softmax beta {self.beta:g}, Viterbi {self.expected_chord_s:g} s")

    def posteriors(self, chroma: np.ndarray) -> np.ndarray:
        """State probabilities ``[25, T]`` (24 triads then N) of a chromagram ``[12, T]``."""
        from vitmusic.metrics.chroma import SILENT_FRAME_RATIO

        energy = chroma.sum(axis=0)
        active = energy > SILENT_FRAME_RATIO * energy.max() if energy.size and energy.max() > 0 else \
            np.zeros(energy.shape, bool)
        unit = chroma / np.maximum(np.linalg.norm(chroma, axis=0, keepdims=True), 1e-12)
        logits = self.beta * (self.templates @ unit)
        prob = np.exp(logits - logits.max(axis=0, keepdims=True))
        prob /= prob.sum(axis=0, keepdims=True)
        out = np.zeros((len(self.names), chroma.shape[1]))
        out[:-1] = np.where(active, prob * (1 - 1e-6), 1e-6 / 24)
        out[-1] = np.where(active, 1e-6, 1 - 1e-6)
        return out

    def chords(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, list[str]]:
        from vitmusic.metrics.jit import ensure_jit_cache

        ensure_jit_cache()
        import librosa

        from vitmusic.metrics import chroma as chroma_mod

        y = validate_audio(audio, sample_rate)
        end_s = y.size / sample_rate
        if is_silent(y):
            return np.array([[0.0, end_s]]), ["N"]
        c = chroma_mod.chromagram(y, sample_rate)
        hop_s = chroma_mod.HOP_LENGTH / chroma_mod.ANALYSIS_SR
        p_self = float(np.clip(1.0 - hop_s / self.expected_chord_s, 0.0, 0.999))
        transition = librosa.sequence.transition_loop(len(self.names), p_self)
        states = librosa.sequence.viterbi_discriminative(self.posteriors(c), transition)
        return _segments(np.asarray(states), self.names, hop_s, end_s)

    def key(self, audio: np.ndarray, sample_rate: int) -> str | None:
        from vitmusic.metrics import chroma as chroma_mod

        y = validate_audio(audio, sample_rate)
        return None if is_silent(y) else chroma_mod.estimate_key(chroma_mod.chromagram(y, sample_rate), cadence=True)


class MadmomChords:
    """madmom's CNN + CRF chord recogniser and CNN key classifier (models CC BY-NC-SA)."""

    name = "madmom"
    sample_rate = 44100

    def __init__(self) -> None:
        packages.import_madmom()
        from madmom.features.chords import CNNChordFeatureProcessor, CRFChordRecognitionProcessor
        from madmom.features.key import CNNKeyRecognitionProcessor
        from madmom.processors import SequentialProcessor

        self.chord_proc = SequentialProcessor([CNNChordFeatureProcessor(), CRFChordRecognitionProcessor()])
        self.key_proc = CNNKeyRecognitionProcessor()

    def describe(self) -> str:
        return packages.referee_info("madmom").label(packages.madmom_version(), "CNN+CRF chords, CNN key")

    def _signal(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        y = validate_audio(audio, sample_rate)
        return resample(y, sample_rate, self.sample_rate).astype(np.float32)

    def chords(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, list[str]]:
        y = self._signal(audio, sample_rate)
        end_s = y.size / self.sample_rate
        if is_silent(y):
            return np.array([[0.0, end_s]]), ["N"]
        seg = self.chord_proc(y)
        intervals = np.stack([seg["start"], seg["end"]], axis=1).astype(np.float64)
        return intervals, [str(x) for x in seg["label"]]

    def key(self, audio: np.ndarray, sample_rate: int) -> str | None:
        from madmom.features.key import key_prediction_to_label

        y = self._signal(audio, sample_rate)
        if is_silent(y):
            return None
        label = str(key_prediction_to_label(self.key_proc(y)))
        tonic, mode = label.split()
        return f"{_mir_eval_pitch(tonic)} {mode}"


def _mir_eval_pitch(name: str) -> str:
    """madmom writes sharps (``A#``); the same pitch class in :data:`PITCH_CLASSES` spelling."""
    sharps = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    return PITCH_CLASSES[sharps.index(name)] if name in sharps else name


_REFEREES = {"template": TemplateChords, "madmom": MadmomChords}


@functools.lru_cache(maxsize=len(_REFEREES))
def chord_referee(name: str) -> ChordReferee:
    """The shared chord/key referee called ``name``.

    Raises:
        ValueError: unknown name.
        RefereeUnavailableError: its package is not installed.
    """
    if name not in _REFEREES:
        raise ValueError(f"unknown chord referee {name!r}; choose one of {', '.join(CHORD_REFEREES)}")
    return _REFEREES[name]()
