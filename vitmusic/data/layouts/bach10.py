"""The Bach10 layout (Duan, Pardo & Zhang 2010): real four-part chorale recordings with per-part annotations.

A Bach10 root holds one folder per piece, ``NN-Title`` (e.g. ``02-AchLiebenChristen``), holding::

    NN-Title.flac | .wav            the mix (the sum of the parts)
    NN-Title-<part>.flac | .wav     each part played alone; <part> in violin, clarinet, saxphone (sic), bassoon
    NN-Title-GTF0s.mat              F0 of each part as MIDI numbers (0 = unvoiced): a [4, frames] matrix
    NN-Title-GTNotes.mat            per part, per note: a [2, L] matrix (frame numbers, 1-based; MIDI pitch)
    NN-Title.mid                    the score (not aligned to the recording)
    NN-Title.txt / .asl             score-to-audio alignment (not read here)

Frames are 46 ms long with a 10 ms hop; frame ``k`` (1-based) is centred at ``23 ms + (k - 1) * 10 ms``. The
rows of both .mat files are the parts in the order violin, clarinet, saxophone, bassoon (soprano to bass).
There is no video: pieces have ``video=None``, so they serve evaluation and the audio-only tasks (the
diffusion synthesizer), and the video tasks refuse them.

Converted to the URMP conventions:

* f0: ``times_s = 0.023 + 0.010 * j`` for column ``j``, ``f0_hz = 440 * 2 ** ((midi - 69) / 12)`` where
  ``midi > 0``, else 0 (unvoiced);
* notes: a note covering frames ``a..b`` sounds from half a hop before frame ``a``'s centre to half a hop
  after frame ``b``'s (``onset_s = t_a - 0.005``, ``duration_s = (b - a + 1) * 0.010``), at the median pitch
  of its voiced frames; notes without a voiced frame are dropped.

A malformed .mat file (not MATLAB, no ``GTF0s`` / ``GTNotes`` variable, wrong shape, values that are not MIDI
pitches) raises :class:`~vitmusic.errors.DataError` naming the file when the annotation is read.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from vitmusic.data.instruments import find_instrument
from vitmusic.data.urmp import Piece, Stem, UrmpWarning
from vitmusic.errors import DataError

__all__ = ["FIRST_FRAME_S", "HOP_S", "PARTS", "Bach10Layout", "read_gt_f0s", "read_gt_notes"]

PARTS: tuple[str, ...] = ("violin", "clarinet", "saxphone", "bassoon")  # .mat row order, as Bach10 names them
PART_CODES: tuple[str, ...] = tuple(find_instrument(p).code for p in PARTS)  # vn cl sax bn
HOP_S = 0.010
FIRST_FRAME_S = 0.023
AUDIO_EXTS = (".flac", ".wav")
_ANNOTATION_SUFFIXES = ("-GTF0s.mat", "-GTNotes.mat")


def _loadmat(path: Path, variable: str) -> np.ndarray:
    import scipy.io

    try:
        content = scipy.io.loadmat(str(path))
    except FileNotFoundError:
        raise DataError(f"annotation file not found: {path}") from None
    except Exception as e:  # scipy raises ValueError / MatReadError / TypeError / OSError on non-MATLAB bytes
        raise DataError(f"{path}: not a MATLAB .mat file ({' '.join(str(e).split()) or type(e).__name__})") from None
    if variable not in content:
        found = ", ".join(k for k in content if not k.startswith("__")) or "none"
        raise DataError(f"{path}: no variable {variable!r} (found: {found})")
    return content[variable]


def read_gt_f0s(path: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The four parts' f0 of a ``-GTF0s.mat`` file: per part ``(times_s [F], f0_hz [F])``, 0 Hz = unvoiced.

    Raises:
        DataError: not a MATLAB file, no ``GTF0s``, not ``[4, frames]``, or values that are not MIDI pitches.
    """
    path = Path(path)
    m = _loadmat(path, "GTF0s")
    if m.dtype == object or m.ndim != 2 or m.shape[0] != len(PARTS) or m.shape[1] == 0:
        raise DataError(f"{path}: GTF0s has shape {list(m.shape)} ({m.dtype}); expected a numeric "
                        f"[{len(PARTS)}, frames] matrix (one row per part: {', '.join(PARTS)})")
    midi = np.asarray(m, dtype=np.float64)
    if not np.isfinite(midi).all() or (midi < 0).any() or (midi >= 128).any():
        raise DataError(f"{path}: GTF0s values must be MIDI pitches in [0, 128) (0 = unvoiced)")
    times_s = FIRST_FRAME_S + HOP_S * np.arange(midi.shape[1])
    return [(times_s.copy(), _midi_to_hz(row)) for row in midi]


