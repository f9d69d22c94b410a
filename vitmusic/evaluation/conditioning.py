"""The conditioning gap: does a trained model's loss depend on the video it is shown?

The task's own loss (:meth:`vitmusic.training.loop.Task.loss`: the MusicGen task's teacher-forced cross-entropy,
the transcription task's note losses) on held-out clips with their own video, against the same clips each given
the video of a clip of another piece (:func:`vitmusic.data.donors.donor_map`, the one donor rule of every
shuffled control). A model that learned nothing about the video scores the same on both; one that did scores
lower with the true video. Works for any task whose ``split_dataset(split, donors)`` swaps the video and keeps
the targets and whose ``clip_pieces(split)`` names each clip's piece.
"""

from __future__ import annotations

import torch

__all__ = ["conditioning_gap"]


@torch.no_grad()
def conditioning_gap(task, split: str = "test", seed: int = 0, batch_size: int = 8) -> dict[str, float]:
    """The task's loss on a split's clips with their own video vs with another piece's video.

    Args:
        task: a built task with ``trainable()``, ``collate``, ``loss``, ``split_dataset(split, donors=None)`` and
            ``clip_pieces(split) -> {clip_id: piece}``.
        split: the held-out split.
        seed: the donor map's seed.
        batch_size: clips per forward pass (the loss is averaged per clip, whatever the batching).

    Returns:
        ``{"true": mean loss, "shuffled": mean loss, "clips": n}`` (NaN when the split is empty).

    Raises:
        DataError: the split's clips come from fewer than 2 pieces.
    """
    from vitmusic.data.donors import donor_map
    from vitmusic.training.loop import split_loss

    own = task.split_dataset(split)
    if len(own) == 0:
        return {"true": float("nan"), "shuffled": float("nan"), "clips": 0}
    donors = donor_map([{"clip_id": c, "piece": p} for c, p in task.clip_pieces(split).items()], seed)
    shuffled = task.split_dataset(split, donors)
    model = task.trainable()
    was_training = model.training
    model.eval()

    def mean_loss(ds) -> float:
        total = 0.0
        for a in range(0, len(ds), batch_size):
            items = [ds[i] for i in range(a, min(a + batch_size, len(ds)))]
            total += float(split_loss(task.loss(model, task.collate(items)))[0]) * len(items)
        return total / len(ds)

    out = {"true": mean_loss(own), "shuffled": mean_loss(shuffled), "clips": len(own)}
    model.train(was_training)
    return out
