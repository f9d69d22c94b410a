"""Batch evaluation: pair generated files with references, load them, score every pair, summarize.

The protocol (documented for users in ``docs/evaluation.md``):

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

Metric groups live in the registry (:mod:`vitmusic.evaluation.registry`; the built-in ones in
:mod:`vitmusic.evaluation.groups`): every registered group's metrics appear in ``per_clip.csv``,
``summary.json`` (with their definitions), the report and ``compare``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
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
    reference_beats,
    skyline_f0,
    trim_annotations,
    trim_pair,
    urmp_references,
)
from vitmusic.evaluation.registry import (  # noqa: F401  (re-exported: the metric registry)
    MetricGroup,
    metric_groups,
    per_clip_metrics,
    referee_metrics,
    register_metric_group,
    summary_metrics,
)
from vitmusic.evaluation.schema import (  # noqa: F401  (re-exported: the names and types of the protocol)
    ANNOTATION_POLICIES,
    CLIP_COLUMNS,
    DEFAULT_PITCH_BACKEND,
    ClipInput,
    EvalConfig,
    EvalResult,
)


def _lazy(module: str):
    import importlib

    return importlib.import_module(f"vitmusic.metrics.{module}")


def resolve_metrics(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """Turn ``"tempo,pitch"`` (group names or full metric names like ``notes.f1``) into group names.

    Raises:
        ConfigError: for an unknown name.
    """
    groups_by_name = metric_groups()
    if spec is None:
        return tuple(groups_by_name)
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    if not items:
        raise ConfigError("--metrics is empty")
    groups: list[str] = []
    for item in items:
        group = item if item in groups_by_name else next(
            (g.name for g in groups_by_name.values() if item in g.names), None)
        if group is None:
            raise ConfigError(f"unknown metric {item!r}; groups: {', '.join(groups_by_name)} (or a metric name "
                              "of one, e.g. notes.f1)")
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

    registry = metric_groups()
    groups = [registry[g] for g in resolve_metrics(None if cfg.metrics is None else list(cfg.metrics))]
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
    opts: dict[str, Any] = {"pitch_backend": cfg.pitch_backend, "notes_backend": cfg.notes_backend,
                            "beat_referee": cfg.beat_referee, "chord_referee": cfg.chord_referee}
    _check_referees(cfg)
    if cfg.emotion_model and "emotion" in {g.name for g in groups}:
        try:
            opts["emotion_estimator"] = _lazy("emotion").TransformersEmotionEstimator(cfg.emotion_model)
        except Exception as e:  # a wrong id / folder is the user's: one line
            raise ConfigError(f"cannot load --emotion-model {cfg.emotion_model}: {type(e).__name__}: {e}") from e
    elif cfg.emotion_referee == "vibenet":
        opts["emotion_estimator"] = _lazy("mood").VibeNetEstimator()  # loads on first use (null + reason if absent)
    referees_used: dict[str, dict[str, int]] = {}  # metric group -> referee -> clips
    if "fad" in {g.name for g in groups}:
        try:
            opts["fad_embedder"] = _lazy("fad").load_embedder(cfg.fad_embedding, layer=cfg.fad_layer)
        except Exception as e:  # a wrong name / id / folder is the user's: one line
            raise ConfigError(f"cannot load --fad-embedding {cfg.fad_embedding}: {type(e).__name__}: {e}") from e
    reasons: dict[str, dict[str, int]] = {}  # metric group -> reason -> clips
    used: dict[str, dict[str, int]] = {}  # metric group -> reference it used -> clips
    part_rows: list[dict] = []
    rows: list[dict] = []
    failures: list[dict] = []
    notes: list[str] = []
    artifacts: dict[str, dict] = {}
    n_video = 0
    embeds: dict[str, tuple[list, list]] = {g.name: ([], []) for g in groups if g.embed is not None}
    columns = per_clip_metrics() + referee_metrics()
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
        clip = _clip_input(cfg, clip_id, ref, ref_audio, gen_audio, videos)
        midi = Path(gen_path).with_suffix(".mid")
        clip.gen_midi = midi if midi.is_file() else None
        n_video += clip.video is not None
        art = {} if len(artifacts) < cfg.n_plot_clips else None
        row: dict[str, Any] = {"clip_id": clip_id, "piece": clip.piece, "ref": str(ref_path), "gen": str(gen_path),
                               "duration_s": clip.duration_s, "ref_duration_s": ref_n / cfg.sample_rate,
                               "gen_duration_s": gen_n / cfg.sample_rate}
        row.update(dict.fromkeys(columns, float("nan")))
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
                _count(reasons, group.name, str(e))
                continue
            except Exception as e:  # one clip's metric failure must not lose the other clips' results
                if cfg.strict:
                    raise
                notes.append(f"{clip_id}: {group.name} failed: {type(e).__name__}: {e}")
                _count(reasons, group.name, f"{type(e).__name__}: {e}")
                continue
            if group.name in clip.reference_used:
                _count(used, group.name, clip.reference_used[group.name])
            if group.name in clip.referee_used:
                _count(referees_used, group.name, clip.referee_used[group.name])
            for name in group.names + tuple("referee." + n for n in group.names):
                if name in scores:
                    value = float(scores[name])
                    row[name] = value if math.isfinite(value) else float("nan")
        if art is not None:
            art.update(ref_audio=ref_audio, gen_audio=gen_audio, sample_rate=cfg.sample_rate)
            artifacts[clip_id] = art
        rows.append(row)
        if clip.gen_midi is not None and ref is not None and clip.stem_notes:
            part_rows.extend(_score_parts(clip, ref, clip.gen_midi, notes))
        if ref is not None and "voice_recalls" in clip.cache:
            part_rows.extend(_voice_rows(clip, ref, cfg))
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
    for group in groups:  # the reason next to each metric of the group, and the reference it was scored against
        for name in group.names:
            if group.name in reasons:
                summary["metrics"][name]["undefined_reasons"] = dict(reasons[group.name])
            if group.name in used:
                summary["metrics"][name]["reference"] = dict(used[group.name])
            if group.name in referees_used:
                summary["metrics"][name]["referee"] = dict(referees_used[group.name])
            if group.name == "fad" and "fad_embedding" in opts and summary["metrics"][name].get("n"):
                summary["metrics"][name]["embedding"] = opts["fad_embedding"]  # never a distance without it
    if part_rows:
        from vitmusic.evaluation.report import summarize_parts

        summary.update(summarize_parts(part_rows, {r["clip_id"]: r["piece"] for r in rows}))
    return EvalResult(rows, summary, artifacts, failures, notes, pairing.missing_gen, pairing.missing_ref,
                      part_rows)


def _check_referees(cfg: EvalConfig) -> None:
    """An unknown referee name is the user's mistake: one line (a known one that is not installed makes its
    metrics null with the reason, clip by clip)."""
    from vitmusic.metrics.beat_trackers import BEAT_REFEREES
    from vitmusic.metrics.chords import CHORD_REFEREES
    from vitmusic.metrics.mood import EMOTION_REFEREES

    for what, value, known in (("beat referee", cfg.beat_referee, BEAT_REFEREES),
                               ("chord referee", cfg.chord_referee, CHORD_REFEREES),
                               ("emotion referee", cfg.emotion_referee, EMOTION_REFEREES)):
        if value not in known:
            raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(known)}")
    if cfg.emotion_model and cfg.emotion_referee != "proxy":
        raise ConfigError("--emotion-model and --emotion-referee both replace the emotion proxy: give one")


def _count(table: dict[str, dict[str, int]], group: str, key: str) -> None:
    table.setdefault(group, {}).setdefault(key, 0)
    table[group][key] += 1


def _clip_input(cfg: EvalConfig, clip_id: str, ref: Reference | None, ref_audio: np.ndarray,
                gen_audio: np.ndarray, videos: dict[str, Path]) -> ClipInput:
    """The scorers' view of one trimmed pair: which annotations apply (``cfg.annotations``), trimmed to it."""
    duration_s = len(gen_audio) / cfg.sample_rate
    n_voices = ref.n_voices if ref is not None else 1
    use = ref is not None and (cfg.annotations == "always" or (cfg.annotations == "solo" and n_voices == 1))
    f0, ann = trim_annotations(ref.f0 if use else None, ref.notes if use else None, duration_s)
    video, video_t0 = _video_for(videos, clip_id, ref)
    piece = (ref.piece if ref is not None and ref.piece else "") or clip_id
    clip = ClipInput(clip_id, ref_audio, gen_audio, cfg.sample_rate, f0, ann, video, video_t0, piece=piece)
    if cfg.annotations != "never":
        clip.ref_beats, clip.ref_beats_problem = reference_beats(ref, duration_s)
    if ref is not None:
        clip.n_voices = n_voices
    if ref is not None and cfg.annotations != "never":
        clip.stem_f0s = [None if t is None else trim_annotations(t, None, duration_s)[0] for t in ref.stem_f0s or []]
        clip.stem_notes = [None if n is None else trim_annotations(None, n, duration_s)[1]
                           for n in ref.stem_notes or []]
        clip.stem_problems = list(ref.stem_problems)
    if ref is not None:  # the per-part groups match MIDI parts to stems by program, as _score_parts does
        from vitmusic.data.instruments import find_instrument

        clip.stem_programs = [-1 if i is None or i.is_drum else i.gm_program
                              for i in map(find_instrument, ref.instruments)]
        clip.start_s = float(ref.t0)
    return clip