def read_gt_notes(path: str | Path) -> list[np.ndarray]:
    """The four parts' notes of a ``-GTNotes.mat`` file: per part ``[N, 3]`` (onset_s, f0_hz, duration_s).

    Raises:
        DataError: not a MATLAB file, no ``GTNotes``, not 4 cells of ``[2, L]`` notes (message names the part
            and the note), frame numbers that are not increasing positive integers, or non-MIDI pitches.
    """
    path = Path(path)
    cells = _loadmat(path, "GTNotes")
    if cells.dtype != object or cells.size != len(PARTS) or sum(n > 1 for n in cells.shape) > 1:
        raise DataError(f"{path}: GTNotes has shape {list(cells.shape)} ({cells.dtype}); expected a cell array of "
                        f"{len(PARTS)} parts ({', '.join(PARTS)}), each a cell array of [2, frames] notes")
    parts = []
    for k, cell in enumerate(cells.reshape(-1)):
        where = f"{path}: part {k + 1} ({PARTS[k]})"
        cell = np.asarray(cell)
        if cell.size and (cell.dtype != object or sum(n > 1 for n in cell.shape) > 1):
            raise DataError(f"{where}: expected a cell array of notes, got shape {list(cell.shape)} ({cell.dtype})")
        rows = []
        for i, note in enumerate(cell.reshape(-1)):
            note = np.asarray(note)
            if note.dtype == object or note.ndim != 2 or note.shape[0] != 2 or note.shape[1] == 0:
                raise DataError(f"{where} note {i + 1}: expected a [2, frames] matrix (frame numbers; MIDI "
                                f"pitches), got shape {list(note.shape)}")
            frames, midi = np.asarray(note, dtype=np.float64)
            if (not np.isfinite(note.astype(np.float64)).all() or (frames < 1).any()
                    or (frames != np.round(frames)).any() or (np.diff(frames) <= 0).any()):
                raise DataError(f"{where} note {i + 1}: frame numbers must be increasing integers >= 1")
            if (midi < 0).any() or (midi >= 128).any():
                raise DataError(f"{where} note {i + 1}: pitches must be MIDI numbers in [0, 128)")
            voiced = midi[midi > 0]
            if not len(voiced):
                continue
            t_first = FIRST_FRAME_S + HOP_S * (frames[0] - 1)
            duration_s = HOP_S * (frames[-1] - frames[0] + 1)
            rows.append((t_first - HOP_S / 2, float(_midi_to_hz(np.median(voiced))), duration_s))
        notes = np.asarray(sorted(rows), dtype=np.float64).reshape(-1, 3)
        parts.append(notes)
    return parts


def _midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    midi = np.asarray(midi, dtype=np.float64)
    return np.where(midi > 0, 440.0 * 2.0 ** ((midi - 69.0) / 12.0), 0.0)


