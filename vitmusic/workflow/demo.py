"""``vitmusic demo``: both paths offline, on one synthetic benchmark, with an honest report.

Stages (each timed, wall-clock and CPU seconds; a rerun into the same folder reuses what is finished):

1. ``data/urmp``: a synthetic URMP-style benchmark (:func:`vitmusic.data.synth.generate_benchmark`), 40
   pieces of 8 s by default.
2. ``data/prepared``: clips and a fixed piece-level split (28 train, 4 val, 8 test pieces: 16 test clips).
3. ``midi/``: the MIDI path as an experiment of the ``transcription`` kind (:func:`midi_experiment`) run by
   :class:`vitmusic.workflow.ablate.AblationRun`: video -> notes with a ``small-vit`` encoder and a trained
   transcription head (the onset threshold chosen on the validation pieces) -> MIDI -> audio (FluidSynth + a
   GM soundfont when installed), for every test clip with its own video (``model``) and with the video of a
   clip of another piece (``shuffled``, the baseline); scored against the annotations, the decoded notes
   themselves too (``transcription.notes.*``). ``midi/score/``: the same trained head times each test clip's
   score (the ``score-informed`` kind) beside the score at its written tempo (deadpan)
   (:mod:`vitmusic.workflow.demo_score`).
4. ``runs/``: the MusicGen path on a subset of the pieces (``data/prepared_musicgen``), the same way: the
   experiment ``model`` vs ``shuffled`` of the ``musicgen`` kind on the tiny preset (``configs/tiny.yaml``).
5. ``report.md``: the headline figures first (MIDI path, then MusicGen), timings, metric tables with CIs and
   paired differences (model - control), piano rolls and other plots, and ``videos/`` -- test videos with the
   audio of each path. ``demo.json`` holds ``results`` (``{path: {variant: {metric: mean}}}``) and the stage
   times; ``results.csv`` (MusicGen) and ``midi/results.csv`` are the tables.

``--seeds 0,1,2`` trains and evaluates both paths once per seed (``<variant>/seed<k>/``); the headline then
gives the mean, spread and a t interval across the seeds. The models are random-init (no hub downloads): the
MIDI path learns to read the synthetic performers from their pixels; the tiny MusicGen path shows the workflow
and is not expected to sound like music.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from vitmusic.atomic import atomic_write_text
from vitmusic.errors import ConfigError
from vitmusic.workflow.demo_score import run_score_path, score_markdown

# the MIDI path's figures the report leads with, in this order; names absent from the results are skipped
HEADLINE_METRICS: tuple[str, ...] = (
    "transcription.notes.f1_no_offset",
    "transcription.notes.f1",
    "notes.f1_no_offset",
    "multipitch.accuracy",
    "multipitch.chroma_accuracy",
    "chroma.cosine",
    "tempo.p_score",
)
ONSET_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7, 0.8, 0.9)
MIDI_EVAL_METRICS = "notes,multipitch,chroma,tempo"


@dataclasses.dataclass(frozen=True)
class MidiSettings:
    """The MIDI path's model and protocol (sizes measured to fit the demo's time bound on 2 CPU cores)."""

    encoder: str = "small-vit"
    steps: int = 1000  # 1500 took the demo to 335-350 s on 2 idle cores (2026-12-07 afternoon); 1000 keeps it under 5 min
    lr: float = 0.003
    batch_size: int = 8
    sample_rate: int = 22050  # rendered audio; the evaluation resamples to 22.05 kHz anyway
    video_clips: int = 4  # test clips muxed into OUT/videos per variant
    plot_clips: int = 2
    seed: int = 0  # train.seed without --seeds


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """The embedded default of the demo (sizes chosen to run in minutes on 2 CPU cores)."""

    pieces: int = 40
    duration_s: float = 8.0
    clip_s: float = 4.0
    seed: int = 0  # the synthetic benchmark's seed
    source: str = "melodies"  # generated melodies render faster than the chorales
    # piece i gets splits[i % len]: 28 train, 4 val, 8 test pieces (16 test clips of 4 s)
    splits: tuple[str, ...] = ("train",) * 7 + ("val", "test", "test")
    # the MusicGen path runs on this many train / val / test pieces of the same benchmark (its tiny preset's
    # generation dominates its time; the MIDI path uses every piece)
    musicgen_pieces: tuple[int, int, int] = (5, 1, 2)
    workers: int = 2  # synth-data processes (the files do not depend on it)
    width_per_player: int = 96
    height: int = 128
    overrides: tuple[str, ...] = ("train.log_with=none",)
    metrics: str | None = None  # all metric groups
    n_boot: int = 1000
    midi: MidiSettings = dataclasses.field(default_factory=MidiSettings)
    seeds: tuple[int, ...] | None = None  # training seeds (None: one run with each config's seeds)


# what ``vitmusic demo`` runs; tests shrink it (they replace this object, not the code path)
DEFAULT_SETTINGS = DemoSettings()


def _preset(name: str) -> Path:
    path = Path(__file__).resolve().parents[2] / "configs" / name
    if not path.is_file():
        raise ConfigError(f"the demo's preset {path} is missing (installed without the source tree?); "
                          f"pass --config configs/{name}")
    return path


def default_config() -> Path:
    """``configs/tiny.yaml`` of the source tree the package lives in (the MusicGen path's preset)."""
    return _preset("tiny.yaml")


def demo_experiment(config: Path, manifest: Path, settings: DemoSettings):
    """The MusicGen path as an experiment: the trained model vs the shuffled-video control (the baseline)."""
    from vitmusic.workflow.experiments import EvaluateSettings, Experiment, Variant

    return Experiment(
        name="demo",
        base=Path(config),
        baseline="shuffled",
        variants={"model": Variant("model"), "shuffled": Variant("shuffled", "shuffled", model="model")},
        overrides=[f"data.manifest={manifest}", *settings.overrides],
        evaluate=EvaluateSettings(metrics=settings.metrics, n_boot=settings.n_boot, plot_clips=2),
        description="trained projection (tiny preset) vs the shuffled-video control",
    )


def available_synth() -> tuple[str, str]:
    """``("fluidsynth", soundfont)`` when FluidSynth and a GM soundfont are installed, else ``("builtin", "")``."""
    from vitmusic.generators.midi.export import check_fluidsynth

    for sf2 in ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2", None):
        if sf2 is not None and not Path(sf2).is_file():
            continue
        try:
            return "fluidsynth", check_fluidsynth(sf2)
        except ConfigError:
            return "builtin", ""
    return "builtin", ""


def midi_experiment(manifest: Path, settings: DemoSettings, synth: str, soundfont: str):
    """The MIDI path as an experiment of the transcription kind: model vs the shuffled-video control."""
    from vitmusic.workflow.experiments import EvaluateSettings, Experiment, Variant

    m = settings.midi
    overrides = [f"data.manifest={manifest}", f"train.max_steps={m.steps}", "train.log_with=none",
                 f"train.eval_every={max(1, m.steps // 4)}", f"train.save_every={m.steps}", f"train.lr={m.lr}",
                 f"train.batch_size={m.batch_size}", f"train.warmup_steps={max(1, m.steps // 20)}",
                 f"train.seed={m.seed}", f"encoder.name={m.encoder}", f"transcription.synth={synth}",
                 f"transcription.sample_rate={m.sample_rate}"]
    if soundfont:
        overrides.append(f"transcription.soundfont={soundfont}")
    return Experiment(
        name="demo-midi",
        base=_preset("tiny-midi.yaml"),
        baseline="shuffled",
        variants={"model": Variant("model"), "shuffled": Variant("shuffled", "shuffled", model="model")},
        overrides=overrides,
        evaluate=EvaluateSettings(metrics=MIDI_EVAL_METRICS, n_boot=settings.n_boot, plot_clips=2),
        description="video -> notes head (small-vit) -> MIDI -> audio vs the shuffled-video control",
        tune={"transcription.onset_threshold": list(ONSET_THRESHOLDS)},
    )


class _Stages:
    """Prints numbered stage banners to stderr and records their wall-clock seconds."""

    def __init__(self, total: int, progress: bool) -> None:
        self.total, self.progress, self.times, self.cpu, self._n = total, progress, {}, {}, 0

    def __call__(self, name: str, fn, *args, **kwargs):
        self._n += 1
        if self.progress:
            print(f"[demo {self._n}/{self.total}] {name} ...", file=sys.stderr, flush=True)
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        self.times[name] = time.perf_counter() - t0
        # CPU seconds of this process (worker processes not included): on a machine shared with other jobs
        # the wall-clock time overstates what the stage costs, this does not
        self.cpu[name] = time.process_time() - c0
        return out


def benchmark_is_complete(root: Path, s: DemoSettings) -> bool:
    """Whether ``root`` holds a finished synth-data run with the demo's settings.

    synth-data rewrites ``synth_data.json`` after every piece with ``"complete": false``, so the file alone
    does not mean done: a run stopped by a full disk or a signal left it too.
    """
    try:
        doc = json.loads((root / "synth_data.json").read_text(encoding="utf-8"))
        args = doc["arguments"]
        wanted = {"pieces": s.pieces, "seed": s.seed, "duration_s": float(s.duration_s), "source": s.source,
                  "width_per_player": s.width_per_player, "height": s.height}
        return doc["complete"] is True and all(args[k] == v for k, v in wanted.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _benchmark(root: Path, s: DemoSettings, progress: bool) -> Path:
    from vitmusic.data.synth import generate_benchmark

    if not benchmark_is_complete(root, s):  # synth-data replaces the pieces of an unfinished run of its own
        generate_benchmark(root, s.pieces, s.seed, duration_s=s.duration_s, source=s.source, progress=progress,
                           width_per_player=s.width_per_player, height=s.height, workers=s.workers)
    return root


def _prepare(urmp: Path, out: Path, s: DemoSettings) -> Path:
    from vitmusic.data.manifest import prepare_manifest, read_manifest
    from vitmusic.data.urmp import discover_pieces

    pieces = discover_pieces(urmp)
    manifest = out / "manifest.jsonl"
    # a manifest prepared from another state of the benchmark (an unfinished one) is prepared again
    if not manifest.is_file() or {c["piece"] for c in read_manifest(out)} != {p.id for p in pieces}:
        split = "piece,split\n" + "".join(f"{p.id},{s.splits[i % len(s.splits)]}\n" for i, p in enumerate(pieces))
        split_file = atomic_write_text(out.parent / "split.csv", split)
        prepare_manifest(urmp, out, s.clip_s, split_file=split_file, progress=False)
    return out


def musicgen_subset(prepared: Path, out: Path, s: DemoSettings) -> Path:
    """``out/manifest.jsonl``: the clips of the first train / val / test pieces (``s.musicgen_pieces``)."""
    from vitmusic.data.manifest import read_manifest

    if (out / "manifest.jsonl").is_file():
        return out
    clips = read_manifest(prepared)
    keep: set[str] = set()
    for split, n in zip(("train", "val", "test"), s.musicgen_pieces):
        keep |= set(sorted({c["piece"] for c in clips if c["split"] == split})[:n])
    lines = [json.dumps(c, allow_nan=False, separators=(",", ":")) for c in clips if c["piece"] in keep]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "manifest.jsonl", "\n".join(lines) + "\n")
    return out


def _verdict(rows: list[dict[str, Any]], ce: dict[str, float]) -> list[str]:
    """Plain sentences on what the trained model achieved against the control (computed, not assumed)."""
    from vitmusic.evaluation.registry import get_metric
    from vitmusic.workflow.results import across_seeds

    def higher_better(metric: str) -> bool:
        m = get_metric(metric)
        return m is not None and m.higher_is_better is True

    lines = []
    if "train.ce_true_video" in ce and "train.ce_shuffled_video" in ce:
        t, s = ce["train.ce_true_video"], ce["train.ce_shuffled_video"]
        gap = s - t
        lines.append(f"- Teacher-forced cross-entropy on the held-out clips: **{t:.4f}** nats/code with the true "
                     f"video vs **{s:.4f}** with another piece's video (gap {gap:+.2g}). "
                     + ("The model predicts the true audio better when it sees the matching video."
                        if gap > 1e-3 else "The true video does not lower it here: trained on the demo's few "
                        "pieces, the projection has not learned to use the video in a way that generalizes to "
                        "held-out pieces (on 36-piece benchmarks it does for 10 of 10 data seeds: "
                        "scripts/benchmarks/bench_conditioning_gap.py)."))
    paired = [r for r in rows if r["variant"] == "model" and r["n_paired"] and math.isfinite(r["diff"])]
    if paired:
        better = [r for r in paired if higher_better(r["metric"]) and r["diff"] > 0]
        n_higher = sum(higher_better(r["metric"]) for r in paired)
        if any(across_seeds(r) for r in paired):  # differences paired by training seed
            k = max(r["n_paired"] for r in paired)
            excl = [r for r in paired if _excludes_zero(r)]
            lines.append(f"- Generated audio vs the ground truth, model − control paired by training seed ({k} "
                         f"seeds): the model is higher on {len(better)} of {n_higher} higher-is-better metrics; "
                         f"the 95 % t interval across the seeds excludes 0 for {len(excl)} difference(s).")
        else:
            tests = sorted({r["test"] for r in paired if r["test"]})
            sig = [r for r in paired if math.isfinite(_f(r["p"])) and r["p"] < 0.05]
            n = max(r["n_paired"] for r in paired)
            units = max((int(r["n_pieces"]) for r in paired if math.isfinite(_f(r["n_pieces"]))), default=n)
            lines.append(f"- Generated audio vs the ground truth, model − control over {n} test clips of {units} "
                         f"pieces: the model is higher on {len(better)} of {n_higher} higher-is-better metrics; "
                         f"{len(sig)} difference(s) reach p < 0.05 ({', '.join(tests) or 'paired test'})"
                         + (f" — with {units} pieces the smallest attainable two-sided p is {2 / 2 ** units:.3g}"
                            if units <= 5 else "") + ".")
    lines.append("- The encoder and MusicGen are tiny random-init models (no downloads), trained for seconds: the "
                 "audio is not music and no difference here is evidence about real models. Run `vitmusic ablate` "
                 "with the real-model experiment files for that.")
    return lines


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _excludes_zero(r: dict[str, Any]) -> bool:
    lo, hi = _f(r["diff_ci95_lo"]), _f(r["diff_ci95_hi"])
    return math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0)