def _score_parts(clip: ClipInput, ref: Reference, midi: Path, notes: list[str]) -> list[dict]:
    """per_part.csv rows of one clip: the generated MIDI's parts against their instrument-matched stems."""
    parts_mod = _lazy("parts")
    try:
        parts = parts_mod.read_parts(midi)
    except ValueError as e:
        notes.append(f"{clip.clip_id}: per-part scores skipped: {e}")
        return []
    programs = _programs(ref.instruments)
    # a clip cut after its piece's start: notes at 0 s were carried over (vitmusic.metrics.parts' rule)
    return parts_mod.score_parts(clip.clip_id, parts, ref.instruments, programs, clip.stem_notes,
                                 clip.stem_f0s or [], clip.duration_s, carried_over=ref.t0 > 0)


def _voice_rows(clip: ClipInput, ref: Reference, cfg: EvalConfig) -> list[dict]:
    """per_part.csv per-voice rows of one ensemble clip: each voice in the generated audio and in the reference
    mix, and (``cfg.voice_ceilings``) the referee on each stem's own audio, cut and trimmed like the mix."""
    ensemble, parts_mod = _lazy("ensemble"), _lazy("parts")
    n_stems = len(clip.stem_notes or [])
    transcriptions = None
    if cfg.voice_ceilings and any(p is not None for p in ref.stem_audio):
        def load(k: int) -> np.ndarray | None:
            path = ref.stem_audio[k] if k < len(ref.stem_audio) else None
            if path is None:
                return None
            return load_mono(path, cfg.sample_rate, ref.t0, ref.t1)[: len(clip.gen_audio)]

        transcriptions = ensemble.stem_transcriptions(clip, load, n_stems)
    return parts_mod.voice_rows(clip.clip_id, ref.instruments, _programs(ref.instruments), clip.stem_notes,
                                clip.stem_f0s or [], clip.cache["voice_recalls"], transcriptions)


