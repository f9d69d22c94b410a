"""``vitmusic demo``: both paths offline, on one synthetic benchmark, with an honest report.

Stages (each timed, wall-clock and CPU seconds; a rerun into the same folder reuses what is finished):

1. ``data/urmp``: a synthetic URMP-style benchmark (:func:`vitmusic.data.synth.generate_benchmark`), 40
   pieces of 8 s by default.
2. ``data/prepared``: clips and a fixed piece-level split (28 train, 4 val, 8 test pieces: 16 test clips).
3. ``midi/``: the MIDI path (:mod:`vitmusic.workflow.demo_midi`): video -> notes with a ``small-vit`` encoder
   and a trained transcription head -> MIDI -> audio (FluidSynth + a GM soundfont when installed), for every
   test clip with its own video and with a shuffled video; scored against the annotations.
4. ``runs/``: the MusicGen path on a subset of the pieces (``data/prepared_musicgen``): the experiment
   ``model`` vs ``shuffled`` run by :class:`vitmusic.workflow.ablate.AblationRun` on the tiny preset
   (``configs/tiny.yaml``): extract features, train the projection (teacher-forced CE with the true vs a
   shuffled video on the test clips), generate for the test clips with the clip's own video and with another
   test clip's video (the control), evaluate both against the ground truth.
5. ``report.md``: the headline figures first (MIDI path, then MusicGen), timings, metric tables with CIs and
   paired differences (model - control), piano rolls and other plots, and ``videos/`` -- the test videos with
   the audio of each path. ``demo.json`` holds ``results`` (``{path: {variant: {metric: mean}}}``) and the
   stage times; ``results.csv`` (MusicGen) and ``midi/results.csv`` are the tables.

The models are random-init (no hub downloads): the MIDI path learns to read the synthetic performers from
their pixels; the tiny MusicGen path shows the workflow and is not expected to sound like music.
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
from vitmusic.workflow.demo_midi import MidiSettings


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """The embedded default of the demo (sizes chosen to run in minutes on 2 CPU cores)."""

    pieces: int = 40
    duration_s: float = 8.0
    clip_s: float = 4.0
    seed: int = 0
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


# what ``vitmusic demo`` runs; tests shrink it (they replace this object, not the code path)
DEFAULT_SETTINGS = DemoSettings()


def default_config() -> Path:
    """``configs/tiny.yaml`` of the source tree the package lives in."""
    path = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"
    if not path.is_file():
        raise ConfigError(f"the demo's preset {path} is missing (installed without the source tree?); "
                          "pass --config configs/tiny.yaml")
    return path


def demo_experiment(config: Path, manifest: Path, settings: DemoSettings):
    """The demo as an experiment: the trained model vs the shuffled-video control (the baseline)."""
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


def _benchmark(root: Path, s: DemoSettings, progress: bool) -> Path:
    from vitmusic.data.synth import generate_benchmark

    if not (root / "synth_data.json").is_file():
        generate_benchmark(root, s.pieces, s.seed, duration_s=s.duration_s, source=s.source, progress=progress,
                           width_per_player=s.width_per_player, height=s.height, workers=s.workers)
    return root


def _prepare(urmp: Path, out: Path, s: DemoSettings) -> Path:
    from vitmusic.data.manifest import prepare_manifest
    from vitmusic.data.urmp import discover_pieces

    if not (out / "manifest.jsonl").is_file():
        pieces = discover_pieces(urmp)
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


def write_videos(run, out_dir: Path, variants: tuple[str, ...] = ("model", "shuffled")) -> list[Path]:
    """``<clip>_<variant>.mp4``: each test clip's video with that variant's generated audio."""
    from vitmusic.data.audio import load_audio
    from vitmusic.data.manifest import read_manifest
    from vitmusic.data.video import VideoReader
    from vitmusic.data.videowriter import write_video

    cfg = run.config(variants[0])
    written = []
    for clip in read_manifest(cfg.data.manifest, split=cfg.data.test_split):
        if not clip.get("video"):
            continue
        with VideoReader(clip["video"]) as reader:
            frames = reader.read(float(clip["start_s"]), float(clip["end_s"]))
            fps = reader.info.fps
        for v in variants:
            wav = run.variant_dir(v) / "generated" / f"{clip['clip_id']}.wav"
            path = out_dir / f"{clip['clip_id']}_{v}.mp4"
            if wav.is_file() and not path.is_file():
                y, sr = load_audio(wav)
                write_video(path, frames.data, fps, audio=y, sample_rate=sr)
            if path.is_file():
                written.append(path)
    return written


def _verdict(rows: list[dict[str, Any]], ce: dict[str, float]) -> list[str]:
    """Plain sentences on what the trained model achieved against the control (computed, not assumed)."""
    from vitmusic.evaluation.report import BOUNDED_METRICS

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
        better = [r for r in paired if r["metric"] in BOUNDED_METRICS and r["metric"] != "pitch.voicing_false_alarm"
                  and r["diff"] > 0]
        sig = [r for r in paired if math.isfinite(r["p_wilcoxon"]) and r["p_wilcoxon"] < 0.05]
        n = max(r["n_paired"] for r in paired)
        lines.append(f"- Generated audio vs the ground truth, model − control over {n} test clips: the model is "
                     f"higher on {len(better)} of {sum(r['metric'] in BOUNDED_METRICS for r in paired)} "
                     f"higher-is-better metrics; {len(sig)} difference(s) reach p < 0.05 (Wilcoxon)"
                     + (f" — with {n} clips the smallest attainable two-sided p is {2 / 2 ** n:.3g}"
                        if n <= 5 else "") + ".")
    lines.append("- The encoder and MusicGen are tiny random-init models (no downloads), trained for seconds: the "
                 "audio is not music and no difference here is evidence about real models. Run `vitmusic ablate` "
                 "with the real-model experiment files for that.")
    return lines


def _ci(r: dict[str, Any]) -> str:
    return f"{r['mean']:.3f} [{r['ci95_lo']:.3f}, {r['ci95_hi']:.3f}]"


def headline_lines(midi: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The report's first lines: the MIDI path's headline metrics (own vs shuffled video), then MusicGen's."""
    from vitmusic.workflow.demo_midi import HEADLINE_METRICS
    from vitmusic.workflow.results import TRAIN_METRICS

    cell = {(r["variant"], r["metric"]): r for r in midi["rows"]}
    synth = ("FluidSynth with the GM soundfont " + Path(midi["soundfont"]).name if midi["synth"] == "fluidsynth"
             else "the built-in synthesizer (FluidSynth or a GM soundfont is not installed)")
    lines = [f"**MIDI path** (video → notes → MIDI → audio rendered by {synth}), {midi['test_clips']} held-out "
             "clips, own video vs a shuffled video (mean [95 % CI]; paired difference own − shuffled):", ""]
    for m in HEADLINE_METRICS:
        a, b = cell.get(("model", m)), cell.get(("shuffled", m))
        if a is None or b is None or not (math.isfinite(a["mean"]) and math.isfinite(b["mean"])):
            continue
        diff = (f"; difference {a['diff']:+.3f} [{a['diff_ci95_lo']:+.3f}, {a['diff_ci95_hi']:+.3f}], "
                f"Wilcoxon p = {a['p_wilcoxon']:.2g}, n = {a['n_paired']}") if math.isfinite(a["diff"]) else ""
        lines.append(f"- `{m}`: **{_ci(a)}** own video vs **{_ci(b)}** shuffled{diff}")
    ce = {r["metric"]: r["mean"] for r in rows if r["variant"] == "model" and r["metric"] in TRAIN_METRICS}
    mg = {(r["variant"], r["metric"]): r for r in rows}
    tail = ""
    if "train.ce_true_video" in ce and "train.ce_shuffled_video" in ce:
        tail = (f" teacher-forced CE {ce['train.ce_true_video']:.4f} (own video) vs "
                f"{ce['train.ce_shuffled_video']:.4f} nats/code (shuffled);")
    cos = mg.get(("model", "chroma.cosine")), mg.get(("shuffled", "chroma.cosine"))
    if all(c is not None and math.isfinite(c["mean"]) for c in cos):
        tail += f" chroma cosine {cos[0]['mean']:.3f} vs {cos[1]['mean']:.3f}"
    n = max((r["n"] for r in rows if r["variant"] == "model" and r["metric"] == "chroma.cosine"), default=0)
    lines += ["", f"**MusicGen path** (tiny random-init encoder and MusicGen, {n} test clips):{tail}. Its audio is "
              "not music; see its section below.", ""]
    return lines


