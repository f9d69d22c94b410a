"""Write synthetic pieces in exactly the URMP layout: stems, mix, F0s, Notes, Sco MIDI and performer video.

Every piece ``k`` is drawn from its own seed sequence ``(seed, k)``, so piece 3 of a 10-piece benchmark is
the same piece as piece 3 of a 3-piece one, and the same seed always gives identical files.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vitmusic.atomic import atomic_path, atomic_write_text
from vitmusic.data.audio import write_audio
from vitmusic.data.beats import beats_file_name, write_beats
from vitmusic.data.synth.instruments import render_part
from vitmusic.data.synth.nuisance import (
    check_backgrounds,
    draw_nuisance,
    parse_level,
    parse_nuisance,
    piece_fps,
)
from vitmusic.data.synth.performer import player_state
from vitmusic.data.synth.plots import plot_pieces
from vitmusic.data.synth.scene import Scene, part_box
from vitmusic.data.synth.scores import SOURCES, Performance, make_performance
from vitmusic.data.urmp import (
    INSTRUMENTS,
    mix_file_name,
    parse_piece_name,
    piece_folder_name,
    score_file_name,
    stem_file_name,
    video_file_name,
    write_f0,
    write_notes,
)
from vitmusic.data.videowriter import parse_fps, write_video
from vitmusic.errors import DataError

RENDERERS = ("builtin", "fluidsynth")
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
PIECE_NAMES = {"chorale": "Chorale", "melody": "Melody"}
F0_HOP_S = 0.01
SUMMARY = "synth_data.json"
PEAK = 0.89  # mix peak after normalisation: headroom for AAC and the 16-bit wav


def find_soundfont() -> str:
    """Debian's FluidR3 GM soundfont if installed, else the small one bundled with pretty_midi."""
    for path in SOUNDFONTS:
        if os.path.isfile(path):
            return path
    import pretty_midi

    bundled = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if bundled.is_file():
        return str(bundled)
    raise DataError("no General MIDI soundfont found (install fluid-soundfont-gm)")


def check_fluidsynth() -> None:
    """Raise :class:`DataError` if the FluidSynth renderer cannot run here."""
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; loads libfluidsynth)
    except (ImportError, OSError) as e:
        raise DataError(f"--renderer fluidsynth needs pyfluidsynth and libfluidsynth ({e}); "
                        "pip install pyfluidsynth and apt-get install fluidsynth, or use --renderer builtin") from e


def _part_midi(perf: Performance, which: list[int], *, score: bool = False):
    """The parts ``which`` as played (``score=False``) or as written at the fixed tempo (``score=True``: the
    ``Sco_`` file, every note at velocity 80, the score's dynamics being unmarked)."""
    import pretty_midi

    # 960 ticks per beat keeps the performed (not quantised) timing within a millisecond
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=perf.tempo_bpm)
    for k in which:
        part = perf.parts[k]
        info = INSTRUMENTS[part.instrument]
        inst = pretty_midi.Instrument(program=info.gm_program, name=f"{k + 1} {info.name}")
        notes, vels = (part.score_notes, np.full(len(part.midi), 80 / 127)) if score else (part.notes, part.velocities)
        for (onset, _, dur), m, v in zip(notes, part.midi, vels):
            inst.notes.append(pretty_midi.Note(velocity=int(np.clip(round(v * 127), 1, 127)), pitch=int(m),
                                               start=float(onset), end=float(onset + dur)))
        pm.instruments.append(inst)
    return pm


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def render_stems(perf: Performance, sample_rate: int, renderer: str, seed: int) -> tuple[list[np.ndarray], list[tuple]]:
    """Audio [N] per part and the (times_s, f0_hz) annotation per part.

    The built-in synth reports the f0 it rendered (vibrato included); FluidSynth's samples are not
    analysable that way, so its f0 track is the nominal pitch of the sounding note.
    """
    n = int(round(perf.duration_s * sample_rate))
    stems, f0s = [], []
    if renderer == "builtin":
        for k, part in enumerate(perf.parts):
            r = render_part(part.notes, part.instrument, sample_rate, velocities=part.velocities,
                            duration_s=perf.duration_s, seed=seed * 1009 + k, f0_hop_s=F0_HOP_S)
            stems.append(_fit_length(r.audio, n))
            f0s.append((r.f0_times_s, r.f0_hz))
        return stems, f0s
    if renderer != "fluidsynth":
        raise DataError(f"unknown renderer {renderer!r}; choose from {', '.join(RENDERERS)}")
    check_fluidsynth()
    sf2 = find_soundfont()
    times = np.arange(int(np.floor(perf.duration_s / F0_HOP_S + 1e-9)) + 1) * F0_HOP_S
    for k, part in enumerate(perf.parts):
        pm = _part_midi(perf, [k])
        audio = pm.instruments[0].fluidsynth(fs=sample_rate, synthesizer=sf2) if len(part.notes) else np.zeros(n)
        stems.append(_fit_length(np.asarray(audio, dtype=np.float32), n))
        f0 = np.zeros(len(times))
        for onset, hz, dur in part.notes:
            f0[(times >= onset) & (times < onset + dur)] = hz
        f0s.append((times, f0))
    return stems, f0s


