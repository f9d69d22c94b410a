"""The results table per benchmark level: every system on rhythm, tempo, dynamics, instrumentation and pitch.

For each level (``painted``, ``fingering``, ``hidden``) x nuisance (``none``, ``all``) it builds a seeded
benchmark with ``vitmusic synth-data`` (same music at every level: the seed fixes the pieces), splits it by piece
with ``vitmusic prepare``, writes an experiment file whose variants are the systems of the model kind (looked up
in the model-kind registry, :func:`vitmusic.plugins.get_kind`; default ``score-informed``: ``model`` = the
score aligned to the video, ``shuffled`` = aligned to another piece's video, ``transcription`` = the same head's
decoded notes, ``deadpan`` = the score at its written tempo, ``oracle`` = the performed notes) and runs
``vitmusic ablate`` on it: one trained head per cell, every system generated on the held-out test pieces and
scored by ``vitmusic evaluate`` (the metric groups below). It then prints one markdown table per level (rows:
nuisance x system; cells: mean [95 % interval over pieces], from each system's ``summary.json``) and writes them
to ``WORK/levels_table.md``.

    python scripts/benchmarks/bench_levels.py --work /tmp/levels             # all six cells
    python scripts/benchmarks/bench_levels.py --work /tmp/levels --cells hidden:none,painted:none
    python scripts/benchmarks/bench_levels.py --work /tmp/levels --table-only  # print what has finished

Every cell resumes: the benchmark is rebuilt only when its arguments changed, ``ablate`` skips finished variants
(and resumes training), and a cell whose table rows exist is not run again; ``--timeout-cell`` bounds the time
spent starting new cells (a cell already under way finishes). Systems the kind does not declare are listed as
missing (e.g. on a checkout without the score-informed kind, ``--kind transcription`` runs ``model`` (the
transcription path) and ``shuffled`` only). MusicGen is not run: its tiny random-init preset makes no music a
timing or pitch score could separate, and a real checkpoint is beyond these CPUs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEVELS = ("painted", "fingering", "hidden")
NUISANCE = ("none", "all")
SYSTEMS = ("model", "transcription", "deadpan", "oracle", "shuffled")
#: the config each kind's head trains from (the tiny presets, grown to what 2 CPU cores allow)
KIND_CONFIG = {"score-informed": "configs/tiny-score.yaml", "transcription": "configs/tiny-midi.yaml"}
EVAL_GROUPS = "onsets,tempo_curve,dynamics,instrumentation,chroma"
#: table columns: (label, where, metric); where = "metrics" (summary.json) or "per_part" (MIDI parts vs stems)
COLUMNS = (
    ("onset F1 (mix)", "metrics", "onsets.f_measure"),
    ("onset F1 (parts)", "metrics", "onsets.part_f_measure"),
    ("tempo within 8 %", "metrics", "tempo_curve.accuracy"),
    ("tempo |log2|", "metrics", "tempo_curve.median_abs_log2_ratio"),
    ("loudness r", "metrics", "dynamics.pearson"),
    ("activity F1", "metrics", "instrumentation.activity_f1"),
    ("note F1 (parts)", "per_part", "notes.f1_no_offset"),
    ("pitch acc. (parts)", "per_part", "pitch.raw_pitch_accuracy"),
    ("chroma cos", "metrics", "chroma.cosine"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/vitmusic_levels", help="working folder (one subfolder per cell)")
    parser.add_argument("--cells", default=",".join(f"{lv}:{nu}" for nu in NUISANCE for lv in LEVELS),
                        help="level:nuisance pairs, in the order to run")
    parser.add_argument("--kind", default="score-informed", help="model kind whose systems are compared")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="systems to run (those the kind declares)")
    parser.add_argument("--pieces", type=int, default=24)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per piece")
    parser.add_argument("--clip-seconds", type=float, default=4.0)
    parser.add_argument("--ratios", default="0.5,0.15,0.35", help="train,val,test piece ratios (>= 16 test clips)")
    parser.add_argument("--source", default="melodies")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--encoder", default="small-vit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metrics", default=EVAL_GROUPS, help="evaluate metric groups")
    parser.add_argument("--timeout-cell", type=float, default=math.inf,
                        help="seconds after which no new cell is started")
    parser.add_argument("--table-only", action="store_true", help="only print the table of finished cells")
    parser.add_argument("overrides", nargs="*", help="config overrides (key.sub=value) for every cell")
    args = parser.parse_args(argv)
    work = Path(args.work)
    cells = [tuple(c.split(":")) for c in args.cells.split(",") if c]
    start = time.perf_counter()
    status = {}
    if not args.table_only:
        systems, missing = available_systems(args.kind, args.systems.split(","))
        if missing:
            print(f"bench_levels: kind {args.kind!r} has no system(s) {', '.join(missing)}: not run", flush=True)
        for level, nuisance in cells:
            if time.perf_counter() - start > args.timeout_cell:
                status[f"{level}:{nuisance}"] = "not started (--timeout-cell)"
                continue
            try:
                run_cell(args, work, level, nuisance, systems)
                status[f"{level}:{nuisance}"] = "done"
            except Exception as e:  # one cell's failure must not lose the others; it is reported
                status[f"{level}:{nuisance}"] = f"failed: {type(e).__name__}: {e}"
                print(f"bench_levels: {level}:{nuisance} failed: {type(e).__name__}: {e}", flush=True)
    text = tables(work, cells, args)
    if status:
        text += "\n" + "\n".join(f"- `{c}`: {s}" for c, s in status.items()) + "\n"
    print(text)
    (work / "levels_table.md").parent.mkdir(parents=True, exist_ok=True)
    (work / "levels_table.md").write_text(text, encoding="utf-8")
    return 0


def available_systems(kind: str, wanted: list[str]) -> tuple[list[str], list[str]]:
    """The wanted systems the kind declares (through the model-kind registry), and the ones it lacks."""
    kind_info = _kind(kind)
    have = ("model", "shuffled") if kind_info is None else tuple(kind_info.systems)
    return [s for s in wanted if s in have], [s for s in wanted if s not in have]


def _kind(kind: str):
    """The registered model kind, or None on a checkout without the model-kind registry."""
    try:
        from vitmusic.plugins import get_kind
    except ImportError:
        return None
    return get_kind(kind)


def cell_dir(work: Path, level: str, nuisance: str) -> Path:
    return work / f"{level}-{nuisance}"


def run_cell(args, work: Path, level: str, nuisance: str, systems: list[str]) -> None:
    """Benchmark, split, experiment file and ``vitmusic ablate`` of one level x nuisance (resumable)."""
    from vitmusic.cli import main as cli

    cell = cell_dir(work, level, nuisance)
    synth, prepared, out = cell / "synth", cell / "prepared", cell / "ablate"
    wanted = {"pieces": args.pieces, "seed": args.seed, "duration_s": args.duration, "source": args.source,
              "level": level}
    t = time.perf_counter()
    if not _same_benchmark(synth, wanted, nuisance):
        _check(cli(["synth-data", "--out", str(synth), "--pieces", str(args.pieces), "--seed", str(args.seed),
                    "--duration", str(args.duration), "--source", args.source, "--level", level,
                    "--nuisance", nuisance, "--no-plot", "--no-progress"]), "synth-data")
    if not (prepared / "manifest.json").is_file() and not any(prepared.glob("*.json*")):
        _check(cli(["prepare", "--urmp", str(synth), "--out", str(prepared), "--clip-seconds",
                    str(args.clip_seconds), "--ratios", args.ratios, "--seed", str(args.seed), "--no-plot"]),
               "prepare")
    print(f"bench_levels: {level}:{nuisance}: data ready in {time.perf_counter() - t:.0f} s", flush=True)
    experiment = cell / f"levels_{level}_{nuisance}.yaml"
    experiment.write_text(experiment_yaml(args, systems), encoding="utf-8")
    t = time.perf_counter()
    _check(cli(["ablate", str(experiment), f"data.manifest={prepared}", *args.overrides, "--out", str(out),
                "--no-progress"]), "ablate")
    (cell / "timings.json").write_text(json.dumps({"ablate_s": time.perf_counter() - t}) + "\n")


def experiment_yaml(args, systems: list[str]) -> str:
    """The cell's experiment file: one trained head (``model``), the other systems using it or none."""
    base = ROOT / KIND_CONFIG.get(args.kind, "configs/tiny-score.yaml")
    steps = args.steps
    overrides = [f"task={args.kind}", f"encoder.name={args.encoder}", f"train.max_steps={steps}",
                 f"train.eval_every={max(1, steps // 4)}", f"train.save_every={steps}", "train.log_with=none",
                 f"train.warmup_steps={max(1, steps // 20)}", f"train.seed={args.seed}"]
    lines = [f"base: {base}", f"baseline: {'deadpan' if 'deadpan' in systems else systems[-1]}",
             f"description: bench_levels ({args.kind}; {', '.join(systems)})",
             "overrides:", *(f"  - {o}" for o in overrides),
             *tune_lines(args.kind),
             "evaluate:", f"  metrics: {args.metrics}", "  plot_clips: 0", "variants:", "  model: []"]
    for s in systems:
        if s == "model":
            continue
        uses_model = s in ("shuffled", "transcription", "unconditional")
        lines.append(f"  {s}: {{system: {s}{', model: model' if uses_model else ''}}}")
    return "\n".join(lines) + "\n"


