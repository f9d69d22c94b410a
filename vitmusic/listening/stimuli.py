"""Build listening-test stimuli: equal-length, loudness-matched, blinded mp4 excerpts and their design.

Inputs are folders paired by file name without extension (as ``vitmusic evaluate`` pairs them): one folder of
performance videos, one of reference audio (or the videos' own soundtracks) and one per system. An *item* is a
name present in every folder; names missing somewhere are reported, not fatal.

Output folder ``OUT`` (written atomically, as a whole)::

    OUT/public/media/<id>.mp4     one per stimulus: the item's video excerpt with the stimulus audio
    OUT/public/manifest.csv       participant, trial, position, stimulus_id, file (what the test page serves)
    OUT/public/test.json          design and scale, no system names
    OUT/private/answer_key.csv    stimulus_id -> item, system (kept out of the served folder)
    OUT/private/participants.csv  participant, token, path: each participant's unguessable login token
    OUT/private/stimuli.json      settings, excerpt windows, loudness gains, missing / skipped items
    OUT/private/audio/<id>.wav    the normalised excerpt audio (for checks and analysis)

Every media file ends in an MP4 ``free`` box of random length and content, so two stimuli that sound the same
(the hidden and the open reference of a MUSHRA trial) still differ in size and bytes: the hidden reference
cannot be found by comparing downloads.

``vitmusic listen OUT`` serves only ``OUT/public/media`` and the app's own files; ``vitmusic listen-results
OUT`` joins the ratings with the answer key.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import struct
import sys
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vitmusic.atomic import atomic_path
from vitmusic.errors import ConfigError, DataError, VitmusicError
from vitmusic.listening import design as dz
from vitmusic.listening.loudness import apply_gain, low_anchor, match_item_loudness

PUBLIC = "public"
PRIVATE = "private"
MEDIA = "media"
MANIFEST_COLUMNS = ("participant", "trial", "position", "stimulus_id", "file")
ANSWER_KEY_COLUMNS = ("stimulus_id", "item", "system")


@dataclass
class StimuliConfig:
    """Settings of :func:`build_stimuli` (``vitmusic stimuli`` arguments)."""

    systems: dict[str, Path]  # name -> folder of that system's audio (or video-with-audio) files
    videos: Path
    out: Path
    ref: Path | None = None  # None: the videos' own soundtracks are the reference
    design: str = "mushra"
    participants: int = 20
    excerpt_s: float = 10.0
    lufs: float = -23.0
    peak_dbfs: float = -1.0
    seed: int = 0
    sample_rate: int = 48000
    baseline: str | None = None  # A/B: compare every system against this one (default: all pairs)
    crf: int = 18
    overwrite: bool = False


@dataclass
class StimuliResult:
    """What :func:`build_stimuli` made and what it left out."""

    out: Path
    items: list[str]
    n_stimuli: int
    missing: dict[str, list[str]] = field(default_factory=dict)  # name -> folders lacking it
    skipped: dict[str, str] = field(default_factory=dict)  # item -> reason
    lowered: dict[str, float] = field(default_factory=dict)  # item -> level used (LUFS) when below target


@dataclass
class _Item:
    name: str
    video: Path
    sources: dict[str, Path]  # condition -> audio source (systems + "reference")
    t0_s: float = 0.0
    fps: Fraction = Fraction(30)
    n_frames: int = 0

    @property
    def duration_s(self) -> float:
        return float(self.n_frames / self.fps)


def _check_config(cfg: StimuliConfig) -> None:
    if cfg.design not in dz.DESIGNS:
        raise ConfigError(f"--design must be one of {', '.join(dz.DESIGNS)}, got {cfg.design!r}")
    if not cfg.systems:
        raise ConfigError("give at least one --system NAME=DIR")
    dz.check_system_names(list(cfg.systems))
    if cfg.design == "ab":
        dz.ab_pairs(list(cfg.systems), cfg.baseline)
    elif cfg.baseline is not None:
        raise ConfigError("--baseline applies to --design ab only")
    if not cfg.excerpt_s >= 1.0:
        raise ConfigError(f"--excerpt-seconds must be >= 1, got {cfg.excerpt_s}")
    if cfg.sample_rate < 8000:
        raise ConfigError(f"--sample-rate must be >= 8000 Hz, got {cfg.sample_rate}")
    dz.participant_ids(cfg.participants)
    n_cond = len(cfg.systems) + 2
    if cfg.design == "mushra" and n_cond > dz.MUSHRA_MAX_CONDITIONS:
        print(f"vitmusic stimuli: warning: {n_cond} conditions per trial; BS.1534 recommends at most "
              f"{dz.MUSHRA_MAX_CONDITIONS}", file=sys.stderr)
    out = Path(cfg.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not cfg.overwrite:
        raise ConfigError(f"output folder {out} exists and is not empty (pass --overwrite to replace it, "
                          "ratings included)")


def pair_items(cfg: StimuliConfig) -> tuple[list[_Item], dict[str, list[str]]]:
    """Items present in every input folder, and the names missing from some folder (name -> folders)."""
    from vitmusic.data.media import AUDIO_EXTS, VIDEO_EXTS
    from vitmusic.evaluation.inputs import list_media

    def listing(folder: Path, exts, what: str) -> dict[str, Path]:
        if not Path(folder).is_dir():
            raise DataError(f"{what} folder does not exist: {folder}")
        return list_media(folder, exts)

    videos = listing(cfg.videos, VIDEO_EXTS, "--videos")
    folders = {"videos": videos}
    folders["reference"] = videos if cfg.ref is None else listing(cfg.ref, AUDIO_EXTS + VIDEO_EXTS, "--ref")
    for name, folder in cfg.systems.items():
        folders[name] = listing(folder, AUDIO_EXTS + VIDEO_EXTS, f"--system {name}")
    names = set().union(*folders.values())
    common = set.intersection(*(set(v) for v in folders.values()))
    missing = {n: [k for k, v in folders.items() if n not in v] for n in sorted(names - common)}
    items = [
        _Item(n, videos[n], {k: v[n] for k, v in folders.items() if k != "videos"}) for n in sorted(common)
    ]
    return items, missing


def _plan_window(item: _Item, excerpt_s: float) -> None:
    """Centre an excerpt of ``excerpt_s`` (rounded to whole frames) in the span every source covers."""
    from vitmusic.data.audio import audio_duration
    from vitmusic.data.video import probe_video
    from vitmusic.data.videowriter import parse_fps

    info = probe_video(item.video)
    common = min([info.duration_s] + [audio_duration(p) for p in item.sources.values()])
    item.fps = parse_fps(round(info.fps, 6))
    item.n_frames = int(round(excerpt_s * item.fps))
    if item.duration_s > common + 1e-6:
        raise DataError(f"shorter than the excerpt: every source covers only {common:.2f} s, "
                        f"the excerpt needs {item.duration_s:.2f} s")
    # on the frame grid, so the first excerpt frame is the one shown at t0
    item.t0_s = float(np.floor((common - item.duration_s) / 2 * item.fps) / item.fps)


def _load_excerpt(path: Path, t0_s: float, n: int, sample_rate: int) -> np.ndarray:
    from vitmusic.data.audio import load_audio

    duration_s = n / sample_rate
    try:
        y, _ = load_audio(path, sample_rate=sample_rate, mono=True, t0=t0_s, t1=t0_s + duration_s)
    except VitmusicError:
        raise
    except Exception as e:  # a decoder error on a user file is a data problem
        raise DataError(f"{path}: cannot read audio ({type(e).__name__}: {e})") from e
    if not np.all(np.isfinite(y)):
        raise DataError(f"{path}: audio contains NaN or inf")
    y = y[:n]
    return np.pad(y, (0, n - y.size)) if y.size < n else y


def _write_excerpt_video(item: _Item, path: Path, crf: int) -> Path:
    """The item's video frames for its window, re-encoded without audio (streamed ~1 s at a time)."""
    from vitmusic.data.video import VideoReader, probe_video
    from vitmusic.data.videowriter import write_video

    info = probe_video(item.video)
    size = None
    if info.height % 2 or info.width % 2:  # H.264 yuv420p needs even sizes
        size = (info.height - info.height % 2, info.width - info.width % 2)
    fps = float(item.fps)

    def frames():
        with VideoReader(item.video, size=size) as reader:
            step = max(1, int(round(fps)))
            for start in range(0, item.n_frames, step):
                k = min(step, item.n_frames - start)
                chunk = reader.read(item.t0_s + start / fps, item.t0_s + (start + k) / fps, fps=fps)
                yield from chunk.data[:k]

    return write_video(path, frames(), item.fps, crf=crf)


