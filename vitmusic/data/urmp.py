"""The URMP dataset layout: instrument table, file naming, piece discovery, annotation readers/writers.

A URMP root holds one folder per piece, named ``NN_Piece_inst1_inst2...`` (e.g. ``01_Jupiter_vn_vc``,
``43_Chorale_tpt_tpt_hn_tbn_tba``). The instruments are URMP's 13 codes or any lower-case name of the
instrument vocabulary (:mod:`vitmusic.data.instruments`: ``05_Prelude_piano``, ``06_Duo_orchestral-harp_fl``);
file names use them as written, :attr:`Piece.instruments` holds their canonical codes. A piece folder holds::

    Vid_<folder>.mp4                      the performance video
    AuMix_<folder>.wav                    the mixture
    AuSep_<k>_<inst>_<NN>_<Piece>.wav     the k-th (1-based) instrument's separated track
    F0s_<k>_<inst>_<NN>_<Piece>.txt       frame-level pitch: ``time_s  f0_hz`` per line (0 Hz = unvoiced)
    Notes_<k>_<inst>_<NN>_<Piece>.txt     notes: ``onset_s  f0_hz  duration_s`` per line
    Sco_<folder>.mid                      the score

The annotation readers tolerate the formatting found in the wild (tabs or spaces, single or repeated,
CRLF line ends, blank lines, trailing whitespace) and are strict about content: a malformed line raises
:class:`~vitmusic.errors.DataError` naming ``file:line``. Missing files are not fatal here: they are listed
in :attr:`Piece.missing`; whoever needs a file decides whether its absence is an error.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitmusic.atomic import atomic_path
from vitmusic.data.instruments import URMP_INSTRUMENTS as INSTRUMENTS
from vitmusic.data.instruments import InstrumentInfo, canonical_code, is_instrument
from vitmusic.errors import DataError

__all__ = [
    "INSTRUMENTS",
    "InstrumentInfo",
    "Piece",
    "Stem",
    "UrmpWarning",
    "discover_pieces",
    "load_piece",
    "mix_file_name",
    "parse_piece_name",
    "piece_folder_name",
    "read_f0",
    "read_notes",
    "score_file_name",
    "stem_file_name",
    "video_file_name",
    "write_f0",
    "write_notes",
]


class UrmpWarning(UserWarning):
    """A recoverable problem in a URMP root (a folder that is not a piece, a missing optional file)."""


STEM_KINDS: dict[str, str] = {"AuSep": "wav", "F0s": "txt", "Notes": "txt"}
FILE_PREFIXES: tuple[str, ...] = ("AuMix_", "Vid_", "AuSep_", "F0s_", "Notes_", "Sco_")

# A lower-case token of at most 4 letters in a piece name is almost surely a mistyped instrument code
# (URMP piece names are CamelCase words): refuse it rather than silently dropping an instrument.
_CODE_LIKE = re.compile(r"^[a-z]{2,4}$")


# ---------------------------------------------------------------------------------------------- names


def parse_piece_name(folder_name: str | os.PathLike) -> tuple[int, str, list[str]]:
    """Parse a piece folder name into (number, piece name, ordered instrument codes).

    The instrument codes are the trailing ``_``-separated tokens; everything between the number and them
    is the piece name (kept with its underscores, should a name have any).

    Example:
        ``"43_Chorale_tpt_tpt_hn_tbn_tba"`` -> ``(43, "Chorale", ["tpt", "tpt", "hn", "tbn", "tba"])``

    The instrument tokens are returned as written (they are part of the file names); a token counts as an
    instrument when it is lower case and names one (:func:`vitmusic.data.instruments.find_instrument`), so
    ``"02_Sonata_Piano_vn"`` is the piece ``Sonata_Piano`` for violin.

    Raises:
        DataError: no leading number, no piece name, no instruments, or an unknown instrument code.
    """
    name = Path(folder_name).name
    tokens = name.split("_")
    if len(tokens) < 3 or not tokens[0].isdigit():
        raise DataError(f"not a URMP piece folder name (expected NN_Piece_inst1_inst2...): {name!r}")
    number = int(tokens[0])
    rest = tokens[1:]
    n_codes = 0
    while n_codes < len(rest) - 1 and _is_code(rest[-1 - n_codes]):
        n_codes += 1
    if n_codes == 0:
        _unknown_code(rest[-1], name)
    name_tokens = rest[: len(rest) - n_codes]
    suspect = name_tokens[-1]
    if len(name_tokens) > 1 and _CODE_LIKE.match(suspect):
        _unknown_code(suspect, name)
    piece = "_".join(name_tokens)
    if not piece:
        raise DataError(f"empty piece name in piece folder {name!r}")
    return number, piece, list(rest[len(rest) - n_codes:])


def piece_folder_name(number: int, name: str, instruments: list[str] | tuple[str, ...]) -> str:
    """Inverse of :func:`parse_piece_name`: ``(1, "Jupiter", ["vn", "vc"])`` -> ``"01_Jupiter_vn_vc"``."""
    _check_codes(instruments)
    if not instruments:
        raise DataError("a piece needs at least one instrument")
    return "_".join([f"{int(number):02d}", name, *instruments])


def stem_file_name(kind: str, k: int, instrument: str, number: int, name: str) -> str:
    """File name of the k-th (1-based) stem's track or annotation.

    Example:
        ``stem_file_name("F0s", 1, "vn", 1, "Jupiter")`` -> ``"F0s_1_vn_01_Jupiter.txt"``

    Args:
        kind: ``"AuSep"`` (wav), ``"F0s"`` or ``"Notes"`` (txt).
    """
    if kind not in STEM_KINDS:
        raise ValueError(f"kind must be one of {sorted(STEM_KINDS)}, got {kind!r}")
    _check_codes([instrument])
    return f"{kind}_{int(k)}_{instrument}_{int(number):02d}_{name}.{STEM_KINDS[kind]}"


def video_file_name(folder: str | os.PathLike) -> str:
    """``"01_Jupiter_vn_vc"`` (or a path ending in it) -> ``"Vid_01_Jupiter_vn_vc.mp4"``."""
    return f"Vid_{Path(folder).name}.mp4"


def mix_file_name(folder: str | os.PathLike) -> str:
    """``"01_Jupiter_vn_vc"`` -> ``"AuMix_01_Jupiter_vn_vc.wav"``."""
    return f"AuMix_{Path(folder).name}.wav"


def score_file_name(folder: str | os.PathLike) -> str:
    """``"01_Jupiter_vn_vc"`` -> ``"Sco_01_Jupiter_vn_vc.mid"``."""
    return f"Sco_{Path(folder).name}.mid"


def _is_code(token: str) -> bool:
    return token == token.lower() and is_instrument(token)


def _unknown_code(token: str, folder: str) -> None:
    try:
        canonical_code(token)
    except DataError as e:
        raise DataError(f"{e} in piece folder {folder!r}") from None
    raise DataError(f"instrument {token!r} in piece folder {folder!r} must be written in lower case")


def _check_codes(instruments) -> None:
    for code in instruments:
        if not _is_code(code):
            canonical_code(code)  # raises for an unknown name
            raise DataError(f"instrument {code!r} must be written in lower case in URMP file names")


# ---------------------------------------------------------------------------------------------- pieces


@dataclass
class Stem:
    """One instrument track of a piece. Paths are ``None`` when the file is missing.

    ``instrument`` is a canonical code of :mod:`vitmusic.data.instruments`. The annotations are read with
    :meth:`load_f0` / :meth:`load_notes`: from URMP text files by default; an importer of another layout
    (:mod:`vitmusic.data.layouts`) sets ``f0_reader`` / ``notes_reader`` to read its own format (then ``f0`` /
    ``notes`` name the file the annotation comes from, for reports).
    """

    index: int
    instrument: str
    audio: Path | None = None
    f0: Path | None = None
    notes: Path | None = None
    f0_reader: Callable[[], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False, compare=False)
    notes_reader: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)

    def load_f0(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(times_s [N], f0_hz [N])`` (0 Hz = unvoiced), or None when the stem has no f0 annotation.

        Raises:
            DataError: a malformed annotation (naming the file).
        """
        if self.f0 is None:
            return None
        return self.f0_reader() if self.f0_reader is not None else read_f0(self.f0)

    def load_notes(self) -> np.ndarray | None:
        """Notes ``[N, 3]`` (onset_s, f0_hz, duration_s), or None when the stem has no notes annotation.

        Raises:
            DataError: a malformed annotation (naming the file).
        """
        if self.notes is None:
            return None
        return self.notes_reader() if self.notes_reader is not None else read_notes(self.notes)


