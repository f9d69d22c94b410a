"""Scores for the synthetic benchmark: Bach chorales from music21's offline corpus, or generated melodies.

A :class:`Score` is written in *beats* (quarter notes); :func:`perform` turns it into timed notes for a
given set of URMP instruments, with a seeded tempo, tempo drift, fermata ritardandi and phrase dynamics.
A performance keeps the score's notes at the fixed tempo too (:attr:`PerformedPart.score_notes`, written as
``Sco_*.mid``), so a score-informed model gets the notes as written while the annotation holds them as played.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from vitmusic.data.urmp import INSTRUMENTS
from vitmusic.errors import DataError

# Ensembles (ordered high -> low voice) in the spirit of URMP's line-ups.
ENSEMBLES: dict[str, list[list[str]]] = {
    "strings": [["vn", "vn", "va", "vc"], ["vn", "va", "vc", "db"], ["vn", "vn", "vc", "db"]],
    "brass": [["tpt", "tpt", "hn", "tbn"], ["tpt", "hn", "tbn", "tba"], ["tpt", "tpt", "tbn", "tba"]],
    "woodwinds": [["fl", "ob", "cl", "bn"], ["fl", "cl", "sax", "bn"], ["ob", "cl", "cl", "bn"]],
    "mixed": [["fl", "vn", "va", "vc"], ["vn", "cl", "hn", "bn"], ["tpt", "sax", "tbn", "tba"],
              ["ob", "vn", "va", "bn"], ["fl", "cl", "tbn", "vc"]],
}
SOURCES = ("chorales", "melodies", "mixed")
# sounding fraction of a note's written length: bows connect notes, winds and brass tongue them apart
LEGATO = {"strings": 0.95, "woodwinds": 0.9, "brass": 0.86}


@dataclass
class ScorePart:
    """One monophonic voice.

    Attributes:
        name: voice name from the score (e.g. "Soprano").
        notes: [N, 3] float (onset_beats, midi_pitch, duration_beats), sorted by onset.
        fermatas: [N] bool, the note carries a fermata (phrase end).
    """

    name: str
    notes: np.ndarray
    fermatas: np.ndarray


@dataclass
class Score:
    """A multi-part score in beats (quarter notes).

    ``bar_offset_beats`` is the position of beat 0 within its bar (a one-beat pickup in 4/4: 3.0), so that
    beat ``b`` is a downbeat when ``(b + bar_offset_beats) % beats_per_bar == 0``.
    """

    title: str
    source: str
    parts: list[ScorePart]
    length_beats: float
    beats_per_bar: float = 4.0
    bar_offset_beats: float = 0.0

    def bar_position(self, beats: np.ndarray) -> np.ndarray:
        """Position of score beats ``[K]`` within their bar, in beats from the bar line (0 = downbeat)."""
        return np.mod(np.asarray(beats, dtype=np.float64) + self.bar_offset_beats, self.beats_per_bar)


@dataclass
class PerformedPart:
    """A voice as played by one instrument.

    Attributes:
        instrument: URMP instrument code.
        midi: [N] int MIDI pitch.
        notes: [N, 3] float (onset_s, f0_hz, duration_s), URMP Notes convention.
        velocities: [N] float in (0, 1], loudness of each note.
        score_notes: [N, 3] float (onset_s, f0_hz, duration_s): the same notes as written in the score, at the
            piece's fixed tempo ``tempo_bpm`` (written lengths, no drift, no ritardando): what ``Sco_*.mid``
            holds, while ``notes`` is the performance.
    """

    instrument: str
    midi: np.ndarray
    notes: np.ndarray
    velocities: np.ndarray
    score_notes: np.ndarray | None = None


@dataclass
class Performance:
    """The timed performance of a score (what gets rendered and annotated).

    ``beats`` [B, 2] holds the performed time of every score beat (quarter note) and its 1-based position in
    the bar (1 = downbeat): the beat annotation of the benchmark (``Beats_<piece>.txt``).
    """

    score: Score
    instruments: list[str]
    parts: list[PerformedPart]
    tempo_bpm: float
    duration_s: float
    info: dict = field(default_factory=dict)
    beats: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


# --------------------------------------------------------------------------------------------- chorales
@functools.lru_cache(maxsize=1)
def chorale_paths() -> tuple[str, ...]:
    """Paths of the Bach chorales (MusicXML) shipped in music21's corpus, sorted."""
    from music21 import corpus

    paths = sorted(str(p) for p in corpus.getComposer("bach") if p.suffix in (".mxl", ".xml"))
    if not paths:
        raise DataError("music21's corpus has no Bach chorales (is music21 installed with its corpus?)")
    return tuple(paths)