def boxes_file_name(folder: Path) -> str:
    """The performer-box annotation of a synthetic piece (not part of URMP): ``Boxes_<piece>.json``."""
    return f"Boxes_{folder.name}.json"


def write_piece(out_dir: Path, number: int, perf: Performance, *, sample_rate: int, fps: str, renderer: str,
                seed: int, width_per_player: int = 160, height: int = 240, level: str = "painted",
                nuisance: tuple[str, ...] = (), bench_seed: int = 0) -> tuple[Path, dict]:
    """Render one performance and write its URMP folder atomically.

    The picture follows ``level`` and ``nuisance`` (drawn from ``(bench_seed, number)``: see
    :mod:`vitmusic.data.synth.nuisance`); next to the URMP files, ``Boxes_<piece>.json`` holds every
    performer's box per frame.

    Returns:
        The folder path and the piece's picture record (level, nuisance, fps and what was drawn).
    """
    name = PIECE_NAMES[perf.score.source]
    folder = out_dir / piece_folder_name(number, name, perf.instruments)
    stems, f0s = render_stems(perf, sample_rate, renderer, seed)
    # one gain for all stems, so the mix is exactly the sum of the written stems
    mix = np.sum(stems, axis=0)
    gain = PEAK / max(float(np.max(np.abs(mix))), 1e-9)
    stems = [s * gain for s in stems]
    mix = np.sum(stems, axis=0)
    fps = piece_fps(bench_seed, number, nuisance, fps)
    rate = parse_fps(fps)
    num_frames = int(round(perf.duration_s * rate))
    times = np.arange(num_frames) / float(rate)
    infos = [INSTRUMENTS[c] for c in perf.instruments]
    states = [player_state(p.notes, p.midi, p.velocities, i.low_midi, i.high_midi, times)
              for p, i in zip(perf.parts, infos)]
    draws = draw_nuisance(bench_seed, number, nuisance, len(perf.parts), width_per_player, height, times,
                          part_box(level, perf.instruments))
    scene = Scene(level, perf.instruments, [i.family for i in infos], [p.midi for p in perf.parts], states, draws,
                  width_per_player, height, float(rate), noise_key=(bench_seed, number))
    record = {"level": level, "nuisance": list(nuisance), "fps": str(fps), **draws.info}
    if "compression" in nuisance:
        record.update(crf=draws.crf, jpeg_quality=draws.jpeg_quality, resolution=round(draws.resolution, 3))
    with atomic_path(folder, is_dir=True) as tmp:
        for k, (part, stem, (ft, fhz)) in enumerate(zip(perf.parts, stems, f0s), start=1):
            code = part.instrument
            write_audio(tmp / stem_file_name("AuSep", k, code, number, name), stem, sample_rate, subtype="PCM_16")
            write_f0(tmp / stem_file_name("F0s", k, code, number, name), ft, fhz)
            write_notes(tmp / stem_file_name("Notes", k, code, number, name), part.notes)
        write_audio(tmp / mix_file_name(folder), mix, sample_rate, subtype="PCM_16")
        pm = _part_midi(perf, list(range(len(perf.parts))), score=True)
        with atomic_path(tmp / score_file_name(folder)) as mid:
            pm.write(str(mid))
        write_beats(tmp / beats_file_name(folder), perf.beats)  # not part of URMP: vitmusic.data.beats
        write_video(tmp / video_file_name(folder), scene.frames(), rate, audio=mix, sample_rate=sample_rate,
                    crf=draws.crf)
        boxes = {**record, "width": scene.W, "height": scene.H, "instruments": list(perf.instruments),
                 "box_format": "x0 y0 x1 y1 in frame pixels, per frame then per part (left to right)",
                 "boxes": [scene.boxes(i).tolist() for i in range(num_frames)]}
        atomic_write_text(tmp / boxes_file_name(folder), json.dumps(boxes, separators=(",", ":")) + "\n")
    return folder, record


