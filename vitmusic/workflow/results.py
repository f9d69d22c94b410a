"""Results of an experiment: variants x metrics with intervals and paired differences against the baseline.

Per seed (:func:`collect_results`): the numbers come from the evaluation folders (``per_clip.csv`` +
``summary.json``, written by :func:`vitmusic.evaluation.runner.run_evaluation`). Each variant's mean is the clip
mean with the 95 % interval its ``summary.json`` reports: over the test *pieces* (clips of one piece are not
independent), by the method the metric's range calls for (:func:`vitmusic.metrics.stats.summarize`; the method
is named per row in ``interval``, e.g. ``wilson-boot-t(piece)``). The difference ``variant - baseline`` comes
from :func:`vitmusic.evaluation.compare.compare_runs`: clips paired by id, interval over pieces
(``diff_interval``) and the sign-flip test over pieces (``p``, ``test``; :func:`vitmusic.metrics.stats.
paired_difference`). A kind's own per-clip scores (e.g. the MIDI path's decoded notes) get the same statistics
(:func:`clip_rows`), with the pieces of the variant's ``per_clip.csv`` and the ranges the kind declares. These
intervals are over the test pieces of one trained model.

Across seeds (:func:`aggregate_seeds`): each variant's per-seed means are summarised by their mean, standard
deviation and a Student-t interval across the seeds (``interval = "t(seed)"``, ``n`` = seeds), and the
differences against the baseline are paired by seed. That is the spread a rerun with another training seed
would show; the per-seed rows (with their piece-level intervals) stay in the table.

Written as ``results.csv`` (long format, one row per variant, seed and metric: :data:`RESULT_COLUMNS`; ``seed``
is ``all`` in the aggregate rows), ``results.md`` and ``results.png``.
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
    "variant", "system", "seed", "metric", "mean", "sd", "ci95_lo", "ci95_hi", "n", "n_pieces", "interval",
    "diff", "diff_ci95_lo", "diff_ci95_hi", "diff_interval", "p", "test", "n_paired",
)
TEXT_COLUMNS = ("variant", "system", "seed", "metric", "interval", "diff_interval", "test")
ALL_SEEDS = "all"  # the seed label of the rows aggregated across seeds
SEEDS_INTERVAL = "t(seed)"  # the interval of the aggregate rows: Student t over the training seeds
# per-variant training figures: the validation loss and the kind's diagnostics (the conditioning gap: the
# task's loss on the test clips with their own vs another piece's video); any metric named train.* is one
TRAIN_METRICS: tuple[str, ...] = ("train.val_loss", "train.ce_true_video", "train.ce_shuffled_video")


def is_train_metric(name: str) -> bool:
    """A training figure (one value per trained run), not a score of the generated outputs."""
    return name.startswith("train.")


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
    kind_scores: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    kind_bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    seed_label: str = "",
) -> list[dict[str, Any]]:
    """Rows of :data:`RESULT_COLUMNS` for the evaluated variants of one seed.

    Args:
        eval_dirs: ``{variant: evaluation folder}`` of the finished variants.
        systems: ``{variant: system}``.
        baseline: the variant the differences are taken against (absent from ``eval_dirs``: no differences).
        train_info: ``{variant: {"train.val_loss": ..., ...}}`` (any ``train.*`` name).
        kind_scores: ``{variant: {clip_id: {metric: value}}}``: the kind's own per-clip scores (:func:`clip_rows`).
        kind_bounds: ``{metric: (lo, hi)}``: the ranges of the kind's scores (the registry's where absent).
        metrics: summary metric names to keep (default: every metric the evaluations hold).
        seed_label: the ``seed`` column of these rows (the training seed).
    """
    from vitmusic.evaluation.compare import compare_runs

    names = list(eval_dirs)
    if baseline in eval_dirs:
        names.remove(baseline)
        names.insert(0, baseline)
    dirs = [Path(eval_dirs[n]) for n in names]
    by_dir = {str(d): n for d, n in zip(dirs, names)}
    if len(dirs) >= 2:
        rows = compare_runs(dirs, metrics=metrics, n_boot=n_boot, seed=seed)
    else:  # nothing to compare with: compare the run with itself and keep the first copy's rows
        rows = compare_runs(dirs * 2, metrics=metrics, n_boot=1, seed=seed)
        rows = rows[: len(rows) // 2]
    out = []
    has_baseline = baseline in eval_dirs
    for r in rows:
        variant = by_dir[r["run_dir"]]
        summary = _summary(Path(r["run_dir"]))
        s = summary.get(r["metric"]) or {}
        lo, hi = (s.get("ci95") or [None, None])[:2]
        paired = has_baseline and variant != baseline and r["n_paired"] > 0
        out.append({
            **dict.fromkeys(RESULT_COLUMNS, math.nan),
            "variant": variant, "system": systems.get(variant, ""), "seed": seed_label, "metric": r["metric"],
            "mean": r["mean"], "ci95_lo": _num(lo), "ci95_hi": _num(hi), "n": r["n"],
            "n_pieces": s.get("n_groups") if s.get("n_groups") is not None else math.nan,
            "interval": s.get("method") or "", "diff_interval": "", "test": "", "n_paired": 0,
            **({"diff": r["diff"], "diff_ci95_lo": r["ci95_lo"], "diff_ci95_hi": r["ci95_hi"],
                "diff_interval": r["method"], "p": r["p"], "test": r["test"], "n_paired": r["n_paired"]}
               if paired else {}),
        })
    scores = {v: s for v, s in (kind_scores or {}).items() if s and v in eval_dirs}
    if scores:
        from vitmusic.evaluation.report import read_clip_pieces

        pieces: dict[str, str] = {}
        for v in scores:
            pieces.update(read_clip_pieces(Path(eval_dirs[v]) / "per_clip.csv"))
        out = clip_rows({v: scores[v] for v in names if v in scores}, systems, baseline, seed_label,
                        pieces=pieces, bounds=kind_bounds, n_boot=n_boot, seed=seed) + out
    for variant in names:
        info = (train_info or {}).get(variant) or {}
        for m in sorted(info, key=lambda m: (m not in TRAIN_METRICS, TRAIN_METRICS.index(m) if m in TRAIN_METRICS
                                             else 0, m)):
            if is_train_metric(m):
                out.append({**dict.fromkeys(RESULT_COLUMNS, math.nan), "variant": variant,
                            "system": systems.get(variant, ""), "seed": seed_label, "metric": m,
                            "mean": _num(info[m]), "n": 1, "interval": "", "diff_interval": "", "test": "",
                            "n_paired": 0})
    return out


def clip_rows(per_clip: Mapping[str, Mapping[str, Mapping[str, float]]], systems: Mapping[str, str],
              baseline: str, seed_label: str = "", *, pieces: Mapping[str, str] | None = None,
              bounds: Mapping[str, tuple[float | None, float | None]] | None = None, n_boot: int = 1000,
              seed: int = 0) -> list[dict[str, Any]]:
    """Rows of per-clip scores computed outside the evaluation runner (``{variant: {clip_id: {metric: value}}}``)
    with the statistics :func:`collect_results` gives the runner's: each variant's clip mean with its interval
    over pieces, and the paired difference against ``baseline`` over the clips both define (interval over
    pieces, sign-flip test over pieces).

    Args:
        pieces: ``{clip_id: piece}``, the unit of the intervals (a clip missing here is its own piece; None:
            every clip is).
        bounds: ``{metric: (lo, hi)}``; a metric absent here takes its range from the metric registry (none
            when unregistered: an unbounded interval).
    """
    from vitmusic.evaluation.registry import get_metric
    from vitmusic.metrics.stats import paired_difference, summarize

    def metric_bounds(m: str):
        if bounds and m in bounds:
            return tuple(bounds[m])
        spec = get_metric(m)
        return spec.bounds if spec is not None else None

    metrics = list(dict.fromkeys(m for s in per_clip.values() for c in s.values() for m in c))
    clips = sorted({c for s in per_clip.values() for c in s})
    groups = [(pieces or {}).get(c, c) for c in clips] if pieces is not None else None
    rows = []
    for variant, scores in per_clip.items():
        for m in metrics:
            x = np.array([_num(scores.get(c, {}).get(m)) for c in clips])
            s = summarize(x, groups=groups, bounds=metric_bounds(m), n_boot=n_boot, seed=seed)
            row = {**dict.fromkeys(RESULT_COLUMNS, math.nan), "variant": variant, "system": systems.get(variant, ""),
                   "seed": seed_label, "metric": m, "mean": _num(s["mean"]), "ci95_lo": _num(s["ci95"][0]),
                   "ci95_hi": _num(s["ci95"][1]), "n": s["n"], "n_pieces": _num(s["n_groups"]),
                   "interval": s["method"], "diff_interval": "", "test": "", "n_paired": 0}
            if variant != baseline and baseline in per_clip:
                base = np.array([_num(per_clip[baseline].get(c, {}).get(m)) for c in clips])
                d = paired_difference(base, x, groups=groups, bounds=metric_bounds(m), n_boot=n_boot, seed=seed)
                if d["n"]:
                    row.update(diff=d["mean_diff"], diff_ci95_lo=d["ci95"][0], diff_ci95_hi=d["ci95"][1],
                               diff_interval=d["method"], p=d["p"], test=d["test"], n_paired=d["n"])
            rows.append(row)
    return rows


def seed_interval(values: Sequence[float]) -> tuple[float, float]:
    """The 95 % interval of a mean over training seeds (Student t, ``n - 1`` degrees of freedom)."""
    from vitmusic.metrics.stats import t_interval

    return t_interval(values)


def seed_summary(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "sd", "ci95": [lo, hi], "n", "values", "method"}`` of one figure over training seeds (NaNs
    left out of the statistics, kept in ``values``; ``method`` :data:`SEEDS_INTERVAL`): what the benchmark
    scripts and :func:`aggregate_seeds` report."""
    raw = [_num(v) for v in values]
    x = np.array([v for v in raw if math.isfinite(v)])
    lo, hi = seed_interval(x)
    return {"mean": float(x.mean()) if x.size else math.nan, "sd": float(x.std(ddof=1)) if x.size > 1 else math.nan,
            "ci95": [lo, hi], "n": int(x.size), "values": raw, "method": SEEDS_INTERVAL}


