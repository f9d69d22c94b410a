"""Outputs of evaluation runs: ``per_clip.csv`` I/O, ``report.md`` + plots, and the ``compare`` table.

Plots use matplotlib's Agg backend and are PNGs next to the report.

Plots: metric bars with 95 % CIs; for the first clips (``EvalConfig.n_plot_clips``) an f0 overlay (reference
vs generated), a piano-roll overlay (reference notes vs notes transcribed from the generated audio) and a
tempo/beat comparison. Every file is written atomically.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.atomic import atomic_path, atomic_write_text
from vitmusic.errors import DataError, VitmusicError
from vitmusic.evaluation.inputs import Pairing
from vitmusic.evaluation.schema import (
    CLIP_COLUMNS,
    PER_CLIP_METRICS,
    REFEREE_METRICS,
    SET_LEVEL_METRICS,
    SUMMARY_METRICS,
    EvalConfig,
    EvalResult,
    MetricGroup,
)
from vitmusic.metrics import stats

# metrics on a 0..1 "higher is better" scale share one panel; errors / unbounded values get their own
BOUNDED_METRICS = frozenset({
    "tempo.p_score", "beat.f_measure", "pitch.voicing_recall", "pitch.voicing_false_alarm",
    "pitch.raw_pitch_accuracy", "pitch.raw_chroma_accuracy", "pitch.overall_accuracy", "notes.precision",
    "notes.recall", "notes.f1", "notes.f1_no_offset", "chroma.cosine", "key.weighted_score",
    "emotion.quadrant_agreement", "sync.correlation", "tempo.bpm_rel_error", "multipitch.precision",
    "multipitch.recall", "multipitch.accuracy", "multipitch.chroma_accuracy",
})

# metrics whose per-clip values lie in [0, 1] (so does their mean and its interval)
UNIT_METRICS = BOUNDED_METRICS - {"sync.correlation", "tempo.bpm_rel_error"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _bars(ax, names: list[str], defined: Mapping[str, Mapping[str, Any]], label_size: int = 8) -> None:
    means = np.array([defined[k]["mean"] for k in names], dtype=float)
    lo = np.array([_nan(defined[k]["ci95"][0]) for k in names])
    hi = np.array([_nan(defined[k]["ci95"][1]) for k in names])
    err = np.vstack([np.nan_to_num(means - lo), np.nan_to_num(hi - means)]).clip(min=0)
    ax.barh(np.arange(len(names)), means, xerr=err, color="tab:blue", alpha=0.8, capsize=3)
    ax.set_yticks(np.arange(len(names)), [f"{k} (n={defined[k]['n']})" for k in names], fontsize=label_size)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def plot_metric_bars(metrics: Mapping[str, Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Bar chart of the summary means with their 95 % CI as error bars (undefined metrics left out).

    Metrics on a 0..1 scale share one panel; every other metric (errors in BPM / seconds, FAD) gets its own
    small panel with its own scale, so one large value cannot flatten the rest.
    """
    plt = _pyplot()
    defined = {k: v for k, v in metrics.items() if v.get("mean") is not None}
    if not defined:
        return None
    bounded = [k for k in defined if k in BOUNDED_METRICS]
    other = [k for k in defined if k not in BOUNDED_METRICS]
    nrows = max(1, len(other))
    ncols = int(bool(bounded)) + int(bool(other))
    fig = plt.figure(figsize=(6 * ncols, max(0.35 * len(bounded) + 1.5, 1.1 * len(other) + 1.0)))
    grid = fig.add_gridspec(nrows, ncols, hspace=0.9)
    if bounded:
        ax = fig.add_subplot(grid[:, 0])
        _bars(ax, bounded, defined)
        ax.set_xlabel("mean over clips, 95% t CI")
    for i, name in enumerate(other):
        ax = fig.add_subplot(grid[i, ncols - 1])
        _bars(ax, [name], defined)
        ax.set_yticks([])  # the title names it: tick labels would run into the left panel
        ax.set_title(f"{name} (n={defined[name]['n']})", fontsize=9)
    fig.suptitle("Metrics: mean over clips with 95% t CI")
    return _save(fig, Path(path))


