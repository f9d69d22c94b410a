"""Model kinds: the one plug-in unit of vitmusic.

A :class:`ModelKind` supplies everything the commands and workflows need from a model: how it trains (its task,
whose ``loss`` is computed in the task and logged term by term), what it caches, how its pipeline loads from a
run folder, its systems (the trained model and the controls: shuffled video, null condition, retrieval, ...),
which settings can be chosen on the validation split, and extra scores of its outputs. ``vitmusic train``,
``extract``, ``generate``, ``ablate`` and ``demo`` dispatch through it by the config's ``task`` (a run's
``config.json`` records it). The built-in kinds:

==================  =============================================  =====================================================
``task``            defined in                                     trains / generates
==================  =============================================  =====================================================
``musicgen``        :mod:`vitmusic.workflow.kinds.musicgen`        projection -> frozen MusicGen -> audio
``transcription``   :mod:`vitmusic.workflow.kinds.transcription`   video -> notes head -> MIDI -> synthesizer
``diffusion``       :mod:`vitmusic.workflow.kinds.diffusion`       notes -> audio diffusion synthesizer
``score-informed``  :mod:`vitmusic.workflow.kinds.score_informed`  score + notes head's onsets -> aligned score -> synth
==================  =============================================  =====================================================

A new kind is one module that builds a :class:`ModelKind` and registers it
(:func:`vitmusic.plugins.register_kind`); ``docs/extending.md`` walks through a complete one. Kinds whose
pipeline turns a video span into audio get the trained-model and shuffled-video systems for free from
:func:`pipeline_systems`; every shuffled control uses :func:`vitmusic.data.donors.donor_map`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vitmusic.config import Config
from vitmusic.errors import ConfigError, DataError

__all__ = ["ModelKind", "System", "SystemContext", "get_kind", "pipeline_systems", "run_clips", "train_run"]

# who a system's outputs come from: its own trained model, a trained variant's model, or no trained model
USES = ("own", "model", "none")


@dataclasses.dataclass
class SystemContext:
    """What a system needs to write the test clips' outputs.

    Attributes:
        config: the variant's resolved config for generation (its sampling settings, its seed, settings chosen
            on the validation split applied).
        run: the trained model folder (``RUN/final``) of a system that uses one, else None.
        out_dir: where ``<clip_id>.wav`` (and ``<clip_id>.mid`` for kinds that write notes) go.
        progress: show progress bars.
        trained_task: returns the built task with the trained weights loaded (built once per run); None when
            the kind cannot reload one.
    """

    config: Config
    run: Path | None
    out_dir: Path
    progress: bool = True
    trained_task: Callable[[], Any] | None = None

    @property
    def seed(self) -> int:
        """``generate.seed``: clip ``c`` samples with ``item_seed(seed, c)``; the donor map's seed."""
        return int(self.config.generate.seed)

    def clips(self, split: str | None = None) -> list[dict[str, Any]]:
        """Manifest rows of a split (default: the test split)."""
        from vitmusic.data.manifest import read_clips

        split = self.config.data.test_split if split is None else split
        return [c for c in read_clips(self.config) if c["split"] == split]

    def donors(self) -> dict[str, str]:
        """The shuffled control's ``{test clip: donor clip}`` (:func:`vitmusic.data.donors.donor_map`)."""
        from vitmusic.data.donors import donor_map

        return donor_map(self.clips(), self.seed)


