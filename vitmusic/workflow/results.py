"""Results of an experiment: variants x metrics with CIs and paired differences against the baseline.

The numbers come from the evaluation folders (``per_clip.csv`` + ``summary.json``, written by
:func:`vitmusic.evaluation.runner.run_evaluation`) through :func:`vitmusic.evaluation.report.compare_runs`, which
pairs clips by id and computes the paired bootstrap CI and Wilcoxon p of ``variant - baseline``; each
variant's own mean CI is the one its ``summary.json`` reports. Written as ``results.csv`` (long format, one row
per variant and metric: :data:`RESULT_COLUMNS`), ``results.md`` and ``results.png``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.atomic import atomic_write_text

RESULT_COLUMNS: tuple[str, ...] = (
    "variant", "system", "metric", "mean", "ci95_lo", "ci95_hi", "n",
    "diff", "diff_ci95_lo", "diff_ci95_hi", "p_wilcoxon", "n_paired",
)
# per-variant training figures (teacher-forced cross-entropy of the test clips), reported next to the metrics
TRAIN_METRICS: tuple[str, ...] = ("train.val_loss", "train.ce_true_video", "train.ce_shuffled_video")


def _num(x: Any) -> float:
    try:
        return float("nan") if x is None else float(x)
    except (TypeError, ValueError):
        return float("nan")


def collect_results(
    eval_dirs: Mapping[str, str | os.PathLike],
    systems: Mapping[str, str],
    baseline: str,
    *,
    train_info: Mapping[str, Mapping[str, float]] | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows of :data:`RESULT_COLUMNS` for the evaluated variants.

    Args:
        eval_dirs: ``{variant: evaluation folder}`` of the finished variants.
        systems: ``{variant: system}``.
        baseline: the variant the differences are taken against (absent from ``eval_dirs``: no differences).
        train_info: ``{variant: {"train.val_loss": ..., ...}}`` (see :data:`TRAIN_METRICS`).
        metrics: summary metric names to keep (default: all of :data:`vitmusic.evaluation.runner.SUMMARY_METRICS`).
    """
    from vitmusic.evaluation.report import compare_runs

    names = list(eval_dirs)
    if baseline in eval_dirs:
        names.remove(baseline)
        names.insert(0, baseline)
    dirs = [Path(eval_dirs[n]) for n in names]
    by_dir = {str(d): n for d, n in zip(dirs, names)}
    if len(dirs) >= 2:
        rows = compare_runs(dirs, metrics=metrics, n_boot=n_boot, seed=seed)
    else:  # nothing to compare with: compare the run with itself and drop the (zero) differences
        rows = compare_runs(dirs * 2, metrics=metrics, n_boot=1, seed=seed)[: len(rows_metrics(metrics))]
    out = []
    has_baseline = baseline in eval_dirs
    for r in rows:
        variant = by_dir[r["run_dir"]]
        summary = _summary(Path(r["run_dir"]))
        s = summary.get(r["metric"]) or {}
        lo, hi = (s.get("ci95") or [None, None])[:2]
        paired = has_baseline and variant != baseline
        out.append({
            "variant": variant, "system": systems.get(variant, ""), "metric": r["metric"],
            "mean": r["mean"], "ci95_lo": _num(lo), "ci95_hi": _num(hi), "n": r["n"],
            "diff": r["diff"] if paired else math.nan, "diff_ci95_lo": r["ci95_lo"] if paired else math.nan,
            "diff_ci95_hi": r["ci95_hi"] if paired else math.nan,
            "p_wilcoxon": r["p_wilcoxon"] if paired else math.nan, "n_paired": r["n_paired"] if paired else 0,
        })
    for variant in names:
        info = (train_info or {}).get(variant) or {}
        for m in TRAIN_METRICS:
            if m in info:
                out.append({**dict.fromkeys(RESULT_COLUMNS, math.nan), "variant": variant,
                            "system": systems.get(variant, ""), "metric": m, "mean": _num(info[m]), "n": 1,
                            "n_paired": 0})
    return out


def rows_metrics(metrics: Sequence[str] | None) -> list[str]:
    from vitmusic.evaluation.runner import SUMMARY_METRICS

    return list(metrics) if metrics else list(SUMMARY_METRICS)


