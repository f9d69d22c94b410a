"""Clip manifests: cut dataset pieces into fixed-length windows with their annotations, write/read JSONL.

Pieces come from any dataset layout (:mod:`vitmusic.data.layouts`: URMP, Bach10, or one a user adds); a clip
records the same fields whatever the layout, ``null`` for what it lacks (Bach10 has no video).

A prepared folder ``OUT/`` holds:

* ``manifest.jsonl`` — one clip per line (plain JSON types only, so it also loads with
  ``datasets.load_dataset("json", data_files="OUT/manifest.jsonl", split="train")``). A clip::

      {"clip_id": "01_Jupiter_vn_vc_0003", "piece": "01_Jupiter_vn_vc", "split": "train",
       "clip_index": 3, "start_s": 30.0, "end_s": 40.0, "duration_s": 10.0, "piece_duration_s": 183.2,
       "video": "/abs/Vid_...mp4" | null, "mix": "/abs/AuMix_...wav" | null, "score": ... | null,
       "instruments": ["vn", "vc"],
       "stems": [{"index": 1, "instrument": "vn", "audio": "/abs/...", "f0": "/abs/...", "notes": "/abs/..."}],
       "notes": [[[onset_s, f0_hz, duration_s], ...] per stem],
       "f0": [{"times_s": [...], "f0_hz": [...]} per stem]}

  Paths are absolute strings, ``null`` when the file is missing. ``notes[k]`` / ``f0[k]`` always have the
  same type (so every consumer can iterate them blindly); when stem k has no annotation file they are empty
  and ``stems[k]["notes"]`` / ``stems[k]["f0"]`` is ``null`` -- check the path to tell "not annotated" from
  "annotated, nothing in this window".
* ``prepare.png`` — pieces/clips per split and instrument tracks per split (see :func:`plot_prepare`).
* ``prepare.json`` — the arguments, the layout, the piece -> split map, counts, the missing-file report, the
  pieces that produced no clip, with the reason, and the tune groups (``tunes``, see below).

Splits are by piece, and pieces that perform one tune (same melodic signature, or the same chorale title in a
synthetic benchmark; :mod:`vitmusic.data.tunes`) are kept in one split; a ``--split-file`` that separates them
is refused unless ``allow_shared_scores``.

Clip windows start at 0 s and advance by the hop; only full windows are kept (the tail shorter than a
window is dropped). Annotation times are relative to the clip start. A note that overlaps the window is
*clipped to it*: a note sustained from before the window gets onset 0 and its remaining duration, a note
running past the end is shortened to end there; so every clip note lies within ``[0, duration_s]``. F0
frames are those with ``start_s <= t < end_s``.

A piece shorter than one window, or with neither a mix nor a video to measure its duration, produces no
clip: it is reported in ``prepare.json`` (``skipped``) and the run goes on; if *no* piece produces a clip,
that is a :class:`~vitmusic.errors.DataError` and nothing is written.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.atomic import atomic_path
from vitmusic.config import Config
from vitmusic.data.layouts import Layout, discover_pieces
from vitmusic.data.prepare_plot import plot_prepare
from vitmusic.data.splits import SPLITS, split_counts, split_pieces
from vitmusic.data.urmp import Piece
from vitmusic.errors import ConfigError, DataError, VitmusicError

__all__ = [
    "MANIFEST_NAME",
    "PLOT_NAME",
    "REPORT_NAME",
    "REQUIRABLE",
    "PrepareResult",
    "clip_f0",
    "clip_notes",
    "check_annotations",
    "check_media",
    "clip_windows",
    "piece_clips",
    "piece_duration",
    "plot_prepare",
    "prepare_manifest",
    "read_manifest",
    "window_count",
]

MANIFEST_NAME = "manifest.jsonl"
REPORT_NAME = "prepare.json"
PLOT_NAME = "prepare.png"
# what --require accepts -> a check that the piece has it
REQUIRABLE: tuple[str, ...] = ("video", "mix", "score", "stems", "f0", "notes")
# more clips than a real dataset cut sensibly gives (URMP: ~8,000 at a 1 s hop, ~80,000 at 0.1 s); a hop of
# 1e-9 s would otherwise grow the manifest without end
MAX_CLIPS = 100_000
_DECIMALS = 6  # microsecond / micro-Hz resolution in the JSON: far below annotation precision


def piece_duration(piece: Piece) -> float:
    """Duration of a piece in seconds: from the mix (soundfile header), else from the video container.

    Raises:
        DataError: neither a mix nor a video, or the file cannot be read.
    """
    if piece.mix is not None:
        import soundfile as sf

        try:
            info = sf.info(str(piece.mix))
        except (RuntimeError, sf.LibsndfileError) as e:
            raise DataError(f"cannot read audio file {piece.mix}: {e}") from None
        return info.frames / info.samplerate
    if piece.video is not None:
        return _video_duration(piece.video)
    raise DataError(f"piece {piece.id} has neither a mix nor a video to measure its duration")


def _video_duration(path: Path) -> float:
    import av

    try:
        with av.open(str(path)) as container:
            if container.duration is not None:
                return container.duration / av.time_base
            stream = next(iter(container.streams.video), None)
            if stream is not None and stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
    except (av.FFmpegError, OSError) as e:
        raise DataError(f"cannot read video file {path}: {e}") from None
    raise DataError(f"cannot tell the duration of video file {path}")


def window_count(duration_s: float, clip_s: float, hop_s: float | None = None) -> int:
    """How many full windows :func:`clip_windows` cuts (computed without building them)."""
    hop_s = clip_s if hop_s is None else hop_s
    if not clip_s > 0 or not hop_s > 0:
        raise ValueError(f"clip and hop lengths must be positive, got {clip_s} and {hop_s}")
    if not duration_s + 1e-6 >= clip_s:
        return 0
    return int(np.floor((duration_s - clip_s + 1e-6) / hop_s)) + 1


def clip_windows(duration_s: float, clip_s: float, hop_s: float | None = None) -> list[tuple[float, float]]:
    """Full windows ``(start_s, end_s)`` of ``clip_s`` seconds every ``hop_s`` (default ``clip_s``) from 0.

    Starts are computed as ``i * hop_s`` (no accumulated rounding); a window ending within 1 µs past the
    end still counts as full.

    Raises:
        VitmusicError: more than :data:`MAX_CLIPS` windows (a hop or clip length far too small).
    """
    hop_s = clip_s if hop_s is None else hop_s
    count = window_count(duration_s, clip_s, hop_s)
    if count > MAX_CLIPS:
        raise VitmusicError(_too_many(count, clip_s, hop_s))
    return [(round(i * hop_s, _DECIMALS), round(i * hop_s + clip_s, _DECIMALS)) for i in range(count)]


def _too_many(count: float, clip_s: float, hop_s: float) -> str:
    return (f"--clip-seconds {clip_s:g} / --hop-seconds {hop_s:g} would cut {count:.3g} clips (more than "
            f"{MAX_CLIPS:,}): use a longer hop or clip")


def check_media(piece: Piece) -> list[str]:
    """Open every video and audio file a piece lists (container, streams, duration); the problems found.

    Returns:
        one ``"<file>: <reason>"`` per broken file (empty: all readable). Annotation files are read later.
    """
    import soundfile as sf

    from vitmusic.data.video import probe_video

    problems = []
    if piece.video is not None:
        try:
            info = probe_video(piece.video)
            if not info.duration_s > 0:
                problems.append(f"{piece.video}: video of duration 0")
        except DataError as e:
            problems.append(str(e))
    audio = [piece.mix] + [s.audio for s in piece.stems]
    for path in (p for p in audio if p is not None):
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError, OSError) as e:
            problems.append(f"{path}: cannot read audio ({' '.join(str(e).split())})")
            continue
        if info.frames == 0 or info.samplerate <= 0:
            problems.append(f"{path}: audio file without samples")
    return problems


def check_annotations(piece: Piece) -> list[str]:
    """Read every annotation a piece lists (f0, notes); one ``"<file>: <reason>"`` per malformed file (once,
    however many stems share it)."""
    problems: list[str] = []
    for stem in piece.stems:
        for load in (stem.load_f0, stem.load_notes):
            try:
                load()
            except DataError as e:
                if str(e) not in problems:
                    problems.append(str(e))
    return problems


def _first(problems: list[str]) -> str:
    return problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")


def clip_notes(notes: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """Notes overlapping ``[start_s, end_s)``, clipped to the window, times relative to ``start_s``.

    Args:
        notes: ``[N, 3]`` (onset_s, f0_hz, duration_s), absolute times.

    Returns:
        ``[M, 3]`` with ``0 <= onset_s`` and ``onset_s + duration_s <= end_s - start_s``. A zero-length
        note is kept if its onset lies in the window.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    onset, offset = notes[:, 0], notes[:, 0] + notes[:, 2]
    keep = (onset < end_s) & ((offset > start_s) | ((notes[:, 2] == 0) & (onset >= start_s)))
    sel = notes[keep]
    new_onset = np.maximum(sel[:, 0], start_s)
    new_offset = np.minimum(sel[:, 0] + sel[:, 2], end_s)
    return np.stack([new_onset - start_s, sel[:, 1], new_offset - new_onset], axis=1)