@dataclasses.dataclass(frozen=True)
class System:
    """One way of producing a test clip's outputs: the trained model, or a control/baseline.

    Attributes:
        name: what experiment files write after ``system:``.
        generate: ``(SystemContext) -> records``: writes every test clip's ``<clip_id>.wav`` into
            ``ctx.out_dir`` (keeping files that exist: generation resumes) and returns, per clip,
            ``{"clip_id", "source", "seed", "process"}`` (``source``: the clip whose video or audio was used);
            :func:`run_clips` does the bookkeeping.
        uses: ``"own"`` (trains the variant's own model), ``"model"`` (the trained model of another variant,
            named by ``model:`` in the experiment file) or ``"none"`` (no trained model, e.g. retrieval).
        description: one line for the results table.
    """

    name: str
    generate: Callable[[SystemContext], list[dict[str, Any]]]
    uses: str = "own"
    description: str = ""

    def __post_init__(self) -> None:
        if self.uses not in USES:
            raise ValueError(f"System.uses must be one of {USES}, got {self.uses!r}")


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """Everything the workflow needs from one model kind (see the module docstring).

    Attributes:
        name: the config's ``task`` value.
        description: one line.
        build_task: ``(config, *, progress) -> Task`` (:class:`vitmusic.training.loop.Task`): loads what the
            kind needs (models, cache, data). Its ``loss`` is the loss; a dict return logs named terms.
        train: ``(config, task, *, resume, progress) -> RUN/final``; None: the one accelerate loop.
        build_cache: ``(config, *, progress) -> folder`` (``vitmusic extract``); None: the kind caches nothing.
        load_pipeline: ``(checkpoint, *, device=None, **options) -> Pipeline``
            (:class:`vitmusic.inference.base.Pipeline`); None: the kind's runs do not turn a video into audio.
        pipeline_options: extra keyword arguments ``load_pipeline`` takes (``vitmusic generate``'s ``--synth``,
            ``--soundfont``, ``--synth-checkpoint``, ``--instruments`` map to them by name).
        writes_midi: the pipeline writes the notes it played (``generate_video(..., midi_path=)``).
        inputs: manifest keys of the media the kind reads (checked before anything loads).
        systems: ``{name: System}``; ``model`` is the trained model.
        generation_keys: config sections or keys that change generation only: variants differing only there
            share one trained run.
        diagnostics: ``(config, task) -> {"train.<name>": value}`` after training (e.g. the conditioning gap).
        tune: ``(config, task, {key: candidates}) -> ({key: chosen}, {key: {candidate: score}})``: settings
            chosen on the validation split after training (experiment files' ``tune:``).
        load_trained: ``(task, final_dir) -> None``: loads trained weights into a freshly built task.
        score: ``(config, generated_dir) -> {clip_id: {metric: value}}``: scores of the outputs beyond the
            evaluation runner's (e.g. decoded notes against the annotation); written to
            ``eval/kind_per_clip.csv`` and tabulated with the others.
        score_metrics: the metric names ``score`` returns, in table order.
        score_bounds: ``{metric: (lo, hi)}``: the range of each of those scores (``None`` for an open side); the
            results' intervals follow it (:func:`vitmusic.metrics.stats.summarize`). Unlisted: the registry's.
        eval_metrics: the evaluation runner's metric groups when an experiment names none (None: all).
        options: a dataclass of the kind's own settings, read from the config's ``kind_options``
            (:meth:`options_of`; a plug-in kind needs no change to the config schema).
    """

    name: str
    description: str
    build_task: Callable[..., Any]
    train: Callable[..., Path] | None = None
    build_cache: Callable[..., Path] | None = None
    load_pipeline: Callable[..., Any] | None = None
    pipeline_options: tuple[str, ...] = ()
    writes_midi: bool = False
    inputs: tuple[str, ...] = ("video", "mix")
    systems: Mapping[str, System] = dataclasses.field(default_factory=dict)
    generation_keys: tuple[str, ...] = ("generate",)
    diagnostics: Callable[[Config, Any], dict[str, float]] | None = None
    tune: Callable[..., tuple[dict[str, Any], dict[str, Any]]] | None = None
    load_trained: Callable[[Any, Path], None] | None = None
    score: Callable[[Config, Path], dict[str, dict[str, float]]] | None = None
    score_metrics: tuple[str, ...] = ()
    score_bounds: Mapping[str, tuple[float | None, float | None]] = dataclasses.field(default_factory=dict)
    eval_metrics: str | None = None
    options: type | None = None

    def options_of(self, config: Config) -> Any:
        """The kind's settings: its ``options`` dataclass built from ``config.kind_options`` (None without one).

        Raises:
            ConfigError: a key the dataclass does not have, or kind options for a kind that takes none.
        """
        if self.options is None:
            if config.kind_options:
                raise ConfigError(f"the {self.name!r} kind takes no kind_options, got {sorted(config.kind_options)}")
            return None
        known = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(config.kind_options) - known)
        if unknown:
            raise ConfigError(f"unknown config key 'kind_options.{unknown[0]}' of the {self.name!r} kind; known: "
                              f"{', '.join(sorted(known))}")
        return self.options(**config.kind_options)

    def system(self, name: str) -> System:
        """The system called ``name``.

        Raises:
            ConfigError: the kind has no such system (one line naming its systems).
        """
        if name not in self.systems:
            raise ConfigError(f"model kind {self.name!r} has no system {name!r}; its systems: "
                              f"{', '.join(self.systems) or '(none)'}")
        return self.systems[name]


def get_kind(name_or_config: str | Config) -> ModelKind:
    """The registered kind of a name or of a config's ``task`` (:func:`vitmusic.plugins.get_kind`)."""
    from vitmusic.plugins import get_kind as lookup

    name = name_or_config.task if isinstance(name_or_config, Config) else name_or_config
    kind = lookup(name)
    if not isinstance(kind, ModelKind):
        raise ConfigError(f"model kind {name!r} is a {type(kind).__name__}, not a vitmusic.workflow.kinds.ModelKind")
    return kind


def train_run(config: Config, *, resume: str | Path | bool | None = None, progress: bool = True):
    """Build the config's task and train it (the one way into training); returns ``(RUN/final, task)``."""
    kind = get_kind(config)
    kind.options_of(config)  # a bad kind_options key fails before anything loads
    task = kind.build_task(config, progress=progress)
    if kind.train is not None:
        final = kind.train(config, task, resume=resume, progress=progress)
    else:
        from vitmusic.training.loop import train

        final = train(config, task, resume=resume, progress=progress)
    return final, task


