"""One instrument vocabulary: URMP's 13 codes, the 128 General MIDI programs and a drum kit, with aliases.

Every instrument has one *canonical code*: the URMP code where URMP has the instrument (``vn``, ``cl``,
``sax`` ...), else the General MIDI program name in lower case with hyphens (``orchestral-harp``,
``acoustic-grand-piano``, ``acoustic-guitar-nylon``), and ``drum-kit`` for the GM percussion channel. Codes
contain no ``_`` (URMP folder names split on it), so any of them can name a stem in a URMP-style folder
(``05_Prelude_orchestral-harp``) or a part on the command line (``--instruments piano,vc``).

Names are looked up after :func:`normalize_name` (case, spaces, ``_``, brackets do not matter), among the
canonical codes, the GM names (``"Acoustic Guitar (nylon)"``), URMP's English names (``"french horn"``) and
the aliases of :data:`ALIASES` (``"violin"`` == ``"vn"``, Bach10's ``"saxphone"`` -> ``sax``, ``"piano"``,
``"harp"``, ``"guitar"``, ``"drums"`` ...).

Pitch ranges (``low_midi``..``high_midi``, sounding MIDI notes) are the usual range of the instrument, not its
extremes: URMP's table for its 13 instruments (:data:`vitmusic.data.urmp.INSTRUMENTS`), and for the other
programs a range chosen per instrument from standard orchestration ranges (piano A0-C8, harp C1-G7, guitar
E2-B5 / D6, bass guitar E1-G4, ...) or, for synthesizer programs whose range is a matter of patch, a generic
C2-C7; the sound effects programs span all 128 notes. The drum kit has no pitch range (its notes are GM
percussion keys). Ranges are for sanity checks and octave fitting, never to drop notes silently.

The order of :data:`VOCABULARY` is frozen and only ever appended to: it is the row order of the learned
instrument embeddings (:mod:`vitmusic.generators.midi.transcription`), so a model trained with an older,
shorter table keeps its rows (its first ``n`` codes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vitmusic.errors import DataError

__all__ = [
    "ALIASES",
    "DRUM_KIT",
    "GM_NAMES",
    "URMP_INSTRUMENTS",
    "VOCABULARY",
    "Instrument",
    "InstrumentInfo",
    "canonical_code",
    "find_instrument",
    "get_instrument",
    "instrument_for_program",
    "is_instrument",
    "normalize_name",
]


@dataclass(frozen=True)
class InstrumentInfo:
    """One URMP instrument.

    Attributes:
        code: URMP code used in file names (``"vn"``).
        name: English name.
        family: ``"strings"``, ``"woodwinds"`` or ``"brass"``.
        gm_program: General MIDI program, 0-based (as pretty_midi / MIDI files use it).
        low_midi: lowest usual sounding pitch (MIDI note number).
        high_midi: highest usual sounding pitch (MIDI note number); the orchestral range, not the extreme.
    """

    code: str
    name: str
    family: str
    gm_program: int
    low_midi: int
    high_midi: int


URMP_INSTRUMENTS: dict[str, InstrumentInfo] = {
    info.code: info
    for info in (
        InstrumentInfo("vn", "violin", "strings", 40, 55, 100),
        InstrumentInfo("va", "viola", "strings", 41, 48, 88),
        InstrumentInfo("vc", "cello", "strings", 42, 36, 76),
        InstrumentInfo("db", "double bass", "strings", 43, 28, 67),
        InstrumentInfo("fl", "flute", "woodwinds", 73, 60, 96),
        InstrumentInfo("ob", "oboe", "woodwinds", 68, 58, 91),
        InstrumentInfo("cl", "clarinet", "woodwinds", 71, 50, 91),
        InstrumentInfo("sax", "saxophone", "woodwinds", 65, 49, 81),
        InstrumentInfo("bn", "bassoon", "woodwinds", 70, 34, 75),
        InstrumentInfo("tpt", "trumpet", "brass", 56, 54, 82),
        InstrumentInfo("hn", "french horn", "brass", 60, 34, 77),
        InstrumentInfo("tbn", "trombone", "brass", 57, 40, 72),
        InstrumentInfo("tba", "tuba", "brass", 58, 26, 65),
    )
}
"""URMP's 13 instruments by code (re-exported as :data:`vitmusic.data.urmp.INSTRUMENTS`)."""


