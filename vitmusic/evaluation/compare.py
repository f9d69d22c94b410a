"""``vitmusic compare``: systems x metrics with paired differences against the first system.

The metrics compared are those the evaluation folders hold (their ``per_clip.csv`` columns and
``summary.json`` metrics), so a metric registered by a plug-in is compared like a built-in one even when the
plug-in is not loaded here. Which direction is better comes from the definitions stored in ``summary.json``
(or the registry for older folders). Set-level metrics computed with different settings that change their
meaning (e.g. FAD with different embeddings, recorded as ``summary.metrics[m].embedding``) are refused.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.errors import DataError, VitmusicError
from vitmusic.evaluation.registry import get_metric, summary_metrics
from vitmusic.evaluation.report import (
    _cell,
    _n_cell,
    _nan,
    _pyplot,
    _save,
    read_clip_pieces,
    read_per_clip_csv,
    write_table_csv,
)
from vitmusic.metrics import stats

__all__ = ["COMPARE_COLUMNS", "compare_markdown", "compare_runs", "plot_compare", "write_compare_csv"]

COMPARE_COLUMNS = ["system", "run_dir", "metric", "direction", "mean", "n", "diff", "ci95_lo", "ci95_hi",
                   "p", "test", "method", "p_wilcoxon", "n_paired", "n_pieces", "embedding"]
#: summary.json fields that must agree between systems for a metric to be comparable
SETTING_FIELDS = ("embedding",)
#: what makes two kid / fad values comparable: the embedding and how it was applied (not where it was loaded from)
EMBEDDING_KEYS = ("name", "dim", "sample_rate", "pooling", "window_s", "hop_s", "layer", "loudness_lufs")


def read_summary(run_dir: Path) -> dict:
    """``run_dir/summary.json`` as a dict ({} when absent)."""
    p = Path(run_dir) / "summary.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{p}:{e.lineno}: not valid JSON: {e.msg}") from e


def direction(metric: str, summaries: Sequence[Mapping[str, Any]] = ()) -> str:
    """``"higher"``, ``"lower"`` or ``"none"``: from a stored definition, else the registry."""
    for s in summaries:
        d = (s.get("definitions") or {}).get(metric)
        if d is not None:
            return {True: "higher", False: "lower"}.get(d.get("higher_is_better"), "none")
    m = get_metric(metric)
    return m.direction if m is not None else "none"


def _setting(entry: Mapping[str, Any], field: str) -> str | None:
    """A comparable text of one setting of a summary entry (None when absent)."""
    v = entry.get(field)
    if isinstance(v, Mapping) and field == "embedding":
        return ", ".join(f"{k}={v[k]}" for k in EMBEDDING_KEYS if v.get(k) is not None)
    return None if v is None else json.dumps(v, sort_keys=True)


def _bounds(metric: str, summaries: Sequence[Mapping[str, Any]]) -> tuple | None:
    """The metric's range (stored definition, else the registry); None where unknown."""
    for s in summaries:
        d = (s.get("definitions") or {}).get(metric)
        if d is not None and d.get("bounds") is not None:
            return tuple(d["bounds"])
    m = get_metric(metric)
    return m.bounds if m is not None else None


def _check_settings(metric: str, names: Sequence[str], summaries: Sequence[Mapping[str, Any]]) -> None:
    for field in SETTING_FIELDS:
        entries = {n: (s.get("metrics") or {}).get(metric) or {} for n, s in zip(names, summaries)}
        values = {n: _setting(e, field) for n, e in entries.items()}
        if any(v is not None for v in values.values()):  # a value without the setting cannot be vouched for
            values = {n: "unrecorded" if v is None and entries[n].get("mean") is not None else v
                      for n, v in values.items()}
        seen = {v for v in values.values() if v is not None}
        if len(seen) > 1:
            listed = ", ".join(f"{n}: {v}" for n, v in values.items() if v is not None)
            raise VitmusicError(f"cannot compare {metric}: computed with different {field}s ({listed})")


