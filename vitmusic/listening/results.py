"""Unblind and summarise a listening test: ratings joined with the answer key, per-system means and 95 % CIs.

* **MUSHRA** — the score of a system is the mean of its 0..100 ratings over every (participant, item) rated by
  an included participant; the CI is :func:`vitmusic.metrics.stats.summarize`'s interval on the 0..100 scale
  (its method is named in the table; docs/statistics.md). Post-screening (ITU-R BS.1534-3, 4.1.2): a participant who rates
  the hidden reference below 90 for more than 15 % of the items they rated is excluded from every mean.
* **A/B** — the score of a system is its win rate: the mean over every comparison it took part in of 1 (chosen)
  or 0 (not chosen), with the same interval on 0..1; ``pairwise.csv`` gives each pair's counts.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitmusic.atomic import atomic_path, atomic_write_text
from vitmusic.errors import DataError
from vitmusic.listening.design import ANCHOR, HIDDEN_REFERENCE, OPEN_REFERENCE
from vitmusic.listening.stimuli import PRIVATE
from vitmusic.listening.store import DB_NAME, read_responses
from vitmusic.metrics import stats

SCREEN_THRESHOLD = 90.0  # hidden-reference rating below this counts against the participant
SCREEN_MAX_FRACTION = 0.15  # excluded when more than this fraction of their items is below the threshold
RATING_COLUMNS = ("participant", "trial", "position", "stimulus_id", "item", "system", "value")


@dataclass
class ListeningResults:
    """What :func:`analyse` computes."""

    design: str
    systems: list[dict]  # {"system", "mean", "ci95": [lo, hi], "n"} in display order
    participants: list[str]
    excluded: list[str] = field(default_factory=list)
    screening: list[dict] = field(default_factory=list)  # MUSHRA: per participant
    pairwise: list[dict] = field(default_factory=list)  # A/B: per pair


def read_answer_key(path: str | os.PathLike) -> dict[str, tuple[str, str]]:
    """``answer_key.csv`` -> {stimulus_id: (item, system)}."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no answer key at {p}")
    key: dict[str, tuple[str, str]] = {}
    with p.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                key[row["stimulus_id"]] = (row["item"], row["system"])
            except KeyError as e:
                raise DataError(f"{p}:{line}: malformed answer-key row (no column {e})") from e
    return key


def unblind(responses: Iterable[Mapping], key: Mapping[str, tuple[str, str]]) -> list[dict]:
    """Join stored responses with the answer key: adds ``item`` and ``system`` to each row.

    Raises:
        DataError: a rated stimulus id is not in the answer key (ratings of another stimulus set).
    """
    rows = []
    for r in responses:
        if r["stimulus_id"] not in key:
            raise DataError(f"stimulus {r['stimulus_id']} rated by {r['participant']} is not in the answer key")
        item, system = key[r["stimulus_id"]]
        rows.append({**{k: r[k] for k in ("participant", "trial", "position", "stimulus_id", "value")},
                     "item": item, "system": system})
    return rows


def screen_mushra(rows: Sequence[Mapping], threshold: float = SCREEN_THRESHOLD,
                  max_fraction: float = SCREEN_MAX_FRACTION) -> list[dict]:
    """BS.1534 post-screening: per participant, the items whose hidden reference is rated below ``threshold``.

    Returns:
        One dict per participant: ``participant, items, below, fraction, excluded`` (excluded when
        ``fraction > max_fraction``).
    """
    per: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["system"] == HIDDEN_REFERENCE:
            per[r["participant"]].append(float(r["value"]))
    out = []
    for pid in sorted({r["participant"] for r in rows}):
        values = np.asarray(per.get(pid, []), dtype=np.float64)
        below = int(np.sum(values < threshold))
        fraction = below / values.size if values.size else float("nan")
        out.append({"participant": pid, "items": int(values.size), "below": below, "fraction": fraction,
                    "excluded": bool(values.size and fraction > max_fraction)})
    return out