def plot_f0_overlay(ref_f0, gen_f0, path: str | os.PathLike, title: str = "") -> Path:
    """Reference vs generated f0 (voiced frames only, log frequency axis)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for (t, f), label, color in ((ref_f0, "reference", "tab:blue"), (gen_f0, "generated", "tab:orange")):
        t, f = np.asarray(t, float), np.asarray(f, float)
        f = np.where(f > 0, f, np.nan)  # unvoiced frames break the line instead of dropping to 0 Hz
        ax.plot(t, f, label=label, color=color, lw=1.2, alpha=0.85)
    if np.isfinite(ax.dataLim.y0) and ax.dataLim.y0 > 0:
        from matplotlib.ticker import ScalarFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("time (s)")
    ax.set_ylabel("f0 (Hz)")
    ax.set_title(f"f0 overlay {title}")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def plot_piano_roll(ref_notes, gen_notes, path: str | os.PathLike, title: str = "") -> Path:
    """Piano-roll overlay: reference notes (filled) vs transcribed generated notes (outlined)."""
    plt = _pyplot()
    from matplotlib.patches import Patch, Rectangle

    fig, ax = plt.subplots(figsize=(10, 4))
    pitches: list[float] = []
    for notes, style in ((ref_notes, dict(facecolor="tab:blue", alpha=0.5, edgecolor="none")),
                         (gen_notes, dict(facecolor="none", edgecolor="tab:orange", lw=1.5))):
        notes = np.asarray(notes, float).reshape(-1, 3)
        notes = notes[notes[:, 1] > 0]
        midi = 69 + 12 * np.log2(notes[:, 1] / 440.0)
        pitches.extend(midi.tolist())
        for (onset, _, dur), m in zip(notes, midi):
            ax.add_patch(Rectangle((onset, m - 0.4), max(dur, 0.01), 0.8, **style))
        ax.autoscale_view()
    if pitches:
        ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(f"piano roll {title}")
    ax.legend(handles=[Patch(facecolor="tab:blue", alpha=0.5, label="reference"),
                       Patch(facecolor="none", edgecolor="tab:orange", label="generated (transcribed)")],
              loc="upper right")
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def plot_beats(ref_audio, gen_audio, sample_rate: int, ref_beats_s, gen_beats_s, path: str | os.PathLike,
               title: str = "") -> Path:
    """Tempo/beat comparison: amplitude envelopes with the tracked beats of each side."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(10, 4), sharex=True)
    for ax, y, beats, label, color in ((axes[0], ref_audio, ref_beats_s, "reference", "tab:blue"),
                                       (axes[1], gen_audio, gen_beats_s, "generated", "tab:orange")):
        y = np.asarray(y, float)
        hop = max(1, sample_rate // 100)
        n = len(y) // hop
        env = np.abs(y[: n * hop]).reshape(n, hop).max(axis=1) if n else np.zeros(0)
        ax.fill_between(np.arange(n) * hop / sample_rate, env, color=color, alpha=0.4, lw=0)
        beats = np.asarray(beats, float)
        ax.vlines(beats, 0, max(float(env.max()) if env.size else 1.0, 1e-6), color="k", lw=0.8)
        bpm = 60.0 / np.median(np.diff(beats)) if beats.size > 2 else float("nan")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: {len(beats)} beats, ~{bpm:.0f} BPM" if math.isfinite(bpm)
                     else f"{label}: no tempo", fontsize=9)
    axes[1].set_xlabel("time (s)")
    fig.suptitle(f"beats {title}")
    return _save(fig, Path(path))


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


def _n_cell(n: int) -> str:
    """A count for a table, flagged below :data:`stats.SMALL_N` (too few clips for a reliable interval)."""
    return f"{n} (n<{stats.SMALL_N})" if n < stats.SMALL_N else str(n)


def _cell(x) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.4g}"


