"""Listening-test designs: which stimuli form a trial, blinded ids, per-participant randomised orders.

Two designs:

* ``mushra`` (ITU-R BS.1534): one trial per item. The trial shows the labelled (open) reference and, in a
  random order, every system plus a hidden reference and a low anchor (the reference low-passed at 3.5 kHz).
* ``ab``: one trial per (item, pair of systems) — all pairs, or every system against a named baseline. The
  two sides are assigned to A and B at random.

Stimulus ids are random tokens from :mod:`secrets` (never derived from names or from the seed), so nothing in
the public folder reveals a system. The *order* is seeded: participant ``k`` of a test built with seed ``s``
always gets the same trial order and within-trial positions, and different participants get different orders.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vitmusic.errors import ConfigError

DESIGNS: tuple[str, ...] = ("mushra", "ab")
HIDDEN_REFERENCE = "hidden_reference"
ANCHOR = "anchor_lp3500"
OPEN_REFERENCE = "open_reference"
RESERVED_SYSTEMS: frozenset[str] = frozenset({HIDDEN_REFERENCE, ANCHOR, OPEN_REFERENCE})
REFERENCE_POSITION = "reference"  # manifest position of the labelled reference of a MUSHRA trial
# BS.1534-3 recommends no more than 12 conditions per trial (systems + hidden reference + anchor)
MUSHRA_MAX_CONDITIONS = 12


@dataclass(frozen=True)
class Slot:
    """One row of the public manifest: what participant ``participant`` sees at ``position`` of ``trial``."""

    participant: str
    trial: int  # 1-based presentation order
    position: str  # "reference", "1".."k" (MUSHRA) or "A"/"B"
    stimulus_id: str


def check_system_names(names: Sequence[str]) -> None:
    """Raise ConfigError for empty, duplicate or reserved system names."""
    seen: set[str] = set()
    for name in names:
        if not name or any(c in name for c in ",\n\r\"'/\\"):
            raise ConfigError(f"invalid system name {name!r}: use letters, digits, '-', '_' or '.'")
        if name in RESERVED_SYSTEMS:
            raise ConfigError(f"system name {name!r} is reserved for the listening test; rename it")
        if name in seen:
            raise ConfigError(f"system {name!r} is given twice")
        seen.add(name)


def conditions(design: str, systems: Sequence[str]) -> list[str]:
    """Every condition (system label) that needs a stimulus per item, in a fixed order."""
    if design == "mushra":
        return [*systems, HIDDEN_REFERENCE, ANCHOR, OPEN_REFERENCE]
    if design == "ab":
        return list(systems)
    raise ConfigError(f"unknown design {design!r}; expected one of {', '.join(DESIGNS)}")


def ab_pairs(systems: Sequence[str], baseline: str | None = None) -> list[tuple[str, str]]:
    """System pairs of an A/B test: all unordered pairs, or ``(baseline, other)`` for every other system."""
    if len(systems) < 2:
        raise ConfigError(f"an A/B test needs at least 2 systems, got {len(systems)}")
    if baseline is None:
        return list(itertools.combinations(systems, 2))
    if baseline not in systems:
        raise ConfigError(f"--baseline {baseline!r} is not one of the systems: {', '.join(systems)}")
    return [(baseline, s) for s in systems if s != baseline]


def assign_ids(items: Sequence[str], conds: Sequence[str]) -> dict[tuple[str, str], str]:
    """A fresh random 12-hex-digit id for every (item, condition); ids are unique."""
    ids: dict[tuple[str, str], str] = {}
    used: set[str] = set()
    for key in itertools.product(items, conds):
        token = secrets.token_hex(6)
        while token in used:  # 48 random bits: practically never taken
            token = secrets.token_hex(6)
        used.add(token)
        ids[key] = token
    return ids


def participant_ids(n: int) -> list[str]:
    """``P01``, ``P02``, ... (zero-padded to the width of ``n``, at least two digits)."""
    if n < 1:
        raise ConfigError(f"--participants must be >= 1, got {n}")
    width = max(2, len(str(n)))
    return [f"P{k:0{width}d}" for k in range(1, n + 1)]


def participant_rng(seed: int, index: int) -> np.random.Generator:
    """The order generator of participant ``index`` (0-based): reproducible per seed, distinct per participant."""
    return np.random.default_rng([int(seed), int(index)])


def build_slots(
    design: str,
    items: Sequence[str],
    systems: Sequence[str],
    ids: dict[tuple[str, str], str],
    *,
    participants: int,
    seed: int,
    baseline: str | None = None,
) -> list[Slot]:
    """Public manifest rows for every participant: shuffled trials, shuffled positions within each trial.

    Args:
        design: "mushra" or "ab".
        items: item names (pairing keys) with stimuli.
        systems: system names (without the MUSHRA hidden reference / anchor, added here).
        ids: (item, condition) -> stimulus id, from :func:`assign_ids`.
        participants: number of participant orders to draw.
        seed: order seed.
        baseline: A/B only: compare every system against this one instead of all pairs.
    """
    slots: list[Slot] = []
    if design == "mushra":
        rated = [*systems, HIDDEN_REFERENCE, ANCHOR]
        trials = [(item, rated) for item in items]
    else:
        trials = [(item, list(pair)) for item in items for pair in ab_pairs(systems, baseline)]
    for k, pid in enumerate(participant_ids(participants)):
        rng = participant_rng(seed, k)
        for number, t in enumerate(rng.permutation(len(trials)), start=1):
            item, conds = trials[int(t)]
            if design == "mushra":
                slots.append(Slot(pid, number, REFERENCE_POSITION, ids[(item, OPEN_REFERENCE)]))
                labels = [str(i) for i in range(1, len(conds) + 1)]
            else:
                labels = ["A", "B"]
            for label, c in zip(labels, rng.permutation(len(conds))):
                slots.append(Slot(pid, number, label, ids[(item, conds[int(c)])]))
    return slots
