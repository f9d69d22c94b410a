"""The retrieval baseline's parts: the training clip whose video is nearest to a test clip's.

Nearest = the highest cosine similarity of the mean-pooled cached encoder embeddings (the feature cache of
:mod:`vitmusic.training.features`, so no video is decoded again). The MusicGen kind's ``retrieval`` system
plays that clip's ground-truth audio; the transcription kind's plays its annotated notes with the test
clip's instruments.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.errors import DataError


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


def write_retrieved_audio(path: Path, clip: dict[str, Any], row: dict[str, Any]) -> None:
    """``path``: the ground-truth audio (mix) of the training clip ``row``, cut or padded to ``clip``'s length."""
    from vitmusic.data.audio import load_audio, write_audio

    src = row.get("mix") or row.get("video")
    if not src:
        raise DataError(f"retrieval baseline: training clip {row['clip_id']} has no audio")
    y, sr = load_audio(src, t0=float(row["start_s"]), t1=float(row["end_s"]))
    n = int(round((clip["end_s"] - clip["start_s"]) * sr))
    write_audio(path, np.pad(y[:n], (0, max(0, n - len(y)))), sr)  # the test clip's exact length