class _PieceAnnotations:
    """Reads a piece's two .mat files once, when a stem first asks (errors raise on every ask)."""

    def __init__(self, f0_path: Path | None, notes_path: Path | None) -> None:
        self.f0_path, self.notes_path = f0_path, notes_path
        self._f0: list | None = None
        self._notes: list | None = None

    def f0(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._f0 is None:
            self._f0 = read_gt_f0s(self.f0_path)
        return self._f0[k]

    def notes(self, k: int) -> np.ndarray:
        if self._notes is None:
            self._notes = read_gt_notes(self.notes_path)
        return self._notes[k]


def _files(folder: Path) -> dict[str, Path]:
    try:
        return {p.name: p for p in folder.iterdir() if p.is_file()}
    except OSError as e:
        raise DataError(f"cannot list folder {folder}: {e.strerror or e}") from None


def _prefix(folder: Path, files: dict[str, Path]) -> str:
    """The file-name prefix of a piece: the folder name, or the one the annotation files use."""
    if any(n.startswith(folder.name) for n in files):
        return folder.name
    stems = {n[: -len(sfx)] for n in files for sfx in _ANNOTATION_SUFFIXES if n.endswith(sfx)}
    return stems.pop() if len(stems) == 1 else folder.name


def _is_piece_folder(folder: Path) -> bool:
    """Bach10's own evidence: an annotation file, or a part file named with one of its four parts."""
    names = list(_files(folder))
    parts = {f"{folder.name}-{part}{ext}" for part in PARTS for ext in AUDIO_EXTS}
    return any(n.endswith(_ANNOTATION_SUFFIXES) or n in parts for n in names)


def load_piece(folder: Path) -> Piece:
    """One Bach10 piece folder (see the module docstring); missing files go to :attr:`Piece.missing`."""
    files = _files(folder)
    prefix = _prefix(folder, files)
    match = re.match(r"^(\d+)[-_ ]*(.*)$", folder.name)
    number, title = (int(match.group(1)), match.group(2) or folder.name) if match else (0, folder.name)
    missing: list[str] = []

    def locate(name: str, exts: tuple[str, ...] = ("",)) -> Path | None:
        for ext in exts:
            if name + ext in files:
                return files[name + ext]
        missing.append(name + exts[0])
        return None

    parts: dict[str, Path] = {}
    for name, path in sorted(files.items()):
        stem, ext = name.rsplit(".", 1)[0], "." + name.rsplit(".", 1)[-1].lower()
        if ext in AUDIO_EXTS and stem.startswith(prefix + "-"):
            inst = find_instrument(stem[len(prefix) + 1:])
            if inst is not None and inst.code in PART_CODES and inst.code not in parts:
                parts[inst.code] = path
            else:
                warnings.warn(f"{folder.name}: ignoring {name} (not one of the parts {', '.join(PARTS)})",
                              UrmpWarning, stacklevel=3)
    mix = locate(prefix, AUDIO_EXTS)
    score = locate(prefix, (".mid", ".midi"))
    f0_path = locate(prefix + "-GTF0s.mat")
    notes_path = locate(prefix + "-GTNotes.mat")
    annotations = _PieceAnnotations(f0_path, notes_path)
    stems = []
    for k, (part, code) in enumerate(zip(PARTS, PART_CODES)):
        audio = parts.get(code)
        if audio is None:
            missing.append(f"{prefix}-{part}.flac")
        stems.append(Stem(index=k + 1, instrument=code, audio=audio, f0=f0_path, notes=notes_path,
                          f0_reader=lambda k=k: annotations.f0(k), notes_reader=lambda k=k: annotations.notes(k)))
    return Piece(folder=folder, number=number, name=title, instruments=list(PART_CODES), video=None, mix=mix,
                 score=score, stems=stems, missing=missing, layout="bach10")


class Bach10Layout:
    """Bach10's ``NN-Title`` folders (see :mod:`vitmusic.data.layouts.bach10`)."""

    name = "bach10"
    description = ("Bach10: folders NN-Title with NN-Title.flac (mix), NN-Title-<part>.flac, -GTF0s.mat, "
                   "-GTNotes.mat, .mid")

    def detect(self, root: Path) -> bool:
        try:
            if _is_piece_folder(root):
                return True
            return any(d.is_dir() and not d.name.startswith(".") and _is_piece_folder(d) for d in root.iterdir())
        except (OSError, DataError):
            return False

    def discover(self, root: Path) -> list[Piece]:
        if not root.is_dir():
            raise DataError(f"Bach10 root not found or not a folder: {root}")
        if _is_piece_folder(root):
            pieces = [load_piece(root)]
        else:
            pieces = []
            for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if _is_piece_folder(d):
                    pieces.append(load_piece(d))
                else:
                    warnings.warn(f"skipping {d.name}: not a Bach10 piece folder (no {d.name}-GTF0s.mat, "
                                  f"-GTNotes.mat or {d.name}-violin.flac ...)", UrmpWarning, stacklevel=2)
            if not pieces:
                raise DataError(f"no Bach10 piece folders (NN-Title with NN-Title.flac, NN-Title-GTF0s.mat ...) "
                                f"under {root}")
        for p in pieces:
            if p.missing:
                warnings.warn(f"{p.id}: missing {', '.join(p.missing)}", UrmpWarning, stacklevel=2)
        return sorted(pieces, key=lambda p: (p.number, p.id))