# Parsing a chorale costs ~0.2 s; an explicit module-level LRU keeps repeated pieces (and tests) cheap.
@functools.lru_cache(maxsize=512)  # the whole corpus (371 chorales): nth_chorale walks a seeded order
def load_chorale(path: str) -> Score | None:
    """Parse a chorale into a :class:`Score`; ``None`` if it is not a plain 4-voice chorale."""
    from music21 import converter, expressions

    try:
        s = converter.parse(path)
    except Exception as e:  # music21 raises many types for a broken file
        raise DataError(f"{path}: cannot parse score ({e})") from e
    parts = []
    for p in s.parts:
        flat = p.stripTies().flatten()
        rows, ferm = [], []
        for n in flat.notes:
            pitch = max(n.pitches, key=lambda q: q.midi) if n.isChord else n.pitch
            ql = float(n.quarterLength)
            if ql <= 0:  # grace notes
                continue
            rows.append((float(n.offset), float(pitch.midi), ql))
            ferm.append(any(isinstance(e, expressions.Fermata) for e in n.expressions))
        if rows:
            arr = np.array(rows, dtype=np.float64)
            order = np.argsort(arr[:, 0], kind="stable")
            parts.append(ScorePart(p.partName or f"Part{len(parts) + 1}", arr[order], np.array(ferm)[order]))
    if len(parts) != 4 or min(len(p.notes) for p in parts) < 8:
        return None
    length = max(float(p.notes[-1, 0] + p.notes[-1, 2]) for p in parts)
    beats_per_bar = 4.0
    ts = s.parts[0].flatten().getElementsByClass("TimeSignature")
    if len(ts):
        beats_per_bar = float(ts[0].barDuration.quarterLength)
    # a pickup bar is padded on the left: offset 0 of the flattened part lies that far into its bar
    measures = s.parts[0].getElementsByClass("Measure")
    bar_offset = float(measures[0].paddingLeft) % beats_per_bar if len(measures) else 0.0
    name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return Score(title=name, source="chorale", parts=parts, length_beats=length, beats_per_bar=beats_per_bar,
                 bar_offset_beats=bar_offset)


def random_chorale(rng: np.random.Generator, max_tries: int = 20) -> Score:
    """Pick and parse a random 4-voice chorale (seeded; independent draws, so repeats are possible)."""
    paths = chorale_paths()
    for _ in range(max_tries):
        score = load_chorale(paths[int(rng.integers(len(paths)))])
        if score is not None:
            return score
    raise DataError("could not find a 4-voice chorale in music21's corpus")


def nth_chorale(seed: int, index: int) -> Score:
    """The ``index``-th 4-voice chorale of a seeded order of the corpus: draws without replacement of tunes.

    Pieces ``0, 1, ...`` of a benchmark get chorales of distinct *tunes* (a chorale sharing a melodic signature,
    :mod:`vitmusic.data.tunes`, with an earlier draw is passed over: the corpus holds one tune under several
    titles) until the corpus is used up (then the order starts again), and piece ``k``'s chorale depends only
    on ``(seed, k)``, not on how many pieces are drawn.
    """
    from vitmusic.data.tunes import voice_keys

    paths = chorale_paths()
    order = np.random.default_rng([int(seed), 0xC40]).permutation(len(paths))
    found: list[Score] = []
    drawn_keys: set = set()
    for i in order:
        score = load_chorale(paths[int(i)])
        if score is None:
            continue
        keys = voice_keys([(p.notes[:, 0], p.notes[:, 1]) for p in score.parts])
        if keys & drawn_keys:  # another harmonisation of a tune already drawn
            continue
        if len(found) == index:
            return score
        found.append(score)
        drawn_keys |= keys
    if not found:
        raise DataError("could not find a 4-voice chorale in music21's corpus")
    return found[index % len(found)]


