"""Checks ``vitmusic train`` makes before any model is loaded or cache built: a bad ``--resume`` checkpoint,
an unwritable run folder or a manifest whose videos are gone fail in one line within a second, not after the
models load and extraction starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitmusic.config import Config
from vitmusic.errors import DataError

__all__ = ["check_before_training", "check_manifest_media"]

# tasks that read clip videos (the diffusion synthesizer trains on notes and audio only)
VIDEO_TASKS = ("musicgen", "transcription")


def check_manifest_media(config: Config) -> int:
    """Every clip of the configured splits must have its video (video tasks) and target audio on disk.

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
    keys = ("video", "mix") if config.task in VIDEO_TASKS else ("mix",)
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


def check_before_training(config: Config, resume: str | Path | bool | None) -> Path | None:
    """The cheap checks of a training run, in the order a user would fix them; returns the checkpoint to
    resume from (None: fresh start).

    Raises:
        VitmusicError: unwritable ``train.output_dir``, a missing/incomplete/corrupt ``--resume`` checkpoint
            (:func:`~vitmusic.training.checkpoint.check_checkpoint`), a manifest with missing clip files.
    """
    from vitmusic.outputs import check_output_dir
    from vitmusic.training.checkpoint import check_checkpoint, resolve_resume

    run_dir = Path(config.train.output_dir)
    check_output_dir(run_dir, "train.output_dir")
    ckpt = resolve_resume(run_dir, resume)
    if ckpt is not None:
        check_checkpoint(ckpt)
    check_manifest_media(config)
    return ckpt