@dataclass
class Piece:
    """One URMP piece folder.

    Attributes:
        folder: the piece folder.
        number, name, instruments: parsed from the folder name (``instruments``: canonical codes).
        video, mix, score: file paths, ``None`` when missing.
        stems: one :class:`Stem` per instrument, in folder-name order.
        missing: names of expected files that are absent (for reports).
        layout: name of the layout it was read from (:mod:`vitmusic.data.layouts`).
    """

    folder: Path
    number: int
    name: str
    instruments: list[str]
    video: Path | None = None
    mix: Path | None = None
    score: Path | None = None
    stems: list[Stem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    layout: str = "urmp"

    @property
    def id(self) -> str:
        """The folder name, e.g. ``"01_Jupiter_vn_vc"``; unique within a root."""
        return self.folder.name


def _find(files: dict[str, Path], exact: str, pattern: str) -> Path | None:
    """The file named ``exact``, else the single file whose name matches ``pattern`` (case-insensitive)."""
    if exact in files:
        return files[exact]
    rx = re.compile(pattern, re.IGNORECASE)
    hits = sorted(n for n in files if rx.match(n))
    return files[hits[0]] if len(hits) == 1 else None


def load_piece(folder: str | os.PathLike) -> Piece:
    """Describe one piece folder: parse its name and locate its files.

    Exact URMP names are preferred; otherwise a unique file with the right prefix and extension is accepted
    (e.g. ``AuSep_1_vn_1_Jupiter.wav`` with an unpadded number, or different letter case).

    Raises:
        DataError: the folder does not exist or its name does not parse.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"piece folder not found: {folder}")
    number, name, tokens = parse_piece_name(folder.name)
    try:
        files = {p.name: p for p in folder.iterdir() if p.is_file()}
    except OSError as e:
        raise DataError(f"cannot list piece folder {folder}: {e.strerror or e}") from None
    fid = re.escape(folder.name)
    piece = Piece(folder=folder, number=number, name=name, instruments=[canonical_code(t) for t in tokens])
    missing: list[str] = []

    def locate(exact: str, pattern: str) -> Path | None:
        found = _find(files, exact, pattern)
        if found is None:
            missing.append(exact)
        return found

    piece.video = locate(video_file_name(folder), rf"^Vid_{fid}\.(mp4|mkv|avi|mov|webm)$")
    piece.mix = locate(mix_file_name(folder), rf"^AuMix_{fid}\.wav$")
    piece.score = locate(score_file_name(folder), rf"^Sco_{fid}\.midi?$")
    for k, (token, code) in enumerate(zip(tokens, piece.instruments), start=1):
        stem = Stem(index=k, instrument=code)
        for kind, attr in (("AuSep", "audio"), ("F0s", "f0"), ("Notes", "notes")):
            exact = stem_file_name(kind, k, token, number, name)
            pattern = rf"^{kind}_0*{k}_{re.escape(token)}_\d+_.+\.{STEM_KINDS[kind]}$"
            setattr(stem, attr, locate(exact, pattern))
        piece.stems.append(stem)
    piece.missing = missing
    return piece


def _is_piece_folder(folder: Path, entries: list[Path]) -> bool:
    """A folder whose own name parses and that holds URMP piece files (not a root of piece folders)."""
    try:
        parse_piece_name(folder.name)
    except DataError:
        return False
    return any(p.name.startswith(FILE_PREFIXES) for p in entries)


def discover_pieces(root: str | os.PathLike) -> list[Piece]:
    """Find the piece folders under a URMP root, sorted by piece number (then folder name).

    ``root`` may also be a single piece folder. Sub-folders whose names do not parse are skipped with a
    :class:`UrmpWarning`, unless nothing else is there: then their parse error is raised. Missing files
    are listed in each :attr:`Piece.missing` (and summarised in one warning per piece).

    Raises:
        DataError: ``root`` missing or not a folder, no piece folders, or the only folder(s) not parsing.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"URMP root not found: {root}")
    if not root.is_dir():
        raise DataError(f"URMP root is not a folder: {root}")
    try:
        entries = sorted(root.iterdir())
    except OSError as e:
        raise DataError(f"cannot list URMP root {root}: {e.strerror or e}") from None
    subdirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
    if _is_piece_folder(root, entries):
        pieces = [load_piece(root)]
    elif not subdirs:
        raise DataError(f"no piece folders (NN_Piece_inst1_inst2...) under {root}")
    else:
        pieces, errors = [], []
        for d in subdirs:
            try:
                pieces.append(load_piece(d))
            except DataError as e:
                errors.append(e)
        if not pieces:
            if len(errors) == 1:
                raise errors[0]
            raise DataError(f"no piece folders (NN_Piece_inst1_inst2...) under {root}: {errors[0]}")
        for e in errors:
            warnings.warn(f"skipping {e}", UrmpWarning, stacklevel=2)
    for p in pieces:
        if p.missing:
            warnings.warn(f"{p.id}: missing {', '.join(p.missing)}", UrmpWarning, stacklevel=2)
    return sorted(pieces, key=lambda p: (p.number, p.id))


