"""Run an experiment file: per variant and seed, train -> generate on the test split -> evaluate; then the results.

Every stage dispatches through the variant's model kind (:mod:`vitmusic.workflow.kinds`): its task trains, its
systems write the test clips' outputs (the trained model and the controls), the evaluation runner scores the
audio and the kind's scorer what the runner does not (e.g. the MIDI path's decoded notes). Layout of ``OUT``
(default ``runs/ablate/<experiment name>``)::

    OUT/experiment.json                   the parsed experiment, the extra overrides and the seeds
    OUT/cache/                            the shared feature caches (one key per encoder/generator/clips)
    OUT/<variant>/seed<k>/config.yaml     the variant's resolved config at seed k
    OUT/<variant>/seed<k>/run/            training run (variants whose configs differ only in the kind's
                                          generation settings share the first one's run)
    OUT/<variant>/seed<k>/train.json      validation loss, the kind's diagnostics (the conditioning gap) and the
                                          settings chosen on the validation split (``tune:``)
    OUT/<variant>/seed<k>/generated/      <clip_id>.wav (and .mid for kinds that write notes) per test clip
    OUT/<variant>/seed<k>/systems.json    the system, each clip's source (the donor of a shuffled control) and
                                          seed, the generation settings
    OUT/<variant>/seed<k>/eval/           per_clip.csv, summary.json, report.md (vitmusic.evaluation.runner);
                                          kind_per_clip.csv (the kind's own scores)
    OUT/<variant>/seed<k>/timings.json    seconds spent training (0 when reused), generating, evaluating
    OUT/<variant>/seed<k>/DONE            written last, atomically: skipped on the next run
    OUT/<variant>/seed<k>/FAILED          the one-line error of a failed variant (removed when it succeeds)
    OUT/results.{csv,md,png}              variants x metrics, per seed and across seeds (vitmusic.workflow.results)

Seeds: without ``seeds`` (file) or ``--seeds``, each variant runs once with its config's seeds (folder
``seed<train.seed>``); with them, once per seed ``k`` with ``train.seed=k`` and ``generate.seed=k``.

Every stage resumes: training from the latest checkpoint, generation clip by clip, evaluation is redone only
for unfinished variants. Training is the accelerate loop, so the same command runs under
``accelerate launch -m vitmusic.cli ablate ...``; every process generates its share of the test clips and the
main process evaluates.
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
from vitmusic.workflow.experiments import Experiment, select_variants

log = logging.getLogger(__name__)

DONE = "DONE"
FAILED = "FAILED"
KIND_SCORES = "kind_per_clip.csv"


def default_out_dir(exp: Experiment) -> Path:
    """``runs/ablate/<experiment name>`` (relative to the working directory)."""
    return Path("runs") / "ablate" / exp.name


def _has_key(overrides: Sequence[str], key: str) -> bool:
    return any(o.split("=", 1)[0].strip() == key for o in overrides)


def train_key(config: Config) -> str:
    """What decides a trained model: the config without the kind's generation settings and the run folder."""
    from vitmusic.workflow.kinds import get_kind

    d = config_to_dict(config)
    for key in get_kind(config).generation_keys:
        *parents, last = key.split(".")
        node = d
        for p in parents:
            node = node.get(p, {})
        node.pop(last, None)
    d["train"].pop("output_dir")
    return json.dumps(d, sort_keys=True, default=str)


