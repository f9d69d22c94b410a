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
from vitmusic.errors import DataError
from vitmusic.evaluation.inputs import Pairing
from vitmusic.evaluation.registry import (
    REFEREE_PREFIX,
    MetricGroup,
    get_metric,
    metric_definitions,
    per_clip_metrics,
    referee_metrics,
    summary_metrics,
)
from vitmusic.evaluation.schema import CLIP_COLUMNS, EvalConfig, EvalResult
from vitmusic.metrics import stats


def shares_unit_panel(name: str) -> bool:
    """Metrics bounded within [-1, 1] (scores, accuracies, correlations) share one plot panel; errors in BPM
    or seconds and unbounded values get a panel each."""
    m = get_metric(name)
    return m is not None and None not in m.bounds and -1.0 <= m.bounds[0] and m.bounds[1] <= 1.0


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
    """Bar chart of the summary means with their 95 % CIs as error bars (undefined metrics left out).

    Metrics on a 0..1 scale share one panel; every other metric (errors in BPM / seconds, FAD) gets its own
    small panel with its own scale, so one large value cannot flatten the rest.
    """
    plt = _pyplot()
    defined = {k: v for k, v in metrics.items() if v.get("mean") is not None}
    if not defined:
        return None
    bounded = [k for k in defined if shares_unit_panel(k)]
    other = [k for k in defined if not shares_unit_panel(k)]
    nrows = max(1, len(other))
    ncols = int(bool(bounded)) + int(bool(other))
    fig = plt.figure(figsize=(6 * ncols, max(0.35 * len(bounded) + 1.5, 1.1 * len(other) + 1.0)))
    grid = fig.add_gridspec(nrows, ncols, hspace=0.9)
    if bounded:
        ax = fig.add_subplot(grid[:, 0])
        _bars(ax, bounded, defined)
        ax.set_xlabel("mean over clips, 95% CI over pieces")
    for i, name in enumerate(other):
        ax = fig.add_subplot(grid[i, ncols - 1])
        _bars(ax, [name], defined)
        ax.set_yticks([])  # the title names it: tick labels would run into the left panel
        ax.set_title(f"{name} (n={defined[name]['n']})", fontsize=9)
    fig.suptitle("Metrics: mean over clips with 95% CIs over pieces (method per metric: report table)")
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
        f"{cfg['n_evaluated']} clips from {cfg.get('n_pieces', '?')} pieces; 95% CIs over pieces (the unit: clips of "
        "one piece are correlated), method per metric in the table (docs/statistics.md)",
        f"- pairs: {cfg['n_pairs']}, evaluated: {cfg['n_evaluated']}, failed: {len(result.failures)}, "
        f"references without generated file: {len(result.missing_gen)}, "
        f"generated files without reference: {len(result.missing_ref)}",
        f"- trim rule: {cfg['trim_rule']}; undefined values (—) are excluded from means, `n` counts "
        "the clips where a metric is defined",
        "",
        "## Summary",
        "",
        "↑ higher / ↓ lower is better. Referee ceiling: the same tracker / transcriber run on the reference audio "
        "against the annotations (what a copy of the reference scores). Reference: what each metric was scored "
        "against (the dataset's annotations, or the reference audio through the same analysis), with the number "
        "of clips. `n<10` flags a mean over fewer than 10 clips. Definitions at the end.",
        "",
        *_set_level_lines(s["metrics"]),
        "| metric | mean | 95% CI (method) | n clips (pieces) | referee ceiling | reference |",
        "|---|---|---|---|---|---|",
    ]
    arrows = {"higher": " ↑", "lower": " ↓", "none": ""}
    for name, m in s["metrics"].items():
        lo, hi = m["ci95"]
        ci = "—" if lo is None else f"[{_cell(lo)}, {_cell(hi)}] ({m.get('method', '?')})"
        ceiling = m.get("referee_ceiling") or {}
        ceil = "—" if ceiling.get("mean") is None else f"{_cell(ceiling['mean'])} (n={ceiling['n']})"
        why = m.get("undefined_reasons")
        if m["mean"] is None and why:
            ceil += f"; undefined: {next(iter(why))}"
        used = "; ".join(f"{k} ({v})" for k, v in (m.get("reference") or {}).items()) or "—"
        if m.get("referee"):  # which referee scored it, with its licence
            used += "; referee: " + "; ".join(f"{k} ({v})" for k, v in m["referee"].items())
        metric = get_metric(name)
        arrow = arrows[metric.direction] if metric is not None else ""
        count = _n_cell(m["n"]) + (f" ({m['n_groups']})" if m.get("n_groups") else "")
        label = f"{name}{arrow} ({embedding_name(m)})" if m.get("embedding") else f"{name}{arrow}"
        lines.append(f"| {label} | {_cell(m['mean'])} | {ci} | {count} | {ceil} | {used} |")
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
    if s.get("per_part"):
        lines += ["", "## Per part (generated MIDI parts vs their instrument-matched stems, `per_part.csv`)", "",
                  "| metric | mean | 95% CI | n |", "|---|---|---|---|"]
        for name, m in s.get("per_part", {}).items():
            ci = "—" if m["ci95"][0] is None else f"[{_cell(m['ci95'][0])}, {_cell(m['ci95'][1])}]"
            lines.append(f"| {name} | {_cell(m['mean'])} | {ci} | {_n_cell(m['n'])} |")
    if s.get("per_voice"):
        lines += voice_table(s["per_voice"], out)
    lines += ["", "## Metric definitions", "", "| metric | range | unit | better | definition |", "|---|---|---|---|---|"]
    for name, d in (s.get("definitions") or {}).items():
        lo, hi = d["bounds"]
        rng = f"[{'−∞' if lo is None else f'{lo:g}'}, {'∞' if hi is None else f'{hi:g}'}]"
        better = {True: "higher", False: "lower"}.get(d["higher_is_better"], "—")
        lines.append(f"| {name} | {rng} | {d['unit'] or '—'} | {better} | {d['doc']} |")
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