def tune_lines(kind: str) -> list[str]:
    """The experiment file's ``tune:`` block: the decoding threshold (transcription system) and, for the
    score-informed kind, its aligner's options (``ALIGNER_GRID``), chosen on the validation pieces after
    training."""
    info = _kind(kind)
    if getattr(info, "tune", None) is None:
        return []
    lines = ["tune:", "  transcription.onset_threshold: [0.3, 0.5, 0.7, 0.9]"]
    if kind == "score-informed":
        from vitmusic.workflow.kinds.score_informed import ALIGNER_GRID

        lines += [f"  {key}: {list(grid)}" for key, grid in ALIGNER_GRID.items()]
    return lines


def _same_benchmark(synth: Path, wanted: dict, nuisance: str) -> bool:
    try:
        doc = json.loads((synth / "synth_data.json").read_text())
    except (OSError, ValueError):
        return False
    have = doc.get("arguments", {})
    from vitmusic.data.synth.nuisance import parse_nuisance

    return (doc.get("complete", False) and all(have.get(k) == v for k, v in wanted.items())
            and have.get("nuisance") == list(parse_nuisance(nuisance)))


def _check(rc: int, what: str) -> None:
    if rc in (130, 143):  # interrupted or terminated: stop here, not only this cell (the next would start)
        raise SystemExit(rc)
    if rc != 0:
        raise RuntimeError(f"vitmusic {what} exited with {rc}")


