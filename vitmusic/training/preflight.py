"""Checks ``vitmusic train`` makes before any model is loaded or cache built: a bad ``--resume`` checkpoint,
an unwritable run folder or a manifest whose videos are gone fail in one line within a second, not after the
models load and extraction starts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vitmusic.config import Config
from vitmusic.errors import DataError

__all__ = ["check_before_training", "check_cache_dir", "check_manifest_media"]

# tasks that read clip videos (the diffusion synthesizer trains on notes and audio only)
VIDEO_TASKS = ("musicgen", "transcription")


def check_manifest_media(config: Config, media: Sequence[str] | None = None) -> int:
    """Every clip of the configured splits must have the media its model kind reads on disk.

    ``media``: the manifest keys to check (the kind's ``inputs``; default: video and mix for the video tasks,
    mix for the others).

    Returns:
        the number of clips checked.

    Raises:
        DataError: one line with the count and the first missing or empty file.
    """
    from vitmusic.data.manifest import read_manifest

    d = config.data
    if not d.manifest:
        return 0
    clips: list[dict[str, Any]] = []
    for split in dict.fromkeys((d.train_split, d.val_split, d.test_split)):
        rows = read_manifest(d.manifest, split=split)
        clips += rows if d.max_clips is None else rows[: d.max_clips]
    keys = tuple(media) if media is not None else ("video", "mix") if config.task in VIDEO_TASKS else ("mix",)
    if "video" in keys:
        no_video = [c for c in clips if not c.get("video")]
        if no_video:
            raise DataError(f"{d.manifest}: {len(no_video)} of {len(clips)} clip(s) have no video (first "
                            f"{no_video[0].get('clip_id')}; an audio-only layout such as Bach10): task={config.task} "
                            "learns from video; use a manifest of pieces with videos")
    seen: dict[str, bool] = {}
    bad: list[tuple[str, str]] = []
    for clip in clips:
        for key in keys:
            path = clip.get(key)
            if not path:
                continue
            if path not in seen:
                p = Path(path)
                seen[path] = p.is_file() and p.stat().st_size > 0
            if not seen[path]:
                bad.append((str(clip.get("clip_id")), path))
    if bad:
        clip_id, path = bad[0]
        raise DataError(f"{d.manifest}: {len(bad)} clip file(s) missing or empty, first {path} (clip {clip_id}); "
                        "fix the paths or re-run 'vitmusic prepare'")
    return len(clips)


def check_cache_dir(config: Config) -> None:
    """``extract.cache_dir`` must be, or be able to become, a writable folder (one line otherwise)."""
    from vitmusic.outputs import check_output_dir

    check_output_dir(config.extract.cache_dir, "extract.cache_dir")


def check_before_training(config: Config, resume: str | Path | bool | None,
                          media: Sequence[str] | None = None) -> Path | None:
    """The cheap checks of a training run, in the order a user would fix them; returns the checkpoint to
    resume from (None: fresh start).

    Raises:
        VitmusicError: unwritable ``train.output_dir``, a run folder another training holds, a
            missing/incomplete/corrupt ``--resume`` checkpoint
            (:func:`~vitmusic.training.checkpoint.check_checkpoint`), a manifest with missing clip files.
    """
    from vitmusic.errors import ConfigError
    from vitmusic.outputs import check_output_dir
    from vitmusic.runs import lock_holder
    from vitmusic.training.checkpoint import check_checkpoint, resolve_resume

    run_dir = Path(config.train.output_dir)
    check_output_dir(run_dir, "train.output_dir")
    holder = lock_holder(run_dir)  # the training itself takes the lock (vitmusic.training.loop.train)
    if holder is not None:
        raise ConfigError(f"run folder {run_dir} is in use by another training (process {holder}): wait for it to "
                          "end or choose another train.output_dir")
    ckpt = resolve_resume(run_dir, resume)
    if ckpt is not None:
        check_checkpoint(ckpt)
    check_cache_dir(config)
    check_manifest_media(config, media)
    return ckpt
