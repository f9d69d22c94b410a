"""Run an experiment file: per variant train -> generate on the test split -> evaluate; then the results.

Layout of ``OUT`` (default ``runs/ablate/<experiment name>``)::

    OUT/experiment.json              the parsed experiment and the extra overrides
    OUT/cache/                       the shared feature cache (one key per encoder/generator/clips)
    OUT/<variant>/config.yaml        the variant's resolved config
    OUT/<variant>/run/               training run (trained systems; variants whose configs differ only in
                                     ``generate.*`` share the first one's run)
    OUT/<variant>/train.json         validation loss, teacher-forced CE with the true vs a shuffled video
    OUT/<variant>/generated/         <clip_id>.wav per test clip + systems.json (sources, seeds)
    OUT/<variant>/eval/              per_clip.csv, summary.json, report.md (vitmusic.evaluation.runner)
    OUT/<variant>/timings.json       seconds spent training (0 when reused), generating, evaluating
    OUT/<variant>/DONE               written last, atomically: the variant is skipped on the next run
    OUT/<variant>/FAILED             the one-line error of a variant that failed (removed when it succeeds)
    OUT/results.{csv,md,png}         variants x metrics (see vitmusic.workflow.results)

Every stage resumes: training from the latest checkpoint, generation clip by clip, evaluation is redone only
for unfinished variants. Training is the accelerate loop (:func:`vitmusic.training.loop.train`), so the same
command runs under ``accelerate launch -m vitmusic.cli ablate ...`` on a GPU node; generation and evaluation
then run on the main process only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vitmusic.atomic import atomic_write_text
from vitmusic.config import Config, config_to_dict, config_to_yaml, save_config
from vitmusic.errors import ConfigError, VitmusicError
from vitmusic.runs import FINAL_DIR, WEIGHTS_NAME
from vitmusic.workflow.experiments import TRAINED_SYSTEMS, Experiment, select_variants

log = logging.getLogger(__name__)

DONE = "DONE"
FAILED = "FAILED"


def default_out_dir(exp: Experiment) -> Path:
    """``runs/ablate/<experiment name>`` (relative to the working directory)."""
    return Path("runs") / "ablate" / exp.name


def _has_key(overrides: Sequence[str], key: str) -> bool:
    return any(o.split("=", 1)[0].strip() == key for o in overrides)


def _train_key(config: Config) -> str:
    """What decides a trained model: the config without ``generate`` (sampling only) and the run folder."""
    d = config_to_dict(config)
    d.pop("generate")
    d["train"].pop("output_dir")
    return json.dumps(d, sort_keys=True, default=str)


@dataclasses.dataclass
class AblationRun:
    """One run of an experiment into ``out`` (see the module docstring)."""

    exp: Experiment
    out: Path
    extra: list[str] = dataclasses.field(default_factory=list)
    progress: bool = True

    def variant_dir(self, name: str) -> Path:
        return self.out / name

    def raw_config(self, name: str) -> Config:
        v = self.exp.variants[name]
        extra = list(self.extra)
        if not _has_key([*self.exp.overrides, *v.overrides, *self.extra], "extract.cache_dir"):
            extra.append(f"extract.cache_dir={self.out / 'cache'}")
        return self.exp.config(v, extra)

    def run_owner(self, name: str) -> str:
        """The first trained variant (file order) whose training config equals ``name``'s."""
        key = _train_key(self.raw_config(name))
        for other, v in self.exp.variants.items():
            if v.system in TRAINED_SYSTEMS and _train_key(self.raw_config(other)) == key:
                return other
        return name

    def config(self, name: str) -> Config:
        """The variant's resolved config, with its run folder and the shared cache under ``out``."""
        cfg = self.raw_config(name)
        model = self.exp.model_of(name) if self.exp.variants[name].system != "retrieval" else name
        owner = self.run_owner(model) if self.exp.variants[model].system in TRAINED_SYSTEMS else model
        cfg.train.output_dir = str(self.variant_dir(owner) / "run")
        return cfg

    # ------------------------------------------------------------------ stages
    def ensure_trained(self, name: str) -> Path:
        """Train the run ``name`` uses unless its ``final/`` exists; returns that folder."""
        from vitmusic.training.tasks.musicgen import build_task, run_training

        model = self.exp.model_of(name)
        cfg = self.config(model)
        final = Path(cfg.train.output_dir) / FINAL_DIR
        if (final / WEIGHTS_NAME).is_file():
            return final
        owner = Path(cfg.train.output_dir).parent
        t0 = time.perf_counter()
        task = build_task(cfg, progress=self.progress)
        final = run_training(cfg, task, resume="latest", progress=self.progress)
        info: dict[str, Any] = {"train_time_s": time.perf_counter() - t0}
        info.update(_val_loss(Path(cfg.train.output_dir)))
        info.update(_ce_gap(task, cfg.data.test_split))
        if _is_main():
            atomic_write_text(owner / "train.json", json.dumps(info, indent=1) + "\n")
        return final

    def generate(self, name: str) -> Path:
        """Write the variant's test-split audio into ``OUT/<variant>/generated``."""
        from vitmusic.data.manifest import read_manifest
        from vitmusic.training.distributed import process_device
        from vitmusic.training.tasks.musicgen import build_cache, load_frozen_models
        from vitmusic.workflow.baselines import cached_clips, generate_system

        v = self.exp.variants[name]
        cfg = self.config(name)
        gen = self.variant_dir(name) / "generated"
        pipe = None
        if v.system == "retrieval":
            encoder, generator = load_frozen_models(cfg)
        else:
            from vitmusic.inference.musicgen import load_pipeline

            pipe = load_pipeline(self.ensure_trained(name), device=process_device())
            # sampling settings are the variant's own (a guidance ablation shares the trained run)
            pipe.config = dataclasses.replace(pipe.config, generate=cfg.generate)
            encoder, generator = pipe.encoder, pipe.generator
        cache = build_cache(cfg, encoder, generator, progress=self.progress)
        test = cached_clips(cache, cfg.data.test_split)
        train = cached_clips(cache, cfg.data.train_split) if v.system == "retrieval" else []
        manifest = read_manifest(cfg.data.manifest, split=cfg.data.train_split) if train else []
        t0 = time.perf_counter()
        record = generate_system(v.system, gen, test, pipe=pipe, train=train, manifest=manifest,
                                 seed=cfg.generate.seed, guidance_scale=cfg.generate.guidance_scale,
                                 progress=self.progress)
        record.update(variant=name, model=v.model, generate_time_s=time.perf_counter() - t0,
                      guidance_scale=cfg.generate.guidance_scale)
        if _is_main():
            atomic_write_text(self.variant_dir(name) / "systems.json", json.dumps(record, indent=1) + "\n")
        return gen

    def evaluate(self, name: str) -> Path:
        """Score the generated clips against the manifest's ground truth into ``OUT/<variant>/eval``."""
        from vitmusic.evaluation.runner import EvalConfig, resolve_metrics, run_evaluation

        cfg = self.config(name)
        s = self.exp.evaluate
        ecfg = EvalConfig(gen_dir=self.variant_dir(name) / "generated", manifest=Path(cfg.data.manifest),
                          metrics=resolve_metrics(s.metrics), sample_rate=s.sample_rate,
                          pitch_backend=s.pitch_backend, annotations=s.annotations, n_boot=s.n_boot, seed=s.seed,
                          n_plot_clips=s.plot_clips)
        out = self.variant_dir(name) / "eval"
        run_evaluation(ecfg, out, progress=self.progress)
        return out

    def run_variant(self, name: str) -> bool:
        """All stages of one variant; False when it was already done."""
        folder = self.variant_dir(name)
        cfg = self.config(name)
        saved = folder / "config.yaml"
        if saved.is_file() and saved.read_text(encoding="utf-8") != config_to_yaml(cfg):
            # a finished (or half-done) variant of another config must not pass for this one
            raise ConfigError(f"{folder} was run with a different config than variant '{name}' resolves to now; "
                              "remove that folder or choose another --out")
        if (folder / DONE).is_file():
            log.info("%s: done, skipped", name)
            return False
        if not cfg.data.manifest:
            raise VitmusicError("data.manifest is not set: give it in the experiment's base/overrides or as "
                                "an override on the command line (data.manifest=prepared/)")
        _wait()  # under accelerate launch: every process has read config.yaml / DONE before they are written
        if _is_main():
            folder.mkdir(parents=True, exist_ok=True)
            save_config(cfg, folder / "config.yaml")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if self.exp.variants[name].system != "retrieval":
            self.ensure_trained(name)
            timings["train_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.generate(name)  # every process: the test clips are split between them
        _wait()
        timings["generate_s"] = time.perf_counter() - t0
        if _is_main():
            from vitmusic.training.distributed import on_this_process_only

            t0 = time.perf_counter()
            with on_this_process_only():  # the other processes wait at _wait() below
                self.evaluate(name)
            timings["evaluate_s"] = time.perf_counter() - t0
            atomic_write_text(folder / "timings.json", json.dumps(timings, indent=1) + "\n")
            (folder / FAILED).unlink(missing_ok=True)
            atomic_write_text(folder / DONE, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
        _wait()
        return True

    # ------------------------------------------------------------------ results
    def train_info(self, name: str) -> dict[str, float]:
        v = self.exp.variants[name]
        if v.system not in TRAINED_SYSTEMS:
            return {}
        p = Path(self.config(name).train.output_dir).parent / "train.json"
        try:
            info = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        keys = {"val_loss": "train.val_loss", "ce_true": "train.ce_true_video",
                "ce_shuffled": "train.ce_shuffled_video"}
        return {keys[k]: info[k] for k in keys if k in info}

    def write_results(self, n_boot: int | None = None) -> Path | None:
        """``results.{csv,md,png}`` over the finished variants (None when none is finished)."""
        from vitmusic.workflow.results import collect_results, write_results

        done = [n for n in self.exp.variants if (self.variant_dir(n) / DONE).is_file()]
        if not done:
            return None
        rows = collect_results({n: self.variant_dir(n) / "eval" for n in done},
                               {n: v.system for n, v in self.exp.variants.items()}, self.exp.baseline,
                               train_info={n: self.train_info(n) for n in done},
                               n_boot=n_boot or self.exp.evaluate.n_boot, seed=self.exp.evaluate.seed)
        lines = [f"- experiment: `{self.exp.where}`" + (f" — {self.exp.description}" if self.exp.description else ""),
                 f"- base config: `{self.exp.base}`; overrides for all variants: "
                 f"`{' '.join([*self.exp.overrides, *self.extra]) or '(none)'}`",
                 f"- baseline: `{self.exp.baseline}`; evaluated on split `{self.config(done[0]).data.test_split}` "
                 f"of `{self.config(done[0]).data.manifest}`", "", "| variant | system | uses model of | overrides "
                 "| status |", "|---|---|---|---|---|"]
        for n, v in self.exp.variants.items():
            failed = self.variant_dir(n) / FAILED
            status = "done" if n in done else (f"FAILED: {failed.read_text(encoding='utf-8').strip()}"
                                               if failed.is_file() else "not run")
            uses = v.model or (self.run_owner(n) if v.system in TRAINED_SYSTEMS else "—")
            lines.append(f"| {n} | {v.system} | {uses} | `{' '.join(v.overrides) or '—'}` | {status} |")
        return write_results(self.out, rows, baseline=self.exp.baseline, title=f"Ablation `{self.exp.name}`",
                             preamble=lines)


def _val_loss(run_dir: Path) -> dict[str, float]:
    try:
        hist = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    vals = [h["val_loss"] for h in hist if "val_loss" in h]
    return {"val_loss": float(vals[-1])} if vals else {}


def _ce_gap(task, split: str) -> dict[str, float]:
    """Teacher-forced CE of the held-out clips with their own vs another clip's video (when available)."""
    try:
        from vitmusic.evaluation.conditioning import conditioning_gap
    except ImportError:
        return {}
    try:
        gap = conditioning_gap(task, split)
    except VitmusicError as e:
        log.warning("teacher-forced CE skipped: %s", e)
        return {}
    return {"ce_true": float(gap["true"]), "ce_shuffled": float(gap["shuffled"])}


def _is_main() -> bool:
    from vitmusic.training.distributed import accelerate_state

    return accelerate_state().is_main_process


def _wait() -> None:
    from vitmusic.training.distributed import accelerate_state

    accelerate_state().wait_for_everyone()


def run_experiment(exp: Experiment, out_dir: str | os.PathLike | None = None, *, only: str | Sequence[str] | None = None,
                   extra: Sequence[str] = (), progress: bool = True) -> tuple[Path | None, dict[str, str]]:
    """Run (or resume) the selected variants and write the results.

    A variant that fails with a user error (``VitmusicError``) is recorded in ``OUT/<variant>/FAILED`` and the
    others still run.

    Returns:
        (the ``results.md`` path or None, ``{variant: error}`` of the variants that failed).
    """
    run = AblationRun(exp, Path(out_dir) if out_dir is not None else default_out_dir(exp), list(extra), progress)
    names = select_variants(exp, only)
    run.out.mkdir(parents=True, exist_ok=True)
    if _is_main():
        atomic_write_text(run.out / "experiment.json", json.dumps(
            {**dataclasses.asdict(exp), "extra": list(extra)}, indent=1, default=str) + "\n")
    failures: dict[str, str] = {}
    for name in names:
        try:
            ran = run.run_variant(name)
        except VitmusicError as e:
            failures[name] = str(e)
            log.error("%s: %s", name, e)
            if _is_main() and not (run.variant_dir(name) / DONE).is_file():
                atomic_write_text(run.variant_dir(name) / FAILED, str(e) + "\n")
            continue
        if ran:
            log.info("%s: done", name)
    results = run.write_results() if _is_main() else None
    return results, failures
