"""Batch evaluation: pair generated files with references, load them, score every pair, summarize.

The protocol (documented for users in ``eval/README.md``):

* **Pairing** — files are paired by their path relative to ``--ref`` / ``--gen`` without the extension
  (``a/x.wav`` pairs with ``a/x.flac``); that key is the clip id. Files without a partner are reported, not
  fatal, unless no pair is left. With ``--urmp ROOT`` a clip id equal to a URMP piece folder name takes its
  reference f0 / notes (and, without ``--ref``, its mix) from that piece; with ``--manifest`` a clip id equal
  to a manifest ``clip_id`` takes them from the clip (annotations relative to the clip start, mix cut to
  ``[start_s, end_s)``). By default (``annotations="solo"``) annotations are used for single-voice pieces only;
  for ensembles the reference f0 / notes come from the same tracker / transcriber as the generated side.
* **Signal conditioning** — both sides are loaded mono at one common ``sample_rate``.
* **Trim rule** — both signals are trimmed to the shorter one; a warning is recorded when their lengths
  differ by more than ``max_length_mismatch`` (10 %) of the longer. Reference notes starting after the end
  are dropped and the rest clipped to it; f0 frames past the end are dropped.
* **Undefined values** — a metric undefined for a clip (empty reference set, a value missing on one side,
  too short) is NaN: ``nan`` in ``per_clip.csv``, excluded from mean / CI, ``n`` counts the defined clips.
  A failed detection (reference has beats / notes / ..., the estimate none) is 0. See the README table.
* **Bad files** — a corrupt, empty or non-finite file is skipped and listed under ``failures``; only "no
  pair could be evaluated" is fatal.

Metric groups live in the registry :data:`METRICS` (name -> :class:`MetricGroup`); tests and experiments can
add or replace groups there.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.errors import ConfigError, DataError
from vitmusic.metrics.inputs import (  # noqa: F401  (re-exported: the runner's public input helpers)
    AUDIO_EXTS,
    VIDEO_EXTS,
    Pairing,
    Reference,
    check_dir,
    check_min_length,
    list_media,
    load_mono,
    manifest_references,
    pair_files,
    read_motion_frames,
    skyline_f0,
    trim_annotations,
    trim_pair,
    urmp_references,
)

SUMMARY_METRICS: tuple[str, ...] = (
    "tempo.p_score",
    "tempo.bpm_abs_error",
    "tempo.bpm_rel_error",
    "beat.f_measure",
    "pitch.voicing_recall",
    "pitch.voicing_false_alarm",
    "pitch.raw_pitch_accuracy",
    "pitch.raw_chroma_accuracy",
    "pitch.overall_accuracy",
    "notes.precision",
    "notes.recall",
    "notes.f1",
    "notes.f1_no_offset",
    "chroma.cosine",
    "key.weighted_score",
    "emotion.valence_abs_error",
    "emotion.arousal_abs_error",
    "emotion.quadrant_agreement",
    "sync.offset_s",
    "sync.correlation",
    "fad",
)
SET_LEVEL_METRICS: tuple[str, ...] = ("fad",)
PER_CLIP_METRICS: tuple[str, ...] = tuple(m for m in SUMMARY_METRICS if m not in SET_LEVEL_METRICS)
# per_clip.csv columns ahead of the metric columns
CLIP_COLUMNS: tuple[str, ...] = ("clip_id", "ref", "gen", "duration_s", "ref_duration_s", "gen_duration_s")

# When URMP / manifest annotations replace the tracked reference f0 / transcribed reference notes:
# "solo" = single-voice pieces only (a monophonic tracker applied to an ensemble mix follows whichever voice
# dominates, so for ensembles both sides go through the same tracker/transcriber instead), "always", "never".
ANNOTATION_POLICIES: tuple[str, ...] = ("solo", "always", "never")


@dataclasses.dataclass
class ClipInput:
    """Everything a metric group may need for one pair (already loaded, mono, trimmed).

    Attributes:
        clip_id: pairing key.
        ref_audio: reference signal [N] float32 at ``sample_rate``.
        gen_audio: generated signal [N] float32 at ``sample_rate`` (same length).
        sample_rate: Hz.
        ref_f0: annotated reference ``(times_s [F], f0_hz [F])`` (0 Hz = unvoiced) or None.
        ref_notes: annotated reference notes [M, 3] (onset_s, f0_hz, duration_s) or None.
        video: performance video for the sync metrics, or None.
        video_t0: start of the clip within ``video`` (seconds).
        cache: intermediate results shared between metric groups of this clip (e.g. f0 tracks).
    """

    clip_id: str
    ref_audio: np.ndarray
    gen_audio: np.ndarray
    sample_rate: int
    ref_f0: tuple[np.ndarray, np.ndarray] | None = None
    ref_notes: np.ndarray | None = None
    video: Path | None = None
    video_t0: float = 0.0
    cache: dict = dataclasses.field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.gen_audio) / float(self.sample_rate)


# A per-clip scorer: (clip, options, artifacts or None) -> {summary metric name: value}. When ``artifacts``
# is a dict the scorer may store plot material in it (f0 tracks, notes, beats); it is None for most clips.
ClipScorer = Callable[[ClipInput, Mapping[str, Any], "dict | None"], Mapping[str, float]]


@dataclasses.dataclass(frozen=True)
class MetricGroup:
    """One ``--metrics`` name: the summary metrics it produces and how to compute them.

    Either ``score`` (per clip) or, for set-level metrics such as FAD, ``embed`` (per clip ->
    ``(ref_emb [Nr, D], gen_emb [Ng, D])``) plus ``aggregate`` (lists of per-clip embeddings -> value).
    """

    name: str
    names: tuple[str, ...]
    score: ClipScorer | None = None
    embed: Callable[[ClipInput, Mapping[str, Any]], tuple[np.ndarray, np.ndarray]] | None = None
    aggregate: Callable[[list[np.ndarray], list[np.ndarray]], float] | None = None
    needs_video: bool = False


def _lazy(module: str):
    import importlib

    return importlib.import_module(f"vitmusic.metrics.{module}")


def _f0(clip: ClipInput, side: str, opts: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """f0 track of one side, computed once per clip and shared by the pitch and notes metrics."""
    key = f"{side}_f0"
    if key not in clip.cache:
        audio = clip.ref_audio if side == "ref" else clip.gen_audio
        clip.cache[key] = _lazy("pitch").track_f0(audio, clip.sample_rate, backend=opts.get("pitch_backend", "pyin"))
    return clip.cache[key]


def _score_tempo(clip, opts, art):
    tempo = _lazy("tempo")
    # the steps of tempo.evaluate, so that the beat plot shows the very beats that were scored
    ref_env, gen_env = (tempo.onset_envelope(a, clip.sample_rate) for a in (clip.ref_audio, clip.gen_audio))
    ref_beats, gen_beats = tempo.beats_from_envelope(ref_env), tempo.beats_from_envelope(gen_env)
    if art is not None:
        art["ref_beats_s"], art["gen_beats_s"] = ref_beats, gen_beats
    return tempo.evaluate_envelopes(ref_env, gen_env, ref_beats, gen_beats)


def _score_pitch(clip, opts, art):
    pitch = _lazy("pitch")
    ref_f0 = clip.ref_f0 if clip.ref_f0 is not None else _f0(clip, "ref", opts)
    gen_f0 = _f0(clip, "gen", opts)
    if art is not None:
        art["ref_f0"], art["gen_f0"] = ref_f0, gen_f0
    return pitch.evaluate(None, clip.gen_audio, clip.sample_rate, ref_f0=ref_f0, est_f0=gen_f0)


def _score_notes(clip, opts, art):
    notes = _lazy("notes")
    backend = opts.get("pitch_backend", "pyin")
    ref = clip.ref_notes
    if ref is None:
        ref = notes.transcribe(clip.ref_audio, clip.sample_rate, f0=_f0(clip, "ref", opts), backend=backend)
    est = notes.transcribe(clip.gen_audio, clip.sample_rate, f0=_f0(clip, "gen", opts), backend=backend)
    if art is not None:
        art["ref_notes"], art["gen_notes"] = np.asarray(ref), np.asarray(est)
    return notes.evaluate(np.asarray(ref, dtype=float).reshape(-1, 3), np.asarray(est, dtype=float).reshape(-1, 3))


def _score_chroma(clip, opts, art):
    return _lazy("chroma").evaluate(clip.ref_audio, clip.gen_audio, clip.sample_rate)


def _score_emotion(clip, opts, art):
    return _lazy("emotion").evaluate(clip.ref_audio, clip.gen_audio, clip.sample_rate)


def _score_sync(clip, opts, art):
    sync = _lazy("sync")
    if clip.video is None:
        return {}
    frames, fps = read_motion_frames(clip.video, clip.video_t0, clip.video_t0 + clip.duration_s)
    env = sync.motion_envelope(frames, fps)
    return sync.evaluate(env, fps, clip.gen_audio, clip.sample_rate)


def _embed_fad(clip, opts):
    fad = _lazy("fad")
    return (
        np.asarray(fad.embed(clip.ref_audio, clip.sample_rate)),
        np.asarray(fad.embed(clip.gen_audio, clip.sample_rate)),
    )


def _aggregate_fad(ref_embs: list[np.ndarray], gen_embs: list[np.ndarray]) -> float:
    fad = _lazy("fad")
    return float(fad.frechet_distance(np.concatenate(ref_embs, 0), np.concatenate(gen_embs, 0)))


METRICS: dict[str, MetricGroup] = {
    "tempo": MetricGroup("tempo", SUMMARY_METRICS[0:4], score=_score_tempo),
    "pitch": MetricGroup("pitch", SUMMARY_METRICS[4:9], score=_score_pitch),
    "notes": MetricGroup("notes", SUMMARY_METRICS[9:13], score=_score_notes),
    "chroma": MetricGroup("chroma", SUMMARY_METRICS[13:15], score=_score_chroma),
    "emotion": MetricGroup("emotion", SUMMARY_METRICS[15:18], score=_score_emotion),
    "sync": MetricGroup("sync", SUMMARY_METRICS[18:20], score=_score_sync, needs_video=True),
    "fad": MetricGroup("fad", ("fad",), embed=_embed_fad, aggregate=_aggregate_fad),
}


def resolve_metrics(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """Turn ``"tempo,pitch"`` (group names or full metric names like ``notes.f1``) into group names.

    Raises:
        ConfigError: for an unknown name.
    """
    if spec is None:
        return tuple(METRICS)
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    if not items:
        raise ConfigError("--metrics is empty")
    groups: list[str] = []
    for item in items:
        group = item if item in METRICS else next((g.name for g in METRICS.values() if item in g.names), None)
        if group is None:
            known = ", ".join(list(METRICS) + list(SUMMARY_METRICS))
            raise ConfigError(f"unknown metric {item!r}; known: {known}")
        if group not in groups:
            groups.append(group)
    return tuple(groups)


# --------------------------------------------------------------------------------------------- running
@dataclasses.dataclass
class EvalConfig:
    """Arguments of one evaluation run (also written to ``summary.json`` as ``config``)."""

    gen_dir: Path
    ref_dir: Path | None = None
    metrics: tuple[str, ...] = tuple(METRICS)
    sample_rate: int = 22050
    videos_dir: Path | None = None
    urmp_root: Path | None = None
    manifest: Path | None = None
    pitch_backend: str = "pyin"
    annotations: str = "solo"
    n_boot: int = 1000
    set_n_boot: int = 100  # FAD: each resample recomputes two covariances and a matrix square root
    seed: int = 0
    n_plot_clips: int = 3
    max_length_mismatch: float = 0.10
    strict: bool = False

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass
class EvalResult:
    """Per-clip rows, the summary dict (``summary.json``), plot material and the problem lists."""

    rows: list[dict]
    summary: dict
    artifacts: dict[str, dict]
    failures: list[dict]
    warnings: list[str]
    missing_gen: list[str]
    missing_ref: list[str]


def _collect_jobs(cfg: EvalConfig) -> tuple[list[tuple[str, Path, Path, Reference | None]], Pairing]:
    refs: dict[str, Reference] = {}
    if cfg.urmp_root is not None:
        refs.update(urmp_references(cfg.urmp_root))
    if cfg.manifest is not None:
        refs.update(manifest_references(cfg.manifest))
    if cfg.ref_dir is not None:
        pairing = pair_files(cfg.ref_dir, cfg.gen_dir)
    else:
        if not refs:
            raise ConfigError("give --ref, or --urmp / --manifest to take references from annotations")
        gens = list_media(check_dir(cfg.gen_dir, "generated"), AUDIO_EXTS + VIDEO_EXTS)
        if not gens:
            raise DataError(f"no audio files in generated folder {cfg.gen_dir}")
        ok = sorted(k for k in gens if k in refs and refs[k].audio is not None)
        pairing = Pairing([(k, refs[k].audio, gens[k]) for k in ok], [], sorted(set(gens) - set(ok)))
    jobs = [(cid, r, g, refs.get(cid) or refs.get(Path(cid).name)) for cid, r, g in pairing.pairs]
    return jobs, pairing


def _video_for(videos: dict[str, Path], clip_id: str, ref: Reference | None) -> tuple[Path | None, float]:
    hit = videos.get(clip_id) or videos.get(Path(clip_id).name)
    if hit is not None:
        return hit, 0.0
    if ref is not None and ref.video is not None:
        return ref.video, ref.t0
    return None, 0.0


def evaluate_dirs(cfg: EvalConfig, *, progress: bool = True) -> EvalResult:
    """Pair, load and score every clip, then summarize (no files written; see :func:`run_evaluation`).

    Raises:
        VitmusicError: missing folders, no pair at all, unknown metric, or nothing could be evaluated.
    """
    from tqdm import tqdm

    groups = [METRICS[g] for g in resolve_metrics(list(cfg.metrics))]
    if cfg.annotations not in ANNOTATION_POLICIES:
        raise ConfigError(f"annotations must be one of {', '.join(ANNOTATION_POLICIES)}, got {cfg.annotations!r}")
    if {"pitch", "notes"} & {g.name for g in groups}:
        backends = getattr(_lazy("pitch"), "BACKENDS", (cfg.pitch_backend,))
        if cfg.pitch_backend not in backends:
            raise ConfigError(f"unknown pitch backend {cfg.pitch_backend!r}; choose one of {', '.join(backends)}")
    videos = list_media(check_dir(cfg.videos_dir, "videos"), VIDEO_EXTS) if cfg.videos_dir else {}
    jobs, pairing = _collect_jobs(cfg)
    if not jobs:
        raise DataError(
            f"no file pairs: {len(pairing.missing_gen)} reference(s) and {len(pairing.missing_ref)} generated "
            f"file(s) share no name (files are paired by name without extension)"
        )
    opts = {"pitch_backend": cfg.pitch_backend}
    rows: list[dict] = []
    failures: list[dict] = []
    notes: list[str] = []
    artifacts: dict[str, dict] = {}
    n_video = 0
    embeds: dict[str, tuple[list, list]] = {g.name: ([], []) for g in groups if g.embed is not None}
    for clip_id, ref_path, gen_path, ref in tqdm(jobs, desc="evaluate", unit="clip", disable=not progress):
        try:
            t0, t1 = (ref.t0, ref.t1) if ref is not None and ref_path == ref.audio else (0.0, None)
            ref_audio = load_mono(ref_path, cfg.sample_rate, t0, t1)
            gen_audio = load_mono(gen_path, cfg.sample_rate)
            check_min_length(ref_path, ref_audio, cfg.sample_rate)
            check_min_length(gen_path, gen_audio, cfg.sample_rate)
        except DataError as e:
            failures.append({"clip_id": clip_id, "reason": str(e)})
            continue
        ref_n, gen_n = len(ref_audio), len(gen_audio)
        ref_audio, gen_audio, mismatch = trim_pair(ref_audio, gen_audio)
        if mismatch > cfg.max_length_mismatch:
            notes.append(f"{clip_id}: reference {ref_n / cfg.sample_rate:.2f} s vs generated "
                         f"{gen_n / cfg.sample_rate:.2f} s differ by {100 * mismatch:.0f}%; both trimmed")
        duration_s = len(gen_audio) / cfg.sample_rate
        use = ref is not None and (cfg.annotations == "always" or (cfg.annotations == "solo" and ref.n_voices == 1))
        f0, ann = trim_annotations(ref.f0 if use else None, ref.notes if use else None, duration_s)
        video, video_t0 = _video_for(videos, clip_id, ref)
        n_video += video is not None
        clip = ClipInput(clip_id, ref_audio, gen_audio, cfg.sample_rate, f0, ann, video, video_t0)
        art = {} if len(artifacts) < cfg.n_plot_clips else None
        row: dict[str, Any] = {"clip_id": clip_id, "ref": str(ref_path), "gen": str(gen_path),
                               "duration_s": duration_s, "ref_duration_s": ref_n / cfg.sample_rate,
                               "gen_duration_s": gen_n / cfg.sample_rate}
        row.update({m: float("nan") for m in PER_CLIP_METRICS})
        for group in groups:
            if group.needs_video and clip.video is None:
                continue
            try:
                if group.embed is not None:
                    r_emb, g_emb = group.embed(clip, opts)
                    embeds[group.name][0].append(np.asarray(r_emb, np.float64))
                    embeds[group.name][1].append(np.asarray(g_emb, np.float64))
                    continue
                scores = group.score(clip, opts, art)
            except Exception as e:  # one clip's metric failure must not lose the other clips' results
                if cfg.strict:
                    raise
                notes.append(f"{clip_id}: {group.name} failed: {type(e).__name__}: {e}")
                continue
            for name in group.names:
                if name in scores:
                    value = float(scores[name])
                    row[name] = value if math.isfinite(value) else float("nan")
        if art is not None:
            art.update(ref_audio=ref_audio, gen_audio=gen_audio, sample_rate=cfg.sample_rate)
            artifacts[clip_id] = art
        rows.append(row)
    if not rows:
        raise DataError(f"nothing could be evaluated: all {len(jobs)} pair(s) failed to load "
                        f"(first: {failures[0]['reason']})")
    if any(g.needs_video for g in groups) and n_video == 0:
        notes.append("sync metrics skipped: no video found (give --videos DIR with files named like the clips)")
    from vitmusic.metrics.report import build_summary

    summary = build_summary(rows, groups, embeds, cfg, failures, notes, pairing)
    return EvalResult(rows, summary, artifacts, failures, notes, pairing.missing_gen, pairing.missing_ref)


def run_evaluation(cfg: EvalConfig, out_dir: str | os.PathLike, *, progress: bool = True,
                   report: bool = True) -> EvalResult:
    """Evaluate and write ``per_clip.csv``, ``summary.json`` and (optionally) ``report.md`` + plots."""
    import json

    from vitmusic.atomic import atomic_write_text

    result = evaluate_dirs(cfg, progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from vitmusic.metrics.report import write_per_clip_csv

    write_per_clip_csv(out / "per_clip.csv", result.rows)
    atomic_write_text(out / "summary.json", json.dumps(result.summary, indent=2, allow_nan=False) + "\n")
    if report:
        from vitmusic.metrics.report import write_report

        write_report(out, result)
    return result