def write_report(out: Path, run, rows: list[dict[str, Any]], times: dict[str, float], videos: list[Path],
                 midi: dict[str, Any]) -> Path:
    """``out/report.md``: the headline figures, what ran, how long, the tables, the plots and the videos."""
    from vitmusic.workflow.results import TRAIN_METRICS, results_markdown

    cfg = run.config("model")
    ce = {r["metric"]: r["mean"] for r in rows if r["variant"] == "model" and r["metric"] in TRAIN_METRICS}
    run_dir = Path(cfg.train.output_dir)
    rel = lambda p: os.path.relpath(p, out)  # noqa: E731 -- links in the report are relative to it
    work = out / "midi"
    lines = ["# vitmusic demo report", "", *headline_lines(midi, rows),
             "Offline, on one synthetic URMP-style benchmark, two paths from the video of a performance to music, "
             "each against the shuffled-video control (every held-out clip given the video of a clip of another "
             "piece). Pieces, not clips, are held out.", "",
             "## MIDI path: video → notes → MIDI → audio", "",
             f"A frozen random-init ViT that sees 96x96 pixels per performer (`{s_enc(midi)}`, 30 embeddings per "
             "second) and a trained transcription head (`configs/tiny-midi.yaml` with "
             f"`{' '.join(o for o in midi['config'] if not o.startswith(('data.', 'extract.', 'train.output')))}`); "
             f"the onset threshold ({midi['onset_threshold']}) was chosen on the validation pieces. "
             "`transcription.notes.*` scores the decoded notes against the annotated notes of each performer "
             "(onset within 50 ms, pitch within 50 cents; the mean over a clip's performers); the other metrics "
             "score the rendered audio through the evaluation runner against the manifest's references.", "",
             results_markdown(midi["rows"], "shuffled"), ""]
    if midi.get("piano_roll"):
        lines += ["### Piano rolls: annotated vs decoded notes", "", f"![piano rolls]({rel(midi['piano_roll'])})", ""]
    if (work / "results.png").is_file():
        lines += [f"![own video vs shuffled video]({rel(work / 'results.png')})", ""]
    lines += ["Evaluation reports of the rendered audio: "
              + ", ".join(f"[{v}]({rel(work / v / 'eval' / 'report.md')})" for v in ("model", "shuffled")), ""]
    lines += ["## MusicGen path: what the trained model achieved", "",
              "Tiny random-init vision encoder and MusicGen (`configs/tiny.yaml`), a trained projection, on "
              f"{'/'.join(map(str, run_settings(out)))} train/val/test pieces of the same benchmark.", "",
              *_verdict(rows, ce), "",
              "## Stages", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in times.items()]
    total = sum(v for k, v in times.items() if not k.startswith(" "))  # indented rows are parts of a stage
    lines += [f"| **total** | {total:.1f} |", "",
              f"Config: `{run.exp.base}` with `{' '.join(run.exp.overrides)}`; run folder `{rel(run_dir)}`.", ""]
    for title, png in (("Synthetic benchmark (piano rolls)", out / "data" / "urmp" / "synth_data.png"),
                       ("Clips per split", out / "data" / "prepared" / "prepare.png"),
                       ("Training loss (MusicGen path)", run_dir / "loss.png"),
                       ("Training loss (MIDI path)", work / "run" / "loss.png")):
        if png.is_file():
            lines += [f"### {title}", "", f"![{title}]({rel(png)})", ""]
    lines += ["## Results (MusicGen path)", "", results_markdown(rows, run.exp.baseline), ""]
    if (out / "results.png").is_file():
        lines += ["![model vs control](results.png)", ""]
    lines += ["Per-system evaluation reports (per-clip f0 / piano-roll / beat plots): "
              + ", ".join(f"[{v}]({rel(run.variant_dir(v) / 'eval' / 'report.md')})" for v in run.exp.variants), ""]
    all_videos = [*midi.get("videos", []), *videos]
    if all_videos:
        lines += ["## Videos with the generated audio", "",
                  "`<clip>_midi_<model|shuffled>.mp4`: the MIDI path; `<clip>_<model|shuffled>.mp4`: the MusicGen "
                  "path.", ""]
        lines += [f"- [{p.name}]({rel(p)})" for p in all_videos]
    return atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


