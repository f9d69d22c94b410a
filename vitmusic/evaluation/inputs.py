"""Evaluation inputs: pair generated files with references, load and trim audio, read reference annotations
(URMP folders or a prepared manifest) and the video frames the sync metric needs.

The rules (pairing by relative path without extension, the trim rule, which annotations replace tracked
references) are described in :mod:`vitmusic.evaluation.runner` and ``docs/evaluation.md``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vitmusic.data.media import AUDIO_EXTS, VIDEO_EXTS
from vitmusic.errors import DataError, VitmusicError


def list_media(folder: str | os.PathLike, exts: Sequence[str]) -> dict[str, Path]:
    """Media files under ``folder`` keyed by relative path without extension (hidden files skipped).

    When two files share a key (``x.wav`` and ``x.flac``) the extension listed first in ``exts`` wins.
    """
    root = Path(folder)
    found: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        ext = p.suffix.lower()
        if ext not in exts:
            continue
        key = rel.with_suffix("").as_posix()
        if key not in found or exts.index(ext) < exts.index(found[key].suffix.lower()):
            found[key] = p
    return found


@dataclasses.dataclass
class Pairing:
    """Result of :func:`pair_files`: ``pairs`` as (clip_id, ref, gen) plus the unmatched keys per side."""

    pairs: list[tuple[str, Path, Path]]
    missing_gen: list[str]  # references without a generated partner
    missing_ref: list[str]  # generated files without a reference


def check_dir(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{what} folder does not exist: {p}")
    if not p.is_dir():
        raise DataError(f"{what} is not a folder: {p}")
    return p


def pair_files(ref_dir: str | os.PathLike, gen_dir: str | os.PathLike) -> Pairing:
    """Pair audio (or video-with-audio) files of two folders by relative path without extension.

    Raises:
        DataError: a folder is missing or holds no media file.
    """
    exts = AUDIO_EXTS + VIDEO_EXTS
    refs = list_media(check_dir(ref_dir, "reference"), exts)
    gens = list_media(check_dir(gen_dir, "generated"), exts)
    if not refs:
        raise DataError(f"no audio files ({', '.join(AUDIO_EXTS)}) in reference folder {ref_dir}")
    if not gens:
        raise DataError(f"no audio files ({', '.join(AUDIO_EXTS)}) in generated folder {gen_dir}")
    pairs = [(k, refs[k], gens[k]) for k in sorted(refs) if k in gens]
    return Pairing(pairs, sorted(set(refs) - set(gens)), sorted(set(gens) - set(refs)))


# ------------------------------------------------------------------------------------ loading / trimming
def load_mono(path: str | os.PathLike, sample_rate: int, t0: float = 0.0, t1: float | None = None) -> np.ndarray:
    """Load ``path`` mono at ``sample_rate`` as float32 [N]; DataError when empty or non-finite."""
    from vitmusic.data.audio import load_audio

    try:
        y, _ = load_audio(path, sample_rate=sample_rate, mono=True, t0=t0, t1=t1)
    except VitmusicError:
        raise
    except Exception as e:  # a decoder error on a user file is a data problem, not a bug here
        raise DataError(f"cannot read audio {path}: {type(e).__name__}: {e}") from e
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if y.size == 0:
        raise DataError(f"audio file has no samples: {path}")
    if not np.all(np.isfinite(y)):
        raise DataError(f"audio file contains NaN/inf samples: {path}")
    return y


MIN_AUDIO_S = 0.1  # shorter is no music to score (a 1-sample file): a clip failure, not a row of nulls


def check_min_length(path: str | os.PathLike, y: np.ndarray, sample_rate: int, min_s: float = MIN_AUDIO_S) -> None:
    """DataError when ``y`` is shorter than ``min_s`` seconds (e.g. a 1-sample generated file)."""
    if len(y) < min_s * sample_rate:
        raise DataError(f"audio too short to score: {path} has {len(y)} sample(s) ({len(y) / sample_rate:.3f} s; "
                        f"at least {min_s:g} s needed)")


def trim_pair(ref: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Trim both signals to the shorter; returns them and the relative length mismatch (of the longer)."""
    n = min(len(ref), len(gen))
    longest = max(len(ref), len(gen))
    mismatch = (longest - n) / longest if longest else 0.0
    return ref[:n], gen[:n], mismatch


