"""The ``transcription`` kind (the MIDI path): video -> per-part notes (trained head) -> MIDI -> synthesizer.

Training: :mod:`vitmusic.training.tasks.transcription` (the head on the per-part feature cache). Generation from a
video: :mod:`vitmusic.inference.midi`. In an ablation the systems decode the cached test clips (no video is
decoded again) and write ``<clip_id>.mid`` and its rendering ``<clip_id>.wav`` (``transcription.synth``:
``builtin`` or ``fluidsynth``):

* ``model`` -- the trained head on the clip's own video.
* ``shuffled`` -- the same head on the video of a clip of another piece (:func:`vitmusic.data.donors.donor_map`;
  the donor's parts cycled to the clip's count).
* ``retrieval`` -- the annotated notes of the training clip whose video is nearest
  (:mod:`vitmusic.workflow.retrieval`), played by the test clip's instruments.
* ``oracle`` -- the test clip's own annotated notes through the same synthesizer: the ceiling of the audio
  metrics for this path.

Scores beyond the evaluation runner's: ``transcription.notes.*``, the written MIDI against the annotated notes
of each performer (:func:`vitmusic.metrics.parts.score_clip_parts`: part k against stem k, the mean over the
clip's parts, notes carried over from before the clip left out). The decoding thresholds are generation
settings: variants that differ only there share a trained run, and ``tune:`` in an experiment file chooses them
on the validation split by the mean ``transcription.notes.f1_no_offset``.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.config import Config
from vitmusic.workflow.kinds import ModelKind, System, SystemContext, run_clips

SCORE_METRICS: tuple[str, ...] = tuple(
    f"transcription.{m}" for m in ("notes.precision", "notes.recall", "notes.f1", "notes.f1_no_offset"))
TUNE_METRIC = "transcription.notes.f1_no_offset"
GENERATION_KEYS: tuple[str, ...] = (
    "generate", "transcription.onset_threshold", "transcription.frame_threshold", "transcription.offset_threshold",
    "transcription.frame_onsets", "transcription.synth", "transcription.soundfont", "transcription.sample_rate")


def _build_task(config: Config, *, progress: bool = True):
    from vitmusic.training.tasks.transcription import build_task

    return build_task(config, progress=progress)


def _build_cache(config: Config, *, progress: bool = True) -> Path:
    from vitmusic.training.tasks.transcription import build_cache

    return build_cache(config, progress=progress)


def _load_pipeline(checkpoint, *, device=None, **options):
    from vitmusic.inference.midi import load_pipeline

    return load_pipeline(checkpoint, device=device, **options)


def _load_trained(task, final: Path) -> None:
    from vitmusic.generators.midi.transcription import load_head

    task.head.load_state_dict(load_head(final).state_dict())


def _diagnostics(config: Config, task) -> dict[str, float]:
    from vitmusic.evaluation.conditioning import conditioning_gap

    gap = conditioning_gap(task, config.data.test_split, seed=config.generate.seed)
    return {"train.loss_true_video": float(gap["true"]), "train.loss_shuffled_video": float(gap["shuffled"])}


# ---------------------------------------------------------------------------------------------- scores
def midi_parts(path: str | os.PathLike, n_parts: int) -> list[np.ndarray]:
    """Per part, the notes of a MIDI file written by this path (track ``"<k> <name>"`` is part ``k``; a part
    whose track has no notes is not in the file and gets none)."""
    from vitmusic.generators.midi.export import read_midi, track_notes

    parts = [np.zeros((0, 3)) for _ in range(n_parts)]
    for i, inst in enumerate(read_midi(path).instruments):
        head = inst.name.split(" ", 1)[0]
        k = int(head) - 1 if head.isdigit() else i
        if 0 <= k < n_parts:
            parts[k] = track_notes(inst)[0]
    return parts


def score_notes(clips: Mapping[str, Mapping[str, Any]], parts: Mapping[str, Sequence[np.ndarray]]) -> dict[str, dict[str, float]]:
    """``{clip_id: {"transcription.notes.*": value}}``: each clip's notes against its annotation (the module
    docstring's rule)."""
    from vitmusic.metrics.parts import score_clip_parts

    out = {}
    for cid, est in parts.items():
        clip = clips[cid]
        s = score_clip_parts(clip.get("notes") or [], est, carried_over=float(clip["start_s"]) > 0)
        out[cid] = {f"transcription.{k}": v for k, v in s.items() if f"transcription.{k}" in SCORE_METRICS}
    return out