def format_seed_summary(s: Mapping[str, Any]) -> str:
    """``0.512 ± 0.021 [0.460, 0.564] (n=3 seeds: 0.51, 0.49, 0.54)``."""
    values = ", ".join(_cell(v) for v in s["values"])
    return (f"{_cell(s['mean'])} ± {_cell(s['sd'])} [{_cell(s['ci95'][0])}, {_cell(s['ci95'][1])}] "
            f"(n={s['n']} seeds: {values})")


def aggregate_seeds(rows: Sequence[Mapping[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Rows with ``seed = "all"``: per variant and metric, the mean of the per-seed means, their standard
    deviation and :func:`seed_interval` (``n`` = seeds), and the difference against ``baseline`` paired by seed
    (the mean of the per-seed differences and its interval; ``n_paired`` = seeds both ran)."""
    per = [r for r in rows if r["seed"] != ALL_SEEDS]
    value = {(r["variant"], r["metric"], r["seed"]): _num(r["mean"]) for r in per}
    out = []
    for variant, metric in dict.fromkeys((r["variant"], r["metric"]) for r in per):
        seeds = [r["seed"] for r in per if r["variant"] == variant and r["metric"] == metric]
        s = seed_summary([value[(variant, metric, k)] for k in seeds])
        row = {**dict.fromkeys(RESULT_COLUMNS, math.nan), "variant": variant,
               "system": next(r["system"] for r in per if r["variant"] == variant), "seed": ALL_SEEDS,
               "metric": metric, "mean": s["mean"], "sd": s["sd"], "ci95_lo": s["ci95"][0], "ci95_hi": s["ci95"][1],
               "n": s["n"], "interval": SEEDS_INTERVAL, "diff_interval": "", "test": "", "n_paired": 0}
        if variant != baseline and not is_train_metric(metric):
            d = seed_summary([value[(variant, metric, k)] - value.get((baseline, metric, k), math.nan) for k in seeds])
            if d["n"]:
                row.update(diff=d["mean"], n_paired=d["n"], diff_ci95_lo=d["ci95"][0], diff_ci95_hi=d["ci95"][1],
                           diff_interval=SEEDS_INTERVAL)
        out.append(row)
    return out


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
        for c in RESULT_COLUMNS:
            if c in TEXT_COLUMNS or c not in r:
                continue
            r[c] = int(float(r[c])) if c in ("n", "n_paired") and r[c] not in ("", "nan") else _num(r[c])
    return rows


def across_seeds(row: Mapping[str, Any]) -> bool:
    """An aggregate row (across training seeds), not one seed's."""
    return str(row["seed"]) == ALL_SEEDS


def seed_labels(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The seeds the rows hold, in order (without the aggregate)."""
    return [s for s in dict.fromkeys(str(r["seed"]) for r in rows) if s != ALL_SEEDS]


def headline_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows a report leads with: the aggregate across seeds when there are several, else the one seed's."""
    seeds = seed_labels(rows)
    keep = ALL_SEEDS if len(seeds) > 1 else (seeds[0] if seeds else ALL_SEEDS)
    return [r for r in rows if str(r["seed"]) == keep]


def with_seed_values(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`headline_rows` with, on each aggregate row, ``values``: the per-seed means in seed order."""
    per = {(r["variant"], r["metric"], str(r["seed"])): _num(r["mean"]) for r in rows if not across_seeds(r)}
    seeds = seed_labels(rows)
    return [{**r, "values": [per.get((r["variant"], r["metric"], k), math.nan) for k in seeds]}
            if across_seeds(r) else dict(r) for r in headline_rows(rows)]


def _cell(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.4g}"


def defined_metrics(rows: Sequence[Mapping[str, Any]], include_train: bool = False) -> list[str]:
    """Metric names with a defined mean for at least one variant, in row order."""
    names = [r["metric"] for r in rows if math.isfinite(_num(r["mean"]))]
    return [m for m in dict.fromkeys(names) if include_train or not is_train_metric(m)]


def metric_label(name: str) -> str:
    """``name`` with ↑ / ↓ when higher / lower values are better (from the metric registry)."""
    from vitmusic.evaluation.registry import get_metric

    m = get_metric(name)
    return name + {"higher": " ↑", "lower": " ↓"}.get(m.direction if m is not None else "none", "")


def results_markdown(rows: Sequence[Mapping[str, Any]], baseline: str) -> str:
    """The results tables: with one seed, variant means with 95 % intervals over the test pieces and paired
    differences vs ``baseline`` (sign-flip test over pieces); with several, the same across seeds (t interval
    over the seeds) plus every seed's means."""
    seeds = seed_labels(rows)
    if len(seeds) > 1:
        return _seeds_markdown(rows, baseline, seeds)
    return _clips_markdown(headline_rows(rows), baseline)


def _seeds_markdown(rows: Sequence[Mapping[str, Any]], baseline: str, seeds: list[str]) -> str:
    agg = [r for r in rows if r["seed"] == ALL_SEEDS]
    variants = list(dict.fromkeys(r["variant"] for r in agg))
    metrics = defined_metrics(agg)
    cell = {(r["variant"], r["metric"]): r for r in agg}
    per = {(r["variant"], r["metric"], str(r["seed"])): _num(r["mean"]) for r in rows if r["seed"] != ALL_SEEDS}
    lines = [f"### Means across {len(seeds)} training seeds ({', '.join(seeds)}): mean ± sd [95% t interval over "
             "the seeds] (n = seeds; ↑ / ↓: higher / lower is better)", "",
             "| variant | system | " + " | ".join(map(metric_label, metrics)) + " |", "|---|---|" + "---|" * len(metrics)]
    for v in variants:
        out = [f"**{v}** (baseline)" if v == baseline else v, next(r["system"] for r in agg if r["variant"] == v)]
        for m in metrics:
            r = cell.get((v, m))
            out.append("—" if r is None or not math.isfinite(_num(r["mean"])) else
                       f"{_cell(r['mean'])} ± {_cell(r['sd'])} [{_cell(r['ci95_lo'])}, {_cell(r['ci95_hi'])}] "
                       f"(n={r['n']})")
        lines.append("| " + " | ".join(out) + " |")
    lines += _diff_table(f"### Paired differences against the baseline `{baseline}` across seeds (variant − "
                         "baseline at the same seed: mean [95% t interval over the seeds], n = seeds)",
                         metrics, [v for v in variants if v != baseline] if baseline in variants else [], cell,
                         lambda r: f"{r['diff']:+.4g} [{_cell(r['diff_ci95_lo'])}, {_cell(r['diff_ci95_hi'])}] "
                                   f"(n={r['n_paired']})")
    lines += ["", "### Per-seed means (seed: mean over the test clips; each seed's interval over pieces is in "
              "`results.csv`)", "",
              "| variant | metric | " + " | ".join(f"seed {s}" for s in seeds) + " |",
              "|---|---|" + "---|" * len(seeds)]
    for v in variants:
        for m in defined_metrics(agg, include_train=True):
            if (v, m) in cell:
                lines.append(f"| {v} | {m} | " + " | ".join(_cell(per.get((v, m, s), math.nan)) for s in seeds)
                             + " |")
    return "\n".join(lines) + "\n"


def _diff_table(title: str, metrics: Sequence[str], others: Sequence[str], cell: Mapping[tuple[str, str], Any],
                fmt) -> list[str]:
    """A metrics x variants table of the paired differences (``fmt(row)``; "—" where none is defined)."""
    if not others:
        return []
    lines = ["", title, "", "| metric | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
    for m in metrics:
        cells = [cell.get((v, m)) for v in others]
        lines.append(f"| {metric_label(m)} | "
                     + " | ".join("—" if r is None or not r["n_paired"] else fmt(r) for r in cells) + " |")
    return lines


def _clips_markdown(rows: Sequence[Mapping[str, Any]], baseline: str) -> str:
    """Two tables: variant means with 95 % intervals over pieces (variants x metrics), and paired differences vs
    ``baseline``; the interval method and the test of each metric are named under the tables."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    metrics = defined_metrics(rows)
    cell = {(r["variant"], r["metric"]): r for r in rows}
    lines = ["### Means over the test clips with 95% intervals over the test pieces (n = clips where defined / "
             "pieces, `n<10` flags fewer than 10 pieces; ↑ / ↓: higher / lower is better)", "",
             "| variant | system | " + " | ".join(map(metric_label, metrics)) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for v in variants:
        system = next(r["system"] for r in rows if r["variant"] == v)
        out = [f"**{v}** (baseline)" if v == baseline else v, system]
        for m in metrics:
            r = cell.get((v, m))
            if r is None or not math.isfinite(_num(r["mean"])):
                out.append("—")
                continue
            ci = f" [{_cell(r['ci95_lo'])}, {_cell(r['ci95_hi'])}]" if math.isfinite(_num(r["ci95_lo"])) else ""
            out.append(f"{_cell(r['mean'])}{ci} (n={_n_text(r['n'], r.get('n_pieces'))})")
        lines.append("| " + " | ".join(out) + " |")
    lines += _diff_table(f"### Paired differences against the baseline `{baseline}` (variant − baseline over the "
                         "clips both define: mean [95% interval over pieces], p of the paired test, n)",
                         metrics, [v for v in variants if v != baseline] if baseline in variants else [], cell,
                         lambda r: f"{r['diff']:+.4g} [{_cell(r['diff_ci95_lo'])}, {_cell(r['diff_ci95_hi'])}] "
                                   f"p={_cell(r['p'])} (n={r['n_paired']})")
    lines += ["", methods_text(rows, metrics)]
    train = [m for m in dict.fromkeys(r["metric"] for r in rows) if is_train_metric(m)]
    if train:
        lines += ["", "### Training figures (the task's loss; `*_true_video` / `*_shuffled_video`: on the test "
                  "clips with their own vs another piece's video, lower = the model predicts the truth better)", "",
                  "| variant | " + " | ".join(train) + " |", "|---|" + "---|" * len(train)]
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

    rows = headline_rows(rows)
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
    across = any(across_seeds(r) for r in rows)
    title = ("variants: mean with 95% t interval over the training seeds" if across else
             "variants: clip mean with 95% interval over the test pieces")
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
    """``{variant: evaluation folder}`` under an ablation or demo output (``<v>/seed<k>/eval``, also under
    ``runs/``); the name is ``<v>`` when the variant ran with one seed, ``<v>/seed<k>`` with several."""
    root = Path(root)
    found = sorted(root.glob("*/seed*/eval/per_clip.csv")) + sorted(root.glob("runs/*/seed*/eval/per_clip.csv"))
    seeds: dict[Path, int] = {}
    for p in found:
        seeds[p.parents[2]] = seeds.get(p.parents[2], 0) + 1
    return {(p.parents[2].name if seeds[p.parents[2]] == 1 else f"{p.parents[2].name}/{p.parents[1].name}"): p.parent
            for p in found}


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


def _n_text(n: int, n_pieces: Any = None) -> str:
    """``clips`` or ``clips / pieces``, flagged below 10 units (too few for the interval to be trusted)."""
    from vitmusic.metrics.stats import SMALL_N

    units = _num(n_pieces)
    if not math.isfinite(units):
        return f"{n} (n<{SMALL_N})" if int(n) < SMALL_N else str(n)
    return f"{n} / {int(units)} pieces" + (f" (n<{SMALL_N})" if units < SMALL_N else "")


def methods_text(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None) -> str:
    """One line naming, per metric, the interval method of the means and of the differences and the paired test
    (``vitmusic.metrics.stats``: e.g. ``wilson-boot-t(piece)``, ``sign-flip(piece)``)."""
    by: dict[tuple[str, str, str], list[str]] = {}
    for m in metrics if metrics is not None else defined_metrics(rows):
        rs = [r for r in rows if r["metric"] == m]
        key = (next((r["interval"] for r in rs if r["interval"]), ""),
               next((r["diff_interval"] for r in rs if r["diff_interval"]), ""),
               next((r["test"] for r in rs if r["test"]), ""))
        by.setdefault(key, []).append(m)
    parts = []
    for (interval, diff, test), names in by.items():
        what = ", ".join(x for x in (f"means: {interval}" if interval else "",
                                     f"differences: {diff}" if diff else "",
                                     f"test: {test}" if test else "") if x)
        parts.append(f"{', '.join(f'`{n}`' for n in names)} — {what or 'no interval'}")
    return "Intervals and tests (vitmusic.metrics.stats): " + "; ".join(parts) + "."