def write_report(out_dir: str | os.PathLike, result: EvalResult) -> Path:
    """Write ``out_dir/report.md`` and its PNGs; returns the report path."""
    out = Path(out_dir)
    s = result.summary
    cfg = s["config"]
    lines = [
        "# vitmusic evaluation report",
        "",
        f"- vitmusic {s['version']}; references: `{cfg.get('ref_dir')}`; generated: `{cfg.get('gen_dir')}`",
        f"- metrics: {', '.join(cfg['metrics'])}; sample rate {cfg['sample_rate']} Hz; "
        "95% CIs: Student t over clips",
        f"- pairs: {cfg['n_pairs']}, evaluated: {cfg['n_evaluated']}, failed: {len(result.failures)}, "
        f"references without generated file: {len(result.missing_gen)}, "
        f"generated files without reference: {len(result.missing_ref)}",
        f"- trim rule: {cfg['trim_rule']}; undefined values (—) are excluded from means, `n` counts "
        "the clips where a metric is defined",
        "",
        "## Summary",
        "",
        "Referee ceiling: the same tracker / transcriber run on the reference audio against the annotations "
        "(what a copy of the reference scores); `n<10` flags a mean over fewer than 10 clips, whose t interval "
        "rests on normality. FAD has no CI (resampling clips duplicates windows and biases it upward).",
        "",
        "| metric | mean | 95% CI (t) | n | referee ceiling |",
        "|---|---|---|---|---|",
    ]
    for name, m in s["metrics"].items():
        lo, hi = m["ci95"]
        ci = "—" if lo is None else f"[{_cell(lo)}, {_cell(hi)}]"
        ceiling = m.get("referee_ceiling") or {}
        ceil = "—" if ceiling.get("mean") is None else f"{_cell(ceiling['mean'])} (n={ceiling['n']})"
        why = m.get("undefined_reasons")
        if m["mean"] is None and why:
            ceil += f"; undefined: {next(iter(why))}"
        lines.append(f"| {name} | {_cell(m['mean'])} | {ci} | {_n_cell(m['n'])} | {ceil} |")
    bars = plot_metric_bars(s["metrics"], out / "metrics.png")
    if bars is not None:
        lines += ["", f"![metric means with 95% CIs]({bars.name})"]
    if result.artifacts:
        lines += ["", "## Clips", ""]
    for i, (clip_id, art) in enumerate(result.artifacts.items(), start=1):
        lines += [f"### {clip_id}", ""]
        if art.get("gen_f0") is not None and art.get("ref_f0") is not None:
            p = plot_f0_overlay(art["ref_f0"], art["gen_f0"], out / f"f0_{i:02d}.png", clip_id)
            lines.append(f"![f0 overlay {clip_id}]({p.name})")
        if art.get("gen_notes") is not None and art.get("ref_notes") is not None:
            p = plot_piano_roll(art["ref_notes"], art["gen_notes"], out / f"pianoroll_{i:02d}.png", clip_id)
            lines.append(f"![piano roll {clip_id}]({p.name})")
        if art.get("ref_beats_s") is not None and art.get("gen_beats_s") is not None:
            p = plot_beats(art["ref_audio"], art["gen_audio"], art["sample_rate"], art["ref_beats_s"],
                           art["gen_beats_s"], out / f"beats_{i:02d}.png", clip_id)
            lines.append(f"![beats {clip_id}]({p.name})")
        lines.append("")
    if result.parts:
        lines += ["", "## Per part (generated MIDI parts vs their instrument-matched stems, `per_part.csv`)", "",
                  "| metric | mean | 95% CI (t) | n |", "|---|---|---|---|"]
        for name, m in s.get("per_part", {}).items():
            ci = "—" if m["ci95"][0] is None else f"[{_cell(m['ci95'][0])}, {_cell(m['ci95'][1])}]"
            lines.append(f"| {name} | {_cell(m['mean'])} | {ci} | {_n_cell(m['n'])} |")
    if result.failures:
        lines += ["", "## Failures (skipped)", ""]
        lines += [f"- `{f['clip_id']}`: {f['reason']}" for f in result.failures]
    if result.missing_gen or result.missing_ref:
        lines += ["", "## Unpaired files", ""]
        lines += [f"- reference without generated file: `{k}`" for k in result.missing_gen]
        lines += [f"- generated file without reference: `{k}`" for k in result.missing_ref]
    if result.warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- {w}" for w in result.warnings]
    return atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------- summary.json
FAD_CI_NOTE = ("no CI: a bootstrap over clips duplicates their windows, which shrinks the fitted covariances "
               "and biases FAD upward (the point estimate sat at the lower edge of its own interval)")