@dataclasses.dataclass
class AblationRun:
    """One run of an experiment into ``out`` (see the module docstring).

    ``seeds`` (``--seeds``) replaces the experiment file's ``seeds``; None in both: one run per variant.
    """

    exp: Experiment
    out: Path
    extra: list[str] = dataclasses.field(default_factory=list)
    progress: bool = True
    seeds: list[int] | None = None
    _tasks: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)  # trained tasks by run folder

    # ------------------------------------------------------------------ folders and configs
    def seed_list(self) -> list[int | None]:
        """The seeds every variant runs with (``[None]``: the seeds of each variant's config)."""
        seeds = self.seeds if self.seeds is not None else self.exp.seeds
        return list(seeds) if seeds else [None]

    def raw_config(self, name: str, seed: int | None = None, more: Sequence[str] = ()) -> Config:
        """The experiment's config of the variant, the shared cache, the seed's overrides, then ``more``."""
        v = self.exp.variants[name]
        extra = list(self.extra)
        if not _has_key([*self.exp.overrides, *v.overrides, *self.extra], "extract.cache_dir"):
            extra.append(f"extract.cache_dir={self.out / 'cache'}")
        if seed is not None:
            extra += [f"train.seed={seed}", f"generate.seed={seed}"]
        return self.exp.config(v, [*extra, *more])

    def variant_dir(self, name: str, seed: int | None = None) -> Path:
        """``OUT/<variant>/seed<k>`` (``k``: ``seed``, or the variant's ``train.seed`` when None)."""
        k = self.raw_config(name).train.seed if seed is None else seed
        return self.out / name / f"seed{k}"

    def run_owner(self, name: str, seed: int | None = None) -> str:
        """The first trained variant (file order) whose training config equals ``name``'s."""
        key = train_key(self.raw_config(name, seed))
        for other in self.exp.variants:
            if self.exp.trains(other) and train_key(self.raw_config(other, seed)) == key:
                return other
        return name

    def config(self, name: str, seed: int | None = None, more: Sequence[str] = ()) -> Config:
        """The variant's resolved config, with its run folder and the shared cache under ``out``."""
        cfg = self.raw_config(name, seed, more)
        model = self.exp.model_of(name)
        owner = self.run_owner(model, seed) if model is not None else name
        cfg.train.output_dir = str(self.variant_dir(owner, seed) / "run")
        return cfg

    def tuned(self, name: str, seed: int | None = None) -> dict[str, Any]:
        """The settings chosen on the validation split for the run ``name`` uses, less those it sets itself."""
        if self.exp.model_of(name) is None:
            return {}
        info = _read_json(Path(self.config(name, seed).train.output_dir).parent / "train.json")
        own = self.exp.variants[name].overrides
        return {k: v for k, v in (info.get("tuned") or {}).items() if not _has_key(own, k)}

    def generation_config(self, name: str, seed: int | None = None) -> Config:
        """:meth:`config` with the tuned settings applied: what the variant generates with."""
        return self.config(name, seed, [f"{k}={json.dumps(x)}" for k, x in self.tuned(name, seed).items()])

    # ------------------------------------------------------------------ stages
    def ensure_trained(self, name: str, seed: int | None = None) -> Path:
        """Train the run ``name`` uses unless it is finished (``final/`` and ``train.json``); returns ``final/``."""
        from vitmusic.workflow.kinds import get_kind, train_run

        model = self.exp.model_of(name)
        cfg = self.config(model, seed)
        kind = get_kind(cfg)
        run_dir = Path(cfg.train.output_dir)
        final, info_path = run_dir / FINAL_DIR, run_dir.parent / "train.json"
        if (final / WEIGHTS_NAME).is_file() and info_path.is_file():
            return final
        t0 = time.perf_counter()
        if (final / WEIGHTS_NAME).is_file() and kind.load_trained is not None:  # trained, its figures missing
            task = kind.build_task(cfg, progress=self.progress)
            kind.load_trained(task, final)
        else:
            final, task = train_run(cfg, resume="latest", progress=self.progress)
        info: dict[str, Any] = {"train_time_s": time.perf_counter() - t0, **_val_loss(run_dir)}
        if kind.diagnostics is not None:
            try:
                info.update(kind.diagnostics(cfg, task))
            except VitmusicError as e:  # e.g. a test split of one piece has no shuffled control
                log.warning("%s: diagnostics skipped: %s", name, e)
        if self.exp.tune:
            if kind.tune is None:
                raise ConfigError(f"tune: model kind {kind.name!r} chooses no settings on the validation split")
            info["tuned"], info["tune_scores"] = kind.tune(cfg, task, self.exp.tune)
        if kind.load_trained is not None:
            self._tasks[str(final)] = task
        if _is_main():
            atomic_write_text(info_path, json.dumps(info, indent=1, default=str) + "\n")
        _wait()
        return final

    def trained_task(self, name: str, seed: int | None = None):
        """The task of the run ``name`` uses, its trained weights loaded (built once per run folder)."""
        from vitmusic.workflow.kinds import get_kind

        cfg = self.config(self.exp.model_of(name), seed)
        final = Path(cfg.train.output_dir) / FINAL_DIR
        if str(final) not in self._tasks:
            kind = get_kind(cfg)
            if kind.load_trained is None:
                raise ConfigError(f"model kind {kind.name!r} cannot reload a trained task (no load_trained)")
            task = kind.build_task(cfg, progress=self.progress)
            kind.load_trained(task, final)
            self._tasks[str(final)] = task
        return self._tasks[str(final)]

    def generate(self, name: str, seed: int | None = None) -> Path:
        """Write the variant's test-split outputs into ``OUT/<variant>/seed<k>/generated``."""
        from vitmusic.workflow.kinds import SystemContext, get_kind

        v = self.exp.variants[name]
        cfg = self.generation_config(name, seed)
        folder = self.variant_dir(name, seed)
        run = self.ensure_trained(name, seed) if self.exp.model_of(name) is not None else None
        ctx = SystemContext(cfg, run, folder / "generated", self.progress,
                            (lambda: self.trained_task(name, seed)) if run is not None else None)
        t0 = time.perf_counter()
        clips = get_kind(cfg).system(v.system).generate(ctx)
        record = {"variant": name, "system": v.system, "model": self.exp.model_of(name), "seed": ctx.seed,
                  "generate_time_s": time.perf_counter() - t0, "tuned": self.tuned(name, seed),
                  "generate": dataclasses.asdict(cfg.generate), "clips": clips}
        if _is_main():
            atomic_write_text(folder / "systems.json", json.dumps(record, indent=1, default=str) + "\n")
        return ctx.out_dir

    def evaluate(self, name: str, seed: int | None = None) -> Path:
        """Score the generated clips against the manifest's ground truth into ``OUT/<variant>/seed<k>/eval``."""
        from vitmusic.evaluation.runner import EvalConfig, resolve_metrics, run_evaluation
        from vitmusic.workflow.kinds import get_kind

        cfg = self.generation_config(name, seed)
        kind = get_kind(cfg)
        folder = self.variant_dir(name, seed)
        s = self.exp.evaluate
        ecfg = EvalConfig(gen_dir=folder / "generated", manifest=Path(cfg.data.manifest),
                          metrics=resolve_metrics(s.metrics or kind.eval_metrics), sample_rate=s.sample_rate,
                          pitch_backend=s.pitch_backend, annotations=s.annotations, n_boot=s.n_boot, seed=s.seed,
                          n_plot_clips=s.plot_clips)
        out = folder / "eval"
        run_evaluation(ecfg, out, progress=self.progress)
        if kind.score is not None:
            from vitmusic.evaluation.report import write_table_csv

            scores = kind.score(cfg, folder / "generated")
            write_table_csv(out / KIND_SCORES, ("clip_id", *kind.score_metrics),
                            [{"clip_id": c, **v} for c, v in scores.items()])
        return out

    def run_variant(self, name: str, seed: int | None = None) -> bool:
        """All stages of one variant at one seed; False when it was already done."""
        folder = self.variant_dir(name, seed)
        cfg = self.config(name, seed)
        saved = folder / "config.yaml"
        if saved.is_file() and saved.read_text(encoding="utf-8") != config_to_yaml(cfg):
            # a finished (or half-done) variant of another config must not pass for this one
            raise ConfigError(f"{folder} was run with a different config than variant '{name}' resolves to now; "
                              "remove that folder or choose another --out")
        if (folder / DONE).is_file():
            log.info("%s (%s): done, skipped", name, folder.name)
            return False
        if not cfg.data.manifest:
            raise VitmusicError("data.manifest is not set: give it in the experiment's base/overrides or as "
                                "an override on the command line (data.manifest=prepared/)")
        _wait()  # under accelerate launch: every process has read config.yaml / DONE before they are written
        if _is_main():
            folder.mkdir(parents=True, exist_ok=True)
            save_config(cfg, saved)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if self.exp.model_of(name) is not None:
            self.ensure_trained(name, seed)
            timings["train_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.generate(name, seed)  # every process: the test clips are split between them
        _wait()
        timings["generate_s"] = time.perf_counter() - t0
        if _is_main():
            from vitmusic.training.distributed import on_this_process_only

            t0 = time.perf_counter()
            with on_this_process_only():  # the other processes wait at _wait() below
                self.evaluate(name, seed)
            timings["evaluate_s"] = time.perf_counter() - t0
            atomic_write_text(folder / "timings.json", json.dumps(timings, indent=1) + "\n")
            (folder / FAILED).unlink(missing_ok=True)
            atomic_write_text(folder / DONE, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
        _wait()
        return True

    # ------------------------------------------------------------------ results
    def train_info(self, name: str, seed: int | None = None) -> dict[str, float]:
        """The ``train.*`` figures of the run the variant trained (none for controls and untrained systems)."""
        if not self.exp.trains(name):
            return {}
        info = _read_json(Path(self.config(name, seed).train.output_dir).parent / "train.json")
        out = {k: float(v) for k, v in info.items() if k.startswith("train.") and isinstance(v, (int, float))}
        if "val_loss" in info:
            out["train.val_loss"] = float(info["val_loss"])
        return out

    def kind_scores(self, name: str, seed: int | None = None) -> dict[str, dict[str, float]]:
        """``{clip_id: {metric: value}}`` of the variant's ``eval/kind_per_clip.csv`` (empty when none)."""
        from vitmusic.evaluation.report import read_per_clip_csv

        path = self.variant_dir(name, seed) / "eval" / KIND_SCORES
        return read_per_clip_csv(path)[1] if path.is_file() else {}

    def results_rows(self, n_boot: int | None = None) -> list[dict[str, Any]]:
        """Result rows (:data:`vitmusic.workflow.results.RESULT_COLUMNS`) of the finished variants: per seed,
        then aggregated across the seeds (``seed = "all"``)."""
        from vitmusic.workflow.kinds import get_kind
        from vitmusic.workflow.results import aggregate_seeds, collect_results

        systems = {n: v.system for n, v in self.exp.variants.items()}
        rows = []
        for seed in self.seed_list():
            done = [n for n in self.exp.variants if (self.variant_dir(n, seed) / DONE).is_file()]
            if not done:
                continue
            label = self.variant_dir(done[0], seed).name[len("seed"):]
            rows += collect_results({n: self.variant_dir(n, seed) / "eval" for n in done}, systems,
                                    self.exp.baseline, train_info={n: self.train_info(n, seed) for n in done},
                                    kind_scores={n: self.kind_scores(n, seed) for n in done},
                                    kind_bounds={m: b for n in done for m, b in
                                                 get_kind(self.config(n, seed)).score_bounds.items()},
                                    n_boot=n_boot or self.exp.evaluate.n_boot, seed=self.exp.evaluate.seed,
                                    seed_label=label)
        return rows + aggregate_seeds(rows, self.exp.baseline) if rows else []

    def write_results(self, n_boot: int | None = None, out_dir: Path | None = None) -> Path | None:
        """``results.{csv,md,png}`` over the finished variants and seeds in ``out_dir`` (default ``OUT``); None
        when no variant is finished."""
        from vitmusic.data.donors import DONOR_RULE
        from vitmusic.workflow.results import write_results

        rows = self.results_rows(n_boot)
        if not rows:
            return None
        seeds = self.seed_list()
        first = self.config(rows[0]["variant"], seeds[0])
        seed_text = (", ".join(str(s) for s in seeds) + " (train.seed = generate.seed = k)" if seeds != [None]
                     else "each variant's own (one run per variant)")
        lines = [f"- experiment: `{self.exp.where}`" + (f" — {self.exp.description}" if self.exp.description else ""),
                 f"- base config: `{self.exp.base}`; overrides for all variants: "
                 f"`{' '.join([*self.exp.overrides, *self.extra]) or '(none)'}`",
                 f"- baseline: `{self.exp.baseline}`; evaluated on split `{first.data.test_split}` "
                 f"of `{first.data.manifest}`; seeds: {seed_text}",
                 f"- shuffled controls: {DONOR_RULE} (`vitmusic.data.donors.donor_map`, seeded with "
                 "generate.seed; each clip's donor is in `systems.json`)"]
        if self.exp.tune:
            lines.append(f"- chosen on the validation split after training: `{json.dumps(self.exp.tune)}` "
                         "(the choice per run is in `train.json`)")
        lines += ["", "| variant | system | uses model of | overrides | status |", "|---|---|---|---|---|"]
        for n, v in self.exp.variants.items():
            status = []
            for seed in seeds:
                folder = self.variant_dir(n, seed)
                failed = folder / FAILED
                status.append("done" if (folder / DONE).is_file() else
                              f"FAILED: {failed.read_text(encoding='utf-8').strip()}" if failed.is_file() else "not run")
            model = self.exp.model_of(n)
            uses = "—" if model is None else self.run_owner(model, seeds[0])
            lines.append(f"| {n} | {v.system} | {uses} | `{' '.join(v.overrides) or '—'}` | "
                         f"{', '.join(dict.fromkeys(status)) if len(set(status)) == 1 else ', '.join(status)} |")
        return write_results(out_dir or self.out, rows, baseline=self.exp.baseline,
                             title=f"Ablation `{self.exp.name}`", preamble=lines)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _val_loss(run_dir: Path) -> dict[str, float]:
    try:
        hist = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    vals = [h["val_loss"] for h in hist if "val_loss" in h]
    return {"val_loss": float(vals[-1])} if vals else {}


def _is_main() -> bool:
    from vitmusic.training.distributed import accelerate_state

    return accelerate_state().is_main_process


def _wait() -> None:
    from vitmusic.training.distributed import accelerate_state

    accelerate_state().wait_for_everyone()


def run_experiment(exp: Experiment, out_dir: str | os.PathLike | None = None, *, only: str | Sequence[str] | None = None,
                   extra: Sequence[str] = (), progress: bool = True,
                   seeds: Sequence[int] | None = None) -> tuple[Path | None, dict[str, str]]:
    """Run (or resume) the selected variants at every seed and write the results.

    A variant that fails with a user error (``VitmusicError``) is recorded in its ``FAILED`` file and the
    others still run.

    Returns:
        (the ``results.md`` path or None, ``{"variant" or "variant@seed<k>": error}`` of the failed runs).
    """
    run = AblationRun(exp, Path(out_dir) if out_dir is not None else default_out_dir(exp), list(extra), progress,
                      list(seeds) if seeds is not None else None)
    names = select_variants(exp, only)
    run.out.mkdir(parents=True, exist_ok=True)
    if _is_main():
        atomic_write_text(run.out / "experiment.json", json.dumps(
            {**dataclasses.asdict(exp), "extra": list(extra), "seeds_run": run.seed_list()}, indent=1,
            default=str) + "\n")
    failures: dict[str, str] = {}
    several = len(run.seed_list()) > 1
    for seed in run.seed_list():
        for name in names:
            label = f"{name}@{run.variant_dir(name, seed).name}" if several else name
            try:
                ran = run.run_variant(name, seed)
            except VitmusicError as e:
                failures[label] = str(e)
                log.error("%s: %s", label, e)
                folder = run.variant_dir(name, seed)
                if _is_main() and not (folder / DONE).is_file():
                    atomic_write_text(folder / FAILED, str(e) + "\n")
                continue
            if ran:
                log.info("%s: done", label)
    results = run.write_results() if _is_main() else None
    return results, failures