def compare_runs(
    run_dirs: Sequence[str | os.PathLike],
    *,
    metrics: Sequence[str] | None = None,
    n_boot: int = stats.DEFAULT_N_BOOT,
    seed: int = 0,
) -> list[dict]:
    """Systems x metrics with paired differences against the first system.

    Clips are paired by ``clip_id`` in each run's ``per_clip.csv``; a system's mean is over its own defined
    clips (set-level metrics such as ``fad`` come from ``summary.json`` and get no paired statistics).

    Args:
        metrics: metric names to compare (default: every metric any of the runs holds, registry order first).

    Returns:
        One dict per (system, metric) with :data:`COMPARE_COLUMNS` (NaN where undefined; the difference
        columns are NaN for the first system).

    Raises:
        VitmusicError: fewer than two runs, a missing folder / per_clip.csv, an unknown metric, or a metric
            computed with different settings (e.g. FAD embeddings).
    """
    if len(run_dirs) < 2:
        raise VitmusicError("compare needs at least two evaluation folders")
    names = _system_names([Path(d) for d in run_dirs])
    runs = []
    pieces: dict[str, str] = {}  # clip id -> piece (the unit of the paired statistics)
    for d in map(Path, run_dirs):
        if not d.is_dir():
            raise DataError(f"evaluation folder does not exist: {d}")
        cols, clips = read_per_clip_csv(d / "per_clip.csv")
        runs.append((d, cols, clips, read_summary(d)))
        pieces.update(read_clip_pieces(d / "per_clip.csv"))
    held = list(dict.fromkeys(m for _, cols, _, summary in runs
                              for m in list(cols) + list(summary.get("metrics") or {})
                              if not m.startswith("referee.")))
    order = {m: i for i, m in enumerate(summary_metrics())}
    held.sort(key=lambda m: order.get(m, len(order)))
    wanted = list(metrics) if metrics else held
    unknown = [m for m in wanted if m not in held]
    if unknown:
        raise VitmusicError(f"unknown metric {unknown[0]!r}; these evaluations hold: {', '.join(held)}")
    summaries = [r[3] for r in runs]
    for m in wanted:
        _check_settings(m, names, summaries)
    base_dir, _, base_clips, _ = runs[0]
    rows = []
    for name, (d, cols, clips, summary) in zip(names, runs):
        shared = sorted(set(base_clips) & set(clips))
        for m in wanted:
            row = {"system": name, "run_dir": str(d), "metric": m, "direction": direction(m, summaries),
                   "mean": math.nan, "n": 0, "diff": math.nan, "ci95_lo": math.nan, "ci95_hi": math.nan,
                   "p": math.nan, "test": "", "method": "", "p_wilcoxon": math.nan, "n_paired": 0, "n_pieces": 0, "embedding": ""}
            if m not in cols:  # a set-level metric (or one only the summary holds)
                s = (summary.get("metrics") or {}).get(m) or {}
                row["mean"] = _nan(s.get("mean"))
                row["n"] = int(s.get("n") or 0)
                row["embedding"] = (s.get("embedding") or {}).get("name", "")
            else:
                values = stats.finite([clips[c].get(m, math.nan) for c in clips])
                row["mean"] = float(values.mean()) if values.size else math.nan
                row["n"] = int(values.size)
                if d is not base_dir:
                    a = [base_clips[c].get(m, math.nan) for c in shared]
                    b = [clips[c].get(m, math.nan) for c in shared]
                    diff = stats.paired_difference(a, b, groups=[pieces.get(c, c) for c in shared],
                                                   bounds=_bounds(m, summaries), n_boot=n_boot, seed=seed)
                    row.update(diff=diff["mean_diff"], ci95_lo=diff["ci95"][0], ci95_hi=diff["ci95"][1],
                               p=diff["p"], test=diff["test"], method=diff["method"],
                               p_wilcoxon=diff["p_wilcoxon"], n_paired=diff["n"], n_pieces=diff["n_groups"] or 0)
            rows.append(row)
    return rows


def _system_names(dirs: list[Path]) -> list[str]:
    names = [d.name or str(d) for d in dirs]
    if len(set(names)) < len(names):  # same folder names under different parents: use the full paths
        names = [str(d) for d in dirs]
    return names


_ARROW = {"higher": " ↑", "lower": " ↓", "none": ""}


