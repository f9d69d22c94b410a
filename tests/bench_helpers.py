"""The tiny prepared benchmark the workflow tests train on: synthetic melody pieces split by a split file."""

from __future__ import annotations

from pathlib import Path

#: 6 pieces: 3 train, 1 val, 2 test (two test pieces, so the shuffled control has another piece's video)
SPLITS = ("train", "train", "train", "val", "test", "test")


def tiny_prepared(root: Path, *, seed: int, duration_s: float, clip_s: float | None = None,
                  splits: tuple[str, ...] = SPLITS) -> Path:
    """One synthetic piece per entry of ``splits`` (``duration_s`` long, 64x96 px per player) under
    ``root/urmp``, prepared into ``root/prepared`` in clips of ``clip_s`` (default: the whole piece), each piece
    in its split; returns ``root/prepared``."""
    from vitmusic.data.manifest import prepare_manifest
    from vitmusic.data.synth import generate_benchmark

    folders = generate_benchmark(root / "urmp", len(splits), seed=seed, duration_s=duration_s, source="melodies",
                                 progress=False, plot=False, width_per_player=64, height=96)
    split = root / "split.csv"
    split.write_text("piece,split\n" + "".join(f"{f.name},{s}\n" for f, s in zip(folders, splits)))
    prepare_manifest(root / "urmp", root / "prepared", duration_s if clip_s is None else clip_s, split_file=split,
                     plot=False, progress=False)
    return root / "prepared"
