"""Train/val/test splits by piece: deterministic, stable under additions, overridable by a split file.

Splitting is by *piece*, never by clip, so that no piece contributes to two splits (clips of one piece share
performers, room and recording chain; mixing them would leak).

Automatic split: each piece id is hashed together with the seed (SHA-256) to a number ``u`` in [0, 1); the
piece goes to ``train`` if ``u < r_train``, ``val`` if ``u < r_train + r_val``, else ``test``. A piece's split
therefore depends only on its own id and the seed: adding or removing pieces does not move the others. One
exception keeps small datasets usable: with 3 or more pieces, every split with a non-zero ratio gets at least
one piece, by moving the piece(s) whose ``u`` lies nearest that split's band out of the largest split.

Groups (``groups=``): pieces that must share a split, e.g. performances of one tune
(:mod:`vitmusic.data.tunes`). A group is placed as one unit, by the hash of its first member in sorted order,
so a piece alone in its group keeps exactly the split it would get without groups; the minimum-one-piece rule
then moves whole groups.

Split file (``split_file=``), which overrides the hashing entirely. Accepted formats:

* CSV with a ``piece,split`` header, one piece per line (``#`` comments and blank lines allowed)::

      piece,split
      01_Jupiter_vn_vc,train
      02_Sonata_vn_vn,test

* JSON, either a mapping ``{"01_Jupiter_vn_vc": "train", ...}`` or lists per split
  ``{"train": ["01_Jupiter_vn_vc"], "val": [...], "test": [...]}``.

Split names are ``train``, ``val``, ``test``. A piece listed twice with different splits is a
:class:`~vitmusic.errors.DataError`. Every piece being split must be listed (a :class:`DataError` otherwise:
an unlisted piece would silently land somewhere and could leak across an official split). Pieces listed in
the file but absent from the data are allowed (e.g. a published split file used on part of the dataset) and
reported with a :class:`SplitWarning`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from vitmusic.errors import DataError, VitmusicError

__all__ = ["SPLITS", "SplitWarning", "merge_groups", "piece_hash", "read_split_file", "split_counts", "split_pieces"]

SPLITS: tuple[str, str, str] = ("train", "val", "test")


class SplitWarning(UserWarning):
    """Split file lists pieces that are not in the data."""


def piece_hash(piece_id: str, seed: int = 0) -> float:
    """Deterministic number in [0, 1) for ``piece_id`` under ``seed`` (same on every machine and run)."""
    digest = hashlib.sha256(f"{int(seed)}:{piece_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        raise VitmusicError(f"split ratios must be three numbers (train, val, test), got {ratios!r}") from None
    if len(values) != 3 or any(not (r >= 0) for r in values) or sum(values) <= 0:
        raise VitmusicError(f"split ratios must be three non-negative numbers with a positive sum, got {ratios!r}")
    total = sum(values)
    return values[0] / total, values[1] / total, values[2] / total


def split_pieces(
    piece_ids: Iterable[str],
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    split_file: str | os.PathLike | None = None,
    groups: Iterable[Iterable[str]] = (),
) -> dict[str, str]:
    """Assign each piece to ``"train"``, ``"val"`` or ``"test"`` (see the module docstring for the rules).

    Args:
        piece_ids: piece folder names (duplicates are ignored).
        ratios: relative sizes of (train, val, test); normalised, zeros allowed.
        seed: changes the hash-based assignment.
        split_file: CSV or JSON file that fixes the assignment instead of hashing (``groups`` are then not
            applied: checking that the file keeps them together is the caller's, see
            :func:`vitmusic.data.tunes.check_groups_disjoint`).
        groups: sets of piece ids that the hash-based split keeps in one split; ids not in ``piece_ids`` are
            ignored, overlapping groups merge.

    Returns:
        ``{piece_id: split}`` in the order of ``piece_ids``.

    Raises:
        DataError: unreadable/malformed split file, or a piece missing from it.
        VitmusicError: invalid ratios.
    """
    ids = list(dict.fromkeys(piece_ids))
    if split_file is not None:
        table = read_split_file(split_file)
        absent = [p for p in ids if p not in table]
        if absent:
            more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
            raise DataError(f"{split_file}: piece {absent[0]!r}{more} is not in the split file")
        extra = sorted(set(table) - set(ids))
        if extra:
            warnings.warn(f"{split_file}: {len(extra)} listed piece(s) not in the data: {', '.join(extra[:5])}"
                          + (" ..." if len(extra) > 5 else ""), SplitWarning, stacklevel=2)
        return {p: table[p] for p in ids}

    r_train, r_val, _ = _check_ratios(ratios)
    bands = {"train": (0.0, r_train), "val": (r_train, r_train + r_val), "test": (r_train + r_val, 1.0)}
    units = merge_groups(ids, groups)  # representative id -> its pieces (a lone piece is its own unit)
    u = {rep: piece_hash(rep, seed) for rep in units}
    unit_split = {rep: ("train" if u[rep] < r_train else "val" if u[rep] < r_train + r_val else "test")
                  for rep in units}

    wanted = [s for s, (lo, hi) in bands.items() if hi > lo]
    if len(units) >= len(wanted):
        for target in wanted:
            members = {s: [rep for rep in units if unit_split[rep] == s] for s in SPLITS}
            if members[target]:
                continue
            # the split with the most units can spare one: it has >= 2 since there are >= len(wanted) units
            donor = max(SPLITS, key=lambda s: (len(members[s]), s == "train"))
            lo, hi = bands[target]
            moved = min(members[donor], key=lambda r: (max(lo - u[r], u[r] - hi, 0.0), len(units[r]), r))
            unit_split[moved] = target
    split_of = {p: unit_split[rep] for rep, members in units.items() for p in members}
    return {p: split_of[p] for p in ids}


def merge_groups(ids: Sequence[str], groups: Iterable[Iterable[str]]) -> dict[str, list[str]]:
    """Merge overlapping ``groups`` (restricted to ``ids``) into disjoint units (union-find).

    Returns:
        ``{smallest id of the unit: its ids in the order of ids}``, every id in exactly one unit (a lone id is
        its own), units in the order of their first id in ``ids``.
    """
    parent = {p: p for p in ids}

    def root(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for group in groups:
        members = sorted({p for p in group if p in parent})
        for p in members[1:]:
            a, b = root(members[0]), root(p)
            if a != b:
                parent[max(a, b)] = min(a, b)
    units: dict[str, list[str]] = {}
    for p in ids:
        units.setdefault(root(p), []).append(p)
    return units


def split_counts(split_map: dict[str, str]) -> dict[str, int]:
    """Number of pieces per split, always with all three keys."""
    counts = dict.fromkeys(SPLITS, 0)
    for s in split_map.values():
        counts[s] += 1
    return counts


def _check_split(name: object, where: str) -> str:
    if name not in SPLITS:
        raise DataError(f"{where}: unknown split {name!r} (expected one of {', '.join(SPLITS)})")
    return str(name)


def read_split_file(path: str | os.PathLike) -> dict[str, str]:
    """Read a CSV or JSON split file into ``{piece_id: split}`` (formats in the module docstring).

    Raises:
        DataError: missing/unreadable file, bad syntax, unknown split name, or a piece in two splits.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"split file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read split file {path}: {e}") from None
    table: dict[str, str] = {}

    def add(piece: object, split: object, where: str) -> None:
        if not isinstance(piece, str) or not piece.strip():
            raise DataError(f"{where}: piece must be a non-empty string, got {piece!r}")
        piece = piece.strip()
        split = _check_split(split.strip() if isinstance(split, str) else split, where)
        if table.get(piece, split) != split:
            raise DataError(f"{where}: piece {piece!r} is in two splits ({table[piece]} and {split})")
        table[piece] = split

    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected a JSON object (piece -> split, or split -> [pieces])")
        if data and all(isinstance(v, list) for v in data.values()):
            for split, pieces in data.items():
                for piece in pieces:
                    add(piece, split, str(path))
        else:
            for piece, split in data.items():
                add(piece, split, str(path))
    else:
        rows = [(i, r) for i, r in enumerate(csv.reader(io.StringIO(text)), start=1)
                if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
        if rows and [c.strip().lower() for c in rows[0][1]] == ["piece", "split"]:
            rows = rows[1:]
        for i, row in rows:
            if len(row) != 2:
                raise DataError(f"{path}:{i}: expected 'piece,split', got {','.join(row)!r}")
            add(row[0], row[1], f"{path}:{i}")
    if not table:
        raise DataError(f"split file lists no pieces: {path}")
    return table