# -------------------------------------------------------------------------------------------------- table
def _summary(cell: Path, system: str) -> dict | None:
    hits = sorted((cell / "ablate" / system).rglob("eval/summary.json"))
    return json.loads(hits[0].read_text()) if hits else None


def fmt(entry: dict | None) -> str:
    """``mean [lo, hi]`` of a summary entry (``-`` when undefined)."""
    if not entry or entry.get("mean") is None or not entry.get("n"):
        return "-"
    ci = entry.get("ci95") or [None, None]
    if ci[0] is None:
        return f"{entry['mean']:.2f}"
    return f"{entry['mean']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def tables(work: Path, cells: list[tuple[str, str]], args) -> str:
    """One markdown table per level (rows: nuisance x system) from the finished systems' summaries."""
    out = [f"# Results per level ({args.kind} kind, {args.pieces} pieces x {args.duration:g} s, "
           f"{args.clip_seconds:g} s clips, {args.steps} steps, encoder {args.encoder}, seed {args.seed}"
           + "".join(f", {o}" for o in args.overrides) + ")", ""]
    for level in LEVELS:
        rows, ceilings = [], []
        for lv, nuisance in cells:
            if lv != level:
                continue
            cell = cell_dir(work, level, nuisance)
            for system in args.systems.split(","):
                s = _summary(cell, system)
                if s is None:
                    continue
                n = max((e.get("n") or 0) for e in s["metrics"].values())
                pieces = max((e.get("n_pieces") or e.get("n_groups") or 0) for e in s["metrics"].values())
                vals = [fmt(s.get(where, {}).get(metric)) for _, where, metric in COLUMNS]
                ceiling = s["metrics"].get("onsets.f_measure", {}).get("referee_ceiling")
                if ceiling and not any(c.startswith(f"`{nuisance}`") for c in ceilings):
                    ceilings.append(f"`{nuisance}`: {fmt(ceiling)}")
                rows.append(f"| {nuisance} | {system} | {n}" + (f" / {pieces}" if pieces else "") + " | "
                            + " | ".join(vals) + " |")
        if not rows:
            continue
        out += [f"## `{level}`", "", "| nuisance | system | clips | " + " | ".join(c[0] for c in COLUMNS) + " |",
                "|---|---|---|" + "---|" * len(COLUMNS), *rows, ""]
        if ceilings:
            out += ["Referee ceiling of the mix onset F1 (the detector on the reference mix vs the annotated "
                    "onsets): " + "; ".join(ceilings) + ".", ""]
    out.append("Cells: mean [95 % interval over test pieces] (summary.json); `-`: undefined or not computed. "
               "Parts: the written MIDI's tracks vs the stems (no referee); mix: librosa's onset detector on the "
               "rendered audio vs the annotated onsets.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