def _cell_text(r: dict[str, Any]) -> str:
    """``mean [lo, hi]`` (interval over pieces, its method named), or ``mean ± sd [lo, hi]`` across seeds with the
    per-seed values."""
    from vitmusic.workflow.results import across_seeds

    if across_seeds(r):
        sd = f" ± {r['sd']:.3f}" if math.isfinite(_f(r["sd"])) else ""
        values = r.get("values")
        per = f"; seeds: {', '.join(f'{v:.3f}' for v in values)}" if values else ""
        return f"{r['mean']:.3f}{sd} [{r['ci95_lo']:.3f}, {r['ci95_hi']:.3f}]{per}"
    return f"{r['mean']:.3f} [{r['ci95_lo']:.3f}, {r['ci95_hi']:.3f}] ({r['interval']})"


def _diff_text(r: dict[str, Any]) -> str:
    from vitmusic.workflow.results import across_seeds

    if not math.isfinite(_f(r["diff"])):
        return ""
    if across_seeds(r):
        return (f"; difference {r['diff']:+.3f} [{r['diff_ci95_lo']:+.3f}, {r['diff_ci95_hi']:+.3f}] "
                f"(t interval over the seeds), n = {r['n_paired']} seeds")
    p = f", {r['test']} p = {r['p']:.2g}" if math.isfinite(_f(r["p"])) else ""
    return (f"; difference {r['diff']:+.3f} [{r['diff_ci95_lo']:+.3f}, {r['diff_ci95_hi']:+.3f}] "
            f"({r['diff_interval']}){p}, n = {r['n_paired']} clips"
            + (f" of {int(_f(r['n_pieces']))} pieces" if math.isfinite(_f(r.get("n_pieces"))) else ""))


