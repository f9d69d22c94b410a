"""Overview figure of a synthetic benchmark: a piano roll per piece, one colour per player."""

from __future__ import annotations

import os
from pathlib import Path

from vitmusic.atomic import atomic_path
from vitmusic.data.synth.scores import Performance

FAMILY_CMAPS = {"strings": "Oranges", "woodwinds": "Blues", "brass": "YlOrBr"}


def plot_pieces(perfs: list[Performance], names: list[str], path: str | os.PathLike, max_pieces: int = 12) -> Path:
    """Save piano rolls (time s vs MIDI pitch; bar opacity = velocity) of the first ``max_pieces`` pieces."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vitmusic.data.urmp import INSTRUMENTS

    shown = list(zip(perfs, names))[:max_pieces]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 1.9 * len(shown)), squeeze=False)
    for ax, (perf, name) in zip(axes[:, 0], shown):
        for k, part in enumerate(perf.parts):
            info = INSTRUMENTS[part.instrument]
            colour = plt.get_cmap(FAMILY_CMAPS[info.family])(0.45 + 0.5 * k / max(len(perf.parts) - 1, 1))
            for (onset, _, dur), m, v in zip(part.notes, part.midi, part.velocities):
                ax.add_patch(plt.Rectangle((onset, m - 0.4), dur, 0.8, color=colour, alpha=0.3 + 0.7 * float(v),
                                           lw=0))
            ax.plot([], [], color=colour, lw=6, label=f"{k + 1} {part.instrument}")
        ax.set_xlim(0, perf.duration_s)
        lo = min((p.midi.min() for p in perf.parts if len(p.midi)), default=40)
        hi = max((p.midi.max() for p in perf.parts if len(p.midi)), default=80)
        ax.set_ylim(lo - 2, hi + 2)
        ax.set_ylabel("MIDI")
        ax.set_title(f"{name}  ({perf.info.get('title', '')}, {perf.tempo_bpm:.0f} BPM)", fontsize=9, loc="left")
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7, ncol=len(perf.parts), frameon=False,
                  borderaxespad=0.1)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return path
