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


def contact_sheet(level: str, path: str | os.PathLike, *, seed: int = 0, pieces: tuple[int, ...] = (1, 2),
                  nuisances: tuple[str, ...] = ("none", "layout,background", "all"), width_per_player: int = 96,
                  height: int = 144, time_s: float = 2.0, colours: int = 128) -> Path:
    """Save one frame per (nuisance, piece) of a level as a grid PNG (rows: nuisances, columns: pieces).

    The frames are drawn as ``synth-data`` draws them (no video encoding, so without x264's artefacts), with
    the performer boxes outlined in red. ``colours`` > 0 stores a palette image (a small file for docs).
    """
    import numpy as np
    from PIL import Image

    from vitmusic.data.synth.nuisance import draw_nuisance, parse_nuisance
    from vitmusic.data.synth.performer import player_state
    from vitmusic.data.synth.scene import Scene, part_box
    from vitmusic.data.synth.scores import make_performance
    from vitmusic.data.urmp import INSTRUMENTS

    rows = []
    for text in nuisances:
        nuisance = parse_nuisance(text)
        row = []
        for number in pieces:
            rng = np.random.default_rng([seed, number])
            perf = make_performance(rng, "mixed", time_s + 0.5, (66.0, 112.0), 0.04, chorale=(seed, number))
            times = np.arange(int(round((time_s + 0.5) * 30))) / 30.0
            infos = [INSTRUMENTS[c] for c in perf.instruments]
            states = [player_state(p.notes, p.midi, p.velocities, i.low_midi, i.high_midi, times)
                      for p, i in zip(perf.parts, infos)]
            draws = draw_nuisance(seed, number, nuisance, len(perf.parts), width_per_player, height, times,
                                  part_box(level, perf.instruments))
            scene = Scene(level, perf.instruments, [i.family for i in infos], [p.midi for p in perf.parts], states,
                          draws, width_per_player, height, 30.0, (seed, number))
            i = int(round(time_s * 30))
            frame = scene.frame(i).copy()
            for x0, y0, x1, y1 in scene.boxes(i):
                x1, y1 = min(x1, frame.shape[1]) - 1, min(y1, frame.shape[0]) - 1
                frame[y0:y1 + 1, [x0, x1]] = (255, 40, 40)
                frame[[y0, y1], x0:x1 + 1] = (255, 40, 40)
            tile = np.zeros((height, 4 * width_per_player, 3), np.uint8)  # up to 4 performers per piece
            tile[:, : frame.shape[1]] = frame
            row.append(tile)
        rows.append(np.concatenate(row, axis=1))
    img = Image.fromarray(np.concatenate(rows, axis=0))
    if colours > 0:
        img = img.quantize(colours, dither=Image.Dither.NONE)
    path = Path(path)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", optimize=True)
    return path