# ------------------------------------------------------------------------------------- per voice
#: per kind of per-voice row, the per_part.csv metrics worth a mean (the others are nan by definition)
VOICE_METRICS: dict[str, tuple[str, ...]] = {
    "audio": ("notes.recall_no_offset", "notes.recall", "notes.voice_recall"),
    "referee-mix": ("notes.recall_no_offset", "notes.recall"),
    "referee": ("notes.precision", "notes.recall", "notes.f1", "notes.f1_no_offset", "notes.recall_no_offset",
                "pitch.raw_pitch_accuracy", "pitch.overall_accuracy"),
}
#: the columns of the report's per-voice table: (kind, metric, header)
VOICE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("referee", "notes.f1_no_offset", "ceiling: referee on the stem, F1 (onsets)"),
    ("referee", "notes.recall_no_offset", "ceiling: stem, recall (onsets)"),
    ("referee-mix", "notes.recall_no_offset", "referee on the reference mix, recall (onsets)"),
    ("audio", "notes.recall_no_offset", "generated, recall (onsets)"),
    ("audio", "notes.voice_recall", "generated, voice recall"),
)


def summarize_parts(part_rows: list[dict], piece_of: Mapping[str, str]) -> dict:
    """``summary.json``'s ``per_part`` (MIDI parts: mean and interval over pieces per metric) and ``per_voice``
    (per kind of per-voice row and instrument: the means of :data:`VOICE_METRICS`)."""
    from vitmusic.metrics.parts import PART_METRICS, VOICE_KIND_NAMES

    def summarize(rows: list[dict], metric: str) -> dict:
        return stats.summarize([r[metric] for r in rows], bounds=(0.0, 1.0),
                               groups=[piece_of.get(r["clip_id"], r["clip_id"]) for r in rows])

    out: dict[str, Any] = {}
    midi = [r for r in part_rows if r["part"] not in VOICE_KIND_NAMES]
    if midi:
        out["per_part"] = {m: summarize(midi, m) for m in PART_METRICS}
    per_voice: dict[str, dict] = {}
    for kind, what in VOICE_KIND_NAMES.items():
        rows = [r for r in part_rows if r["part"] == kind]
        if rows:
            instruments = list(dict.fromkeys(r["instrument"] for r in rows))
            per_voice[kind] = {"what": what, "instruments": {
                inst: {m: summarize([r for r in rows if r["instrument"] == inst], m) for m in VOICE_METRICS[kind]}
                for inst in instruments}}
    if per_voice:
        out["per_voice"] = per_voice
    return out