def trim_annotations(
    f0: tuple[np.ndarray, np.ndarray] | None, notes: np.ndarray | None, duration_s: float
) -> tuple[tuple[np.ndarray, np.ndarray] | None, np.ndarray | None]:
    """Apply the trim rule to reference annotations: keep what lies inside ``[0, duration_s)``."""
    if f0 is not None:
        t, hz = (np.asarray(a, dtype=np.float64) for a in f0)
        keep = (t >= 0) & (t < duration_s)
        f0 = (t[keep], hz[keep])
    if notes is not None:
        notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
        notes = notes[(notes[:, 0] >= 0) & (notes[:, 0] < duration_s)].copy()
        notes[:, 2] = np.minimum(notes[:, 2], duration_s - notes[:, 0])
    return f0, notes


def skyline_f0(tracks: Sequence[tuple[np.ndarray, np.ndarray]], hop_s: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-stem f0 tracks into one melody: the highest voiced f0 per frame on a ``hop_s`` grid.

    URMP pieces are ensembles; the generated audio is a mix, so the pitch metrics compare it with the top
    voice (the usual melody definition for ensemble music). Returns ``(times_s [F], f0_hz [F])``.
    """
    tracks = [(np.asarray(t, float), np.asarray(f, float)) for t, f in tracks if len(t)]
    if not tracks:
        return np.zeros(0), np.zeros(0)
    end = max(float(t[-1]) for t, _ in tracks)
    grid = np.arange(0.0, end + hop_s / 2, hop_s)
    out = np.zeros_like(grid)
    for t, f in tracks:
        # nearest annotated frame within one hop; an unvoiced frame stays 0
        idx = np.clip(np.searchsorted(t, grid), 1, len(t) - 1) if len(t) > 1 else np.zeros(len(grid), int)
        if len(t) > 1:
            left = idx - 1
            idx = np.where(np.abs(t[left] - grid) <= np.abs(t[idx] - grid), left, idx)
        near = np.abs(t[idx] - grid) <= hop_s
        out = np.maximum(out, np.where(near, f[idx], 0.0))
    return grid, out


@dataclasses.dataclass
class Reference:
    """Reference annotations (and optionally the audio source) of one clip from URMP or a manifest."""

    f0: tuple[np.ndarray, np.ndarray] | None = None
    notes: np.ndarray | None = None
    audio: Path | None = None
    video: Path | None = None
    t0: float = 0.0
    t1: float | None = None
    n_voices: int = 1
    # per stem (None = not annotated) for the ensemble metrics, and what was wrong with a stem's files
    stem_f0s: list | None = None
    stem_notes: list | None = None
    instruments: list[str] = dataclasses.field(default_factory=list)
    stem_problems: list[str] = dataclasses.field(default_factory=list)
    piece: str = ""  # the piece the clip comes from (the unit of the intervals)
    stem_audio: list[Path | None] = dataclasses.field(default_factory=list)  # per stem (per-voice ceilings)


def _complete(stems: list) -> list | None:
    """The stems' annotations when every stem has one, else None: a melody or a note union built from some
    of the voices would score the missing voices as wrong (the metrics fall back to the reference audio)."""
    return stems if stems and all(s is not None for s in stems) else None


def urmp_references(root: str | os.PathLike) -> dict[str, Reference]:
    """References keyed by piece id (whole pieces; f0 = skyline of the stems, notes = union), from a URMP root
    or any other dataset layout (:mod:`vitmusic.data.layouts`, detected)."""
    from vitmusic.data.layouts import discover_pieces

    refs: dict[str, Reference] = {}
    for piece in discover_pieces(check_dir(root, "URMP")):
        problems: list[str] = []
        stem_f0s = [_read_stem(s.load_f0, "F0s", s.index, problems) for s in piece.stems]
        stem_notes = [_read_stem(s.load_notes, "Notes", s.index, problems) for s in piece.stems]
        f0s, notes = _complete(stem_f0s), _complete(stem_notes)
        refs[piece.id] = Reference(
            f0=skyline_f0(f0s) if f0s else None,
            notes=np.concatenate(notes, 0) if notes else None,
            audio=piece.mix,
            video=piece.video,
            n_voices=len(piece.stems),
            stem_f0s=stem_f0s,
            stem_notes=stem_notes,
            instruments=[s.instrument for s in piece.stems],
            stem_problems=problems,
            piece=piece.id,
            stem_audio=[s.audio for s in piece.stems],
        )
    return refs


def _read_stem(load, label: str, index: int, problems: list[str]):
    """One stem's annotation (``load()``: a Stem's loader), or None (missing / malformed: the reason goes to
    ``problems``)."""
    try:
        return load()
    except (DataError, ValueError, OSError) as e:
        problems.append(f"stem {index} {label} annotation unreadable: {e}")
        return None


def manifest_references(path: str | os.PathLike) -> dict[str, Reference]:
    """References keyed by manifest ``clip_id`` (annotations relative to the clip start)."""
    from vitmusic.data.manifest import read_manifest

    refs: dict[str, Reference] = {}
    for clip in read_manifest(path):
        stems = _manifest_stems(clip)
        f0s, notes = _complete(stems["stem_f0s"] or []), _complete(stems["stem_notes"] or [])
        refs[str(clip["clip_id"])] = Reference(
            f0=skyline_f0(f0s) if f0s else None,
            notes=np.concatenate(notes, 0) if notes else None,
            audio=Path(clip["mix"]) if clip.get("mix") else None,
            video=Path(clip["video"]) if clip.get("video") else None,
            t0=float(clip["start_s"]),
            t1=float(clip["end_s"]),
            n_voices=len(clip.get("stems") or clip.get("instruments") or []),
            piece=str(clip.get("piece") or ""),
            **stems,
        )
    return refs


def _manifest_stems(clip: dict) -> dict:
    """Per-stem annotations of a manifest clip; a stem whose file path is null counts as not annotated."""
    stems = clip.get("stems") or []
    f0s = clip.get("f0") or []
    notes = clip.get("notes") or []
    paths = stems if len(stems) == max(len(f0s), len(notes)) else [{"f0": "?", "notes": "?"}] * len(f0s or notes)
    return {
        "stem_f0s": [(np.asarray(d["times_s"], float), np.asarray(d["f0_hz"], float))
                     if p.get("f0") is not None else None for d, p in zip(f0s, paths)] or None,
        "stem_notes": [np.asarray(n, float).reshape(-1, 3) if p.get("notes") is not None else None
                       for n, p in zip(notes, paths)] or None,
        "instruments": [str(p.get("instrument", "")) for p in stems],
        "stem_audio": [Path(p["audio"]) if p.get("audio") else None for p in stems],
    }


def read_motion_frames(video: Path, t0: float, t1: float, size: int = 64, max_fps: float = 30.0,
                       chunk_s: float = 4.0) -> tuple[np.ndarray, float]:
    """Decode ``video`` in ``[t0, t1)`` downscaled to ``size`` x ``size`` (motion needs no detail).

    Returns:
        ``(frames uint8 [T, size, size, 3], fps)``.
    """
    from vitmusic.data.video import VideoReader

    chunks = []
    with VideoReader(video, size=(size, size)) as reader:
        fps = min(float(reader.info.fps), max_fps)
        t1 = min(t1, reader.info.duration_s)
        # decode in short windows: frames are resized after decoding, so one long read would hold the whole
        # range at full resolution in memory
        t = t0
        while t1 - t > 0.5 / fps:
            chunks.append(reader.read(t, min(t + chunk_s, t1), fps=fps).data)
            t += chunk_s
    frames = np.concatenate(chunks, 0) if chunks else np.zeros((0, size, size, 3), np.uint8)
    return frames, fps


def reference_beats(ref: Reference | None, duration_s: float) -> tuple[np.ndarray | None, str]:
    """The clip's annotated beats ``[B, 2]`` (time_s from the clip start, position in bar) or None, and why
    an annotation that exists is unusable ("" otherwise).

    Read from the folder of the piece's mix (:func:`vitmusic.data.beats.find_reference_beats`: a
    ``Beats_*.txt`` or Bach10's score alignment), shifted by the clip start and trimmed to the clip.
    """
    from vitmusic.data.beats import find_reference_beats

    if ref is None or ref.audio is None:
        return None, ""
    try:
        found = find_reference_beats(Path(ref.audio).parent)
    except DataError as e:
        return None, f"beat annotation unreadable: {e}"
    if found is None:
        return None, ""
    beats = found[0].copy()
    beats[:, 0] -= ref.t0
    return beats[(beats[:, 0] >= 0) & (beats[:, 0] < duration_s)], ""
