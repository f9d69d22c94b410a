"""The one donor rule of every shuffled control: another piece's video, seeded."""

import pytest

from vitmusic.data.donors import donor_map
from vitmusic.errors import DataError


def _clips(pieces):
    return [{"clip_id": f"c{i}", "piece": p} for i, p in enumerate(pieces)]


@pytest.mark.parametrize("pieces", [["a", "b"], ["a", "a", "b"], ["a", "a", "a", "b", "c", "c"], list("abcdefgh")])
def test_every_donor_is_another_piece(pieces):
    clips = _clips(pieces)
    piece = {c["clip_id"]: c["piece"] for c in clips}
    for seed in range(20):
        donors = donor_map(clips, seed)
        assert set(donors) == set(piece)
        assert all(piece[d] != piece[c] for c, d in donors.items())


def test_seeded_and_independent_of_order():
    clips = _clips(list("aabbccdd"))
    assert donor_map(clips, 3) == donor_map(clips, 3) == donor_map(clips[::-1], 3)
    assert len({tuple(sorted(donor_map(clips, s).items())) for s in range(20)}) > 1
    # every clip of another piece can be drawn (uniform over them, not a fixed neighbour)
    drawn = {donor_map(clips, s)["c0"] for s in range(200)}
    assert drawn == {f"c{i}" for i in range(2, 8)}


def test_one_piece_has_no_control():
    with pytest.raises(DataError, match="at least 2 pieces"):
        donor_map(_clips(["a", "a", "a"]))
    with pytest.raises(ValueError, match="twice"):
        donor_map(_clips(["a", "b"]) + _clips(["c"]))