def _score(config: Config, generated: Path) -> dict[str, dict[str, float]]:
    from vitmusic.data.manifest import read_clips

    clips = {str(c["clip_id"]): c for c in read_clips(config) if c["split"] == config.data.test_split}
    parts = {cid: midi_parts(generated / f"{cid}.mid", len(c["instruments"])) for cid, c in clips.items()
             if (generated / f"{cid}.mid").is_file()}
    return score_notes(clips, parts)


def mean_finite(values) -> float:
    x = np.asarray(list(values), float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def _tune(config: Config, task, candidates: Mapping[str, Sequence[Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The candidate combination with the best mean ``transcription.notes.f1_no_offset`` on the validation
    clips (decoded from the cache; the first best on ties)."""
    import copy

    from vitmusic.errors import ConfigError
    from vitmusic.training.tasks.transcription import decode_split

    keys = list(candidates)
    for key in keys:
        if not key.startswith("transcription.") or key.split(".", 1)[1] not in vars(config.transcription):
            raise ConfigError(f"tune: {key!r} is not a transcription.* decoding setting")
    saved, scores = task.config, {}
    best, best_score = None, -math.inf
    try:
        for values in itertools.product(*(candidates[k] for k in keys)):
            cfg = copy.deepcopy(saved)
            for key, value in zip(keys, values):
                setattr(cfg.transcription, key.split(".", 1)[1], value)
            task.config = cfg
            per = score_notes(task.clips, decode_split(task, config.data.val_split))
            mean = mean_finite(v[TUNE_METRIC] for v in per.values())
            scores[", ".join(f"{k}={v}" for k, v in zip(keys, values))] = mean
            if math.isfinite(mean) and mean > best_score:
                best, best_score = dict(zip(keys, values)), mean
    finally:
        task.config = saved
    if best is None:  # nothing scored on the validation clips: keep the first candidates
        best = {k: candidates[k][0] for k in keys}
    return best, {"metric": TUNE_METRIC, "split": config.data.val_split, "scores": scores}


# ---------------------------------------------------------------------------------------------- systems
def render_clip(path: Path, clip: Mapping[str, Any], parts: Sequence[np.ndarray], config: Config, seed: int,
                synth=None, velocities: Sequence[np.ndarray] | None = None) -> None:
    """``path`` (.wav) and its ``.mid``: a clip's parts played by its instruments, exactly the clip's length.

    ``synth``: a loaded diffusion synthesizer (``.sample_rate``, ``.synthesize``); None renders with
    ``transcription.synth`` (builtin or fluidsynth). ``velocities``: per part ``[N]`` in (0, 1] (default 0.8).
    """
    from vitmusic.data.audio import write_audio
    from vitmusic.generators.midi.export import notes_to_midi, render_midi, write_midi

    codes = list(clip["instruments"])
    parts = [np.asarray(p, float).reshape(-1, 3) for p in parts]
    if velocities is None:
        velocities = [np.full(len(p), 0.8) for p in parts]
    pm = notes_to_midi(parts, codes, velocities=list(velocities))
    write_midi(pm, path.with_suffix(".mid"))
    duration_s = float(clip["end_s"]) - float(clip["start_s"])
    if synth is not None:
        n = int(round(duration_s * synth.sample_rate))
        y = np.asarray(synth.synthesize(pm, duration_s, seed=seed, instruments=codes), np.float32).reshape(-1)
        write_audio(path, y[:n] if len(y) >= n else np.pad(y, (0, n - len(y))), synth.sample_rate)
        return
    t = config.transcription
    if t.synth not in ("builtin", "fluidsynth"):
        from vitmusic.errors import ConfigError

        raise ConfigError(f"transcription.synth={t.synth}: an ablation renders with builtin or fluidsynth")
    y = render_midi(pm, t.sample_rate, duration_s, synth=t.synth, soundfont=t.soundfont, instruments=codes,
                    seed=seed)
    write_audio(path, y, t.sample_rate, subtype="PCM_16")


def _decoded(ctx: SystemContext, donors: dict[str, str] | None, desc: str) -> list[dict[str, Any]]:
    from vitmusic.training.tasks.transcription import decode_split

    task = ctx.trained_task()
    task.config = ctx.config  # the variant's decoding settings (tuned ones applied)
    decoded = decode_split(task, ctx.config.data.test_split, donors=donors)
    clips = {str(c["clip_id"]): c for c in ctx.clips()}
    jobs = [(clips[cid], clips[donors[cid]] if donors else clips[cid]) for cid in decoded]
    return run_clips(ctx, jobs, lambda clip, src, path, seed: render_clip(path, clip, decoded[clip["clip_id"]],
                                                                         ctx.config, seed), desc=desc)


def _model(ctx: SystemContext) -> list[dict[str, Any]]:
    return _decoded(ctx, None, "generate model")


def _shuffled(ctx: SystemContext) -> list[dict[str, Any]]:
    return _decoded(ctx, ctx.donors(), "generate shuffled")


def annotated_parts(clip: Mapping[str, Any], n_parts: int, duration_s: float) -> list[np.ndarray]:
    """A clip's annotated notes per stem, cycled to ``n_parts`` parts and cut to ``duration_s`` seconds."""
    notes = [np.asarray(n, float).reshape(-1, 3) for n in clip.get("notes") or []] or [np.zeros((0, 3))]
    out = []
    for k in range(n_parts):
        n = notes[k % len(notes)]
        n = n[(n[:, 1] > 0) & (n[:, 2] > 0) & (n[:, 0] < duration_s)].copy()
        n[:, 2] = np.minimum(n[:, 2], duration_s - n[:, 0])
        out.append(n)
    return out


def _oracle(ctx: SystemContext) -> list[dict[str, Any]]:
    def write(clip, src, path, seed):
        duration_s = float(clip["end_s"]) - float(clip["start_s"])
        render_clip(path, clip, annotated_parts(clip, len(clip["instruments"]), duration_s), ctx.config, seed)

    return run_clips(ctx, [(c, c) for c in ctx.clips()], write, desc="generate oracle")


def _retrieval(ctx: SystemContext) -> list[dict[str, Any]]:
    from vitmusic.training.tasks.transcription import build_cache
    from vitmusic.workflow.retrieval import cached_clips, retrieval_sources

    cfg = ctx.config
    cache = build_cache(cfg, progress=ctx.progress)
    test, train = cached_clips(cache, cfg.data.test_split), cached_clips(cache, cfg.data.train_split)
    rows = {str(c["clip_id"]): c for c in ctx.clips(cfg.data.train_split)}
    clips = {str(c["clip_id"]): c for c in ctx.clips()}
    jobs = [(clips[c["clip_id"]], rows[train[j]["clip_id"]]) for c, j in zip(test, retrieval_sources(test, train))]

    def write(clip, src, path, seed):
        duration_s = float(clip["end_s"]) - float(clip["start_s"])
        render_clip(path, clip, annotated_parts(src, len(clip["instruments"]), duration_s), cfg, seed)

    return run_clips(ctx, jobs, write, desc="generate retrieval")


KIND = ModelKind(
    name="transcription",
    description="video -> per-part notes (trained head) -> MIDI -> synthesizer",
    build_task=_build_task,
    build_cache=_build_cache,
    load_pipeline=_load_pipeline,
    pipeline_options=("synth", "synth_checkpoint", "soundfont", "instruments"),
    writes_midi=True,
    systems={
        "model": System("model", _model, "own", "the trained head on the clip's own video"),
        "shuffled": System("shuffled", _shuffled, "model", "the trained head on another piece's video"),
        "retrieval": System("retrieval", _retrieval, "none",
                            "annotated notes of the training clip with the nearest video"),
        "oracle": System("oracle", _oracle, "none", "the clip's own annotated notes, same synthesizer"),
    },
    generation_keys=GENERATION_KEYS,
    diagnostics=_diagnostics,
    tune=_tune,
    load_trained=_load_trained,
    score=_score,
    score_metrics=SCORE_METRICS,
    score_bounds=dict.fromkeys(SCORE_METRICS, (0.0, 1.0)),  # precision, recall, F1
    eval_metrics="notes,multipitch,chroma,tempo",
)