def pad_mp4(path: Path, min_bytes: int = 64, max_bytes: int = 4096) -> Path:
    """Append a top-level ``free`` box of random length and random content to an MP4 (players skip it).

    Muxing the same audio twice gives the same bytes; after this the files differ, while sounding identical.
    """
    n = min_bytes + secrets.randbelow(max_bytes - min_bytes + 1)
    with open(path, "ab") as f:
        f.write(struct.pack(">I4s", 8 + n, b"free") + secrets.token_bytes(n))
    return path


def participant_tokens(participants) -> dict[str, str]:
    """An unguessable login token (128 random bits, URL-safe) per participant id."""
    return {pid: secrets.token_urlsafe(16) for pid in participants}


def _csv_text(columns, rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def build_stimuli(cfg: StimuliConfig, *, progress: bool = True) -> StimuliResult:
    """Make the stimuli, the public manifest and the private answer key (see the module doc).

    Raises:
        ConfigError: bad settings, or the output folder exists (without ``overwrite``).
        DataError: a missing input folder, or no item could be made.
    """
    from tqdm import tqdm

    from vitmusic.data.audio import write_audio
    from vitmusic.data.videowriter import mux_audio

    _check_config(cfg)
    systems = list(cfg.systems)
    items, missing = pair_items(cfg)
    skipped: dict[str, str] = {}
    if not items:
        raise DataError("no item is present in every folder (videos, reference and each system); "
                        f"{len(missing)} name(s) lack a partner")
    conds = dz.conditions(cfg.design, systems)
    sr = int(cfg.sample_rate)
    out = Path(cfg.out)
    done: list[_Item] = []
    records: dict[str, dict] = {}
    lowered: dict[str, float] = {}
    with atomic_path(out, is_dir=True) as tmp:
        media = tmp / PUBLIC / MEDIA
        audio_dir = tmp / PRIVATE / "audio"
        media.mkdir(parents=True)
        audio_dir.mkdir(parents=True)
        ids = dz.assign_ids([it.name for it in items], conds)
        for item in tqdm(items, desc="stimuli", unit="item", disable=not progress, file=sys.stderr):
            try:
                _plan_window(item, cfg.excerpt_s)
                n = int(round(item.duration_s * sr))
                signals = {c: _load_excerpt(item.sources[c], item.t0_s, n, sr) for c in systems}
                ref = _load_excerpt(item.sources["reference"], item.t0_s, n, sr)
                if cfg.design == "mushra":
                    signals[dz.HIDDEN_REFERENCE] = ref
                    signals[dz.ANCHOR] = low_anchor(ref, sr)
                    signals[dz.OPEN_REFERENCE] = ref
                gains = match_item_loudness(signals, sr, cfg.lufs, cfg.peak_dbfs)
                excerpt = _write_excerpt_video(item, tmp / PRIVATE / f".excerpt{len(done)}.mp4", cfg.crf)
            except VitmusicError as e:
                skipped[item.name] = str(e)
                print(f"vitmusic stimuli: skipped {item.name}: {e}", file=sys.stderr)
                continue
            for c, y in signals.items():
                sid = ids[(item.name, c)]
                y = apply_gain(y, gains[c].gain_db)
                write_audio(audio_dir / f"{sid}.wav", y, sr, subtype="PCM_24")
                pad_mp4(mux_audio(excerpt, y, sr, media / f"{sid}.mp4"))
                g = asdict(gains[c])
                g["loudness_lufs"] = g["loudness_lufs"] if np.isfinite(g["loudness_lufs"]) else None
                records[sid] = {"item": item.name, "system": c, **g}
            excerpt.unlink()
            level = next(iter(gains.values())).target_lufs
            if level < cfg.lufs - 1e-9:
                lowered[item.name] = level
            done.append(item)
        if not done:
            raise DataError(f"no item could be made ({len(skipped)} skipped: see the messages above)")
        names = [it.name for it in done]
        slots = dz.build_slots(cfg.design, names, systems, ids, participants=cfg.participants, seed=cfg.seed,
                               baseline=cfg.baseline)
        manifest = [(s.participant, s.trial, s.position, s.stimulus_id, f"{MEDIA}/{s.stimulus_id}.mp4")
                    for s in slots]
        (tmp / PUBLIC / "manifest.csv").write_text(_csv_text(MANIFEST_COLUMNS, manifest), encoding="utf-8")
        public = {"design": cfg.design, "scale": [0, 100] if cfg.design == "mushra" else None,
                  "participants": cfg.participants, "trials_per_participant": max(s.trial for s in slots)}
        (tmp / PUBLIC / "test.json").write_text(json.dumps(public, indent=2) + "\n", encoding="utf-8")
        tokens = participant_tokens(dict.fromkeys(s.participant for s in slots))
        (tmp / PRIVATE / "participants.csv").write_text(
            _csv_text(("participant", "token", "path"), [(p, t, f"/?participant={t}") for p, t in tokens.items()]),
            encoding="utf-8")
        key = sorted((sid, r["item"], r["system"]) for sid, r in records.items())
        (tmp / PRIVATE / "answer_key.csv").write_text(_csv_text(ANSWER_KEY_COLUMNS, key), encoding="utf-8")
        settings = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in asdict(cfg).items()}
        settings["systems"] = {k: str(v) for k, v in cfg.systems.items()}
        private = {
            "settings": settings,
            "items": {it.name: {"video": str(it.video), "sources": {k: str(v) for k, v in it.sources.items()},
                                "start_s": it.t0_s, "end_s": it.t0_s + it.duration_s, "fps": str(it.fps),
                                "n_frames": it.n_frames} for it in done},
            "stimuli": records,
            "lowered_items": lowered,
            "missing": missing,
            "skipped": skipped,
        }
        (tmp / PRIVATE / "stimuli.json").write_text(json.dumps(private, indent=2) + "\n",
                                                   encoding="utf-8")
    return StimuliResult(out, [it.name for it in done], len(records), missing, skipped, lowered)
