"""The ``musicgen`` kind: frozen vision encoder -> trained projection -> frozen MusicGen(-melody).

Training: :mod:`vitmusic.training.tasks.musicgen` (the per-codebook cross-entropy is the loss, logged per
codebook; the PCA projection is fitted and exported, not trained). Generation: :mod:`vitmusic.inference.musicgen`.

Systems (each writes one ``<clip_id>.wav`` per test clip, exactly the clip's length; the video embeddings come
from the feature cache, so no video is decoded again):

* ``model`` -- the trained projection conditions MusicGen on the clip's own video.
* ``shuffled`` -- the same model on the video of a clip of another piece (:func:`vitmusic.data.donors.donor_map`).
* ``unconditional`` -- MusicGen from the null condition (the one condition dropout trained): no video at all.
* ``retrieval`` -- no generation: the ground-truth audio of the training clip whose video is nearest
  (:mod:`vitmusic.workflow.retrieval`).
* the SCORE! PCA mapping is not a system but a projection kind (``projection.kind=pca``) of ``model``.

After training, the conditioning gap (:func:`vitmusic.evaluation.conditioning.conditioning_gap`: the task's loss
on the test clips with their own vs another piece's video) is recorded as ``train.ce_true_video`` /
``train.ce_shuffled_video``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from vitmusic.config import Config
from vitmusic.workflow.kinds import ModelKind, System, SystemContext, run_clips


def _build_task(config: Config, *, progress: bool = True):
    from vitmusic.training.tasks.musicgen import build_task

    return build_task(config, progress=progress)


def _train(config: Config, task, *, resume=None, progress: bool = True) -> Path:
    from vitmusic.training.tasks.musicgen import run_training

    return run_training(config, task, resume=resume, progress=progress)


def _build_cache(config: Config, *, progress: bool = True) -> Path:
    from vitmusic.training.tasks.musicgen import build_cache

    return build_cache(config, progress=progress)


def _load_pipeline(checkpoint, *, device=None, **options):
    from vitmusic.inference.musicgen import load_pipeline

    return load_pipeline(checkpoint, device=device, **options)


def _diagnostics(config: Config, task) -> dict[str, float]:
    from vitmusic.evaluation.conditioning import conditioning_gap

    gap = conditioning_gap(task, config.data.test_split, seed=config.generate.seed)
    return {"train.ce_true_video": float(gap["true"]), "train.ce_shuffled_video": float(gap["shuffled"])}


def _cached_test(ctx: SystemContext) -> tuple[Any, list[dict[str, Any]]]:
    """The trained pipeline (on this process's device, with the variant's sampling settings) and the cached
    test clips."""
    from vitmusic.inference.musicgen import load_pipeline
    from vitmusic.training.distributed import process_device
    from vitmusic.training.tasks.musicgen import build_cache
    from vitmusic.workflow.retrieval import cached_clips

    pipe = load_pipeline(ctx.run, device=process_device())
    pipe.config = dataclasses.replace(pipe.config, generate=ctx.config.generate)
    cache = build_cache(ctx.config, pipe.encoder, pipe.generator, progress=ctx.progress)
    return pipe, cached_clips(cache, ctx.config.data.test_split)


def _from_embeddings(pipe, unconditional: bool = False):
    import numpy as np
    import torch

    from vitmusic.data.audio import write_audio

    def write(clip: dict[str, Any], source: dict[str, Any] | None, path: Path, seed: int) -> None:
        video = source or clip
        emb = torch.from_numpy(video["embeds"])[None]  # [1, T, D]
        mask = torch.from_numpy(video["mask"])[None]  # [1, T]
        times_s = np.arange(emb.shape[1], dtype=np.float64) / pipe.rate_hz  # cached from the clip start
        wav = pipe.generate_from_embeddings(emb, mask, times_s, clip["end_s"] - clip["start_s"], seed=seed,
                                            unconditional=unconditional)
        write_audio(path, wav, pipe.sample_rate)

    return write


def _model(ctx: SystemContext) -> list[dict[str, Any]]:
    pipe, test = _cached_test(ctx)
    return run_clips(ctx, [(c, c) for c in test], _from_embeddings(pipe), desc="generate model")


def _shuffled(ctx: SystemContext) -> list[dict[str, Any]]:
    from vitmusic.data.donors import donor_map

    pipe, test = _cached_test(ctx)
    by_id = {c["clip_id"]: c for c in test}
    donors = donor_map(test, ctx.seed)
    return run_clips(ctx, [(c, by_id[donors[c["clip_id"]]]) for c in test], _from_embeddings(pipe),
                     desc="generate shuffled")


def _unconditional(ctx: SystemContext) -> list[dict[str, Any]]:
    pipe, test = _cached_test(ctx)
    return run_clips(ctx, [(c, c) for c in test], _from_embeddings(pipe, unconditional=True),
                     desc="generate unconditional")


def _retrieval(ctx: SystemContext) -> list[dict[str, Any]]:
    from vitmusic.training.tasks.musicgen import build_cache, load_frozen_models
    from vitmusic.workflow.retrieval import cached_clips, retrieval_sources, write_retrieved_audio

    cfg = ctx.config
    encoder, generator = load_frozen_models(cfg)
    cache = build_cache(cfg, encoder, generator, progress=ctx.progress)
    test, train = cached_clips(cache, cfg.data.test_split), cached_clips(cache, cfg.data.train_split)
    rows = {str(c["clip_id"]): c for c in ctx.clips(cfg.data.train_split)}
    jobs = [(c, rows[train[j]["clip_id"]]) for c, j in zip(test, retrieval_sources(test, train))]
    return run_clips(ctx, jobs, lambda clip, row, path, seed: write_retrieved_audio(path, clip, row),
                     desc="generate retrieval")


KIND = ModelKind(
    name="musicgen",
    description="frozen vision encoder -> trained projection -> frozen MusicGen",
    build_task=_build_task,
    train=_train,
    build_cache=_build_cache,
    load_pipeline=_load_pipeline,
    systems={
        "model": System("model", _model, "own", "the trained projection on the clip's own video"),
        "shuffled": System("shuffled", _shuffled, "model", "the trained model on another piece's video"),
        "unconditional": System("unconditional", _unconditional, "model", "MusicGen from the null condition"),
        "retrieval": System("retrieval", _retrieval, "none",
                            "ground-truth audio of the training clip with the nearest video"),
    },
    generation_keys=("generate",),
    diagnostics=_diagnostics,
)