@dataclass(frozen=True)
class Instrument:
    """One instrument of the vocabulary.

    Attributes:
        code: canonical code (``"vn"``, ``"orchestral-harp"``, ``"drum-kit"``).
        name: English name (``"violin"``, ``"Orchestral Harp"``).
        gm_program: General MIDI program, 0-based (0 for the drum kit, which plays on the percussion channel).
        gm_class: General MIDI family of the program (``"Strings"``, ``"Reed"``, ``"Percussion"`` for the kit).
        family: URMP's family (``"strings"``, ``"woodwinds"``, ``"brass"``) for URMP instruments, else the
            GM family in lower case.
        low_midi, high_midi: usual sounding range (MIDI notes); ``None`` for the drum kit.
        is_drum: plays on the GM percussion channel (note numbers are drum sounds, not pitches).
        urmp: one of URMP's 13 instruments (the built-in synthesizer has a timbre for these only).
    """

    code: str
    name: str
    gm_program: int
    gm_class: str
    family: str
    low_midi: int | None
    high_midi: int | None
    is_drum: bool = False
    urmp: bool = False


# The General MIDI Level 1 sound set, by family of 8 programs: (class, [(name, low_midi, high_midi)] * 8).
# A range of None takes the family default given after the class name.
_GM: tuple[tuple[str, tuple[int, int], tuple[tuple[str, tuple[int, int] | None], ...]], ...] = (
    ("Piano", (21, 108), (("Acoustic Grand Piano", None), ("Bright Acoustic Piano", None),
                          ("Electric Grand Piano", None), ("Honky-tonk Piano", None), ("Electric Piano 1", (28, 103)),
                          ("Electric Piano 2", (28, 103)), ("Harpsichord", (29, 89)), ("Clavinet", (29, 89)))),
    ("Chromatic Percussion", (48, 96), (("Celesta", (60, 108)), ("Glockenspiel", (79, 108)), ("Music Box", (60, 96)),
                                        ("Vibraphone", (53, 89)), ("Marimba", (45, 96)), ("Xylophone", (65, 108)),
                                        ("Tubular Bells", (60, 77)), ("Dulcimer", (50, 86)))),
    ("Organ", (36, 96), (("Drawbar Organ", None), ("Percussive Organ", None), ("Rock Organ", None),
                         ("Church Organ", (24, 96)), ("Reed Organ", (36, 89)), ("Accordion", (41, 93)),
                         ("Harmonica", (60, 96)), ("Tango Accordion", (41, 93)))),
    ("Guitar", (40, 86), (("Acoustic Guitar (nylon)", (40, 83)), ("Acoustic Guitar (steel)", (40, 84)),
                          ("Electric Guitar (jazz)", None), ("Electric Guitar (clean)", None),
                          ("Electric Guitar (muted)", None), ("Overdriven Guitar", None), ("Distortion Guitar", None),
                          ("Guitar Harmonics", (52, 100)))),
    ("Bass", (28, 67), (("Acoustic Bass", None), ("Electric Bass (finger)", None), ("Electric Bass (pick)", None),
                        ("Fretless Bass", None), ("Slap Bass 1", None), ("Slap Bass 2", None),
                        ("Synth Bass 1", (24, 72)), ("Synth Bass 2", (24, 72)))),
    ("Strings", (28, 100), (("Violin", None), ("Viola", None), ("Cello", None), ("Contrabass", None),
                            ("Tremolo Strings", None), ("Pizzicato Strings", None), ("Orchestral Harp", (24, 103)),
                            ("Timpani", (38, 60)))),
    ("Ensemble", (28, 100), (("String Ensemble 1", None), ("String Ensemble 2", None), ("Synth Strings 1", None),
                             ("Synth Strings 2", None), ("Choir Aahs", (40, 81)), ("Voice Oohs", (40, 81)),
                             ("Synth Choir", (40, 81)), ("Orchestra Hit", (36, 84)))),
    ("Brass", (34, 82), (("Trumpet", None), ("Trombone", None), ("Tuba", None), ("Muted Trumpet", (54, 82)),
                         ("French Horn", None), ("Brass Section", None), ("Synth Brass 1", (36, 84)),
                         ("Synth Brass 2", (36, 84)))),
    ("Reed", (44, 84), (("Soprano Sax", (56, 87)), ("Alto Sax", None), ("Tenor Sax", (44, 76)),
                        ("Baritone Sax", (36, 69)), ("Oboe", None), ("English Horn", (52, 81)), ("Bassoon", None),
                        ("Clarinet", None))),
    ("Pipe", (60, 96), (("Piccolo", (74, 108)), ("Flute", None), ("Recorder", (72, 98)), ("Pan Flute", None),
                        ("Blown bottle", (60, 84)), ("Shakuhachi", (55, 88)), ("Whistle", (74, 98)),
                        ("Ocarina", (60, 84)))),
    ("Synth Lead", (36, 96), (("Lead 1 (square)", None), ("Lead 2 (sawtooth)", None), ("Lead 3 (calliope)", None),
                              ("Lead 4 chiff", None), ("Lead 5 (charang)", None), ("Lead 6 (voice)", None),
                              ("Lead 7 (fifths)", None), ("Lead 8 (bass + lead)", None))),
    ("Synth Pad", (36, 96), (("Pad 1 (new age)", None), ("Pad 2 (warm)", None), ("Pad 3 (polysynth)", None),
                             ("Pad 4 (choir)", None), ("Pad 5 (bowed)", None), ("Pad 6 (metallic)", None),
                             ("Pad 7 (halo)", None), ("Pad 8 (sweep)", None))),
    ("Synth Effects", (36, 96), (("FX 1 (rain)", None), ("FX 2 (soundtrack)", None), ("FX 3 (crystal)", None),
                                 ("FX 4 (atmosphere)", None), ("FX 5 (brightness)", None), ("FX 6 (goblins)", None),
                                 ("FX 7 (echoes)", None), ("FX 8 (sci-fi)", None))),
    ("Ethnic", (48, 84), (("Sitar", None), ("Banjo", None), ("Shamisen", (50, 86)), ("Koto", (55, 91)),
                          ("Kalimba", (60, 88)), ("Bagpipe", (67, 81)), ("Fiddle", (55, 100)), ("Shanai", (60, 84)))),
    ("Percussive", (36, 84), (("Tinkle Bell", (72, 96)), ("Agogo", (60, 84)), ("Steel Drums", (52, 88)),
                              ("Woodblock", None), ("Taiko Drum", (36, 60)), ("Melodic Tom", (36, 60)),
                              ("Synth Drum", (36, 72)), ("Reverse Cymbal", None))),
    ("Sound Effects", (0, 127), (("Guitar Fret Noise", None), ("Breath Noise", None), ("Seashore", None),
                                 ("Bird Tweet", None), ("Telephone Ring", None), ("Helicopter", None),
                                 ("Applause", None), ("Gunshot", None))),
)