def _order(systems: Iterable[str], preferred: Sequence[str]) -> list[str]:
    present = set(systems)
    extra = [HIDDEN_REFERENCE, ANCHOR]
    first = [s for s in preferred if s in present] + [s for s in extra if s in present]
    return first + sorted(present - set(first))


def system_scores(rows: Sequence[Mapping], systems: Sequence[str], *, bounds: stats.Bounds = None,
                  n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0) -> list[dict]:
    """Mean value per system with its 95 % CI on the scale ``bounds``: ``{"system", **summarize(...)}``."""
    values: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        values[r["system"]].append(float(r["value"]))
    return [{"system": s, **stats.summarize(values[s], bounds=bounds, n_boot=n_boot, seed=seed)} for s in systems]


def ab_pairwise(rows: Sequence[Mapping]) -> list[dict]:
    """Per system pair (as presented in trials): how often each side was chosen."""
    trials: dict[tuple[str, int], list[Mapping]] = defaultdict(list)
    for r in rows:
        trials[(r["participant"], int(r["trial"]))].append(r)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for answer in trials.values():
        if len(answer) != 2:
            continue
        a, b = sorted(answer, key=lambda r: r["system"])
        c = counts[(a["system"], b["system"])]
        c[0] += int(float(a["value"]) > 0.5)
        c[1] += int(float(b["value"]) > 0.5)
    return [{"system_a": a, "system_b": b, "a_wins": wa, "b_wins": wb, "n": wa + wb,
             "a_win_rate": wa / (wa + wb) if wa + wb else float("nan")}
            for (a, b), (wa, wb) in sorted(counts.items())]


def analyse(root: str | os.PathLike, *, screening: bool = True, n_boot: int = stats.DEFAULT_N_BOOT,
            seed: int = 0) -> tuple[ListeningResults, list[dict]]:
    """Unblind the ratings of a test folder and compute the per-system summary.

    Returns:
        ``(results, rows)`` where ``rows`` are the unblinded ratings (all participants, screening aside).
    """
    root = Path(root)
    info_path = root / PRIVATE / "stimuli.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        design = info["settings"]["design"]
        preferred = list(info["settings"]["systems"])
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{info_path}: cannot read the test description ({e})") from e
    rows = unblind(read_responses(root / DB_NAME), read_answer_key(root / PRIVATE / "answer_key.csv"))
    rows = [r for r in rows if r["system"] != OPEN_REFERENCE]
    if not rows:
        raise DataError(f"{root / DB_NAME} holds no ratings yet")
    participants = sorted({r["participant"] for r in rows})
    result = ListeningResults(design=design, systems=[], participants=participants)
    kept = rows
    if design == "mushra":
        result.screening = screen_mushra(rows)
        if screening:
            result.excluded = [s["participant"] for s in result.screening if s["excluded"]]
            kept = [r for r in rows if r["participant"] not in set(result.excluded)]
    else:
        result.pairwise = ab_pairwise(rows)
    scale = (0.0, 100.0) if design == "mushra" else (0.0, 1.0)
    result.systems = system_scores(kept, _order((r["system"] for r in rows), preferred), bounds=scale,
                                   n_boot=n_boot, seed=seed)
    return result, rows


# ------------------------------------------------------------------------------------------------ outputs
def _csv(columns: Sequence[str], rows: Iterable[Mapping]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("nan" if v is None or (isinstance(v, float) and not np.isfinite(v)) else v)
                    for k, v in r.items()})
    return buf.getvalue()


