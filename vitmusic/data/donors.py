"""The one donor rule of every "shuffled" control: each clip is given the video of a clip of *another piece*.

A model that reads the video must do worse with a mismatched video. A clip of the same piece would share the
piece's tempo, key and instruments, so a control that may hand a clip its own piece's video (as a plain
derangement of the clips does) measures less than it claims. The rule, used everywhere (the shuffled systems
of every model kind, the conditioning gap, the transcription task's evaluation)::

    donor(c) = a clip drawn uniformly, with a seeded generator, from the clips whose piece differs from c's

Clips are taken in sorted ``clip_id`` order, so the map depends on the set of clips and the seed only (not on
the order they were listed in, nor on how clips are split between processes). Donors are drawn with
replacement: a video may serve several clips, and a split with one piece has no control at all (an error).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from vitmusic.errors import DataError

__all__ = ["DONOR_RULE", "donor_map"]

DONOR_RULE = "each clip gets the video of a clip of another piece, drawn uniformly (seeded) from those clips"


def donor_map(clips: Iterable[Mapping[str, Any]], seed: int = 0) -> dict[str, str]:
    """``{clip_id: donor clip_id}``: for every clip, a clip of a different piece (see the module docstring).

    Args:
        clips: rows with ``clip_id`` and ``piece`` (manifest rows, cached clips).
        seed: seeds the draw; the same clips and seed give the same map.

    Raises:
        DataError: fewer than two pieces among the clips (no clip of another piece to give).
        ValueError: a clip listed twice.
    """
    pieces: dict[str, str] = {}
    for c in clips:
        cid = str(c["clip_id"])
        if cid in pieces:
            raise ValueError(f"clip {cid!r} is listed twice")
        pieces[cid] = str(c["piece"])
    if len(set(pieces.values())) < 2:
        raise DataError(f"the shuffled-video control needs clips of at least 2 pieces, got "
                        f"{len(set(pieces.values()))} piece(s) in {len(pieces)} clip(s)")
    ids = sorted(pieces)
    rng = np.random.default_rng(int(seed))
    out = {}
    for cid in ids:
        others = [o for o in ids if pieces[o] != pieces[cid]]
        out[cid] = others[int(rng.integers(len(others)))]
    return out