def headline_lines(midi: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The report's first lines: the MIDI path's headline metrics (own vs shuffled video), then MusicGen's."""
    from vitmusic.workflow.results import across_seeds, headline_rows, with_seed_values

    mrows = with_seed_values(midi["rows"])
    across = any(across_seeds(r) for r in mrows)
    cell = {(r["variant"], r["metric"]): r for r in mrows}
    synth = ("FluidSynth with the GM soundfont " + Path(midi["soundfont"]).name if midi["synth"] == "fluidsynth"
             else "the built-in synthesizer (FluidSynth or a GM soundfont is not installed)")
    spread = (f"mean ± sd [95 % t interval] across {len(midi['seeds'])} training seeds and the per-seed means; "
              "paired difference own − shuffled by seed" if across else
              "clip mean [95 % interval over the test pieces, method named]; paired difference own − shuffled")
    lines = [f"**MIDI path** (video → notes → MIDI → audio rendered by {synth}), {midi['test_clips']} held-out "
             f"clips, own video vs a shuffled video ({spread}):", ""]
    for m in HEADLINE_METRICS:
        a, b = cell.get(("model", m)), cell.get(("shuffled", m))
        if a is None or b is None or not (math.isfinite(a["mean"]) and math.isfinite(b["mean"])):
            continue
        lines.append(f"- `{m}`: **{_cell_text(a)}** own video vs **{_cell_text(b)}** shuffled{_diff_text(a)}")
    grows = headline_rows(rows)
    ce = {r["metric"]: r["mean"] for r in grows if r["variant"] == "model" and r["metric"].startswith("train.")}
    mg = {(r["variant"], r["metric"]): r for r in grows}
    tail = ""
    if "train.ce_true_video" in ce and "train.ce_shuffled_video" in ce:
        tail = (f" teacher-forced CE {ce['train.ce_true_video']:.4f} (own video) vs "
                f"{ce['train.ce_shuffled_video']:.4f} nats/code (shuffled);")
    cos = mg.get(("model", "chroma.cosine")), mg.get(("shuffled", "chroma.cosine"))
    if all(c is not None and math.isfinite(c["mean"]) for c in cos):
        tail += f" chroma cosine {cos[0]['mean']:.3f} vs {cos[1]['mean']:.3f}"
    n = max((r["n"] for r in rows if r["variant"] == "model" and r["metric"] == "chroma.cosine"
             and not across_seeds(r)), default=0)
    lines += ["", f"**MusicGen path** (tiny random-init encoder and MusicGen, {n} test clips):{tail}. Its audio is "
              "not music; see its section below.", ""]
    return lines


def write_report(out: Path, run, rows: list[dict[str, Any]], times: dict[str, float], videos: list[Path],
                 midi: dict[str, Any]) -> Path:
    """``out/report.md``: the headline figures, what ran, how long, the tables, the plots and the videos."""
    from vitmusic.data.donors import DONOR_RULE
    from vitmusic.workflow.results import headline_rows, results_markdown

    seed = run.seed_list()[0]
    ce = {r["metric"]: r["mean"] for r in headline_rows(rows) if r["variant"] == "model"
          and r["metric"].startswith("train.")}
    run_dir = Path(run.config("model", seed).train.output_dir)
    mrun = midi["run"]
    midi_dir = Path(mrun.config("model", seed).train.output_dir)
    rel = lambda p: os.path.relpath(p, out)  # noqa: E731 -- links in the report are relative to it
    work = out / "midi"
    shown = [o for o in mrun.exp.overrides if not o.startswith(("data.", "transcription.soundfont"))]
    lines = ["# vitmusic demo report", "", *headline_lines(midi, rows),
             "Offline, on one synthetic URMP-style benchmark, two paths from the video of a performance to music, "
             f"each against the shuffled-video control: {DONOR_RULE} (`vitmusic.data.donors`). Pieces, not clips, "
             "are held out.", "",
             "## MIDI path: video → notes → MIDI → audio", "",
             f"A frozen random-init ViT that sees 96x96 pixels per performer (`{mrun.config('model', seed).encoder.name}`, "
             "30 embeddings per second) and a trained transcription head (`configs/tiny-midi.yaml` with "
             f"`{' '.join(shown)}`); the onset threshold ({midi['onset_threshold']}) was chosen on the validation "
             "pieces. `transcription.notes.*` scores the decoded notes against the annotated notes of each "
             "performer (onset within 50 ms, pitch within 50 cents; the mean over a clip's performers; notes "
             "sounding from before a clip's start left out); the other metrics score the rendered audio through "
             "the evaluation runner against the manifest's references.", "",
             results_markdown(midi["rows"], "shuffled"), ""]
    if midi.get("piano_roll"):
        lines += ["### Piano rolls: annotated vs decoded notes", "", f"![piano rolls]({rel(midi['piano_roll'])})", ""]
    if (work / "results.png").is_file():
        lines += [f"![own video vs shuffled video]({rel(work / 'results.png')})", ""]
    lines += ["Evaluation reports of the rendered audio: "
              + ", ".join(f"[{v}]({rel(mrun.variant_dir(v, seed) / 'eval' / 'report.md')})"
                          for v in ("model", "shuffled")), ""]
    if midi.get("score"):
        lines += score_markdown(midi["score"])
    lines += ["## MusicGen path: what the trained model achieved", "",
              "Tiny random-init vision encoder and MusicGen (`configs/tiny.yaml`), a trained projection, on "
              f"{'/'.join(map(str, run_settings(out)))} train/val/test pieces of the same benchmark.", "",
              *_verdict(headline_rows(rows), ce), "",
              "## Stages", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in times.items()]
    total = sum(v for k, v in times.items() if not k.startswith(" "))  # indented rows are parts of a stage
    lines += [f"| **total** | {total:.1f} |", "",
              f"Config: `{run.exp.base}` with `{' '.join(run.exp.overrides)}`; run folder `{rel(run_dir)}`.", ""]
    for title, png in (("Synthetic benchmark (piano rolls)", out / "data" / "urmp" / "synth_data.png"),
                       ("Clips per split", out / "data" / "prepared" / "prepare.png"),
                       ("Training loss (MusicGen path)", run_dir / "loss.png"),
                       ("Training loss (MIDI path)", midi_dir / "loss.png")):
        if png.is_file():
            lines += [f"### {title}", "", f"![{title}]({rel(png)})", ""]
    lines += ["## Results (MusicGen path)", "", results_markdown(rows, run.exp.baseline), ""]
    if (out / "results.png").is_file():
        lines += ["![model vs control](results.png)", ""]
    lines += ["Per-system evaluation reports (per-clip f0 / piano-roll / beat plots): "
              + ", ".join(f"[{v}]({rel(run.variant_dir(v, seed) / 'eval' / 'report.md')})" for v in run.exp.variants),
              ""]
    all_videos = [*midi.get("videos", []), *videos]
    if all_videos:
        lines += ["## Videos with the generated audio", "",
                  "`<clip>_midi_<model|shuffled>.mp4`: the MIDI path; `<clip>_<model|shuffled>.mp4`: the MusicGen "
                  "path.", ""]
        lines += [f"- [{p.name}]({rel(p)})" for p in all_videos]
    return atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


def run_settings(out: Path) -> tuple[int, int, int]:
    """Train / val / test piece counts of the MusicGen path's manifest."""
    from vitmusic.data.manifest import read_manifest

    clips = read_manifest(out / "data" / "prepared_musicgen")
    return tuple(len({c["piece"] for c in clips if c["split"] == sp}) for sp in ("train", "val", "test"))


def _run_variants(stages: _Stages, run, label: str) -> None:
    """Every variant of ``run`` at every seed, the model first (the control uses its trained run), timed."""
    several = len(run.seed_list()) > 1
    for seed in run.seed_list():
        for v in sorted(run.exp.order(), key=lambda v: not run.exp.trains(v)):  # trained variants first
            folder = run.variant_dir(v, seed)
            done = (folder / "DONE").is_file()
            name = f"{label}: {v}" + (f" ({folder.name})" if several else "") + ": train, generate, evaluate"
            stages(name, run.run_variant, v, seed)
            if not done:
                t = json.loads((folder / "timings.json").read_text(encoding="utf-8"))
                for k, sec in t.items():
                    stages.times[f"  {v}{' ' + folder.name if several else ''}: {k[:-2]}"] = sec


def run_midi_path(out: Path, manifest: Path, s: DemoSettings, stages: _Stages, progress: bool) -> dict[str, Any]:
    """The MIDI path's experiment into ``out/midi``; its rows, run, settings chosen, piano rolls and videos."""
    from vitmusic.workflow.ablate import AblationRun
    from vitmusic.workflow.figures import plot_piano_rolls, write_videos

    synth, soundfont = available_synth()
    exp = midi_experiment(manifest, s, synth, soundfont)
    exp.validate()
    run = AblationRun(exp, out / "midi", progress=progress, seeds=list(s.seeds) if s.seeds else None)
    _run_variants(stages, run, "MIDI path")
    rows = run.results_rows()
    run.write_results()
    seed = run.seed_list()[0]
    test = [c for c in _clips(run.config("model", seed)) if c["split"] == "test"]
    generated = {v: run.variant_dir(v, seed) / "generated" for v in ("model", "shuffled")}
    labels = {"own video": generated["model"], "shuffled video": generated["shuffled"]}
    png = plot_piano_rolls(test[: s.midi.plot_clips], labels, out / "midi" / "piano_rolls.png")
    videos = stages("MIDI path: videos", write_videos, test[: s.midi.video_clips], generated, out / "videos", "midi_")
    tuned = run.tuned("model", seed)
    return {"rows": rows, "run": run, "synth": synth, "soundfont": soundfont, "piano_roll": png, "videos": videos,
            "onset_threshold": tuned.get("transcription.onset_threshold",
                                         run.config("model", seed).transcription.onset_threshold),
            "test_clips": len(test), "seeds": run.seed_list()}


def _clips(config) -> list[dict[str, Any]]:
    from vitmusic.data.manifest import read_manifest

    return read_manifest(config.data.manifest)


def run_demo(out_dir: str | os.PathLike = "demo_out", *, config: str | os.PathLike | None = None,
             settings: DemoSettings | None = None, progress: bool = True) -> Path:
    """Run the demo into ``out_dir`` (see the module docstring); returns ``out_dir/report.md``."""
    from vitmusic.workflow.ablate import AblationRun
    from vitmusic.workflow.figures import write_videos

    s = settings or DEFAULT_SETTINGS
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out exists and is not a folder: {out}")
    config = Path(config) if config is not None else default_config()
    stages = _Stages(7 + 4 * len(s.seeds or (0,)), progress)
    urmp = stages("synthetic benchmark", _benchmark, out / "data" / "urmp", s, progress)
    prepared = stages("prepare clips", _prepare, urmp, out / "data" / "prepared", s)
    midi = run_midi_path(out, prepared / "manifest.jsonl", s, stages, progress)
    midi["score"] = stages("MIDI path: score-informed and deadpan", run_score_path, out, midi, progress)
    manifest = stages("MusicGen path: its subset of the clips", musicgen_subset, prepared,
                      out / "data" / "prepared_musicgen", s)
    exp = demo_experiment(config, manifest, s)
    exp.validate()
    run = AblationRun(exp, out / "runs", progress=progress, seeds=list(s.seeds) if s.seeds else None)
    _run_variants(stages, run, "MusicGen path")
    rows = stages("results", run.results_rows)
    run.write_results(out_dir=out)
    seed = run.seed_list()[0]
    test = [c for c in _clips(run.config("model", seed)) if c["split"] == "test"]
    videos = stages("MusicGen path: videos", write_videos, test,
                    {v: run.variant_dir(v, seed) / "generated" for v in ("model", "shuffled")}, out / "videos")
    times = {k: v for k, v in stages.times.items() if k != "results"}
    results = {"midi": _model_shuffled(midi["rows"]), "musicgen": _model_shuffled(rows)}
    atomic_write_text(out / "demo.json", json.dumps({
        "settings": dataclasses.asdict(s), "config": str(config), "results": results,
        "midi": {k: midi[k] for k in ("synth", "soundfont", "onset_threshold", "test_clips", "seeds")},
        "score_informed": {k: {m: _finite(v.get("mean")) for m, v in r.items()}
                           for k, r in midi["score"]["rows"].items()},
        "stage_seconds": times, "stage_cpu_seconds": {k: v for k, v in stages.cpu.items() if k in times}},
        indent=1, allow_nan=False) + "\n")
    if progress:
        for k, sec in times.items():
            cpu = f" ({stages.cpu[k]:.1f} s CPU)" if k in stages.cpu else ""
            print(f"[demo] {k}: {sec:.1f} s{cpu}", file=sys.stderr)
    return write_report(out, run, rows, times, videos, midi)


def _finite(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _model_shuffled(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{"model": {metric: mean}, "shuffled": {...}}`` of the headline rows (finite outputs' scores only)."""
    from vitmusic.workflow.results import headline_rows

    out: dict[str, dict[str, float]] = {"model": {}, "shuffled": {}}
    for r in headline_rows(rows):
        if r["variant"] in out and math.isfinite(r["mean"]) and not r["metric"].startswith("train."):
            out[r["variant"]][r["metric"]] = float(r["mean"])
    return out