def _num(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def summary_rows(result: ListeningResults) -> list[dict]:
    """The per-system table as flat rows (system, n, mean, ci95_lo, ci95_hi)."""
    return [{"system": s["system"], "n": s["n"], "mean": s["mean"], "ci95_lo": s["ci95"][0],
             "ci95_hi": s["ci95"][1]} for s in result.systems]


def summary_markdown(result: ListeningResults) -> str:
    what = "mean rating (0-100)" if result.design == "mushra" else "win rate"
    digits = 1 if result.design == "mushra" else 3
    lines = [f"# Listening test results ({result.design.upper()})", "",
             f"Participants: {len(result.participants)}; included: "
             f"{len(result.participants) - len(result.excluded)}."]
    if result.design == "mushra":
        lines.append(f"Post-screening (BS.1534): participants rating the hidden reference below "
                     f"{SCREEN_THRESHOLD:.0f} for more than {SCREEN_MAX_FRACTION:.0%} of their items are excluded"
                     f"; excluded: {', '.join(result.excluded) or 'none'}.")
    method = result.systems[0]["method"] if result.systems else ""
    lines += ["", f"| system | n | {what} | 95% CI ({method}) |", "|---|---:|---:|---|"]
    for s in result.systems:
        lo, hi = s["ci95"]
        lines.append(f"| {s['system']} | {s['n']} | {_num(s['mean'], digits)} | "
                     f"[{_num(lo, digits)}, {_num(hi, digits)}] |")
    if result.pairwise:
        lines += ["", "| A | B | A chosen | B chosen | A win rate |", "|---|---|---:|---:|---:|"]
        for p in result.pairwise:
            lines.append(f"| {p['system_a']} | {p['system_b']} | {p['a_wins']} | {p['b_wins']} | "
                         f"{_num(p['a_win_rate'], 3)} |")
    lines += ["", "![per-system scores](summary.png)", ""]
    return "\n".join(lines)


def plot_summary(result: ListeningResults, path: str | os.PathLike) -> Path:
    """Bar chart of the per-system scores with 95 % CI error bars (Agg backend, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s["system"] for s in result.systems]
    means = np.array([np.nan if s["mean"] is None else s["mean"] for s in result.systems], dtype=float)
    lo = np.array([np.nan if s["ci95"][0] is None else s["ci95"][0] for s in result.systems], dtype=float)
    hi = np.array([np.nan if s["ci95"][1] is None else s["ci95"][1] for s in result.systems], dtype=float)
    err = np.nan_to_num(np.vstack([means - lo, hi - means])).clip(min=0)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 1.5), 4.0))
    ax.bar(np.arange(len(names)), np.nan_to_num(means), yerr=err, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
    if result.design == "mushra":
        ax.set_ylim(0, 100)
        ax.set_ylabel("MUSHRA score (mean, 95% CI)")
        for y in (20, 40, 60, 80):  # the BS.1534 scale's category boundaries
            ax.axhline(y, color="0.85", lw=0.8, zorder=0)
    else:
        ax.set_ylim(0, 1)
        ax.axhline(0.5, color="0.6", lw=0.8, ls="--")
        ax.set_ylabel("win rate (95% CI)")
    ax.set_title(f"Listening test ({result.design.upper()}), "
                 f"{len(result.participants) - len(result.excluded)} participants")
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def write_results(root: str | os.PathLike, out: str | os.PathLike | None = None, *, screening: bool = True,
                  n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0) -> ListeningResults:
    """Analyse a test folder and write ``ratings.csv``, ``summary.csv``, ``summary.md``, ``summary.png`` (and
    ``screening.csv`` for MUSHRA, ``pairwise.csv`` for A/B) to ``out`` (default ``root/results``)."""
    result, rows = analyse(root, screening=screening, n_boot=n_boot, seed=seed)
    out = Path(root) / "results" if out is None else Path(out)
    atomic_write_text(out / "ratings.csv", _csv(RATING_COLUMNS, rows))
    atomic_write_text(out / "summary.csv", _csv(("system", "n", "mean", "ci95_lo", "ci95_hi"),
                                                summary_rows(result)))
    if result.screening:
        atomic_write_text(out / "screening.csv", _csv(("participant", "items", "below", "fraction", "excluded"),
                                                      result.screening))
    if result.pairwise:
        atomic_write_text(out / "pairwise.csv", _csv(("system_a", "system_b", "a_wins", "b_wins", "n",
                                                      "a_win_rate"), result.pairwise))
    plot_summary(result, out / "summary.png")
    atomic_write_text(out / "summary.md", summary_markdown(result))
    return result