def clip_f0(times_s: np.ndarray, f0_hz: np.ndarray, start_s: float, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """F0 frames with ``start_s <= t < end_s`` -> ``(times_s [M] relative to start_s, f0_hz [M])``."""
    times_s = np.asarray(times_s, dtype=np.float64)
    keep = (times_s >= start_s) & (times_s < end_s)
    return times_s[keep] - start_s, np.asarray(f0_hz, dtype=np.float64)[keep]


def _plain(x: np.ndarray) -> list:
    return np.round(x, _DECIMALS).tolist()


def _path(p: Path | None) -> str | None:
    return None if p is None else str(Path(p).resolve())


def piece_clips(piece: Piece, split: str, clip_s: float, hop_s: float | None = None, *,
                duration_s: float | None = None) -> list[dict]:
    """All clip records (manifest lines) of one piece.

    Args:
        piece: from :func:`~vitmusic.data.layouts.discover_pieces`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        clip_s, hop_s: window length and hop in seconds (hop defaults to the window length).
        duration_s: piece duration; measured with :func:`piece_duration` when ``None``.

    Raises:
        DataError: the piece is shorter than one window, has no duration source, or has a malformed
            annotation file.
    """
    if duration_s is None:
        duration_s = piece_duration(piece)
    windows = clip_windows(duration_s, clip_s, hop_s)
    if not windows:
        raise DataError(f"clip window {clip_s:g} s is longer than piece {piece.id} ({duration_s:.1f} s)")
    notes = [s.load_notes() for s in piece.stems]
    f0 = [s.load_f0() for s in piece.stems]
    stems = [{"index": s.index, "instrument": s.instrument, "audio": _path(s.audio), "f0": _path(s.f0),
              "notes": _path(s.notes)} for s in piece.stems]
    clips = []
    for i, (start_s, end_s) in enumerate(windows):
        clip_f0s = []
        for track in f0:
            t, f = ((), ()) if track is None else clip_f0(track[0], track[1], start_s, end_s)
            clip_f0s.append({"times_s": _plain(np.asarray(t)), "f0_hz": _plain(np.asarray(f))})
        clips.append({
            "clip_id": f"{piece.id}_{i:04d}",
            "piece": piece.id,
            "split": split,
            "clip_index": i,
            "start_s": float(start_s),
            "end_s": float(end_s),
            "duration_s": round(end_s - start_s, _DECIMALS),
            "piece_duration_s": round(float(duration_s), _DECIMALS),
            "video": _path(piece.video),
            "mix": _path(piece.mix),
            "score": _path(piece.score),
            "instruments": list(piece.instruments),
            "stems": stems,
            "notes": [[] if n is None else _plain(clip_notes(n, start_s, end_s)) for n in notes],
            "f0": clip_f0s,
        })
    return clips


def _missing_required(piece: Piece, require: Iterable[str]) -> list[str]:
    """Names of required files the piece lacks."""
    lacking = []
    for what in require:
        if what in ("video", "mix", "score"):
            if getattr(piece, what) is None:
                lacking.append(what)
        else:
            attr = {"stems": "audio", "f0": "f0", "notes": "notes"}[what]
            if any(getattr(s, attr) is None for s in piece.stems):
                lacking.append(what)
    return lacking


@dataclass
class PrepareResult:
    """What :func:`prepare_manifest` wrote and found."""

    manifest: Path
    report: Path
    split_map: dict[str, str]
    clips_per_split: dict[str, int]
    pieces_per_split: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    plot: Path | None = None
    layout: str = "urmp"
    tune_groups: list[list[str]] = field(default_factory=list)

    def summary(self) -> str:
        """One paragraph for people."""
        n_pieces = sum(self.pieces_per_split.values())
        n_clips = sum(self.clips_per_split.values())
        per = ", ".join(f"{s} {self.clips_per_split[s]} clip(s) / {self.pieces_per_split[s]} piece(s)"
                        for s in SPLITS)
        text = f"Prepared {n_clips} clip(s) from {n_pieces} piece(s) ({per}) -> {self.manifest}"
        text += f" (overview plot {self.plot.name})." if self.plot else "."
        text += f" Layout: {self.layout}." if self.layout != "urmp" else ""
        if self.tune_groups:
            text += (f" {len(self.tune_groups)} group(s) of pieces performing one tune, each kept in one split "
                     f"({sum(map(len, self.tune_groups))} pieces; listed in {self.report.name}).")
        if self.skipped:
            text += f" Skipped {len(self.skipped)} piece(s): " + "; ".join(
                f"{p} ({why})" for p, why in list(self.skipped.items())[:3]) + (" ..." if len(self.skipped) > 3 else "")
            text += "."
        n_missing = sum(len(v) for v in self.missing.values())
        if n_missing:
            text += f" {n_missing} expected file(s) missing in {len(self.missing)} piece(s) (listed in {self.report.name})."
        else:
            text += " No expected file is missing."
        return text


def prepare_manifest(
    urmp_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    clip_s: float,
    hop_s: float | None = None,
    *,
    layout: str | Layout = "auto",
    split_file: str | os.PathLike | None = None,
    seed: int = 0,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    require: Sequence[str] = (),
    skip_incomplete: bool = False,
    progress: bool | None = None,
    plot: bool = True,
    allow_shared_scores: bool = False,
) -> PrepareResult:
    """Discover pieces, split them, cut clips and write ``manifest.jsonl`` + ``prepare.json`` atomically.

    Args:
        urmp_root: dataset root folder (or a single piece folder), of any layout.
        out_dir: output folder (created).
        clip_s: window length in seconds; hop_s: hop in seconds (default ``clip_s``).
        layout: ``"auto"`` (detect), a layout name (``"urmp"``, ``"bach10"``, a registered one) or a
            :class:`~vitmusic.data.layouts.Layout`.
        split_file, seed, ratios: see :func:`~vitmusic.data.splits.split_pieces`.
        require: files every piece must have, among :data:`REQUIRABLE`.
        skip_incomplete: skip (and report) a piece lacking a required file, or with a broken media or
            annotation file, instead of failing.
        progress: tqdm bar over pieces (``None``: only on a terminal).
        plot: also save ``prepare.png`` (see :func:`plot_prepare`).
        allow_shared_scores: accept a split file that puts pieces performing one tune (same melodic signature,
            or one chorale of a synthetic benchmark) in two splits; refused by default (content leakage).

    Raises:
        DataError: bad root, no pieces, a required file missing or a broken media / annotation file (unless
            ``skip_incomplete``), a split file separating one tune, or no piece long enough for one window.
            Nothing is written then.
        VitmusicError: invalid arguments.
    """
    from tqdm import tqdm

    if not 0 < clip_s < float("inf"):
        raise VitmusicError(f"--clip-seconds must be positive and finite, got {clip_s:g}")
    if hop_s is not None and not 0 < hop_s < float("inf"):
        raise VitmusicError(f"--hop-seconds must be positive and finite, got {hop_s:g}")
    unknown = [r for r in require if r not in REQUIRABLE]
    if unknown:
        raise VitmusicError(f"cannot require {unknown[0]!r} (choose from {', '.join(REQUIRABLE)})")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise VitmusicError(f"output path exists and is not a folder: {out_dir}")
    from vitmusic.outputs import check_output_dir

    check_output_dir(out_dir, "--out")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pieces = discover_pieces(urmp_root, layout)
    notes_seen = [str(w.message) for w in caught]

    skipped: dict[str, str] = {}
    too_short: dict[str, float] = {}
    usable: list[tuple[Piece, float]] = []
    broken: dict[str, list[str]] = {}
    bad_annotations: dict[str, list[str]] = {}
    n_clips = 0
    for piece in pieces:
        lacking = _missing_required(piece, require)
        if lacking:
            reason = f"missing required {', '.join(lacking)}"
            if not skip_incomplete:
                raise DataError(f"piece {piece.id}: {reason} (see --require)")
            skipped[piece.id] = reason
        elif problems := check_media(piece):  # every listed video/audio is opened before any clip is cut
            broken[piece.id] = problems
            skipped[piece.id] = f"broken media: {_first(problems)}"
        elif problems := check_annotations(piece):  # and every annotation read
            bad_annotations[piece.id] = problems
            skipped[piece.id] = f"broken annotation: {_first(problems)}"
        elif piece.mix is None and piece.video is None:
            skipped[piece.id] = "no mix or video to measure its duration"
        else:
            duration_s = piece_duration(piece)
            n = window_count(duration_s, clip_s, hop_s)
            n_clips += n
            if n_clips > MAX_CLIPS:
                raise VitmusicError(_too_many(n_clips, clip_s, clip_s if hop_s is None else hop_s))
            if n:
                usable.append((piece, duration_s))
            else:
                too_short[piece.id] = duration_s
                skipped[piece.id] = f"clip window {clip_s:g} s is longer than the piece ({duration_s:.1f} s)"
    if broken and not skip_incomplete:
        n_files = sum(len(v) for v in broken.values())
        first = next(iter(broken.values()))[0]
        raise DataError(f"{n_files} broken media file(s) in {len(broken)} piece(s), first {first} "
                        "(--skip-incomplete skips such pieces)")
    if bad_annotations and not skip_incomplete:
        n_files = sum(len(v) for v in bad_annotations.values())
        first = next(iter(bad_annotations.values()))[0]
        raise DataError(f"{n_files} malformed annotation file(s) in {len(bad_annotations)} piece(s), first {first} "
                        "(--skip-incomplete skips such pieces)")
    if not usable:
        if too_short:
            pid, duration_s = next(iter(too_short.items()))
            others = f" (and {len(skipped) - 1} other skipped piece(s))" if len(skipped) > 1 else ""
            raise DataError(f"clip window {clip_s:g} s is longer than piece {pid} ({duration_s:.1f} s){others}")
        pid, reason = next(iter(skipped.items()))
        raise DataError(f"no usable piece under {urmp_root}: {pid}: {reason}")

    from vitmusic.data.tunes import check_groups_disjoint, find_tune_groups, score_titles

    tunes = find_tune_groups([p for p, _ in usable], score_titles(urmp_root))
    notes_seen += tunes.warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split_map = split_pieces([p.id for p, _ in usable], ratios=ratios, seed=seed, split_file=split_file,
                                 groups=[g for _, g in tunes.groups])
    notes_seen += [str(w.message) for w in caught]
    if not allow_shared_scores:
        check_groups_disjoint(split_map, tunes.groups)

    # Clips stream straight into the (temporary) manifest: a URMP-sized run with a short hop holds
    # hundreds of MB of f0 lists, which need not all live in memory. Only light per-clip facts are kept.
    seen: list[dict] = []
    manifest_path, report_path = out_dir / MANIFEST_NAME, out_dir / REPORT_NAME
    with atomic_path(manifest_path) as tmp_manifest:
        with open(tmp_manifest, "w", encoding="utf-8", newline="\n") as f:
            bar = tqdm(usable, desc="prepare", unit="piece", leave=False,
                       disable=None if progress is None else not progress)
            for piece, duration_s in bar:
                for c in piece_clips(piece, split_map[piece.id], clip_s, hop_s, duration_s=duration_s):
                    f.write(json.dumps(c, allow_nan=False, separators=(",", ":")) + "\n")
                    seen.append({"piece": c["piece"], "split": c["split"], "instruments": c["instruments"]})

        by_split = {s: {c["piece"] for c in seen if c["split"] == s} for s in SPLITS}
        # the whole point of piece-level splits: fail loudly should a piece ever straddle two
        straddling = sorted((by_split["train"] & by_split["val"]) | (by_split["train"] & by_split["test"])
                            | (by_split["val"] & by_split["test"]))
        if straddling:
            raise DataError(f"piece(s) in two splits: {', '.join(straddling)} (a bug: please report it)")
        clips_per_split = {s: sum(c["split"] == s for c in seen) for s in SPLITS}
        missing = {p.id: list(p.missing) for p in pieces if p.missing}
        from vitmusic import __version__

        report = {
            "arguments": {"urmp_root": str(Path(urmp_root).resolve()), "out_dir": str(out_dir.resolve()),
                          "clip_seconds": clip_s, "hop_seconds": clip_s if hop_s is None else hop_s,
                          "split_file": None if split_file is None else str(Path(split_file).resolve()),
                          "seed": seed, "ratios": list(ratios), "require": list(require),
                          "skip_incomplete": skip_incomplete, "allow_shared_scores": allow_shared_scores},
            "layout": pieces[0].layout,
            "splits": split_map,
            "counts": {"pieces": split_counts(split_map), "clips": clips_per_split,
                       "pieces_found": len(pieces), "pieces_skipped": len(skipped)},
            "skipped": skipped,
            "broken_media": broken,
            "broken_annotations": bad_annotations,
            "missing": missing,
            "warnings": notes_seen,
            "tunes": tunes.report,
            "vitmusic_version": __version__,
        }
        # the report lands just before the manifest: a manifest never appears without its report
        with atomic_path(report_path) as tmp_report:
            tmp_report.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    plot_path = plot_prepare(seen, split_map, out_dir / PLOT_NAME) if plot else None
    return PrepareResult(manifest=manifest_path, report=report_path, split_map=split_map,
                         clips_per_split=clips_per_split, pieces_per_split=split_counts(split_map),
                         skipped=skipped, missing=missing, warnings=notes_seen, plot=plot_path,
                         layout=pieces[0].layout, tune_groups=[g for _, g in tunes.groups])


def read_manifest(path_or_dir: str | os.PathLike, split: str | None = None) -> list[dict]:
    """Read a clip manifest (the ``manifest.jsonl`` file, or the folder holding it).

    Args:
        split: keep only the clips of this split (``"train"``, ``"val"``, ``"test"``).

    Returns:
        clip dicts in file order (see the module docstring for the keys).

    Raises:
        DataError: missing file, or a line that is not a JSON object with ``clip_id``/``piece``/``split``
            (message ``file:line: ...``).
        VitmusicError: unknown ``split``.
    """
    if split is not None and split not in SPLITS:
        # usually a config value, hence a user error reported in one line, not a ValueError traceback
        raise VitmusicError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"manifest not found: {path}")
    clips = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                clip = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: invalid JSON: {e.msg}") from None
            if not isinstance(clip, dict) or not {"clip_id", "piece", "split"} <= clip.keys():
                raise DataError(f"{path}:{i}: not a clip record (needs clip_id, piece, split)")
            if split is None or clip["split"] == split:
                clips.append(clip)
    return clips


def read_clips(config: Config) -> list[dict[str, Any]]:
    """All manifest rows of the configured train/val/test splits (``data.max_clips`` per split)."""
    if not config.data.manifest:
        raise ConfigError("data.manifest is not set (the manifest.jsonl written by 'vitmusic prepare')")
    clips = []
    for split in dict.fromkeys((config.data.train_split, config.data.val_split, config.data.test_split)):
        rows = read_manifest(config.data.manifest, split=split)
        clips += rows if config.data.max_clips is None else rows[: config.data.max_clips]
    if not clips:
        raise DataError(f"{config.data.manifest}: no clips in splits train/val/test")
    return clips
