"""Systems that generate audio for the held-out clips: the trained model and the baselines.

Every system writes one ``<clip_id>.wav`` per test clip (exactly the clip's length), so they are all scored by
the same ``vitmusic.evaluation.runner`` against the same ground truth:

* ``model`` -- the trained projection conditions MusicGen on the clip's own video embeddings.
* ``shuffled`` -- the same model, but clip ``i`` is conditioned on the video of clip ``perm[i]`` with
  ``perm`` a seeded derangement (no clip keeps its own video): what the model gives for a *mismatched* video.
* ``unconditional`` -- MusicGen from the null condition (the one condition dropout trained): no video at all.
* ``retrieval`` -- no generation: the ground-truth audio of the training clip whose video is nearest
  (cosine similarity of the mean-pooled cached encoder embeddings).
* the SCORE! PCA mapping is not a system here but a projection kind (``projection.kind=pca``) of ``model``.

Embeddings come from the feature cache (:mod:`vitmusic.training.features`), so no video is decoded again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.errors import ConfigError, DataError


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A seeded random permutation of ``range(n)`` with no fixed point (``perm[i] != i`` for every i).

    Raises:
        ValueError: ``n < 2`` (one clip cannot be given another clip's video).
    """
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {n}")
    rng = np.random.default_rng(seed)
    while True:  # about e draws on average
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def mean_pool(embeds: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean of the valid time steps of ``embeds [T, D]`` (``mask [T]`` bool) -> ``[D]``."""
    e = np.asarray(embeds, np.float64)
    m = np.ones(len(e), bool) if mask is None else np.asarray(mask, bool)
    if not m.any():
        raise ValueError("no valid time step to pool")
    return e[m].mean(axis=0)


def nearest_by_cosine(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Index into ``bank [M, D]`` of the most cosine-similar row for each of ``queries [N, D]`` -> ``[N]``."""
    q = np.asarray(queries, np.float64)
    b = np.asarray(bank, np.float64)
    if q.ndim != 2 or b.ndim != 2 or q.shape[1] != b.shape[1] or len(b) == 0:
        raise ValueError(f"need queries [N, D] and a non-empty bank [M, D], got {q.shape} and {b.shape}")
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.argmax(qn @ bn.T, axis=1)


def cached_clips(cache: str | os.PathLike, split: str) -> list[dict[str, Any]]:
    """The clips of one split of a feature cache: ``clip_id, piece, start_s, end_s, embeds [T, D], mask [T]``."""
    from vitmusic.training.features import load_cache

    ds = load_cache(cache, split)
    out = []
    for i in range(len(ds)):
        row = ds[i]
        out.append({
            "clip_id": str(row["clip_id"]),
            "piece": str(row["piece"]),
            "start_s": float(row["start_s"]),
            "end_s": float(row["end_s"]),
            "embeds": np.asarray(row["embeds"], np.float32),
            "mask": np.asarray(row["mask"], bool),
        })
    return out


def retrieval_sources(test: Sequence[dict[str, Any]], train: Sequence[dict[str, Any]]) -> list[int]:
    """For each test clip, the index of the training clip with the nearest mean-pooled video embedding."""
    if not train:
        raise DataError("retrieval baseline: the feature cache holds no training clip")
    q = np.stack([mean_pool(c["embeds"], c["mask"]) for c in test])
    b = np.stack([mean_pool(c["embeds"], c["mask"]) for c in train])
    return nearest_by_cosine(q, b).tolist()


def _times_s(n: int, rate_hz: float) -> np.ndarray:
    # the cache stores embeddings at the configured rate from the clip start; step k starts at k / rate_hz
    return np.arange(n, dtype=np.float64) / float(rate_hz)


def _clip_wav(path: Path, pipe, clip: dict[str, Any], donor: dict[str, Any], *, seed: int,
              guidance_scale: float | None, unconditional: bool) -> None:
    import torch

    from vitmusic.data.audio import write_audio

    emb = torch.from_numpy(donor["embeds"])[None]  # [1, T, D]
    mask = torch.from_numpy(donor["mask"])[None]  # [1, T]
    wav = pipe.generate_from_embeddings(emb, mask, _times_s(emb.shape[1], pipe.rate_hz),
                                        clip["end_s"] - clip["start_s"], guidance_scale=guidance_scale,
                                        seed=seed, unconditional=unconditional)
    write_audio(path, wav, pipe.sample_rate)


def generate_system(
    system: str,
    out_dir: str | os.PathLike,
    test: Sequence[dict[str, Any]],
    *,
    pipe=None,
    train: Sequence[dict[str, Any]] = (),
    manifest: Sequence[dict[str, Any]] = (),
    seed: int = 0,
    guidance_scale: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out_dir/<clip_id>.wav`` for every test clip with one system (see the module docstring).

    Clips whose file already exists are kept (files are written atomically, so an existing one is complete):
    an interrupted run resumes where it stopped.

    Args:
        system: "model", "shuffled", "unconditional" or "retrieval".
        out_dir: output folder (created).
        test: cached test clips (:func:`cached_clips`).
        pipe: a :class:`~vitmusic.inference.musicgen.MusicGenPipeline` (all systems but retrieval).
        train: cached training clips (retrieval).
        manifest: manifest rows of the training clips (retrieval: where their audio is).
        seed: base seed; clip ``c`` samples with ``item_seed(seed, c)`` (the derangement uses ``seed``).
        guidance_scale: classifier-free guidance (default: the run's ``generate.guidance_scale``).
        progress: tqdm bar on stderr.

    Returns:
        ``{"system", "seed", "clips": [{"clip_id", "source", "seed", "process"}]}`` where ``source`` is the
        clip whose video (shuffled) or audio (retrieval) was used and ``process`` the rank that generated it
        (under ``accelerate launch`` the clips are split between the processes; the same on every process).
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not test:
        raise DataError("no test clip to generate for")
    if system != "retrieval" and pipe is None:
        raise ConfigError(f"system '{system}' needs a trained model")
    n = len(test)
    if system == "model" or system == "unconditional":
        sources = list(range(n))
    elif system == "shuffled":
        if n < 2:
            raise DataError("the shuffled-video baseline needs at least 2 test clips")
        sources = derangement(n, seed).tolist()
    elif system == "retrieval":
        sources = retrieval_sources(test, train)
    else:
        raise ConfigError(f"unknown system {system!r}")
    from vitmusic.inference.base import item_seed
    from vitmusic.training.distributed import gather_objects, is_main_process, process_info, split_for_process

    records = []
    rows = {str(r["clip_id"]): r for r in manifest}
    # under `accelerate launch` each process generates every N-th clip (the seed depends on the clip only)
    mine = split_for_process(list(zip(test, sources)), "test clips to generate")
    rank = process_info()[0]
    for clip, j in tqdm(mine, desc=f"generate {system}", unit="clip", disable=not progress or not is_main_process()):
        path = out / f"{clip['clip_id']}.wav"
        s = item_seed(seed, clip["clip_id"])
        source = (train if system == "retrieval" else test)[j]["clip_id"]
        records.append({"clip_id": clip["clip_id"], "source": source, "seed": s, "process": rank})
        if path.is_file():
            continue
        if system == "retrieval":
            _retrieved_wav(path, clip, rows.get(source), source)
        else:
            _clip_wav(path, pipe, clip, test[j], seed=s, guidance_scale=guidance_scale,
                      unconditional=system == "unconditional")
    order = {c["clip_id"]: i for i, c in enumerate(test)}
    return {"system": system, "seed": seed,
            "clips": sorted(gather_objects(records), key=lambda r: order[r["clip_id"]])}


def _retrieved_wav(path: Path, clip: dict[str, Any], row: dict[str, Any] | None, source: str) -> None:
    from vitmusic.data.audio import load_audio, write_audio

    if row is None:
        raise DataError(f"retrieval baseline: training clip {source} is not in the manifest")
    src = row.get("mix") or row.get("video")
    if not src:
        raise DataError(f"retrieval baseline: training clip {source} has no audio")
    y, sr = load_audio(src, t0=float(row["start_s"]), t1=float(row["end_s"]))
    n = int(round((clip["end_s"] - clip["start_s"]) * sr))
    write_audio(path, np.pad(y[:n], (0, max(0, n - len(y)))), sr)  # the test clip's exact length
