"""The ``score-informed`` kind: the notes from the piece's score, their timing and dynamics from the video.

It trains exactly what the ``transcription`` kind trains (:mod:`vitmusic.training.tasks.transcription`: the
per-part onset/frame/offset head on the frozen encoder's per-part features) and uses the head differently: per
test clip, the head's onset and activity curves (max over pitch, per part) are aligned with the clip's piece's
score (``Sco_*.mid``, the manifest row's ``score``) by :func:`vitmusic.generators.score.align.align_score`
(subsequence DTW, the parts sharing one path; onsets snapped to the part's own onset peaks; velocities from the
peak heights), and the score's notes are rendered where the video puts them, by the clip's instruments, with
``transcription.synth`` (builtin or fluidsynth). Generation from a video (``vitmusic generate``) takes the score
from ``--score`` or the ``Sco_`` file next to a URMP-style video.

Systems (stable names, the same in every experiment file and script):

* ``model`` -- score-informed: the score aligned to the clip's own video.
* ``shuffled`` -- the clip's score aligned to the video of a clip of another piece (the one donor rule,
  :func:`vitmusic.data.donors.donor_map`): the control that must lose if the timing comes from the video.
* ``deadpan`` -- the score at its own fixed tempo, read from the clip's start time, no video.
* ``oracle`` -- the clip's annotated (performed) notes: the score with the true timing.
* ``transcription`` -- the transcription path: the same trained head's decoded notes (no score).

Bad input is refused clip by clip, never rendered deadpan instead: a clip whose score is missing, unreadable,
empty, or whose parts do not match the piece's performers (count or instruments), and a clip in whose video the
aligner finds no onset get no ``.wav``; each is one line in the log and in ``<out_dir>/failures.json``
(``{"clip_id", "reason"}``), and the evaluation reports them as missing. A system that fails on every clip
fails with the first reason.

Scores: ``transcription.notes.*`` of the written MIDI, as for the transcription kind.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.config import Config
from vitmusic.errors import ConfigError, DataError
from vitmusic.workflow.kinds import ModelKind, System, SystemContext, run_clips
from vitmusic.workflow.kinds import transcription as tr

log = logging.getLogger(__name__)

NAME = "score-informed"
SYSTEMS: tuple[str, ...] = ("model", "shuffled", "deadpan", "oracle", "transcription")


@dataclasses.dataclass
class ScoreInformedOptions:
    """``kind_options`` of the score-informed kind (the aligner's settings; generation only).

    Attributes:
        min_peak: the video shows no onset when no part's onset probability reaches this (the clip is refused).
        snap_s: a placed onset moves to its part's strongest onset peak within this many seconds (0: never).
        activity_weight: weight of the activity curves against the onset curves in the alignment cost.
        min_velocity: velocity of a note whose onset peak has height 0 (height 1 gives velocity 1).
        search_s: where the clip starts in the piece is known (the manifest's ``start_s``, ``generate``'s
            ``t0_s``): the clip is looked for in the score within this many seconds of its own span, at the
            written tempo (0: anywhere in the score).
        prior_weight: alignment cost per squared second of lag from the deadpan reading (0: none). The default,
            10, had the best mean onset F1 of the placed notes over the validation pieces of the six
            ``bench_levels.py`` cells (docs/benchmark.md, "Results per level"); without a prior the DTW matched
            a repeated rhythm elsewhere in its search span.
    """

    min_peak: float = 0.02
    snap_s: float = 0.05
    activity_weight: float = 0.5
    min_velocity: float = 0.5
    search_s: float = 3.0
    prior_weight: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.min_peak < 1:
            raise ConfigError(f"kind_options.min_peak must be in (0, 1), got {self.min_peak}")
        if self.snap_s < 0 or self.activity_weight < 0 or self.search_s < 0 or not 0 < self.min_velocity <= 1:
            raise ConfigError("kind_options: snap_s, activity_weight and search_s must be >= 0, min_velocity in "
                              "(0, 1]")

    def search(self, t0_s: float, t1_s: float) -> tuple[float, float] | None:
        """The span of score time to look for a clip ``[t0_s, t1_s)`` of the performance in (None: all)."""
        return (max(0.0, t0_s - self.search_s), t1_s + self.search_s) if self.search_s > 0 else None


def align_probs(score_parts: list[np.ndarray], probs: Mapping[str, np.ndarray], mask: np.ndarray, rate_hz: float,
                opts: ScoreInformedOptions, duration_s: float, t0_s: float = 0.0):
    """The score aligned to the head's outputs ``{"onset", "frame"}: [P, T, K]`` (valid steps ``mask [P, T]``)
    of the span ``[t0_s, t0_s + duration_s)`` of the performance; returns the
    :class:`~vitmusic.generators.score.align.Alignment`, notes cut at ``duration_s``.

    Raises:
        DataError: the aligner refuses (no onset in the video, a score shorter than the clip...), one line.
    """
    from vitmusic.generators.score.align import align_score

    n = int(np.asarray(mask).sum(axis=-1).max())
    onset = np.asarray(probs["onset"])[:, :n].max(axis=-1)
    activity = np.asarray(probs["frame"])[:, :n].max(axis=-1)
    try:
        al = align_score(score_parts, onset, activity, rate_hz, min_peak=opts.min_peak, snap_s=opts.snap_s,
                         activity_weight=opts.activity_weight, min_velocity=opts.min_velocity,
                         search_s=opts.search(t0_s, t0_s + duration_s), nominal_s=t0_s,
                         prior_weight=opts.prior_weight)
    except ValueError as e:
        raise DataError(str(e)) from e
    for k, p in enumerate(al.parts):
        keep = p[:, 0] < duration_s
        p, al.velocities[k] = p[keep], al.velocities[k][keep]
        p[:, 2] = np.minimum(p[:, 2], duration_s - p[:, 0])
        al.parts[k] = p
    return al


class ClipScores:
    """The scores of the pieces of a split's clips, read once per file (an error is kept and re-raised per clip)."""

    def __init__(self) -> None:
        self._read: dict[tuple[str, tuple[str, ...]], list[np.ndarray] | DataError] = {}

    def of(self, clip: Mapping[str, Any]) -> list[np.ndarray]:
        from vitmusic.generators.score.score_file import read_score

        key = (str(clip.get("score") or ""), tuple(clip["instruments"]))
        if key not in self._read:
            try:
                self._read[key] = read_score(clip.get("score"), clip["instruments"])
            except DataError as e:
                self._read[key] = e
        got = self._read[key]
        if isinstance(got, DataError):
            raise got
        return got


def _refusing(ctx: SystemContext, write: Callable[..., None]):
    """``write`` that records a clip it refuses (DataError) instead of stopping the system; returns it and
    the failure list."""
    failures: list[dict[str, str]] = []

    def guarded(clip, src, path, seed):
        try:
            write(clip, src, path, seed)
        except DataError as e:
            log.warning("clip %s: %s", clip["clip_id"], e)
            failures.append({"clip_id": str(clip["clip_id"]), "reason": str(e)})

    return guarded, failures


def _finish(ctx: SystemContext, records: list[dict[str, Any]], failures: list[dict[str, str]]) -> list[dict[str, Any]]:
    from vitmusic.atomic import atomic_write_text

    failed = {f["clip_id"] for f in failures}
    path = ctx.out_dir / "failures.json"
    if failures or path.exists():
        atomic_write_text(path, json.dumps(failures, indent=1) + "\n")
    kept = [r for r in records if r["clip_id"] not in failed]
    if records and not kept:
        raise DataError(f"every test clip was refused ({len(failures)}), first {failures[0]['clip_id']}: "
                        f"{failures[0]['reason']}")
    return kept


def _aligned(ctx: SystemContext, donors: dict[str, str] | None, desc: str) -> list[dict[str, Any]]:
    from vitmusic.training.tasks.transcription import predict_split

    task = ctx.trained_task()
    opts = KIND.options_of(ctx.config)
    clips = {str(c["clip_id"]): c for c in ctx.clips()}
    probs = {cid: (p, m) for cid, p, m in predict_split(task, ctx.config.data.test_split, donors=donors)}
    scores, rate_hz = ClipScores(), float(ctx.config.encoder.rate_hz)

    def write(clip, src, path, seed):
        duration_s = float(clip["end_s"]) - float(clip["start_s"])
        p, m = probs[str(clip["clip_id"])]
        al = align_probs(scores.of(clip), p, m, rate_hz, opts, duration_s, float(clip["start_s"]))
        tr.render_clip(path, clip, al.parts, ctx.config, seed, velocities=al.velocities)

    guarded, failures = _refusing(ctx, write)
    jobs = [(clips[cid], clips[donors[cid]] if donors else clips[cid]) for cid in probs]
    return _finish(ctx, run_clips(ctx, jobs, guarded, desc=desc), failures)


def _model(ctx: SystemContext) -> list[dict[str, Any]]:
    return _aligned(ctx, None, "generate score-informed")


def _shuffled(ctx: SystemContext) -> list[dict[str, Any]]:
    return _aligned(ctx, ctx.donors(), "generate shuffled")


def deadpan_parts(score_parts: list[np.ndarray], start_s: float, end_s: float) -> list[np.ndarray]:
    """The score at its fixed tempo for a clip ``[start_s, end_s)`` of the performance: score time taken as
    performance time, the notes starting in the span, shifted to the clip start."""
    from vitmusic.generators.score.score_file import score_slice

    return score_slice(score_parts, start_s, end_s)


def _deadpan(ctx: SystemContext) -> list[dict[str, Any]]:
    scores = ClipScores()

    def write(clip, src, path, seed):
        parts = deadpan_parts(scores.of(clip), float(clip["start_s"]), float(clip["end_s"]))
        tr.render_clip(path, clip, parts, ctx.config, seed)

    guarded, failures = _refusing(ctx, write)
    return _finish(ctx, run_clips(ctx, [(c, c) for c in ctx.clips()], guarded, desc="generate deadpan"), failures)


def _tune(config: Config, task, candidates: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings chosen on the validation split after training: ``transcription.*`` decoding thresholds as the
    transcription kind chooses them (for the ``transcription`` system), and the aligner's ``kind_options.*``
    (e.g. ``prior_weight``) by the mean note F1 (onset and pitch, no offset) of the aligned score on the
    validation clips. A clip the aligner refuses scores 0 for that candidate, and of candidates that tie the
    one refusing fewer clips wins (refusing is not a way to win); then the first."""
    import itertools

    from vitmusic.training.tasks.transcription import predict_split

    mine = {k: list(v) for k, v in candidates.items() if k.startswith("kind_options.")}
    rest = {k: v for k, v in candidates.items() if k not in mine}
    chosen, info = tr.KIND.tune(config, task, rest) if rest else ({}, {})
    if not mine:
        return chosen, info
    known = {f.name for f in dataclasses.fields(ScoreInformedOptions)}
    for key in mine:
        if key.split(".", 1)[1] not in known:
            raise ConfigError(f"tune: {key!r} is not an option of the {NAME} kind ({', '.join(sorted(known))})")
    base, rate_hz, split = KIND.options_of(config), float(config.encoder.rate_hz), config.data.val_split
    probs = list(predict_split(task, split))
    scores, tried, refused = ClipScores(), {}, {}
    best, best_key = {k: v[0] for k, v in mine.items()}, (-np.inf, 0)
    for values in itertools.product(*mine.values()):
        opts = dataclasses.replace(base, **{k.split(".", 1)[1]: v for k, v in zip(mine, values)})
        placed, n_refused = {}, 0
        for cid, p, m in probs:
            clip = task.clips[cid]
            start_s = float(clip["start_s"])
            try:
                placed[cid] = align_probs(scores.of(clip), p, m, rate_hz, opts, float(clip["end_s"]) - start_s,
                                          start_s).parts
            except DataError:
                placed[cid], n_refused = [np.zeros((0, 3)) for _ in clip["instruments"]], n_refused + 1
        per = tr.score_notes(task.clips, placed)
        mean = tr.mean_finite(v[tr.TUNE_METRIC] for v in per.values())
        name = ", ".join(f"{k}={v}" for k, v in zip(mine, values))
        tried[name], refused[name] = mean, n_refused
        if np.isfinite(mean) and (mean, -n_refused) > best_key:
            best, best_key = dict(zip(mine, values)), (mean, -n_refused)
    info["aligner"] = {"metric": tr.TUNE_METRIC, "split": split, "clips": len(probs), "scores": tried,
                       "refused": refused}
    return {**chosen, **best}, info


# ---------------------------------------------------------------------------------------------- generate
class ScoreInformedPipeline:
    """A trained head and a score, ready to generate from a video (:class:`vitmusic.inference.base.Pipeline`).

    The score is ``score`` (one file for every video) or, per video, the ``Sco_`` file next to it; its part
    ``k`` is performer ``k`` (left to right). The span ``[t0_s, t1_s)`` is aligned anywhere in the score.
    """

    def __init__(self, midi, opts: ScoreInformedOptions, score: str | os.PathLike | None = None) -> None:
        self.midi, self.opts, self.score = midi, opts, score
        self.config = midi.config
        self.last_midi = None

    @property
    def sample_rate(self) -> int:
        return self.midi.sample_rate

    @property
    def default_seed(self) -> int:
        return self.midi.default_seed

    def describe(self) -> dict[str, Any]:
        return {**self.midi.describe(), "path": NAME, "score": None if self.score is None else str(self.score),
                "aligner": dataclasses.asdict(self.opts)}

    def generate_video(self, video, *, t0_s: float = 0.0, t1_s: float | None = None, guidance_scale=None,
                       seed: int | None = None, progress: bool = False, midi_path=None) -> np.ndarray:
        """Audio for a video's ``[t0_s, t1_s)``: the score's notes placed where the video shows them.

        Raises:
            DataError: no score, a score that does not fit the performers, no onset in the video (one line).
        """
        from vitmusic.generators.midi.export import notes_to_midi, write_midi
        from vitmusic.generators.score.score_file import find_score, read_score

        probs, mask, codes, duration_s = self.midi.predict_video(video, t0_s=t0_s, t1_s=t1_s, progress=progress)
        path = self.score or (find_score(video) if isinstance(video, (str, os.PathLike)) else None)
        al = align_probs(read_score(path, codes), probs, mask, self.midi.rate_hz, self.opts, duration_s, t0_s)
        pm = notes_to_midi(al.parts, codes, velocities=al.velocities)
        self.last_midi = pm
        if midi_path is not None:
            write_midi(pm, midi_path)
        return self.midi.render(pm, codes, duration_s, seed=self.default_seed if seed is None else int(seed))


#: the aligner's options worth choosing on the validation split (``tune:``): the deadpan prior's weight (cost
#: per squared second of lag; 0: none) and the activity curves' weight against the onset curves
ALIGNER_GRID: dict[str, tuple[float, ...]] = {"kind_options.prior_weight": (0.0, 0.3, 1.0, 3.0, 10.0),
                                              "kind_options.activity_weight": (0.0, 0.25, 0.5, 1.0)}

#: the note scores reported per system (onset only; with offsets), clip means over the test pieces
REPORT_METRICS: tuple[str, ...] = ("transcription.notes.f1_no_offset", "transcription.notes.f1")


def summarize_systems(config: Config, folders: Mapping[str, str | os.PathLike]) -> dict[str, dict[str, Any]]:
    """Each system's written notes (``{system: folder of <clip_id>.mid}``) against the annotation of the
    ``config.data.test_split`` clips: ``{system: {"n": clips scored, "refused": clips it refused
    (failures.json), metric: summary}}`` for :data:`REPORT_METRICS`, summaries over pieces
    (:func:`vitmusic.metrics.stats.summarize`: mean, 95 % interval)."""
    from vitmusic.data.manifest import read_manifest
    from vitmusic.metrics.stats import summarize

    piece = {str(c["clip_id"]): c["piece"] for c in read_manifest(config.data.manifest, split=config.data.test_split)}
    out: dict[str, dict[str, Any]] = {}
    for name, folder in folders.items():
        per = KIND.score(config, Path(folder))
        ids = sorted(per)
        fail = Path(folder) / "failures.json"
        row: dict[str, Any] = {"n": len(ids),
                               "refused": len(json.loads(fail.read_text(encoding="utf-8"))) if fail.is_file() else 0}
        for m in REPORT_METRICS:
            row[m] = summarize(np.array([per[c].get(m, np.nan) for c in ids], float),
                               groups=[piece[c] for c in ids], bounds=(0.0, 1.0))
        out[name] = row
    return out


def _load_pipeline(checkpoint, *, device=None, score=None, **options) -> ScoreInformedPipeline:
    from vitmusic.inference.midi import load_pipeline

    midi = load_pipeline(checkpoint, device=device, tasks=(NAME,), **options)
    return ScoreInformedPipeline(midi, KIND.options_of(midi.config), score=score)


def run_systems(prepared: str | os.PathLike, run: str | os.PathLike, out_dir: str | os.PathLike, *,
                systems: tuple[str, ...] = SYSTEMS, config: Config | None = None, progress: bool = False,
                tune: Mapping[str, list[Any]] | None = None) -> dict[str, Path]:
    """Every system of this kind on a prepared benchmark's test split, from a trained run: ``{system: folder of
    <clip_id>.wav/.mid}`` under ``out_dir`` (for table scripts; ``vitmusic ablate`` does the same per variant).

    Args:
        prepared: the folder (or ``manifest.jsonl``) written by ``vitmusic prepare``.
        run: a trained ``score-informed`` (or ``transcription``) run folder.
        out_dir: one sub-folder per system.
        systems: which ones (default: all, :data:`SYSTEMS`).
        config: the generation config (default: the run's, with ``data.manifest=prepared``).
        tune: ``{key: candidates}`` chosen on the validation split first (as an experiment file's ``tune:``;
            e.g. :data:`ALIGNER_GRID`): the choice is applied to the config and written, with every candidate's
            score, to ``out_dir/tuned.json``.
    """
    from vitmusic.runs import read_run
    from vitmusic.training.tasks.transcription import build_task

    folder, run_config, _ = read_run(run)
    cfg = config if config is not None else run_config
    cfg.data.manifest = str(prepared)
    cache: dict[str, Any] = {}

    def trained():
        if "task" not in cache:
            cache["task"] = build_task(cfg, progress=progress)
            tr.KIND.load_trained(cache["task"], folder)
        return cache["task"]

    if tune:
        from vitmusic.atomic import atomic_write_text

        chosen, scores = _tune(cfg, trained(), tune)
        for key, value in chosen.items():
            section, field = key.split(".", 1)
            if section == "kind_options":
                cfg.kind_options = {**cfg.kind_options, field: value}
            else:
                setattr(getattr(cfg, section), field, value)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out_dir) / "tuned.json",
                          json.dumps({"tuned": chosen, "tune_scores": scores}, indent=1, default=str) + "\n")
    out = {}
    for name in systems:
        system = KIND.system(name)
        ctx = SystemContext(cfg, folder if system.uses != "none" else None, Path(out_dir) / name, progress, trained)
        system.generate(ctx)
        out[name] = ctx.out_dir
    return out


KIND = ModelKind(
    name=NAME,
    description="score notes placed by the video: the transcription head's onsets aligned to the score (DTW)",
    build_task=tr.KIND.build_task,
    build_cache=tr.KIND.build_cache,
    load_pipeline=_load_pipeline,
    pipeline_options=("synth", "soundfont", "instruments", "score"),
    writes_midi=True,
    systems={
        "model": System("model", _model, "own", "the score aligned to the clip's own video"),
        "shuffled": System("shuffled", _shuffled, "model", "the clip's score aligned to another piece's video"),
        "deadpan": System("deadpan", _deadpan, "none", "the score at its fixed tempo, no video"),
        "oracle": System("oracle", tr.KIND.systems["oracle"].generate, "none",
                         "the clip's annotated notes (the score with the true timing)"),
        "transcription": System("transcription", tr.KIND.systems["model"].generate, "model",
                                "the same trained head's decoded notes (the transcription path)"),
    },
    generation_keys=(*tr.GENERATION_KEYS, "kind_options"),
    diagnostics=tr.KIND.diagnostics,
    tune=_tune,  # the transcription system's thresholds and the aligner's options, on the validation split
    load_trained=tr.KIND.load_trained,
    score=tr.KIND.score,
    score_metrics=tr.KIND.score_metrics,
    score_bounds=tr.KIND.score_bounds,
    eval_metrics=tr.KIND.eval_metrics,
    options=ScoreInformedOptions,
)