def s_enc(midi: dict[str, Any]) -> str:
    return next((o.split("=", 1)[1] for o in midi["config"] if o.startswith("encoder.name=")), "?")


def run_settings(out: Path) -> tuple[int, int, int]:
    """Train / val / test piece counts of the MusicGen path's manifest."""
    from vitmusic.data.manifest import read_manifest

    clips = read_manifest(out / "data" / "prepared_musicgen")
    return tuple(len({c["piece"] for c in clips if c["split"] == sp}) for sp in ("train", "val", "test"))


def run_demo(out_dir: str | os.PathLike = "demo_out", *, config: str | os.PathLike | None = None,
             settings: DemoSettings | None = None, progress: bool = True) -> Path:
    """Run the demo into ``out_dir`` (see the module docstring); returns ``out_dir/report.md``."""
    from vitmusic.workflow.ablate import AblationRun
    from vitmusic.workflow.demo_midi import headline, run_midi_path
    from vitmusic.workflow.results import collect_results, write_results

    s = settings or DEFAULT_SETTINGS
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out exists and is not a folder: {out}")
    config = Path(config) if config is not None else default_config()
    stages = _Stages(15, progress)
    urmp = stages("synthetic benchmark", _benchmark, out / "data" / "urmp", s, progress)
    prepared = stages("prepare clips", _prepare, urmp, out / "data" / "prepared", s)
    midi = run_midi_path(out / "midi", prepared / "manifest.jsonl", s.midi, stages, n_boot=s.n_boot,
                         videos_dir=out / "videos", progress=progress)
    write_results(out / "midi", midi["rows"], baseline="shuffled",
                  title="vitmusic demo, MIDI path: own video vs shuffled-video control")
    manifest = stages("MusicGen path: its subset of the clips", musicgen_subset, prepared,
                      out / "data" / "prepared_musicgen", s)
    exp = demo_experiment(config, manifest, s)
    exp.validate()
    run = AblationRun(exp, out / "runs", progress=progress)
    for v in ("model", "shuffled"):  # the model first: the control uses its trained run
        done = (run.variant_dir(v) / "DONE").is_file()
        stages(f"MusicGen path: {v}: train, generate, evaluate", run.run_variant, v)
        if not done:
            t = json.loads((run.variant_dir(v) / "timings.json").read_text(encoding="utf-8"))
            for k, sec in t.items():
                stages.times[f"  {v}: {k[:-2]}"] = sec
    names = list(exp.variants)
    rows = stages("results", collect_results, {v: run.variant_dir(v) / "eval" for v in names},
                  {v: exp.variants[v].system for v in names}, exp.baseline,
                  train_info={v: run.train_info(v) for v in names}, n_boot=s.n_boot)
    write_results(out, rows, baseline=exp.baseline, title="vitmusic demo: model vs shuffled-video control")
    videos = stages("MusicGen path: videos", write_videos, run, out / "videos")
    times = {k: v for k, v in stages.times.items() if k != "results"}
    results = {"midi": _model_shuffled(headline(midi["rows"])), "musicgen": _model_shuffled(headline(rows))}
    atomic_write_text(out / "demo.json", json.dumps({
        "settings": dataclasses.asdict(s), "config": str(config), "results": results,
        "midi": {k: midi[k] for k in ("synth", "soundfont", "onset_threshold", "test_clips")},
        "stage_seconds": times, "stage_cpu_seconds": {k: v for k, v in stages.cpu.items() if k in times}},
        indent=1, allow_nan=False) + "\n")
    if progress:
        for k, sec in times.items():
            cpu = f" ({stages.cpu[k]:.1f} s CPU)" if k in stages.cpu else ""
            print(f"[demo] {k}: {sec:.1f} s{cpu}", file=sys.stderr)
    return write_report(out, run, rows, times, videos, midi)


def _model_shuffled(by_variant: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {"model": by_variant.get("model", {}), "shuffled": by_variant.get("shuffled", {})}