# --------------------------------------------------------------------------------------------- melodies
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


def generate_melodies(rng: np.random.Generator, centres_midi: list[float], num_bars: int = 8,
                      beats_per_bar: float = 4.0) -> Score:
    """Generate simple diatonic voices (one per entry of ``centres_midi``) in a shared key.

    Each voice is a seeded random walk over the scale near its centre pitch, with bar-aligned rhythms and
    a long note with a fermata at the end of every 4-bar phrase.
    """
    scale = _MAJOR if rng.random() < 0.6 else _MINOR
    tonic = int(rng.integers(0, 12))
    parts = []
    rhythms = [[1, 1, 1, 1], [2, 1, 1], [1, 1, 2], [0.5, 0.5, 1, 2], [1.5, 0.5, 1, 1], [2, 2], [0.5, 0.5, 0.5, 0.5, 2]]
    for v, centre in enumerate(centres_midi):
        pitches = np.array([o * 12 + tonic + d for o in range(0, 10) for d in scale], dtype=np.float64)
        pitches = pitches[np.abs(pitches - centre) <= 9]
        idx = int(np.argmin(np.abs(pitches - centre)))
        rows, ferm, t = [], [], 0.0
        # slower voices in the bass, as in most part writing
        slow = v == len(centres_midi) - 1 and len(centres_midi) > 1
        for bar in range(num_bars):
            if bar % 4 == 3:
                rhythm = [2.0, 2.0] if not slow else [4.0]
            else:
                rhythm = [4.0] if slow and rng.random() < 0.3 else rhythms[int(rng.integers(len(rhythms)))]
            scale_ = beats_per_bar / sum(rhythm)
            for k, d in enumerate(rhythm):
                step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
                idx = int(np.clip(idx + step, 0, len(pitches) - 1))
                rows.append((t, pitches[idx], d * scale_))
                ferm.append(bar % 4 == 3 and k == len(rhythm) - 1)
                t += d * scale_
        parts.append(ScorePart(f"Voice{v + 1}", np.array(rows), np.array(ferm)))
    return Score(title="melody", source="melody", parts=parts, length_beats=num_bars * beats_per_bar,
                 beats_per_bar=beats_per_bar)


# --------------------------------------------------------------------------------------- instruments
def _fit_octave(midi: np.ndarray, low: int, high: int) -> int:
    """Octave transposition (semitones) that puts most of ``midi`` inside [low, high], preferring 0."""
    best, best_out = 0, None
    for shift in (0, 12, -12, 24, -24):
        out = int(np.sum((midi + shift < low) | (midi + shift > high)))
        if best_out is None or out < best_out:
            best, best_out = shift, out
    return best


def fit_to_range(midi: np.ndarray, code: str) -> np.ndarray:
    """Transpose a voice by octaves into an instrument's range; fold any stray note by octaves too."""
    info = INSTRUMENTS[code]
    lo, hi = int(info.low_midi), int(info.high_midi)
    out = midi + _fit_octave(midi, lo, hi)
    while np.any(out < lo):
        out = np.where(out < lo, out + 12, out)
    while np.any(out > hi):
        out = np.where(out > hi, out - 12, out)
    return out


def range_cost(midi: np.ndarray, code: str) -> float:
    """How badly a voice fits an instrument: octaves transposed + fraction of notes folded back into range."""
    info = INSTRUMENTS[code]
    shift = _fit_octave(midi, int(info.low_midi), int(info.high_midi))
    moved = midi + shift
    folded = float(np.mean((moved < info.low_midi) | (moved > info.high_midi))) if len(midi) else 0.0
    return abs(shift) / 12.0 + 4.0 * folded