def _summary(eval_dir: Path) -> dict[str, Any]:
    p = eval_dir / "summary.json"
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("metrics", {})
    except (OSError, json.JSONDecodeError):
        return {}


def write_results_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """``results.csv`` (columns :data:`RESULT_COLUMNS`, ``nan`` where undefined), atomically."""
    from vitmusic.evaluation.report import write_table_csv  # the format of per_clip.csv and the compare CSV

    return write_table_csv(path, RESULT_COLUMNS, rows)


def read_results_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``results.csv`` with numbers as floats (``n``/``n_paired`` as ints)."""
    from vitmusic.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"results file not found: {p}")
    with open(p, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for c in RESULT_COLUMNS[3:]:
            r[c] = int(float(r[c])) if c in ("n", "n_paired") and r[c] not in ("", "nan") else _num(r[c])
    return rows


def _cell(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.4g}"


def defined_metrics(rows: Sequence[Mapping[str, Any]], include_train: bool = False) -> list[str]:
    """Metric names with a defined mean for at least one variant, in row order."""
    names = [r["metric"] for r in rows if math.isfinite(_num(r["mean"]))]
    return [m for m in dict.fromkeys(names) if include_train or m not in TRAIN_METRICS]


def results_markdown(rows: Sequence[Mapping[str, Any]], baseline: str) -> str:
    """Two tables: variant means with 95 % CIs (variants x metrics), and paired differences vs ``baseline``."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    metrics = defined_metrics(rows)
    cell = {(r["variant"], r["metric"]): r for r in rows}
    lines = ["### Means over the test clips (95% t CI; n = clips where defined, `n<10` flags fewer than 10)", "",
             "| variant | system | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for v in variants:
        system = next(r["system"] for r in rows if r["variant"] == v)
        out = [f"**{v}** (baseline)" if v == baseline else v, system]
        for m in metrics:
            r = cell.get((v, m))
            if r is None or not math.isfinite(_num(r["mean"])):
                out.append("—")
                continue
            ci = f" [{_cell(r['ci95_lo'])}, {_cell(r['ci95_hi'])}]" if math.isfinite(_num(r["ci95_lo"])) else ""
            out.append(f"{_cell(r['mean'])}{ci} (n={_n_flag(r['n'])})")
        lines.append("| " + " | ".join(out) + " |")
    others = [v for v in variants if v != baseline]
    if baseline in variants and others:
        lines += ["", f"### Paired differences against the baseline `{baseline}` (variant − baseline over the "
                  "clips both define: mean [95% t CI], Wilcoxon p, n)", "",
                  "| metric | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
        for m in metrics:
            out = [m]
            for v in others:
                r = cell.get((v, m))
                if r is None or not r["n_paired"]:
                    out.append("—")
                else:
                    out.append(f"{r['diff']:+.4g} [{_cell(r['diff_ci95_lo'])}, {_cell(r['diff_ci95_hi'])}] "
                               f"p={_cell(r['p_wilcoxon'])} (n={_n_flag(r['n_paired'])})")
            lines.append("| " + " | ".join(out) + " |")
    train = [m for m in TRAIN_METRICS if any((v, m) in cell for v in variants)]
    if train:
        lines += ["", "### Teacher-forced cross-entropy (nats per code; lower = the model predicts the true audio "
                  "better)", "", "| variant | " + " | ".join(train) + " |", "|---|" + "---|" * len(train)]
        for v in variants:
            if any((v, m) in cell for m in train):
                lines.append(f"| {v} | " + " | ".join(_cell(_num(cell[(v, m)]["mean"])) if (v, m) in cell
                                                      else "—" for m in train) + " |")
    return "\n".join(lines) + "\n"


def plot_results(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, baseline: str | None = None,
                 metrics: Sequence[str] | None = None, ncols: int = 4) -> Path | None:
    """One small panel per metric: each variant's mean with its 95 % CI; the baseline bar is highlighted.

    Returns:
        the PNG path, or None when no metric is defined.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(metrics) if metrics else defined_metrics(rows, include_train=True)
    if not metrics:
        return None
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    cell = {(r["variant"], r["metric"]): r for r in rows}
    ncols = min(ncols, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 0.35 * len(variants) * nrows + 1.3 * nrows),
                             squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        means = np.array([_num(cell.get((v, m), {}).get("mean")) for v in variants])
        lo = np.array([_num(cell.get((v, m), {}).get("ci95_lo")) for v in variants])
        hi = np.array([_num(cell.get((v, m), {}).get("ci95_hi")) for v in variants])
        err = np.vstack([np.nan_to_num(means - lo), np.nan_to_num(hi - means)]).clip(min=0)
        colors = ["tab:orange" if v == baseline else "tab:blue" for v in variants]
        ax.barh(np.arange(len(variants)), np.nan_to_num(means), xerr=err, color=colors, alpha=0.8, capsize=3)
        ax.set_yticks(np.arange(len(variants)), variants, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(m, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    title = "variants: mean over test clips with 95% bootstrap CI"
    return _finish(fig, axes, len(metrics), title + (f" (baseline {baseline} in orange)" if baseline else ""), path)


def _finish(fig, axes, n_used: int, title: str, path: str | os.PathLike) -> Path:
    """Blank the unused panels, title the figure and save it (atomically, as every report figure)."""
    from vitmusic.evaluation.report import _save

    for ax in list(axes.flat)[n_used:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def write_results(out_dir: str | os.PathLike, rows: Sequence[Mapping[str, Any]], *, baseline: str, title: str,
                  preamble: Sequence[str] = ()) -> Path:
    """``results.csv``, ``results.png`` and ``results.md`` in ``out_dir``; returns the markdown path."""
    out = Path(out_dir)
    write_results_csv(out / "results.csv", rows)
    png = plot_results(rows, out / "results.png", baseline=baseline)
    text = [f"# {title}", "", *preamble, "", results_markdown(rows, baseline)]
    if png is not None:
        text += ["", f"![variants x metrics]({png.name})", ""]
    return atomic_write_text(out / "results.md", "\n".join(text))


# ------------------------------------------------------------------------------------ evaluation folders
def find_eval_dirs(root: str | os.PathLike) -> dict[str, Path]:
    """``{variant: evaluation folder}`` under an ablation or demo output (``<v>/eval`` or ``runs/<v>/eval``)."""
    root = Path(root)
    found = sorted(root.glob("*/eval/per_clip.csv")) + sorted(root.glob("runs/*/eval/per_clip.csv"))
    return {p.parent.parent.name: p.parent for p in found}


def read_per_clip(eval_dirs: Mapping[str, str | os.PathLike]) -> dict[str, dict[str, dict[str, float]]]:
    """``{variant: {clip_id: {metric: value}}}`` from each folder's ``per_clip.csv``."""
    from vitmusic.evaluation.report import read_per_clip_csv

    return {v: read_per_clip_csv(Path(d) / "per_clip.csv")[1] for v, d in eval_dirs.items()}


def plot_per_clip(per_clip: Mapping[str, Mapping[str, Mapping[str, float]]], path: str | os.PathLike,
                  metrics: Sequence[str], ncols: int = 3) -> Path | None:
    """Per-clip values of each metric, one column of dots per variant, lines joining the same clip.

    The paired view behind the paired statistics: a line that goes up from the baseline is a clip on which the
    variant scored higher. Undefined (NaN) values are left out. Returns the PNG path (None: nothing to draw).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(per_clip)
    metrics = [m for m in metrics if any(math.isfinite(_num(c.get(m))) for v in variants
                                         for c in per_clip[v].values())]
    if not variants or not metrics:
        return None
    clips = sorted({c for v in variants for c in per_clip[v]})
    ncols = min(ncols, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        for c in clips:
            y = [_num(per_clip[v].get(c, {}).get(m)) for v in variants]
            ax.plot(range(len(variants)), y, "o-", color="gray", alpha=0.5, ms=4, lw=0.8)
        ax.set_xticks(range(len(variants)), variants, fontsize=8, rotation=30)
        ax.set_title(m, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    return _finish(fig, axes, len(metrics), "per-clip values (a line = one test clip)", path)


def _n_flag(n: int) -> str:
    """A clip count, flagged below 10 (too few clips for the interval to be trusted)."""
    from vitmusic.metrics.stats import SMALL_N

    return f"{n} (n<{SMALL_N})" if int(n) < SMALL_N else str(n)