def generate_benchmark(out_dir: str | os.PathLike, pieces: int, seed: int = 0, *, duration_s: float = 20.0,
                       fps: str | float = "30", source: str = "chorales", renderer: str = "builtin",
                       sample_rate: int = 48000, width_per_player: int = 160, height: int = 240,
                       tempo_range_bpm: tuple[float, float] = (66.0, 112.0), tempo_drift: float = 0.04,
                       progress: bool = True, plot: bool = True, workers: int = 1, level: str = "painted",
                       nuisance: str | tuple[str, ...] | list[str] | None = None) -> list[Path]:
    """Write ``pieces`` synthetic URMP pieces (``01_Chorale_vn_vn_va_vc``, ...) under ``out_dir``.

    Args:
        out_dir: root folder (created if missing).
        pieces: number of pieces (>= 1), numbered from 1.
        seed: base seed; piece k uses the seed sequence (seed, k).
        duration_s: length of every piece (scores are looped or truncated to it).
        fps: video frame rate ("30", "25", "29.97" -> 30000/1001, ...).
        source: "chorales" (music21's Bach chorales), "melodies" (generated) or "mixed".
        renderer: "builtin" (numpy synthesizer) or "fluidsynth" (GM soundfont).
        sample_rate: audio rate in Hz (URMP: 48000).
        width_per_player, height: video panel size per performer in pixels (even).
        tempo_range_bpm: the piece tempo is drawn uniformly from this range.
        tempo_drift: relative amplitude of the slow tempo drift (rubato).
        progress: show a tqdm bar on stderr.
        plot: also save piano rolls of the pieces to ``out_dir/synth_data.png``.
        workers: pieces rendered in parallel processes (the output does not depend on it).
        level: what the picture says about pitch: ``painted`` (hand height linear in pitch, the original
            benchmark), ``fingering`` (small, ambiguous, instrument-like cues) or ``hidden`` (none).
        nuisance: ``none``, ``all`` or a comma-separated list of ``layout``, ``background``, ``camera``,
            ``lighting``, ``noise``, ``compression``, ``fps`` (see :mod:`vitmusic.data.synth.nuisance`).

    Returns:
        The piece folders, in order. A summary (arguments and per-piece source, tempo, instruments) is
        written to ``out_dir/synth_data.json``. Piece folders of an earlier run into the same ``out_dir``
        are replaced (those this run does not rewrite are removed); any other piece folder there is an
        error, so a benchmark never silently mixes with other data.

    Raises:
        DataError: invalid arguments, ``out_dir`` is a file, or the FluidSynth renderer is unavailable.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    if int(pieces) < 1:
        raise DataError(f"--pieces must be >= 1, got {pieces}")
    if out.exists() and not out.is_dir():
        raise DataError(f"output path exists and is not a folder: {out}")
    if renderer not in RENDERERS:
        raise DataError(f"unknown renderer {renderer!r}; choose from {', '.join(RENDERERS)}")
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    if int(workers) < 1:
        raise DataError(f"--workers must be >= 1, got {workers}")
    if int(seed) < 0:
        raise DataError(f"--seed must be >= 0, got {seed}")
    if not 0.0 <= tempo_drift < 0.5:
        raise DataError(f"--tempo-drift must be in [0, 0.5), got {tempo_drift}")
    if not duration_s > 1.0:
        raise DataError(f"--duration must be > 1 s, got {duration_s}")
    if int(sample_rate) < 8000:
        raise DataError(f"--sample-rate must be >= 8000 Hz, got {sample_rate}")
    lo, hi = tempo_range_bpm
    if not 20 <= lo <= hi <= 300:
        raise DataError(f"tempo range must satisfy 20 <= low <= high <= 300 BPM, got {tempo_range_bpm}")
    try:
        parse_fps(fps)
    except ValueError as e:
        raise DataError(str(e)) from e
    if renderer == "fluidsynth":
        check_fluidsynth()
        find_soundfont()
    if width_per_player % 2 or height % 2 or width_per_player < 64 or height < 96:
        raise DataError(f"video panel must be even and at least 64x96 px, got {width_per_player}x{height}")
    level = parse_level(level)
    nuisance = parse_nuisance(nuisance)
    if "background" in nuisance:
        check_backgrounds()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create output folder {out}: {e}") from e

    previous = _check_existing(out)
    args = {"pieces": int(pieces), "seed": int(seed), "duration_s": float(duration_s), "fps": str(fps),
            "source": source, "renderer": renderer, "sample_rate": int(sample_rate),
            "width_per_player": width_per_player, "height": height, "tempo_range_bpm": list(tempo_range_bpm),
            "tempo_drift": tempo_drift, "f0_hop_s": F0_HOP_S, "level": level, "nuisance": list(nuisance)}
    folders, summary, perfs = [], [], []

    def record(stale: set[str]) -> None:
        # rewritten after every piece, so an interrupted run still accounts for every folder it owns
        doc = {"arguments": args, "complete": not stale and len(folders) == int(pieces), "pieces": summary,
               "stale": sorted(stale)}
        atomic_write_text(out / SUMMARY, json.dumps(doc, indent=2) + "\n")

    job = functools.partial(_make_piece, out, seed=int(seed), source=source, duration_s=float(duration_s),
                            tempo_range_bpm=tuple(tempo_range_bpm), tempo_drift=float(tempo_drift),
                            sample_rate=int(sample_rate), fps=str(fps), renderer=renderer,
                            width_per_player=int(width_per_player), height=int(height), level=level,
                            nuisance=nuisance)
    numbers = range(1, int(pieces) + 1)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            # spawn, not fork: the caller may hold threads (torch, x264) that a fork would copy mid-state
            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(min(int(workers), int(pieces)), mp_context=ctx)
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # on error: drop queued pieces
            results = pool.map(job, numbers)
        else:
            results = map(job, numbers)
        for folder, perf, picture in tqdm(results, total=int(pieces), desc="synth-data", unit="piece",
                                          disable=not progress):
            _record_piece(folders, summary, perfs if plot else None, folder, perf, picture)
            record(previous - {f.name for f in folders})
    # pieces of an earlier synth-data run into the same folder that this run did not rewrite
    for name in sorted(previous - {f.name for f in folders}):
        shutil.rmtree(out / name, ignore_errors=True)
    record(set())
    if plot:
        plot_pieces(perfs, [f.name for f in folders], out / "synth_data.png")
    return folders


def _make_piece(out: Path, number: int, *, seed: int, source: str, duration_s: float,
                tempo_range_bpm: tuple[float, float], tempo_drift: float, sample_rate: int, fps: str, renderer: str,
                width_per_player: int, height: int, level: str = "painted",
                nuisance: tuple[str, ...] = ()) -> tuple[Path, Performance, dict]:
    """Draw and write piece ``number`` from its own seed sequence (seed, number); runs in a worker too.

    The music comes from ``(seed, number)`` alone, so a piece's notes and audio are the same at every level
    and nuisance; the picture's draws have their own seed sequences.
    """
    rng = np.random.default_rng([seed, number])
    perf = make_performance(rng, source, duration_s, tempo_range_bpm, tempo_drift, chorale=(seed, number))
    piece_seed = int(rng.integers(2**31))
    folder, picture = write_piece(out, number, perf, sample_rate=sample_rate, fps=fps, renderer=renderer,
                                  seed=piece_seed, width_per_player=width_per_player, height=height, level=level,
                                  nuisance=nuisance, bench_seed=seed)
    return folder, perf, picture


def _record_piece(folders: list[Path], summary: list[dict], perfs: list[Performance] | None, folder: Path,
                  perf: Performance, picture: dict) -> None:
    folders.append(folder)
    summary.append({"piece": folder.name, **perf.info, "num_notes": [int(len(p.notes)) for p in perf.parts],
                    "picture": picture})
    if perfs is not None:
        perfs.append(perf)


def _check_existing(out: Path) -> set[str]:
    """Piece folders an earlier synth-data run left in ``out`` (to replace); refuse to mix with others."""
    pieces = set()
    for d in out.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            try:
                parse_piece_name(d.name)
            except DataError:
                continue
            pieces.add(d.name)
    known: set[str] = set()
    if (out / SUMMARY).is_file():
        try:
            doc = json.loads((out / SUMMARY).read_text(encoding="utf-8"))
            known = {p["piece"] for p in doc.get("pieces", [])} | set(doc.get("stale", []))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{out / SUMMARY}: unreadable summary of an earlier run ({e}); choose an empty --out") from e
    foreign = sorted(pieces - known)
    if foreign:
        raise DataError(f"{out} already holds piece folders not written by synth-data (e.g. {foreign[0]}); "
                        "choose an empty --out")
    return pieces