def voice_table(per_voice: Mapping[str, Any], out: Path) -> list[str]:
    """The report's per-instrument table (and ``voices.png``) from ``summary.json``'s ``per_voice``."""
    instruments = list(dict.fromkeys(i for kind in per_voice.values() for i in kind["instruments"]))
    cols = [(k, m, h) for k, m, h in VOICE_TABLE if k in per_voice]
    lines = ["", "## Per voice (`per_part.csv` rows `audio`, `referee-mix`, `referee`)", "",
             "Each voice's notes (onsets and pitch within 50 ms / 50 cents) found by the referee in the generated "
             "audio, in the reference mix, and in the voice's own stem recording (its per-voice ceiling). A "
             "voice the generated audio lacks shows as a low `generated` recall next to a high ceiling. Means "
             "over clips (n clips).", "",
             "| instrument | " + " | ".join(h for _, _, h in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    values: dict[str, list[float]] = {h: [] for _, _, h in cols}
    for inst in instruments:
        cells = []
        for kind, metric, header in cols:
            m = per_voice[kind]["instruments"].get(inst, {}).get(metric)
            mean = None if m is None else m["mean"]
            values[header].append(_nan(mean))
            cells.append("—" if mean is None else f"{_cell(mean)} (n={m['n']})")
        lines.append(f"| {inst} | " + " | ".join(cells) + " |")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(instruments) + 2), 3.5))
    width = 0.8 / max(1, len(cols))
    for j, (_, _, header) in enumerate(cols):
        ax.bar(np.arange(len(instruments)) + (j - (len(cols) - 1) / 2) * width, values[header], width,
               label=header)
    ax.set_xticks(np.arange(len(instruments)), instruments)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean over clips")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("notes per voice: generated audio vs the referee's ceilings")
    png = _save(fig, out / "voices.png")
    return lines + ["", f"![notes per voice]({png.name})"]


def embedding_name(entry: Mapping[str, Any]) -> str:
    """The embedding a set-level summary entry was computed with (``unrecorded`` for runs made before
    embeddings were recorded, without loudness normalisation)."""
    emb = entry.get("embedding") or {}
    return str(emb.get("name", "unrecorded"))


