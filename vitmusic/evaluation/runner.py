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

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.errors import ConfigError, DataError
from vitmusic.evaluation.inputs import (  # noqa: F401  (re-exported: the runner's public input helpers)
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
from vitmusic.evaluation.schema import (  # noqa: F401  (re-exported: the names and types of the protocol)
    ANNOTATION_POLICIES,
    CLIP_COLUMNS,
    DEFAULT_PITCH_BACKEND,
    METRIC_GROUPS,
    PER_CLIP_METRICS,
    REFEREE_METRICS,
    SET_LEVEL_METRICS,
    SUMMARY_METRICS,
    ClipInput,
    ClipScorer,
    EvalConfig,
    EvalResult,
    MetricGroup,
)


def _lazy(module: str):
    import importlib

    return importlib.import_module(f"vitmusic.metrics.{module}")


def _f0(clip: ClipInput, side: str, opts: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """f0 track of one side, computed once per clip and shared by the pitch and notes metrics."""
    key = f"{side}_f0"
    if key not in clip.cache:
        audio = clip.ref_audio if side == "ref" else clip.gen_audio
        clip.cache[key] = _lazy("pitch").track_f0(audio, clip.sample_rate, backend=opts.get("pitch_backend", DEFAULT_PITCH_BACKEND))
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
    scores = dict(pitch.evaluate(None, clip.gen_audio, clip.sample_rate, ref_f0=ref_f0, est_f0=gen_f0))
    if clip.ref_f0 is not None:  # referee ceiling: the tracker on the reference audio vs the annotation
        ceiling = pitch.evaluate(None, clip.ref_audio, clip.sample_rate, ref_f0=ref_f0, est_f0=_f0(clip, "ref", opts))
        scores.update({"referee." + k: v for k, v in ceiling.items()})
    return scores


def _score_notes(clip, opts, art):
    notes = _lazy("notes")
    backend = opts.get("pitch_backend", DEFAULT_PITCH_BACKEND)

    def mono(side: str) -> np.ndarray:  # the monophonic transcriber (f0 track + onsets) of one side
        audio = clip.ref_audio if side == "ref" else clip.gen_audio
        return notes.transcribe(audio, clip.sample_rate, f0=_f0(clip, side, opts), backend=backend)

    return _lazy("ensemble").score_notes(clip, opts, art, mono)


def _score_multipitch(clip, opts, art):
    return _lazy("ensemble").score_multipitch(clip, opts, art)


def _score_chroma(clip, opts, art):
    return _lazy("chroma").evaluate(clip.ref_audio, clip.gen_audio, clip.sample_rate)


def _score_emotion(clip, opts, art):
    return _lazy("emotion").evaluate(clip.ref_audio, clip.gen_audio, clip.sample_rate,
                                     estimator=opts.get("emotion_estimator"))


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
    "multipitch": MetricGroup("multipitch", SUMMARY_METRICS[20:24], score=_score_multipitch),
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
    opts: dict[str, Any] = {"pitch_backend": cfg.pitch_backend, "notes_backend": cfg.notes_backend}
    if cfg.emotion_model and "emotion" in {g.name for g in groups}:
        try:
            opts["emotion_estimator"] = _lazy("emotion").TransformersEmotionEstimator(cfg.emotion_model)
        except Exception as e:  # a wrong id / folder is the user's: one line
            raise ConfigError(f"cannot load --emotion-model {cfg.emotion_model}: {type(e).__name__}: {e}") from e
    reasons: dict[str, dict[str, int]] = {}  # metric group -> reason -> clips
    part_rows: list[dict] = []
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
        if ref is not None and cfg.annotations != "never":
            clip.n_voices = ref.n_voices
            clip.stem_f0s = [None if t is None else trim_annotations(t, None, duration_s)[0] for t in ref.stem_f0s or []]
            clip.stem_notes = [None if n is None else trim_annotations(None, n, duration_s)[1]
                               for n in ref.stem_notes or []]
            clip.stem_problems = list(ref.stem_problems)
        art = {} if len(artifacts) < cfg.n_plot_clips else None
        row: dict[str, Any] = {"clip_id": clip_id, "ref": str(ref_path), "gen": str(gen_path),
                               "duration_s": duration_s, "ref_duration_s": ref_n / cfg.sample_rate,
                               "gen_duration_s": gen_n / cfg.sample_rate}
        row.update({m: float("nan") for m in PER_CLIP_METRICS + REFEREE_METRICS})
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
            except _lazy("referees").MetricUndefinedError as e:  # null with the reason, not a failure
                reasons.setdefault(group.name, {}).setdefault(str(e), 0)
                reasons[group.name][str(e)] += 1
                continue
            except Exception as e:  # one clip's metric failure must not lose the other clips' results
                if cfg.strict:
                    raise
                notes.append(f"{clip_id}: {group.name} failed: {type(e).__name__}: {e}")
                why = reasons.setdefault(group.name, {})
                why[f"{type(e).__name__}: {e}"] = why.get(f"{type(e).__name__}: {e}", 0) + 1
                continue
            for name in group.names + tuple("referee." + n for n in group.names):
                if name in scores:
                    value = float(scores[name])
                    row[name] = value if math.isfinite(value) else float("nan")
        if art is not None:
            art.update(ref_audio=ref_audio, gen_audio=gen_audio, sample_rate=cfg.sample_rate)
            artifacts[clip_id] = art
        rows.append(row)
        midi = Path(gen_path).with_suffix(".mid")
        if midi.is_file() and ref is not None and clip.stem_notes:
            part_rows.extend(_score_parts(clip, ref, midi, notes))
    if not rows:
        raise DataError(f"nothing could be evaluated: all {len(jobs)} pair(s) failed to load "
                        f"(first: {failures[0]['reason']})")
    if any(g.needs_video for g in groups) and n_video == 0:
        notes.append("sync metrics skipped: no video found (give --videos DIR with files named like the clips)")
    for group_name, why in reasons.items():
        notes.extend(f"{group_name} undefined for {n} clip(s): {r}" for r, n in why.items()
                     if not any(w.endswith(f"{group_name} failed: {r}") for w in notes))
    from vitmusic.evaluation.report import build_summary

    summary = build_summary(rows, groups, embeds, cfg, failures, notes, pairing)
    for group_name, why in reasons.items():  # the reason next to each metric of the group
        for name in METRICS[group_name].names:
            summary["metrics"][name]["undefined_reasons"] = dict(why)
    if part_rows:
        from vitmusic.metrics import stats
        from vitmusic.metrics.parts import PART_METRICS

        summary["per_part"] = {m: stats.summarize([r[m] for r in part_rows]) for m in PART_METRICS}
    return EvalResult(rows, summary, artifacts, failures, notes, pairing.missing_gen, pairing.missing_ref,
                      part_rows)


def _score_parts(clip: ClipInput, ref: Reference, midi: Path, notes: list[str]) -> list[dict]:
    """per_part.csv rows of one clip: the generated MIDI's parts against their instrument-matched stems."""
    from vitmusic.data.urmp import INSTRUMENTS

    parts_mod = _lazy("parts")
    try:
        parts = parts_mod.read_parts(midi)
    except ValueError as e:
        notes.append(f"{clip.clip_id}: per-part scores skipped: {e}")
        return []
    programs = [INSTRUMENTS[c].gm_program if c in INSTRUMENTS else -1 for c in ref.instruments]
    return parts_mod.score_parts(clip.clip_id, parts, ref.instruments, programs, clip.stem_notes,
                                 clip.stem_f0s or [], clip.duration_s)


def run_evaluation(cfg: EvalConfig, out_dir: str | os.PathLike, *, progress: bool = True,
                   report: bool = True) -> EvalResult:
    """Evaluate and write ``per_clip.csv``, ``summary.json`` and (optionally) ``report.md`` + plots."""
    import json

    from vitmusic.atomic import atomic_write_text

    result = evaluate_dirs(cfg, progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from vitmusic.evaluation.report import write_per_clip_csv

    write_per_clip_csv(out / "per_clip.csv", result.rows)
    if result.parts:
        from vitmusic.evaluation.report import write_table_csv
        from vitmusic.metrics.parts import PART_COLUMNS

        write_table_csv(out / "per_part.csv", PART_COLUMNS, result.parts)
    atomic_write_text(out / "summary.json", json.dumps(result.summary, indent=2, allow_nan=False) + "\n")
    if report:
        from vitmusic.evaluation.report import write_report

        write_report(out, result)
    return result