def choose_ensemble(rng: np.random.Generator, num_parts: int, family: str | None = None,
                    voices: list[np.ndarray] | None = None) -> list[str]:
    """Seeded choice of an ensemble (codes ordered high -> low) with ``num_parts`` players (2-4).

    The family (strings / brass / woodwinds / mixed) is drawn at random; with ``voices`` (MIDI pitches of
    each part, high -> low) the line-up is drawn among the family's ensembles whose instrument ranges fit
    the voices best (fewest octave transpositions and out-of-range notes).
    """
    fam = family or str(rng.choice(list(ENSEMBLES)))
    if fam not in ENSEMBLES:
        raise DataError(f"unknown ensemble family {fam!r}; choose from {sorted(ENSEMBLES)}")
    keep = {4: [0, 1, 2, 3], 3: [0, 2, 3], 2: [0, 3]}[num_parts]
    options = [[full[i] for i in keep] for full in ENSEMBLES[fam]]
    if voices is not None:
        costs = np.array([sum(range_cost(v, c) for v, c in zip(voices, opt)) for opt in options])
        options = [o for o, c in zip(options, costs) if c <= costs.min() + 0.5]
    return options[int(rng.integers(len(options)))]


# ---------------------------------------------------------------------------------------- performance
def tempo_map(length_beats: float, tempo_bpm: float, rng: np.random.Generator, fermata_beats: np.ndarray,
              drift: float = 0.04, fermata_slowdown: float = 0.5, resolution: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Beat -> seconds map with slow sinusoidal tempo drift and a ritardando on every fermata.

    Returns:
        (beats [M], seconds [M]) on a grid of ``1/resolution`` beat; interpolate to place any beat.
    """
    beats = np.arange(0.0, length_beats + 8.0, 1.0 / resolution)
    period = rng.uniform(12.0, 24.0)
    phase = rng.uniform(0, 2 * np.pi)
    bpm = tempo_bpm * (1.0 + drift * np.sin(2 * np.pi * beats / period + phase))
    for fb in fermata_beats:
        # the fermata note and the beat leading into it slow down smoothly
        w = np.clip(1.0 - np.abs(beats - (fb + 0.5)) / 1.5, 0.0, 1.0)
        bpm *= 1.0 - (1.0 - fermata_slowdown) * w
    sec = np.concatenate([[0.0], np.cumsum(60.0 / bpm[:-1] / resolution)])
    return beats, sec


def perform(score: Score, instruments: list[str], rng: np.random.Generator, duration_s: float,
            tempo_bpm: float, *, drift: float = 0.04, legato: float | None = None) -> Performance:
    """Time a score for ``instruments`` (one per part): tempo map, looping/truncation, dynamics.

    Notes cut by ``duration_s`` are shortened; those starting in the last 0.1 s are dropped. Every
    note keeps at least a 30 ms gap before the next one so repeated pitches have audible onsets.
    ``legato`` (sounding fraction of the written length) defaults per family, see ``LEGATO``.
    """
    if len(instruments) != len(score.parts):
        raise ValueError(f"{len(instruments)} instruments for {len(score.parts)} parts")
    # enough repeats of the score to fill duration_s even at the slowest tempo
    beats_needed = duration_s * tempo_bpm * 1.5 / 60.0 + 8
    reps = max(1, int(np.ceil(beats_needed / score.length_beats)))
    looped = []
    for part in score.parts:
        notes = np.concatenate([part.notes + [r * score.length_beats, 0, 0] for r in range(reps)])
        ferm = np.tile(part.fermatas, reps)
        looped.append((notes, ferm))
    total_beats = reps * score.length_beats
    fermata_beats = np.unique(np.concatenate([n[f, 0] for n, f in looped]))
    beats, secs = tempo_map(total_beats, tempo_bpm, rng, fermata_beats, drift=drift)

    # dynamics shared by all players: a piece level and a crescendo/diminuendo arc per phrase
    level = rng.uniform(0.55, 0.8)
    phrase_ends = np.concatenate([[0.0], fermata_beats + 1.0, [total_beats]]) if len(fermata_beats) else \
        np.arange(0.0, total_beats + 16.0, 16.0)
    phrase_ends = np.unique(phrase_ends)

    def arc(b: np.ndarray) -> np.ndarray:
        k = np.clip(np.searchsorted(phrase_ends, b, side="right") - 1, 0, len(phrase_ends) - 2)
        start, end = phrase_ends[k], phrase_ends[k + 1]
        x = np.clip((b - start) / np.maximum(end - start, 1e-6), 0.0, 1.0)
        peak = 0.6 + 0.1 * np.sin(k * 1.7)  # crescendo up to ~60% of the phrase, then diminuendo
        return np.where(x < peak, x / peak, (1.0 - x) / (1.0 - peak))

    parts = []
    for (notes, _), code in zip(looped, instruments):
        midi = fit_to_range(notes[:, 1], code)
        on = np.interp(notes[:, 0], beats, secs)
        end_beat = notes[:, 0] + notes[:, 2]
        nominal_end = np.interp(end_beat, beats, secs)
        dur = (nominal_end - on) * (legato if legato is not None else LEGATO[INSTRUMENTS[code].family])
        nxt = np.append(on[1:], np.inf)
        dur = np.minimum(dur, nxt - on - 0.03)
        vel = level * (0.75 + 0.25 * arc(notes[:, 0]))
        vel += 0.08 * (score.bar_position(np.mod(notes[:, 0], score.length_beats)) < 1e-6)  # downbeat accent
        vel *= rng.uniform(0.92, 1.08, size=len(vel))
        written = notes[:, [0, 2]] * (60.0 / tempo_bpm)  # the score at its fixed tempo: onset_s, duration_s
        keep = (on < duration_s - 0.1) & (dur > 0.03)
        on, dur, vel, midi, written = on[keep], dur[keep], vel[keep], midi[keep], written[keep]
        dur = np.minimum(dur, duration_s - 0.05 - on)
        ok = dur > 0.03
        on, dur, vel, midi = on[ok], dur[ok], np.clip(vel[ok], 0.1, 1.0), midi[ok].astype(np.int64)
        written = written[ok]
        arr = np.stack([on, midi_to_hz(midi), dur], axis=1) if len(on) else np.zeros((0, 3))
        sco = np.stack([written[:, 0], midi_to_hz(midi), written[:, 1]], axis=1) if len(on) else np.zeros((0, 3))
        parts.append(PerformedPart(code, midi, arr, vel, sco))
    # the beat annotation: every score beat (quarter note) that starts before the last 0.1 s, as the notes
    beat_idx = np.arange(0.0, np.floor(total_beats))
    beat_s = np.interp(beat_idx, beats, secs)
    keep = beat_s < duration_s - 0.1
    position = np.floor(score.bar_position(np.mod(beat_idx[keep], score.length_beats)) + 1e-6) + 1
    return Performance(score=score, instruments=list(instruments), parts=parts, tempo_bpm=float(tempo_bpm),
                       duration_s=float(duration_s), beats=np.stack([beat_s[keep], position], axis=1))


def make_performance(rng: np.random.Generator, source: str, duration_s: float,
                     tempo_range_bpm: tuple[float, float] = (66.0, 112.0), drift: float = 0.04,
                     chorale: tuple[int, int] | None = None) -> Performance:
    """Draw a score (chorale or melodies), an ensemble and a tempo, and perform it (all seeded).

    ``chorale=(seed, k)`` takes the chorale from :func:`nth_chorale` (a benchmark's pieces without
    replacement); without it the chorale is an independent draw from ``rng``.
    """
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    kind = source if source != "mixed" else ("chorales" if rng.random() < 0.5 else "melodies")
    num_parts = int(rng.choice([2, 3, 4], p=[0.25, 0.3, 0.45]))
    keep = {4: [0, 1, 2, 3], 3: [0, 2, 3], 2: [0, 3]}[num_parts]  # outer voices always stay
    if kind == "chorales":
        score = random_chorale(rng) if chorale is None else nth_chorale(*chorale)
        score = Score(score.title, score.source, [score.parts[i] for i in keep], score.length_beats,
                      score.beats_per_bar, score.bar_offset_beats)
        instruments = choose_ensemble(rng, num_parts, voices=[p.notes[:, 1] for p in score.parts])
    else:
        instruments = choose_ensemble(rng, num_parts)
        centres = []
        for code in instruments:
            info = INSTRUMENTS[code]
            centres.append(info.low_midi + 0.45 * (info.high_midi - info.low_midi))
        score = generate_melodies(rng, centres, num_bars=int(rng.choice([8, 12, 16])))
    tempo = float(rng.uniform(*tempo_range_bpm))
    perf = perform(score, instruments, rng, duration_s, tempo, drift=drift)
    perf.info = {"source": score.source, "title": score.title, "tempo_bpm": round(tempo, 3),
                 "instruments": instruments}
    return perf