def compare_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table: one row per metric (↑ higher / ↓ lower is better); per system its mean (n), and for the
    others the difference to the first system with its 95 % CI and paired test over the shared clips, pieces as
    the unit (the methods are named under the table)."""
    systems = list(dict.fromkeys(r["system"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    cell = {(r["system"], r["metric"]): r for r in rows}
    head = ["metric", f"{systems[0]} (baseline)"] + [h for s in systems[1:] for h in (s, f"{s} − {systems[0]}")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in metrics:
        base = cell[(systems[0], m)]
        emb = next((cell[(s, m)].get("embedding") for s in systems if cell[(s, m)].get("embedding")), "")
        label = m + _ARROW.get(base.get("direction", "none"), "") + (f" ({emb})" if emb else "")
        out = [label, f"{_cell(base['mean'])} (n={_n_cell(base['n'])})"]
        for s in systems[1:]:
            r = cell[(s, m)]
            out.append(f"{_cell(r['mean'])} (n={_n_cell(r['n'])})")
            if r["n_paired"] == 0:
                out.append("—")
            else:
                out.append(f"{r['diff']:+.4g} [{_cell(r['ci95_lo'])}, {_cell(r['ci95_hi'])}] "
                           f"p={_cell(r['p'])} (n={_n_cell(r['n_paired'])} clips, {r['n_pieces']} pieces)")
        lines.append("| " + " | ".join(out) + " |")
    for m in ("fad", "fad_inf"):  # biased by set size: a difference in n is a difference in bias
        sizes = sorted({cell[(s, m)]["n"] for s in systems if m in metrics and cell[(s, m)]["n"]})
        if len(sizes) > 1:
            lines.append(f"\nwarning: {m} was computed on different numbers of clips ({', '.join(map(str, sizes))}); "
                         "its size bias differs between the systems: rank them by kid")
    methods = sorted({(r["method"], r["test"]) for r in rows if r["n_paired"]})
    if methods:
        lines += ["", "Differences: mean of (system − baseline) over the shared clips; "
                  + "; ".join(f"95% CI {m}, p from the {t} test" for m, t in methods)
                  + " (pieces are the unit: docs/statistics.md)."]
    return "\n".join(lines) + "\n"


def write_compare_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Long-format compare table (one row per system and metric), written atomically."""
    return write_table_csv(path, COMPARE_COLUMNS, rows)


def plot_compare(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Paired differences to the first system with their 95 % CIs: one panel per other system.

    Each metric is divided by the largest |CI bound| / |difference| of its row so metrics on different
    scales fit one axis; the printed labels keep the raw values. None when nothing is paired.
    """
    plt = _pyplot()
    systems = list(dict.fromkeys(r["system"] for r in rows))
    others = [s for s in systems[1:] if any(r["system"] == s and r["n_paired"] > 0 for r in rows)]
    if not others:
        return None
    metrics = [m for m in dict.fromkeys(r["metric"] for r in rows)
               if any(r["metric"] == m and r["n_paired"] > 0 for r in rows)]
    arrows = {r["metric"]: _ARROW.get(r.get("direction", "none"), "") for r in rows}
    fig, axes = plt.subplots(1, len(others), figsize=(6 * len(others), 0.4 * len(metrics) + 1.5),
                             squeeze=False, sharey=True)
    for ax, system in zip(axes[0], others):
        cell = {r["metric"]: r for r in rows if r["system"] == system}
        diff = np.array([cell[m]["diff"] for m in metrics], dtype=float)
        lo = np.array([cell[m]["ci95_lo"] for m in metrics], dtype=float)
        hi = np.array([cell[m]["ci95_hi"] for m in metrics], dtype=float)
        scale = np.nanmax(np.abs(np.vstack([diff, lo, hi])), axis=0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        err = np.vstack([np.nan_to_num(diff - lo), np.nan_to_num(hi - diff)]).clip(min=0) / scale
        y = np.arange(len(metrics))
        ax.errorbar(np.nan_to_num(diff / scale), y, xerr=err, fmt="o", color="tab:blue", capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        for k, m in enumerate(metrics):
            ax.annotate(f"{_cell(diff[k])} p={_cell(cell[m]['p'])}", (1.02, k), fontsize=7,
                        xycoords=("axes fraction", "data"), va="center")
        ax.set_yticks(y, [m + arrows[m] for m in metrics], fontsize=8)
        ax.set_xlim(-1.1, 1.1)
        ax.set_xlabel("difference / max |value| per metric (↑ higher / ↓ lower is better)")
        ax.set_title(f"{system} − {systems[0]} (95% CI)", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()
    return _save(fig, Path(path))
