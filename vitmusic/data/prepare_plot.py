"""The overview plot of a prepared manifest (``prepare.png``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vitmusic.atomic import atomic_path
from vitmusic.data.splits import SPLITS, split_counts

__all__ = ["plot_prepare"]


def plot_prepare(clips: Sequence[dict], split_map: dict[str, str], path: str | os.PathLike) -> Path:
    """Save a PNG overview of a prepared manifest: pieces/clips per split, clips per instrument and split.

    Args:
        clips: manifest records (only their ``split`` and ``instruments`` are used).
        split_map: ``{piece_id: split}``.
        path: output PNG (written atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
    pieces = split_counts(split_map)
    n_clips = {s: sum(c["split"] == s for c in clips) for s in SPLITS}
    instruments = sorted({code for c in clips for code in c["instruments"]})
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 2]})
    x = np.arange(len(SPLITS))
    ax0.bar(x - 0.2, [pieces[s] for s in SPLITS], 0.4, label="pieces", color="0.6")
    ax0.bar(x + 0.2, [n_clips[s] for s in SPLITS], 0.4, label="clips", color=[colors[s] for s in SPLITS])
    ax0.set_xticks(x, SPLITS)
    ax0.set_title("pieces (grey) and clips per split")
    ax0.set_ylabel("count")
    bottom = np.zeros(len(instruments))
    for s in SPLITS:
        # a clip counts once for every stem of that instrument it holds (two violins -> 2)
        counts = np.array([sum(c["instruments"].count(code) for c in clips if c["split"] == s)
                           for code in instruments], dtype=float)
        ax1.bar(instruments, counts, bottom=bottom, label=s, color=colors[s])
        bottom += counts
    ax1.set_title("instrument tracks in clips, by split")
    ax1.set_ylabel("clip-tracks")
    ax1.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)