def _set_metric(group: MetricGroup, ref_embs: list, gen_embs: list) -> dict:
    """A set-level metric (FAD) over all clips, reported without a confidence interval (:data:`FAD_CI_NOTE`)."""
    n = len(ref_embs)
    if n == 0:
        return {"mean": None, "ci95": [None, None], "n": 0, "small_n": True}
    try:
        value = group.aggregate(ref_embs, gen_embs)
    except Exception as e:
        warnings.warn(f"{group.name} failed: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
        value = float("nan")
    return {"mean": value if math.isfinite(value) else None, "ci95": [None, None], "n": n,
            "small_n": n < stats.SMALL_N, "ci_note": FAD_CI_NOTE}


def build_summary(rows, groups, embeds, cfg: EvalConfig, failures, notes, pairing: Pairing) -> dict:
    """Build the ``summary.json`` dict: every name in ``schema.SUMMARY_METRICS``, config, version."""
    from vitmusic import __version__

    metrics: OrderedDict[str, dict] = OrderedDict()
    by_name = {g.name: g for g in groups}
    for name in SUMMARY_METRICS:
        if name in SET_LEVEL_METRICS:
            group = next((g for g in groups if name in g.names), None)
            if group is None:
                metrics[name] = {"mean": None, "ci95": [None, None], "n": 0}
            else:
                metrics[name] = _set_metric(group, *embeds[group.name])
        else:
            metrics[name] = stats.summarize([r[name] for r in rows])
            if name in UNIT_METRICS:  # the mean of values in [0, 1] lies in [0, 1]: clip the t interval
                metrics[name]["ci95"] = [None if c is None else min(max(c, 0.0), 1.0) for c in metrics[name]["ci95"]]
            ceiling = [r.get("referee." + name, float("nan")) for r in rows]
            if np.isfinite(np.asarray(ceiling, float)).any():
                metrics[name]["referee_ceiling"] = stats.summarize(ceiling)
    config = cfg.to_dict()
    config.update(
        metrics=[g for g in cfg.metrics if g in by_name] or list(by_name),
        trim_rule="both signals trimmed to the shorter; warning when lengths differ by more than "
        f"{100 * cfg.max_length_mismatch:.0f}% of the longer",
        pairing="relative path without extension",
        n_pairs=len(pairing.pairs),
        n_evaluated=len(rows),
        failures=failures,
        warnings=notes,
        missing_gen=pairing.missing_gen,
        missing_ref=pairing.missing_ref,
    )
    return {"metrics": dict(metrics), "config": config, "version": __version__}



# ------------------------------------------------------------------------------------- per_clip.csv
def write_table_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write a CSV atomically: a header of ``columns``, then one line per row dict (a missing key is empty,
    floats as ``repr``-exact text, NaN/inf as ``nan``) — the format of every table the metrics write."""
    import csv

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_fmt(row.get(c)) for c in columns])
    return Path(path)


def write_per_clip_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``per_clip.csv`` atomically: schema.CLIP_COLUMNS then schema.PER_CLIP_METRICS; NaN as ``nan``."""

    return write_table_csv(path, list(CLIP_COLUMNS) + list(PER_CLIP_METRICS) + list(REFEREE_METRICS), rows)


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return "nan" if not math.isfinite(v) else repr(float(v))
    return "" if v is None else str(v)


def read_per_clip_csv(path: str | os.PathLike) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Read a ``per_clip.csv``: (metric columns, {clip_id: {metric: value}}) with ``nan`` for undefined."""
    import csv


    p = Path(path)
    if not p.is_file():
        raise DataError(f"missing per_clip.csv: {p}")
    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "clip_id" not in reader.fieldnames:
            raise DataError(f"{p}: not a per_clip.csv (no clip_id column)")
        metric_cols = [c for c in reader.fieldnames if c not in CLIP_COLUMNS]
        out: dict[str, dict[str, float]] = {}
        for line, rec in enumerate(reader, start=2):
            values = {}
            for c in metric_cols:
                try:
                    values[c] = float(rec[c]) if rec[c] not in ("", None) else float("nan")
                except ValueError as e:
                    raise DataError(f"{p}:{line}: column {c}: not a number: {rec[c]!r}") from e
            out[rec["clip_id"]] = values
    return metric_cols, out




# ------------------------------------------------------------------------------------------- compare
def _read_summary(run_dir: Path) -> dict:
    import json

    p = run_dir / "summary.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{p}:{e.lineno}: not valid JSON: {e.msg}") from e


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

    Returns:
        One dict per (system, metric): ``system, run_dir, metric, mean, n, diff, ci95_lo, ci95_hi,
        p_wilcoxon, n_paired`` (NaN where undefined; the difference columns are NaN for the first system).

    Raises:
        VitmusicError: fewer than two runs, a missing folder / per_clip.csv, an unknown metric.
    """

    if len(run_dirs) < 2:
        raise VitmusicError("compare needs at least two evaluation folders")
    names = _system_names([Path(d) for d in run_dirs])
    runs = []
    for d in map(Path, run_dirs):
        if not d.is_dir():
            raise DataError(f"evaluation folder does not exist: {d}")
        cols, clips = read_per_clip_csv(d / "per_clip.csv")
        runs.append((d, cols, clips, _read_summary(d)))
    wanted = list(metrics) if metrics else list(SUMMARY_METRICS)
    unknown = [m for m in wanted if m not in SUMMARY_METRICS]
    if unknown:
        raise VitmusicError(f"unknown metric {unknown[0]!r}; known: {', '.join(SUMMARY_METRICS)}")
    base_dir, _, base_clips, _ = runs[0]
    rows = []
    for name, (d, _cols, clips, summary) in zip(names, runs):
        shared = sorted(set(base_clips) & set(clips))
        for m in wanted:
            row = {"system": name, "run_dir": str(d), "metric": m, "mean": math.nan, "n": 0, "diff": math.nan,
                   "ci95_lo": math.nan, "ci95_hi": math.nan, "p_wilcoxon": math.nan, "n_paired": 0}
            if m in SET_LEVEL_METRICS or m not in PER_CLIP_METRICS:
                s = summary.get("metrics", {}).get(m) or {}
                row["mean"] = _nan(s.get("mean"))
                row["n"] = int(s.get("n") or 0)
            else:
                values = stats.finite([clips[c].get(m, math.nan) for c in clips])
                row["mean"] = float(values.mean()) if values.size else math.nan
                row["n"] = int(values.size)
                if d is not base_dir:
                    a = [base_clips[c].get(m, math.nan) for c in shared]
                    b = [clips[c].get(m, math.nan) for c in shared]
                    diff = stats.paired_difference(a, b, n_boot=n_boot, seed=seed)
                    row.update(diff=diff["mean_diff"], ci95_lo=diff["ci95"][0], ci95_hi=diff["ci95"][1],
                               p_wilcoxon=diff["p_wilcoxon"], n_paired=diff["n"])
            rows.append(row)
    return rows


def _system_names(dirs: list[Path]) -> list[str]:
    names = [d.name or str(d) for d in dirs]
    if len(set(names)) < len(names):  # same folder names under different parents: use the full paths
        names = [str(d) for d in dirs]
    return names


def compare_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table: one row per metric; per system its mean (n), and for the others the difference to
    the first system with its 95 % t CI and Wilcoxon p over the shared clips."""
    systems = list(dict.fromkeys(r["system"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    cell = {(r["system"], r["metric"]): r for r in rows}
    head = ["metric", f"{systems[0]} (baseline)"] + [h for s in systems[1:] for h in (s, f"{s} − {systems[0]}")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in metrics:
        base = cell[(systems[0], m)]
        out = [m, f"{_cell(base['mean'])} (n={_n_cell(base['n'])})"]
        for s in systems[1:]:
            r = cell[(s, m)]
            out.append(f"{_cell(r['mean'])} (n={_n_cell(r['n'])})")
            if r["n_paired"] == 0:
                out.append("—")
            else:
                out.append(f"{r['diff']:+.4g} [{_cell(r['ci95_lo'])}, {_cell(r['ci95_hi'])}] "
                           f"p={_cell(r['p_wilcoxon'])} (n={_n_cell(r['n_paired'])})")
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"


def write_compare_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Long-format compare table (one row per system and metric), written atomically."""
    cols = ["system", "run_dir", "metric", "mean", "n", "diff", "ci95_lo", "ci95_hi", "p_wilcoxon", "n_paired"]
    return write_table_csv(path, cols, rows)


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
            ax.annotate(f"{_cell(diff[k])} p={_cell(cell[m]['p_wilcoxon'])}", (1.02, k), fontsize=7,
                        xycoords=("axes fraction", "data"), va="center")
        ax.set_yticks(y, metrics, fontsize=8)
        ax.set_xlim(-1.1, 1.1)
        ax.set_xlabel("difference / max |value| per metric")
        ax.set_title(f"{system} − {systems[0]} (95% CI)", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()
    return _save(fig, Path(path))