GM_NAMES: tuple[str, ...] = tuple(name for _, _, members in _GM for name, _ in members)
"""The 128 General MIDI program names (index = program), as pretty_midi spells them."""


def normalize_name(name: str) -> str:
    """Lower case, every run of characters other than letters and digits -> ``-``, trimmed.

    Example:
        ``"Acoustic Guitar (nylon)"`` -> ``"acoustic-guitar-nylon"``; ``"drum_kit"`` -> ``"drum-kit"``.
    """
    return re.sub(r"[^a-z0-9]+", "-", str(name).strip().lower()).strip("-")


def _build() -> dict[str, Instrument]:
    by_program = {info.gm_program: info for info in URMP_INSTRUMENTS.values()}
    urmp = [Instrument(info.code, info.name, info.gm_program, _class_of(info.gm_program), info.family,
                       info.low_midi, info.high_midi, urmp=True) for info in URMP_INSTRUMENTS.values()]
    # URMP codes first, sorted: the 13 rows every instrument-embedding table has had since the first release
    vocab = {i.code: i for i in sorted(urmp, key=lambda i: i.code)}
    program = 0
    for gm_class, default, members in _GM:
        for name, rng in members:
            if program not in by_program:
                low, high = rng or default
                code = normalize_name(name)
                vocab[code] = Instrument(code, name, program, gm_class, gm_class.lower(), low, high)
            program += 1
    vocab[DRUM_KIT] = Instrument(DRUM_KIT, "drum kit", 0, "Percussion", "percussion", None, None, is_drum=True)
    return vocab


