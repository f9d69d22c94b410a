"""``vitmusic demo``: the whole pipeline offline, on a synthetic benchmark, with an honest report.

Stages (each timed; a rerun into the same folder reuses what is finished):

1. ``data/urmp``: a small synthetic URMP-style benchmark (:func:`vitmusic.data.synth.generate_benchmark`).
2. ``data/prepared``: clips and a fixed piece-level split (held-out *pieces* for test).
3. ``runs/``: the experiment ``model`` vs ``shuffled`` run by :class:`vitmusic.workflow.ablate.AblationRun` on
   the tiny preset (``configs/tiny.yaml``): extract features, train the projection (teacher-forced CE with
   the true vs a shuffled video on the test clips), generate for the test clips with the clip's own video and
   with another test clip's video (the control), evaluate both against the ground truth.
4. ``report.md``: timings, data overview, loss curve, metric tables with CIs and paired differences
   (model - control), plots, and ``videos/<clip>_{model,shuffled}.mp4`` -- the test videos with the generated
   audio. ``results.csv`` is the same table as ``vitmusic ablate`` writes (the notebook reads either).

The models are tiny and random-init (no hub downloads): the demo shows the workflow and measures honestly what
this model achieves against the control; it is not expected to sound like music.
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


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """The embedded default of the demo (sizes chosen to run in minutes on 2 CPU cores)."""

    pieces: int = 8
    duration_s: float = 8.0
    clip_s: float = 4.0
    seed: int = 0
    source: str = "melodies"  # generated melodies render faster than the chorales
    splits: tuple[str, ...] = ("train",) * 5 + ("val", "test", "test")
    width_per_player: int = 96
    height: int = 128
    overrides: tuple[str, ...] = ("train.log_with=none",)
    metrics: str | None = None  # all metric groups
    n_boot: int = 1000


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
        self.total, self.progress, self.times, self._n = total, progress, {}, 0

    def __call__(self, name: str, fn, *args, **kwargs):
        self._n += 1
        if self.progress:
            print(f"[demo {self._n}/{self.total}] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.times[name] = time.perf_counter() - t0
        return out


def _benchmark(root: Path, s: DemoSettings, progress: bool) -> Path:
    from vitmusic.data.synth import generate_benchmark

    if not (root / "synth_data.json").is_file():
        generate_benchmark(root, s.pieces, s.seed, duration_s=s.duration_s, source=s.source, progress=progress,
                           width_per_player=s.width_per_player, height=s.height)
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


def write_report(out: Path, run, rows: list[dict[str, Any]], times: dict[str, float], videos: list[Path]) -> Path:
    """``out/report.md``: what ran, how long, the tables, the plots and the videos."""
    from vitmusic.workflow.results import TRAIN_METRICS, results_markdown

    cfg = run.config("model")
    ce = {r["metric"]: r["mean"] for r in rows if r["variant"] == "model" and r["metric"] in TRAIN_METRICS}
    run_dir = Path(cfg.train.output_dir)
    rel = lambda p: os.path.relpath(p, out)  # noqa: E731 -- links in the report are relative to it
    lines = ["# vitmusic demo report", "",
             "Offline, on a synthetic URMP-style benchmark: tiny random-init vision encoder and MusicGen, a trained "
             "projection, generation for held-out pieces, evaluation against the ground truth and against the "
             "shuffled-video control (each test clip generated from another test clip's video).", "",
             "## What the trained model achieved", "", *_verdict(rows, ce), "",
             "## Stages", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in times.items()]
    total = sum(v for k, v in times.items() if not k.startswith(" "))  # indented rows are parts of a stage
    lines += [f"| **total** | {total:.1f} |", "",
              f"Config: `{run.exp.base}` with `{' '.join(run.exp.overrides)}`; run folder `{rel(run_dir)}`.", ""]
    for title, png in (("Synthetic benchmark (piano rolls)", out / "data" / "urmp" / "synth_data.png"),
                       ("Clips per split", out / "data" / "prepared" / "prepare.png"),
                       ("Training loss", run_dir / "loss.png")):
        if png.is_file():
            lines += [f"### {title}", "", f"![{title}]({rel(png)})", ""]
    lines += ["## Results", "", results_markdown(rows, run.exp.baseline), ""]
    if (out / "results.png").is_file():
        lines += ["![model vs control](results.png)", ""]
    lines += ["Per-system evaluation reports (per-clip f0 / piano-roll / beat plots): "
              + ", ".join(f"[{v}]({rel(run.variant_dir(v) / 'eval' / 'report.md')})" for v in run.exp.variants), ""]
    if videos:
        lines += ["## Videos with the generated audio", ""]
        lines += [f"- [{p.name}]({rel(p)})" for p in videos]
    return atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


def run_demo(out_dir: str | os.PathLike = "demo_out", *, config: str | os.PathLike | None = None,
             settings: DemoSettings | None = None, progress: bool = True) -> Path:
    """Run the demo into ``out_dir`` (see the module docstring); returns ``out_dir/report.md``."""
    from vitmusic.workflow.ablate import AblationRun
    from vitmusic.workflow.results import collect_results, write_results

    s = settings or DemoSettings()
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out exists and is not a folder: {out}")
    config = Path(config) if config is not None else default_config()
    stages = _Stages(6, progress)
    urmp = stages("synthetic benchmark", _benchmark, out / "data" / "urmp", s, progress)
    manifest = stages("prepare clips", _prepare, urmp, out / "data" / "prepared", s)
    exp = demo_experiment(config, manifest, s)
    exp.validate()
    run = AblationRun(exp, out / "runs", progress=progress)
    for v in ("model", "shuffled"):  # the model first: the control uses its trained run
        done = (run.variant_dir(v) / "DONE").is_file()
        stages(f"{v}: train, generate, evaluate", run.run_variant, v)
        if not done:
            t = json.loads((run.variant_dir(v) / "timings.json").read_text(encoding="utf-8"))
            for k, sec in t.items():
                stages.times[f"  {v}: {k[:-2]}"] = sec
    names = list(exp.variants)
    rows = stages("results", collect_results, {v: run.variant_dir(v) / "eval" for v in names},
                  {v: exp.variants[v].system for v in names}, exp.baseline,
                  train_info={v: run.train_info(v) for v in names}, n_boot=s.n_boot)
    write_results(out, rows, baseline=exp.baseline, title="vitmusic demo: model vs shuffled-video control")
    videos = stages("videos with the generated audio", write_videos, run, out / "videos")
    times = {k: v for k, v in stages.times.items() if k != "results"}
    atomic_write_text(out / "demo.json", json.dumps({"settings": dataclasses.asdict(s), "config": str(config),
                                                     "stage_seconds": times}, indent=1) + "\n")
    return write_report(out, run, rows, times, videos)
