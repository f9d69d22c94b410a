"""The conditioning gap: does a trained model's loss depend on the video it is shown?

For the MusicGen task, the teacher-forced cross-entropy of held-out clips with their own video against the same
clips with another piece's video (:func:`conditioning_gap`); the transcription task's control is
:func:`vitmusic.training.tasks.transcription.evaluate_split` with ``shuffled=True``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["conditioning_gap"]


@torch.no_grad()
def conditioning_gap(
    task, split: str = "test", seed: int = 0, batch_size: int = 8
) -> dict[str, float]:
    """Teacher-forced cross-entropy of held-out clips with their own video vs with another piece's video.

    The mismatched condition of clip ``i`` is the video of a clip drawn (seeded) from a *different* piece
    when the split has several pieces, so a projection that learned nothing about the video scores the same
    on both, and one that did scores lower with the true video.

    Returns:
        ``{"true": mean CE, "shuffled": mean CE, "clips": n}`` (NaN when the split is empty).
    """
    ds = task.split_dataset(split)
    items = [ds[i] for i in range(len(ds))]
    if not items:
        return {"true": float("nan"), "shuffled": float("nan"), "clips": 0}
    pieces = [str(p) for p in ds.ds["piece"]]
    rng = np.random.default_rng(seed)
    donors = []
    for i, piece in enumerate(pieces):
        others = (
            [j for j, p in enumerate(pieces) if p != piece] or [j for j in range(len(items)) if j != i] or [i]
        )
        donors.append(int(rng.choice(others)))
    model = task.trainable()
    was_training = model.training
    model.eval()

    def mean_ce(pairs: list[tuple[int, int]]) -> float:
        total = 0.0
        for b in range(0, len(pairs), batch_size):
            chunk = pairs[b : b + batch_size]
            batch = task.collate([dict(items[v], codes=items[a]["codes"]) for a, v in chunk])
            total += float(task.loss(model, batch)) * len(chunk)
        return total / len(pairs)

    out = {
        "true": mean_ce([(i, i) for i in range(len(items))]),
        "shuffled": mean_ce([(i, d) for i, d in enumerate(donors)]),
        "clips": len(items),
    }
    model.train(was_training)
    return out