def _programs(instruments: Sequence[str]) -> list[int]:
    """Each stem's General MIDI program; -1 (matches no pitched track) for a drum kit or an unknown name."""
    from vitmusic.data.instruments import find_instrument

    infos = [find_instrument(c) for c in instruments]
    return [-1 if i is None or i.is_drum else i.gm_program for i in infos]


# what run_evaluation writes into its folder (and hidden temporaries); anything else there is not an evaluation's
_OUTPUT_NAMES = re.compile(r"(per_clip\.csv|per_part\.csv|summary\.json|failures\.json|report\.md|metrics\.png|"
                           r"(f0|pianoroll|beats)_\d+\.png|voices\.png|\..*)")


def check_evaluation_out(out_dir: str | os.PathLike) -> None:
    """``out_dir`` must be new, empty or an earlier evaluation's folder, since it is replaced as a whole.

    Raises:
        ConfigError: it holds a file or folder an evaluation does not write (one line naming one).
    """
    out = Path(out_dir)
    if not out.is_dir():
        return
    foreign = sorted(p.name for p in out.iterdir() if not _OUTPUT_NAMES.fullmatch(p.name))
    if foreign:
        raise ConfigError(f"--out {out} holds {foreign[0]!r}, which evaluate did not write: an evaluation replaces "
                          "its folder as a whole; choose a new or empty folder, or an earlier evaluation's")


def run_evaluation(cfg: EvalConfig, out_dir: str | os.PathLike, *, progress: bool = True,
                   report: bool = True) -> EvalResult:
    """Evaluate and write ``per_clip.csv``, ``summary.json``, ``failures.json`` and (optionally) ``report.md`` +
    plots into ``out_dir`` as a unit: the folder is built under a temporary name and swapped in whole
    (:func:`vitmusic.atomic.atomic_path`), so an earlier evaluation there is replaced entirely or, after a
    failure or an interrupt, left as it was.

    Raises:
        ConfigError: ``out_dir`` holds files an evaluation does not write (checked before scoring).
    """
    import json

    from vitmusic.atomic import atomic_path
    from vitmusic.evaluation.report import write_per_clip_csv

    check_evaluation_out(out_dir)
    result = evaluate_dirs(cfg, progress=progress)
    with atomic_path(out_dir, is_dir=True) as out:
        write_per_clip_csv(out / "per_clip.csv", result.rows)
        if result.parts:
            from vitmusic.evaluation.report import write_table_csv
            from vitmusic.metrics.parts import PART_COLUMNS

            write_table_csv(out / "per_part.csv", PART_COLUMNS, result.parts)
        (out / "summary.json").write_text(json.dumps(result.summary, indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")
        (out / "failures.json").write_text(json.dumps(result.failures, indent=1) + "\n", encoding="utf-8")
        if report:
            from vitmusic.evaluation.report import write_report

            write_report(out, result)
    return result