# ---------------------------------------------------------------------------------------------- systems
def run_clips(ctx: SystemContext, jobs: Sequence[tuple[dict[str, Any], dict[str, Any] | None]],
              write: Callable[[dict[str, Any], dict[str, Any] | None, Path, int], None], *,
              desc: str) -> list[dict[str, Any]]:
    """Write every job's ``ctx.out_dir/<clip_id>.wav`` with ``write(clip, source, wav_path, seed)``.

    Files that exist are kept (they are written atomically, so an existing one is complete): an interrupted
    run resumes clip by clip. Under ``accelerate launch`` each process writes every N-th clip.

    Args:
        jobs: ``(test clip, source clip or None)`` pairs (manifest rows or cached clips with ``clip_id``).
        write: writes one clip; ``seed`` is ``item_seed(ctx.seed, clip_id)``.
        desc: the progress bar's label.

    Returns:
        ``[{"clip_id", "source", "seed", "process"}]`` of every process, in job order.
    """
    from tqdm.auto import tqdm

    from vitmusic.inference.base import item_seed
    from vitmusic.training.distributed import gather_objects, is_main_process, process_info, split_for_process

    if not jobs:
        raise DataError("no test clip to generate for")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    rank = process_info()[0]
    records = []
    mine = split_for_process(list(jobs), "test clips to generate")
    for clip, source in tqdm(mine, desc=desc, unit="clip", disable=not ctx.progress or not is_main_process()):
        cid = str(clip["clip_id"])
        seed = item_seed(ctx.seed, cid)
        records.append({"clip_id": cid, "source": None if source is None else str(source["clip_id"]),
                        "seed": seed, "process": rank})
        path = ctx.out_dir / f"{cid}.wav"
        if not path.is_file():
            write(clip, source, path, seed)
    order = {str(c["clip_id"]): i for i, (c, _) in enumerate(jobs)}
    return sorted(gather_objects(records), key=lambda r: order[r["clip_id"]])


def _pipeline(ctx: SystemContext, **options):
    from vitmusic.training.distributed import process_device

    if ctx.run is None:
        raise ConfigError("this system needs a trained model")
    kind = get_kind(ctx.config)
    return kind.load_pipeline(ctx.run, device=process_device(), **options)


def _write_from_video(ctx: SystemContext, pipe, midi: bool):
    import numpy as np

    from vitmusic.data.audio import write_audio

    def write(clip: dict[str, Any], source: dict[str, Any] | None, path: Path, seed: int) -> None:
        src = source or clip
        if not src.get("video"):
            raise DataError(f"clip {src['clip_id']} has no video")
        duration_s = float(clip["end_s"]) - float(clip["start_s"])
        t0 = float(src["start_s"])
        t1 = min(float(src["end_s"]), t0 + duration_s)
        extra = {"midi_path": path.with_suffix(".mid")} if midi else {}
        wav = pipe.generate_video(src["video"], t0_s=t0, t1_s=t1, seed=seed, **extra)
        n = int(round(duration_s * pipe.sample_rate))  # a shorter donor span is padded with silence
        wav = wav[:n] if len(wav) >= n else np.pad(wav, (0, n - len(wav)))
        write_audio(path, wav, pipe.sample_rate)

    return write


def pipeline_systems(*, writes_midi: bool = False) -> dict[str, System]:
    """``model`` and ``shuffled`` for any kind whose pipeline turns a video span into audio.

    ``model``: each test clip's own video through the trained pipeline. ``shuffled``: the video of the clip's
    donor (another piece, :func:`vitmusic.data.donors.donor_map`), the span as long as the clip, padded with
    silence when the donor's is shorter. The pipeline loads from the run with the variant's config.
    """

    def own(ctx: SystemContext) -> list[dict[str, Any]]:
        pipe = _pipeline(ctx)
        return run_clips(ctx, [(c, None) for c in ctx.clips()], _write_from_video(ctx, pipe, writes_midi),
                         desc="generate model")

    def shuffled(ctx: SystemContext) -> list[dict[str, Any]]:
        pipe = _pipeline(ctx)
        clips = ctx.clips()
        by_id = {str(c["clip_id"]): c for c in clips}
        donors = ctx.donors()
        return run_clips(ctx, [(c, by_id[donors[str(c["clip_id"])]]) for c in clips],
                         _write_from_video(ctx, pipe, writes_midi), desc="generate shuffled")

    return {"model": System("model", own, "own", "the trained model on each clip's own video"),
            "shuffled": System("shuffled", shuffled, "model", "the trained model on another piece's video")}


def kind_of_run(checkpoint: str | os.PathLike) -> ModelKind:
    """The kind a run folder was trained as (its ``config.json`` records ``task``)."""
    from vitmusic.runs import read_run

    return get_kind(read_run(checkpoint)[1])
