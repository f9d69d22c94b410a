"""vitmusic listen-results: unblinded per-system means and bootstrap CIs equal numpy computed by hand."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from vitmusic import cli
from vitmusic.listening import design as dz
from vitmusic.listening.store import DB_NAME, RatingStore
from vitmusic.metrics import stats

N_BOOT = 500
SEED = 3


def write_test(root: Path, design: str, systems: list[str], key: dict[str, tuple[str, str]]) -> RatingStore:
    (root / "private").mkdir(parents=True)
    rows = ["stimulus_id,item,system"] + [f"{sid},{item},{system}" for sid, (item, system) in key.items()]
    (root / "private" / "answer_key.csv").write_text("\n".join(rows) + "\n")
    settings = {"design": design, "systems": {s: f"/x/{s}" for s in systems}}
    (root / "private" / "stimuli.json").write_text(json.dumps({"settings": settings}))
    return RatingStore(root / DB_NAME, "test")


def read_summary(path: Path) -> dict[str, dict]:
    with path.open(newline="") as f:
        return {r["system"]: r for r in csv.DictReader(f)}


def check_row(row: dict, values: list[float], scale: tuple[float, float]) -> None:
    """Mean and count by hand; the interval is summarize's on the design's rating scale (its coverage is
    tested in tests/metrics/test_stats.py)."""
    x = np.asarray(values, dtype=np.float64)
    ref = stats.summarize(x, bounds=scale, n_boot=N_BOOT, seed=SEED)
    lo, hi = float(row["ci95_lo"]), float(row["ci95_hi"])
    assert int(row["n"]) == len(values)
    assert float(row["mean"]) == pytest.approx(x.mean(), abs=1e-12)
    assert [lo, hi] == pytest.approx(ref["ci95"], abs=1e-12)
    assert scale[0] <= lo <= x.mean() <= hi <= scale[1]


@pytest.fixture
def mushra(tmp_path):
    systems = ["sysA", "sysB"]
    conds = [*systems, dz.HIDDEN_REFERENCE, dz.ANCHOR]
    items = [f"item{i:02d}" for i in range(20)]
    key = {f"{i:02d}{c}": (item, c) for i, item in enumerate(items) for c in [*conds, dz.OPEN_REFERENCE]}
    store = write_test(tmp_path, "mushra", systems, key)
    rng = np.random.default_rng(0)
    expected: dict[str, dict[str, list[float]]] = {}
    # P02: hidden reference below 90 on 3/20 items (15 %: kept); P04: 4/20 (20 % > 15 %: excluded)
    below = {"P01": 0, "P02": 3, "P03": 1, "P04": 4}
    for pid, n_below in below.items():
        for i in range(len(items)):
            values = {
                "sysA": float(rng.integers(30, 80)), "sysB": float(rng.integers(10, 70)),
                dz.HIDDEN_REFERENCE: float(rng.integers(0, 89) if i < n_below else rng.integers(90, 101)),
                dz.ANCHOR: float(rng.integers(0, 30)),
            }
            store.submit(pid, i + 1, {f"{i:02d}{c}": (str(k + 1), values[c]) for k, c in enumerate(conds)})
            for c, v in values.items():
                expected.setdefault(pid, {}).setdefault(c, []).append(v)
    return tmp_path, expected, conds


def test_mushra_means_cis_and_screening(mushra, capsys):
    root, expected, conds = mushra
    assert cli.main(["listen-results", str(root), "--n-boot", str(N_BOOT), "--seed", str(SEED)]) == 0
    out = root / "results"
    summary = read_summary(out / "summary.csv")
    assert list(summary) == conds  # systems first, then hidden reference and anchor
    for c in conds:
        check_row(summary[c], [v for pid in ("P01", "P02", "P03") for v in expected[pid][c]], (0.0, 100.0))
    with (out / "screening.csv").open(newline="") as f:
        screening = {r["participant"]: r for r in csv.DictReader(f)}
    assert {p: r["excluded"] for p, r in screening.items()} == {"P01": "False", "P02": "False", "P03": "False",
                                                                "P04": "True"}
    assert float(screening["P02"]["fraction"]) == pytest.approx(0.15)
    md = (out / "summary.md").read_text()
    assert "excluded: P04" in md and "| sysA | 60 |" in md and "95% CI (wilson-boot-t(clip))" in md
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (out / "ratings.csv").open(newline="") as f:
        ratings = list(csv.DictReader(f))
    assert len(ratings) == 4 * 20 * 4 and {r["system"] for r in ratings} == set(conds)
    assert "sysA" in capsys.readouterr().out


def test_mushra_without_screening_keeps_everyone(mushra, tmp_path):
    root, expected, _ = mushra
    dest = tmp_path / "elsewhere"
    assert cli.main(["listen-results", str(root), "--results", str(dest), "--no-screening", "--n-boot",
                     str(N_BOOT), "--seed", str(SEED)]) == 0
    summary = read_summary(dest / "summary.csv")
    check_row(summary["sysB"], [v for pid in ("P01", "P02", "P03", "P04") for v in expected[pid]["sysB"]],
              (0.0, 100.0))


def test_ab_win_rates(tmp_path):
    systems = ["s1", "s2", "s3"]
    items = [f"it{i}" for i in range(6)]
    key = {f"{i}{s}": (item, s) for i, item in enumerate(items) for s in systems}
    store = write_test(tmp_path, "ab", systems, key)
    rng = np.random.default_rng(1)
    wins: dict[str, list[float]] = {s: [] for s in systems}
    pair_counts: dict[tuple[str, str], list[int]] = {}
    for pid in ("P01", "P02"):
        trial = 0
        for i, _item in enumerate(items):
            for a, b in itertools.combinations(systems, 2):
                trial += 1
                a_chosen = bool(rng.random() < {"s1": 0.8, "s2": 0.5, "s3": 0.2}[a])
                store.submit(pid, trial, {f"{i}{a}": ("A", float(a_chosen)), f"{i}{b}": ("B", float(not a_chosen))})
                pair_counts.setdefault((a, b), [0, 0])[0 if a_chosen else 1] += 1
                # generated in the order rows are read back (participant, trial, position A then B)
                wins[a].append(float(a_chosen))
                wins[b].append(float(not a_chosen))
    assert cli.main(["listen-results", str(tmp_path), "--n-boot", str(N_BOOT), "--seed", str(SEED)]) == 0
    summary = read_summary(tmp_path / "results" / "summary.csv")
    for s in systems:
        check_row(summary[s], wins[s], (0.0, 1.0))
    assert not (tmp_path / "results" / "screening.csv").exists()
    with (tmp_path / "results" / "pairwise.csv").open(newline="") as f:
        pairwise = {(r["system_a"], r["system_b"]): (int(r["a_wins"]), int(r["b_wins"])) for r in csv.DictReader(f)}
    assert pairwise == {k: tuple(v) for k, v in pair_counts.items()}


def test_no_ratings_is_a_clear_error(tmp_path, capsys):
    write_test(tmp_path, "mushra", ["sysA"], {"aa": ("x", "sysA")})
    assert cli.main(["listen-results", str(tmp_path)]) == 2
    assert "no ratings yet" in capsys.readouterr().err
    assert cli.main(["listen-results", str(tmp_path / "missing")]) == 2
