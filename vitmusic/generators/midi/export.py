"""Notes -> MIDI (one instrument per part, the part's General MIDI program) -> audio.

Two synthesizers render a :class:`pretty_midi.PrettyMIDI`:

- ``"builtin"``: the numpy synthesizer of the synthetic benchmark
  (:func:`vitmusic.data.synth.instruments.render_notes`), one URMP timbre per part; needs nothing installed,
  and has timbres for URMP's 13 instruments only.
- ``"fluidsynth"``: FluidSynth with a General MIDI soundfont (pyfluidsynth + libfluidsynth), by default the
  small TimGM6mb.sf2 bundled with pretty_midi; any ``.sf2`` can be given.

A third one, the learned diffusion synthesizer, lives in :mod:`vitmusic.generators.synthesizer.diffusion` and is
called by :mod:`vitmusic.inference.midi`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vitmusic.data.instruments import Instrument, find_instrument, get_instrument, instrument_for_program
from vitmusic.errors import ConfigError, DataError

SYNTHS = ("builtin", "fluidsynth")
PEAK = 0.89  # output peak after normalisation (headroom for 16-bit files and AAC)


def _instrument(code: str) -> Instrument:
    return get_instrument(code, ConfigError)


def notes_to_midi(
    parts: Sequence[np.ndarray],
    instruments: Sequence[str],
    *,
    velocities: Sequence[np.ndarray | None] | None = None,
    tempo_bpm: float = 120.0,
):
    """A :class:`pretty_midi.PrettyMIDI` with one instrument per part.

    Args:
        parts: per part, notes ``[N, 3]`` (onset_s, f0_hz, duration_s); pitches are rounded to MIDI notes.
        instruments: instrument per part: a URMP code (``"vn"``), a General MIDI name or an alias
            (``"piano"``, ``"drum-kit"``; :mod:`vitmusic.data.instruments`); sets the GM program (the percussion
            channel for the drum kit) and the track name ``"<k> <name>"`` (1-based ``k``, as in URMP file names).
        velocities: per part ``[N]`` in [0, 1] (None: 0.8).
        tempo_bpm: the file's nominal tempo (note times are absolute seconds either way).

    Raises:
        ConfigError: unknown instrument name or a parts/instruments count mismatch.
    """
    import pretty_midi

    if len(parts) != len(instruments):
        raise ConfigError(f"{len(parts)} parts but {len(instruments)} instruments")
    # 960 ticks per beat keeps the (unquantised) timing within a millisecond
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=float(tempo_bpm))
    for k, (notes, code) in enumerate(zip(parts, instruments)):
        info = _instrument(code)
        notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
        vel = velocities[k] if velocities is not None else None
        vel = np.full(len(notes), 0.8) if vel is None else np.asarray(vel, dtype=np.float64)
        inst = pretty_midi.Instrument(program=info.gm_program, is_drum=info.is_drum, name=f"{k + 1} {info.name}")
        for (onset, f0_hz, dur), v in zip(notes, vel):
            if f0_hz <= 0 or dur <= 0:
                continue
            pitch = int(np.clip(np.round(69 + 12 * np.log2(f0_hz / 440.0)), 0, 127))
            inst.notes.append(pretty_midi.Note(velocity=int(np.clip(round(v * 127), 1, 127)), pitch=pitch,
                                               start=float(onset), end=float(onset + dur)))
        pm.instruments.append(inst)
    return pm


def instrument_code(inst) -> str:
    """Canonical instrument code of a pretty_midi track (:mod:`vitmusic.data.instruments`).

    From its GM program (the drum kit for a percussion track); a track left at program 0 whose name
    (``"<k> <name>"`` or ``"<name>"``) names another instrument takes the name (a program never set).

    Raises:
        DataError: a program outside 0-127.
    """
    if inst.is_drum:
        return instrument_for_program(0, is_drum=True).code
    if inst.program == 0:
        words = inst.name.strip().split(" ", 1)
        named = find_instrument(words[-1] if words[0].isdigit() else inst.name)
        if named is not None and not named.is_drum:
            return named.code
    return instrument_for_program(inst.program).code


def track_notes(inst) -> tuple[np.ndarray, np.ndarray]:
    """Notes ``[N, 3]`` (onset_s, f0_hz, duration_s) and velocities ``[N]`` in [0, 1] of one MIDI track."""
    notes = sorted(inst.notes, key=lambda x: (x.start, x.pitch))
    arr = np.asarray([(x.start, 440.0 * 2 ** ((x.pitch - 69) / 12), x.end - x.start) for x in notes],
                     dtype=np.float64).reshape(-1, 3)
    return arr, np.asarray([x.velocity / 127 for x in notes], dtype=np.float64)


def midi_to_parts(pm) -> tuple[list[np.ndarray], list[str], list[np.ndarray]]:
    """Inverse of :func:`notes_to_midi`: per track notes ``[N, 3]``, instrument codes and velocities ``[N]``."""
    tracks = [track_notes(inst) for inst in pm.instruments]
    return [t[0] for t in tracks], [instrument_code(inst) for inst in pm.instruments], [t[1] for t in tracks]


def write_midi(pm, path: str | os.PathLike) -> Path:
    """Write ``pm`` to ``path`` atomically; returns the path."""
    from vitmusic.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        pm.write(str(tmp))
    return path


def read_midi(path: str | os.PathLike):
    """Load a MIDI file as :class:`pretty_midi.PrettyMIDI` (DataError for a missing or corrupt file)."""
    import pretty_midi

    p = Path(path)
    if not p.is_file():
        raise DataError(f"MIDI file not found: {p}")
    try:
        return pretty_midi.PrettyMIDI(str(p))
    except Exception as e:  # mido raises OSError/EOFError/KeyError/ValueError for broken files
        raise DataError(f"{p}: not a readable MIDI file ({type(e).__name__}: {e})") from e


def default_soundfont() -> str:
    """The small General MIDI soundfont bundled with pretty_midi (TimGM6mb.sf2)."""
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise DataError(f"pretty_midi's bundled soundfont is missing ({path}); give a soundfont (.sf2)")
    return str(path)


def check_fluidsynth(soundfont: str | os.PathLike | None = None) -> str:
    """The soundfont to use, after checking that FluidSynth can run here.

    Raises:
        ConfigError: pyfluidsynth/libfluidsynth missing, or the soundfont file does not exist.
    """
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; loads libfluidsynth)
    except (ImportError, OSError) as e:
        raise ConfigError(f"the fluidsynth synthesizer needs pyfluidsynth and libfluidsynth ({e}); "
                          "pip install pyfluidsynth and apt-get install fluidsynth, or use --synth builtin") from e
    sf2 = default_soundfont() if soundfont is None else str(soundfont)
    if not Path(sf2).is_file():
        raise ConfigError(f"soundfont not found: {sf2}")
    return sf2


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def render_midi(
    pm,
    sample_rate: int,
    duration_s: float,
    *,
    synth: str = "builtin",
    soundfont: str | os.PathLike | None = None,
    instruments: Sequence[str] | None = None,
    seed: int = 0,
    normalize: bool = True,
) -> np.ndarray:
    """Audio of a MIDI performance, exactly ``round(duration_s * sample_rate)`` samples long.

    Args:
        pm: :class:`pretty_midi.PrettyMIDI` (e.g. from :func:`notes_to_midi`).
        sample_rate: Hz.
        duration_s: output length (release tails beyond it are cut, silence pads it).
        synth: ``"builtin"`` or ``"fluidsynth"``.
        soundfont: ``.sf2`` for FluidSynth (default: :func:`default_soundfont`).
        instruments: instrument code per track for the builtin synth (default: from each track's GM program);
            the builtin synth has timbres for URMP's 13 instruments only.
        seed: seeds the builtin synth's vibrato and noise.
        normalize: scale the mix to a peak of :data:`PEAK` (silence stays silent).

    Returns:
        float32 ``[N]`` mono waveform.

    Raises:
        ConfigError: unknown synth, FluidSynth or the soundfont unavailable, or (builtin) an instrument it has
            no timbre for.
    """
    if synth not in SYNTHS:
        raise ConfigError(f"unknown synth {synth!r}; choose from {', '.join(SYNTHS)}")
    if not duration_s > 0 or int(sample_rate) <= 0:
        raise ConfigError(f"need duration_s > 0 and sample_rate > 0, got {duration_s} and {sample_rate}")
    n = int(round(float(duration_s) * int(sample_rate)))
    mix = np.zeros(n, np.float32)
    if synth == "builtin":
        from vitmusic.data.synth.instruments import render_notes

        if instruments is not None and len(instruments) != len(pm.instruments):
            raise ConfigError(f"{len(instruments)} instrument codes for {len(pm.instruments)} MIDI tracks")
        codes = list(instruments) if instruments is not None else [instrument_code(i) for i in pm.instruments]
        tracks = [track_notes(inst) for inst in pm.instruments]
        for k, ((notes, vel), code) in enumerate(zip(tracks, codes)):
            info = _instrument(code)
            if not info.urmp:
                raise ConfigError(f"the builtin synth has timbres for URMP's 13 instruments only, not {info.name!r} "
                                  f"({code}); use --synth fluidsynth (General MIDI soundfont)")
            code = info.code
            keep = notes[:, 0] < duration_s
            if keep.any():
                mix += render_notes(notes[keep], code, int(sample_rate), velocities=vel[keep],
                                    duration_s=float(duration_s), seed=seed * 1009 + k)[:n]
    else:
        sf2 = check_fluidsynth(soundfont)
        if any(inst.notes for inst in pm.instruments):
            mix = _fit(pm.fluidsynth(fs=int(sample_rate), synthesizer=sf2, normalize=False), n)
    if normalize:
        peak = float(np.max(np.abs(mix))) if n else 0.0
        if peak > 0:
            mix = mix * (PEAK / peak)
    return mix.astype(np.float32)