# ---------------------------------------------------------------------------------------------- annotations


def _read_table(path: str | os.PathLike, ncols: int, what: str) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
    """Parse a whitespace-separated numeric table.

    Returns:
        ``(values float64 [N, ncols], line_numbers)`` where ``line_numbers()`` gives the 1-based file line
        of each row (computed only when asked: it is needed for error messages alone).

    Fast path: numpy's C parser (``np.loadtxt``) on the newline-normalised text. If it fails, or returns
    the wrong shape or a non-finite value, the slow path (one ``str.split`` per line) re-parses the text to
    find and name the first bad line. Both skip blank lines, so row i is the i-th non-blank line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{what} file not found: {path}") from None
    except OSError as e:
        raise DataError(f"cannot read {what} file {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")

    def line_numbers() -> np.ndarray:
        return np.asarray([i for i, line in enumerate(lines, start=1) if line.strip()], dtype=np.int64)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # loadtxt warns on an empty file; that is a valid, empty table
            values = np.loadtxt(io.StringIO(text), dtype=np.float64, comments=None, ndmin=2)
        if values.size == 0:
            values = values.reshape(0, ncols)
        if values.shape[1] == ncols and np.isfinite(values).all():
            return values, line_numbers
    except ValueError:
        pass

    rows = [(i, tokens) for i, tokens in enumerate((line.split() for line in lines), start=1) if tokens]
    for i, tokens in rows:
        if len(tokens) != ncols:
            raise DataError(f"{path}:{i}: expected {ncols} numbers, got {lines[i - 1].strip()!r}")
        try:
            numbers = [float(t) for t in tokens]
        except ValueError:
            raise DataError(f"{path}:{i}: expected {ncols} numbers, got {lines[i - 1].strip()!r}") from None
        if not all(np.isfinite(numbers)):
            raise DataError(f"{path}:{i}: non-finite value in {lines[i - 1].strip()!r}")
    # numpy refused what float() accepts (e.g. '1_000'): take float()'s reading
    values = np.array([[float(t) for t in tokens] for _, tokens in rows], dtype=np.float64).reshape(-1, ncols)
    return values, line_numbers


def _first_bad(path: Path, line_numbers: Callable[[], np.ndarray], bad: np.ndarray, message: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}:{line_numbers()[i]}: {message}")


def read_f0(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a URMP ``F0s_*.txt`` file.

    Returns:
        ``(times_s [N], f0_hz [N])`` float64; ``f0_hz == 0`` marks unvoiced frames.

    Raises:
        DataError: missing file, or a line without exactly two finite numbers, a negative time or f0, or a
            time earlier than the previous line's (message ``file:line: ...``).
    """
    values, numbers = _read_table(path, 2, "F0")
    times_s, f0_hz = values[:, 0].copy(), values[:, 1].copy()
    _first_bad(Path(path), numbers, times_s < 0, "negative time")
    _first_bad(Path(path), numbers, f0_hz < 0, "negative f0 (use 0 for unvoiced)")
    _first_bad(Path(path), numbers, np.r_[False, np.diff(times_s) < 0], "time goes backwards")
    return times_s, f0_hz