def _set_level_lines(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The report's paragraph on kid / fad / fad_inf: what they are, the embedding, their size warnings."""
    done = [m for m in metrics.values() if m.get("embedding") and m.get("n")]
    if not done:
        return []
    emb = done[0]["embedding"]
    level = f", after loudness normalisation to {emb['loudness_lufs']:g} LUFS" if "loudness_lufs" in emb else ""
    lines = [f"Distribution distances between the reference and the generated set (lower is better), embedding "
             f"`{embedding_name(done[0])}`{level}: **kid** is the headline (unbiased at any number of clips; "
             "95% CI from a jackknife over clips); **fad** is the classic Fréchet distance, biased upward by "
             "about c/n at n clips (compare it only at equal n and embedding); **fad_inf** is fad extrapolated "
             "to infinitely many clips. See docs/fad.md.", ""]
    warned = dict.fromkeys(w for m in done for w in m.get("warnings") or [])
    return lines + [f"- {w}" for w in warned] + ([""] if warned else [])


# ------------------------------------------------------------------------------------- summary.json
FAD_CI_NOTE = ("no CI: fad is biased upward by about c/n at n clips, so an interval around it would not hold "
               "the true value; kid (the headline) has a jackknife interval over clips (docs/fad.md)")
SET_METRIC_NOTES = {
    "kid": "headline distribution distance: unbiased at any number of clips; 95% CI = t with the "
           "delete-one-clip jackknife SE",
    "fad_inf": "fad extrapolated to infinitely many clips (delete-a-group jackknife); no CI",
}


def _finite_or_none(v: Any) -> Any:
    """NaN / inf -> None, also inside lists (summary.json holds no NaN)."""
    if isinstance(v, list | tuple):
        return [_finite_or_none(x) for x in v]
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    return v


def _set_metrics(group: MetricGroup, ref_embs: list, gen_embs: list) -> dict[str, dict]:
    """A set-level group (FAD) over all clips: ``{metric: summary entry}``, without a per-clip interval
    (:data:`FAD_CI_NOTE`) unless the group's aggregate returns one (``{"value", "ci95", ...}`` per metric)."""
    n = len(ref_embs)
    out: dict[str, dict] = {}
    values: Any = {}
    if n:
        try:
            values = group.aggregate(ref_embs, gen_embs)
        except Exception as e:
            warnings.warn(f"{group.name} failed: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
            values = {}
        if not isinstance(values, Mapping):  # a single-metric group may return its one number
            values = {group.names[0]: values}
    for metric in group.metrics:
        v = values.get(metric.name)
        extra = dict(v) if isinstance(v, Mapping) else {"value": v}
        value = extra.pop("value", None)
        value = None if value is None or not math.isfinite(float(value)) else metric.clip(float(value))
        entry = {"mean": value, "ci95": [None, None], "n": n, "small_n": n < stats.SMALL_N,
                 "ci_note": SET_METRIC_NOTES.get(metric.name, FAD_CI_NOTE)}
        entry.update({k: _finite_or_none(v) for k, v in extra.items()})
        out[metric.name] = entry
    return out


def build_summary(rows, groups, embeds, cfg: EvalConfig, failures, notes, pairing: Pairing) -> dict:
    """Build the ``summary.json`` dict: every registered metric (null for groups not computed), with its
    interval over clips and its referee ceiling; the metrics' definitions; config; version."""
    from vitmusic import __version__

    metrics: OrderedDict[str, dict] = OrderedDict()
    by_name = {g.name: g for g in groups}
    set_level: dict[str, dict] = {}
    for g in groups:
        if g.embed is not None:
            set_level.update(_set_metrics(g, *embeds[g.name]))
    for name in summary_metrics():
        metric = get_metric(name)
        if metric.set_level:
            metrics[name] = set_level.get(name) or {"mean": None, "ci95": [None, None], "n": 0}
            continue
        pieces = [r.get("piece") or r["clip_id"] for r in rows]
        metrics[name] = _clip_summary(metric, [r[name] for r in rows], pieces, notes, n_boot=cfg.n_boot, seed=cfg.seed)
        ceiling = [r.get(REFEREE_PREFIX + name, float("nan")) for r in rows]
        if np.isfinite(np.asarray(ceiling, float)).any():
            metrics[name]["referee_ceiling"] = _clip_summary(metric, ceiling, pieces, n_boot=cfg.n_boot, seed=cfg.seed)
    config = cfg.to_dict()
    config.update(
        metrics=list(by_name),
        ci_method="per metric (summary.metrics[name].method): a studentized bootstrap over pieces, Wilson-type "
        "on a metric's range (docs/statistics.md)",
        n_pieces=len({r.get("piece") or r["clip_id"] for r in rows}),
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
    return {"metrics": dict(metrics), "definitions": metric_definitions(), "config": config,
            "version": __version__}


def _clip_summary(metric, values: list[float], pieces: list[str], notes: list[str] | None = None, *,
                  n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0) -> dict:
    """Clip mean with its interval over pieces (the unit: clips of one piece are correlated), from the
    interval the metric's range calls for (:func:`vitmusic.metrics.stats.summarize`). A value outside the
    declared range is a fault of the metric: it is clipped to the range and a warning names it."""
    x = np.asarray(values, dtype=np.float64)
    clipped = np.array([metric.clip(v) if math.isfinite(v) else v for v in x], dtype=np.float64)
    if notes is not None and np.any(np.isfinite(x) & (clipped != x)):
        notes.append(f"{metric.name}: values outside its declared range {tuple(metric.bounds)} were clipped to it")
    return stats.summarize(clipped, groups=pieces, bounds=metric.bounds, n_boot=n_boot, seed=seed)


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
    """Write ``per_clip.csv`` atomically: schema.CLIP_COLUMNS, then every registered per-clip metric and referee
    ceiling (:mod:`vitmusic.evaluation.registry`); NaN as ``nan``."""
    return write_table_csv(path, list(CLIP_COLUMNS) + list(per_clip_metrics()) + list(referee_metrics()), rows)


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return "nan" if not math.isfinite(v) else repr(float(v))
    return "" if v is None else str(v)


def read_clip_pieces(path: str | os.PathLike) -> dict[str, str]:
    """``{clip_id: piece}`` of a ``per_clip.csv`` (the clip id itself where the file has no piece column)."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return {r["clip_id"]: r.get("piece") or r["clip_id"] for r in csv.DictReader(f)}


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