def _class_of(program: int) -> str:
    return _GM[program // 8][0]


DRUM_KIT = "drum-kit"
VOCABULARY: dict[str, Instrument] = _build()

# other names people use; keys are normalised (see normalize_name)
_EXTRA_ALIASES: dict[str, str] = {
    "violin": "vn", "viola": "va", "cello": "vc", "violoncello": "vc", "double-bass": "db", "contrabass": "db",
    "string-bass": "db", "flute": "fl", "oboe": "ob", "clarinet": "cl", "saxophone": "sax", "saxphone": "sax",
    "alto-saxophone": "sax", "bassoon": "bn", "trumpet": "tpt", "horn": "hn", "french-horn": "hn",
    "trombone": "tbn", "tuba": "tba",
    "piano": "acoustic-grand-piano", "grand-piano": "acoustic-grand-piano", "harp": "orchestral-harp",
    "guitar": "acoustic-guitar-nylon", "acoustic-guitar": "acoustic-guitar-nylon",
    "classical-guitar": "acoustic-guitar-nylon", "steel-guitar": "acoustic-guitar-steel",
    "folk-guitar": "acoustic-guitar-steel", "electric-guitar": "electric-guitar-clean",
    "bass-guitar": "electric-bass-finger", "electric-bass": "electric-bass-finger", "upright-bass": "acoustic-bass",
    "organ": "church-organ", "choir": "choir-aahs", "voice": "choir-aahs", "strings": "string-ensemble-1",
    "string-ensemble": "string-ensemble-1", "bells": "tubular-bells", "soprano-saxophone": "soprano-sax",
    "tenor-saxophone": "tenor-sax", "baritone-saxophone": "baritone-sax", "cor-anglais": "english-horn",
    "drums": DRUM_KIT, "drum-set": DRUM_KIT, "drumset": DRUM_KIT, "drumkit": DRUM_KIT, "kit": DRUM_KIT,
}


def _aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for code, info in VOCABULARY.items():
        table[code] = code
        table.setdefault(normalize_name(info.name), code)
        if not info.is_drum:
            table.setdefault(normalize_name(GM_NAMES[info.gm_program]), code)
    for alias, code in _EXTRA_ALIASES.items():
        if code not in VOCABULARY:  # a typo in the table above must fail at import, in every test
            raise AssertionError(f"alias {alias!r} names unknown code {code!r}")
        table.setdefault(alias, code)
    return table


ALIASES: dict[str, str] = _aliases()
"""Normalised name -> canonical code, for every name :func:`find_instrument` accepts."""


def find_instrument(name: str) -> Instrument | None:
    """The instrument a name means (code, GM name, URMP name or alias; see the module docstring), or None."""
    code = ALIASES.get(normalize_name(name))
    return None if code is None else VOCABULARY[code]


def is_instrument(name: str) -> bool:
    """Whether :func:`find_instrument` knows ``name``."""
    return normalize_name(name) in ALIASES


def get_instrument(name: str, error: type[Exception] = DataError) -> Instrument:
    """The instrument a name means.

    Args:
        error: exception type raised for an unknown name (:class:`DataError` for names read from files,
            :class:`~vitmusic.errors.ConfigError` for arguments).

    Raises:
        error: unknown name; the message suggests the closest known names.
    """
    found = find_instrument(name)
    if found is None:
        import difflib

        close = difflib.get_close_matches(normalize_name(name), list(ALIASES), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise error(f"unknown instrument code {name!r} ({hint}known: URMP codes {' '.join(sorted(URMP_INSTRUMENTS))}, "
                    "General MIDI program names such as piano, orchestral-harp, acoustic-guitar-nylon, and drum-kit; "
                    "see docs/data.md)")
    return found


def canonical_code(name: str, error: type[Exception] = DataError) -> str:
    """The canonical code of a name (``"violin"`` -> ``"vn"``, ``"Harp"`` -> ``"orchestral-harp"``)."""
    return get_instrument(name, error).code


def instrument_for_program(program: int, is_drum: bool = False) -> Instrument:
    """The instrument of a MIDI track: its GM program (0-127), or the drum kit for a percussion track."""
    if is_drum:
        return VOCABULARY[DRUM_KIT]
    if not 0 <= int(program) < 128:
        raise DataError(f"MIDI program {program} is not a General MIDI program (0-127)")
    return VOCABULARY[ALIASES[normalize_name(GM_NAMES[int(program)])]]