def read_notes(path: str | os.PathLike) -> np.ndarray:
    """Read a URMP ``Notes_*.txt`` file.

    Returns:
        float64 ``[N, 3]``: ``(onset_s, f0_hz, duration_s)`` per note, in file order.

    Raises:
        DataError: missing file, or a line without exactly three finite numbers, a negative onset or
            duration, or a non-positive f0 (message ``file:line: ...``).
    """
    values, numbers = _read_table(path, 3, "notes")
    p = Path(path)
    _first_bad(p, numbers, values[:, 0] < 0, "negative onset")
    _first_bad(p, numbers, values[:, 1] <= 0, "f0 must be positive")
    _first_bad(p, numbers, values[:, 2] < 0, "negative duration")
    return values


def write_f0(path: str | os.PathLike, times_s: np.ndarray, f0_hz: np.ndarray) -> Path:
    """Write an ``F0s_*.txt`` file (``time_s<TAB>f0_hz`` per line, 0 = unvoiced) atomically.

    Args:
        times_s: ``[N]`` frame times in seconds, non-decreasing.
        f0_hz: ``[N]`` pitch in Hz, ``0`` for unvoiced frames.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    if times_s.ndim != 1 or times_s.shape != f0_hz.shape:
        raise ValueError(f"times_s and f0_hz must be 1-D of equal length, got {times_s.shape} and {f0_hz.shape}")
    if not (np.isfinite(times_s).all() and np.isfinite(f0_hz).all()):
        raise ValueError("times_s and f0_hz must be finite")
    if (times_s < 0).any() or (f0_hz < 0).any():
        raise ValueError("times_s and f0_hz must be non-negative (0 Hz = unvoiced)")
    return _write_table(path, np.stack([times_s, f0_hz], axis=1), "%.6f\t%.4f")


def write_notes(path: str | os.PathLike, notes: np.ndarray) -> Path:
    """Write a ``Notes_*.txt`` file (``onset_s<TAB>f0_hz<TAB>duration_s`` per line) atomically.

    Args:
        notes: ``[N, 3]`` array of ``(onset_s, f0_hz, duration_s)``.
    """
    notes = np.asarray(notes, dtype=np.float64)
    if notes.size == 0:
        notes = notes.reshape(0, 3)
    if notes.ndim != 2 or notes.shape[1] != 3:
        raise ValueError(f"notes must be [N, 3] (onset_s, f0_hz, duration_s), got shape {notes.shape}")
    if not np.isfinite(notes).all():
        raise ValueError("notes must be finite")
    if (notes[:, 0] < 0).any() or (notes[:, 1] <= 0).any() or (notes[:, 2] < 0).any():
        raise ValueError("notes need onset_s >= 0, f0_hz > 0 and duration_s >= 0")
    return _write_table(path, notes, "%.6f\t%.4f\t%.6f")


def _write_table(path: str | os.PathLike, values: np.ndarray, fmt: str) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="ascii", newline="\n") as f:
            for row in values:
                f.write(fmt % tuple(row) + "\n")
    return Path(path)
