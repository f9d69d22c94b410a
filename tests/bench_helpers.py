"""Tiny synthetic benchmarks the tests build: a prepared split for the workflow tests, one chorale for the
evaluation tests, and a reference passed off as a system's output."""

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


def one_chorale(root: Path, duration_s: float) -> Path:
    """One synthetic 4-part chorale at 22.05 kHz (64x96 px per player) under ``root``; returns ``root``."""
    from vitmusic.data.synth import generate_benchmark

    generate_benchmark(root, 1, 3, duration_s=duration_s, source="chorales", sample_rate=22050,
                       width_per_player=64, height=96, progress=False, plot=False)
    return root


def reference_as_output(root: Path, gen: Path):
    """The first piece under ``root`` as a system's output in ``gen`` (created): its mix copied to
    ``<piece>.wav``; returns ``(piece, true notes per performer, instrument codes)`` for the test to write
    ``<piece>.mid`` from."""
    import soundfile as sf

    from vitmusic.data import urmp

    piece = urmp.discover_pieces(root)[0]
    gen.mkdir(parents=True, exist_ok=True)
    y, sr = sf.read(piece.mix, dtype="float32")
    sf.write(gen / f"{piece.id}.wav", y, sr)
    return piece, [urmp.read_notes(s.notes) for s in piece.stems], [s.instrument for s in piece.stems]
