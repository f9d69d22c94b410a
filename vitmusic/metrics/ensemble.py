"""Scoring an ensemble against every stem's annotations: multi-pitch, polyphonic notes, referee ceilings.

Used by the evaluate runner; works on its clip object by attribute (``ref_audio``, ``gen_audio``,
``sample_rate``, ``duration_s``, ``cache``, ``n_voices``, ``stem_f0s``, ``stem_notes``, ``stem_problems``),
so this module imports nothing outside :mod:`vitmusic.metrics`.

- **multipitch**: the union of all stems' ``F0s`` (:func:`multipitch.union_f0`) vs the multi-f0 of the
  generated audio from the polyphonic referee (basic-pitch). Without a complete F0s annotation (a stem
  missing or malformed) the reference is basic-pitch's multi-f0 of the reference audio instead.
- **notes**: all stems' ``Notes`` (unisons merged, :func:`union_notes`) vs the notes transcribed from the
  generated audio: by basic-pitch when the piece has more than one voice (or ``notes_backend=
  "basic-pitch"``), by the monophonic f0-based transcriber for a single voice (``"mono"``).
- **referee ceilings** (``referee.<metric>``): the same referee run on the *reference* audio and scored
  against the same annotations -- what a perfect generator (a copy of the reference) would get, so the gap
  between a score and its ceiling is the generator's, not the referee's.

Which reference was used is recorded in ``clip.reference_used`` ("annotations" or "reference audio (why)").
A metric that cannot be computed for a clip raises :class:`MetricUndefinedError` with the reason (audio too
short for the transcriber, referee not installed); the runner reports it as null with that reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vitmusic.errors import VitmusicError
from vitmusic.metrics import multipitch
from vitmusic.metrics import notes as notes_mod
from vitmusic.metrics.referees import MetricUndefinedError, basic_pitch

REFEREE_PREFIX = "referee."
#: the notes metrics :func:`score_notes` adds to those of :func:`vitmusic.metrics.notes.evaluate`
NOTE_METRIC_NAMES: tuple[str, ...] = ("notes.voice_recall",)
NOTES_BACKENDS: tuple[str, ...] = ("auto", "basic-pitch", "mono")
#: unison notes of two stems (same semitone, onsets this close) count once in the union
UNISON_ONSET_S = 0.05


def union_notes(stem_notes: list[np.ndarray]) -> np.ndarray:
    """All stems' notes ``[N, 3]`` sorted by onset, with unisons (same semitone, onsets within
    :data:`UNISON_ONSET_S`) merged into the longer note: a mix carries a unison as one note."""
    arr = np.concatenate([np.asarray(n, float).reshape(-1, 3) for n in stem_notes] or [np.zeros((0, 3))], 0)
    if arr.shape[0] < 2:
        return arr
    arr = arr[np.lexsort((-arr[:, 2], arr[:, 0]))]
    midi = np.round(12 * np.log2(arr[:, 1] / 440.0))
    keep = np.ones(len(arr), bool)
    for i in range(len(arr)):
        if not keep[i]:
            continue
        j = i + 1
        while j < len(arr) and arr[j, 0] - arr[i, 0] <= UNISON_ONSET_S:
            if keep[j] and midi[j] == midi[i]:
                keep[j] = False
            j += 1
    return arr[keep]


def poly_analysis(clip: Any, side: str) -> tuple[np.ndarray, tuple[np.ndarray, list]]:
    """basic-pitch notes and multi-f0 of one side of a clip, computed once and shared (``clip.cache``)."""
    key = f"{side}_poly"
    if key not in clip.cache:
        audio = clip.ref_audio if side == "ref" else clip.gen_audio
        try:
            clip.cache[key] = basic_pitch().analyze(audio, clip.sample_rate)
        except ValueError as e:  # too short / silent-length input: the transcriber has nothing to read
            clip.cache[key] = MetricUndefinedError(f"{'reference' if side == 'ref' else 'generated'} audio "
                                                   f"unusable for basic-pitch: {e}")
        except MetricUndefinedError as e:
            clip.cache[key] = e
    value = clip.cache[key]
    if isinstance(value, Exception):
        raise value
    return value


def stem_transcriptions(clip: Any, load_stem: Callable[[int], np.ndarray | None], n_stems: int) -> list:
    """The referee's notes on each stem's own audio (the per-voice ceilings), computed once per clip
    (``clip.cache["stem_notes"]``).

    Args:
        load_stem: ``k -> audio [N]`` of stem ``k`` at ``clip.sample_rate`` (None: the stem has no audio);
            an exception it raises becomes that stem's entry.

    Returns:
        per stem the notes ``[M, 3]``, None (no audio) or the exception that says why not (unreadable or
        too short audio, referee not installed).
    """
    cache = clip.cache.setdefault("stem_notes", {})
    for k in range(n_stems):
        if k in cache:
            continue
        try:
            audio = load_stem(k)
            if audio is None:
                cache[k] = None
                continue
            referee = basic_pitch()
            cache[k] = referee.notes_from(referee.posteriors(audio, clip.sample_rate))
        except ValueError as e:
            cache[k] = MetricUndefinedError(f"stem {k + 1} audio unusable for basic-pitch: {e}")
        except (VitmusicError, OSError) as e:  # an unreadable stem file (DataError), no referee installed
            cache[k] = e
    return [cache[k] for k in range(n_stems)]


def stem_annotations(clip: Any, kind: str) -> tuple[list | None, str]:
    """Every stem's ``kind`` (``"f0s"`` / ``"notes"``) annotation, or ``(None, why not)``.

    Only a complete set counts: the union of some of the voices would score the missing voices as wrong
    notes, so a clip with a missing or malformed stem annotation is scored against its reference audio.
    """
    stems = getattr(clip, f"stem_{kind}", None)
    label = {"f0s": "F0s", "notes": "Notes"}[kind]
    problems = [p for p in (getattr(clip, "stem_problems", None) or []) if label in p]
    if problems:
        return None, problems[0]
    if not stems or all(s is None for s in stems):
        return None, f"no {label} annotations"
    missing = [k + 1 for k, s in enumerate(stems) if s is None]
    if missing:
        return None, f"stem {missing[0]} has no {label} annotation"
    return stems, ""


def _used(clip: Any, group: str, why_not: str) -> None:
    """Record which reference ``group`` was scored against (see :mod:`vitmusic.evaluation.groups`)."""
    record = getattr(clip, "reference_used", None)
    if record is not None:
        record[group] = "annotations" if not why_not else f"reference audio ({why_not})"


def _with_ceiling(scores: Mapping[str, float], ceiling: Callable[[], Mapping[str, float]]) -> dict:
    out = dict(scores)
    try:
        out.update({REFEREE_PREFIX + k: v for k, v in ceiling().items()})
    except MetricUndefinedError:
        pass  # the generated side's score stands; its ceiling is then undefined (nan)
    return out


def score_multipitch(clip: Any, opts: Mapping[str, Any], art: dict | None) -> dict:
    """``multipitch.*`` of the generated audio against the union of the stems' F0s (plus ceilings), or, without
    a complete F0s annotation, against basic-pitch's multi-f0 of the reference audio."""
    f0s, why_not = stem_annotations(clip, "f0s")
    _, (gen_t, gen_f) = poly_analysis(clip, "gen")
    _used(clip, "multipitch", why_not)
    if f0s is None:
        _, (ref_t, ref_f) = poly_analysis(clip, "ref")
        return dict(multipitch.evaluate(ref_t, ref_f, gen_t, gen_f))
    ref_t, ref_f = multipitch.union_f0(f0s, end_s=clip.duration_s)

    def ceiling():
        _, (t, f) = poly_analysis(clip, "ref")
        return multipitch.evaluate(ref_t, ref_f, t, f)

    return _with_ceiling(multipitch.evaluate(ref_t, ref_f, gen_t, gen_f), ceiling)


def use_polyphonic(clip: Any, opts: Mapping[str, Any]) -> bool:
    backend = opts.get("notes_backend", "auto")
    if backend not in NOTES_BACKENDS:
        raise ValueError(f"unknown notes backend {backend!r}; choose one of {', '.join(NOTES_BACKENDS)}")
    return backend == "basic-pitch" or (backend == "auto" and int(getattr(clip, "n_voices", 1) or 1) > 1)


def unison_doubled(voices: list[np.ndarray], *, onset_tolerance_s: float = 0.05,
                   pitch_tolerance_cents: float = 50.0) -> list[np.ndarray]:
    """Per voice, ``bool [N_v]``: which of its notes another voice doubles in unison (an onset within
    ``onset_tolerance_s`` at a pitch within ``pitch_tolerance_cents``: the note matching's own tolerances).

    No audio metric can say which voice played such a note: removing either voice leaves it sounding.
    """
    notes_of = [np.asarray(v, float).reshape(-1, 3) for v in voices]
    out = []
    for k, mine in enumerate(notes_of):
        hit = np.zeros(len(mine), bool)
        for j, other in enumerate(notes_of):
            if j == k or not len(other) or not len(mine):
                continue
            close = np.abs(mine[:, None, 0] - other[None, :, 0]) <= onset_tolerance_s
            with np.errstate(divide="ignore", invalid="ignore"):
                cents = np.abs(1200.0 * np.log2(mine[:, None, 1] / other[None, :, 1]))
            hit |= (close & (cents <= pitch_tolerance_cents)).any(axis=1)
        out.append(hit)
    return out


def voice_recalls(voices: list[np.ndarray], ref_est: np.ndarray | None, gen_est: np.ndarray) -> list[dict]:
    """Per voice: which of its notes the referee finds in the reference and in the generated audio.

    Matching is on onsets and pitch only (:func:`notes.matched_reference`, 50 ms, 50 cents): offsets of
    legato strings and winds are where the referee is least sure, and the reference's own voices overlap.
    Notes that another voice doubles in unison (:func:`unison_doubled`) belong to no single voice and are left out
    of ``voice_recall`` (Bach10: 1.2-2.1 % of each voice's notes).

    Args:
        voices: each voice's annotated notes ``[N_v, 3]``.
        ref_est: the referee's notes on the reference audio (None: unknown, every note counts as heard).
        gen_est: the referee's notes on the generated audio.

    Returns:
        per voice ``{"n", "n_doubled", "n_heard", "recall_ref", "recall_gen", "voice_recall",
        "recall_ref_offset", "recall_gen_offset"}``: ``n_doubled`` notes doubled in unison by another voice,
        ``n_heard`` the other reference notes that the referee finds in the reference audio, ``recall_ref`` /
        ``recall_gen`` the shares of all ``n`` notes found in the reference / generated audio (``*_offset``: with
        offsets, as ``notes.recall``), ``voice_recall`` the share of the ``n_heard`` notes also found in the
        generated audio (nan when ``n_heard`` is 0). Shares of no notes are nan.
    """
    out = []
    voices = [np.asarray(v, float).reshape(-1, 3) for v in voices]
    for notes, doubled in zip(voices, unison_doubled(voices)):
        n = notes.shape[0]
        in_gen = notes_mod.matched_reference(notes, gen_est)
        in_ref = np.ones(n, bool) if ref_est is None else notes_mod.matched_reference(notes, ref_est)
        own = in_ref & ~doubled
        heard = int(own.sum())
        share = (lambda hit: float(hit.mean())) if n else (lambda hit: math.nan)
        out.append({"n": n, "n_doubled": int(doubled.sum()), "n_heard": heard,
                    "recall_ref": share(in_ref), "recall_gen": share(in_gen),
                    "voice_recall": float((in_gen & own).sum() / heard) if heard else math.nan,
                    "recall_gen_offset": share(notes_mod.matched_reference(notes, gen_est, offset_ratio=0.2)),
                    "recall_ref_offset": math.nan if ref_est is None else
                    share(notes_mod.matched_reference(notes, ref_est, offset_ratio=0.2))})
    return out


def voice_recall(per_voice: list[dict]) -> float:
    """``notes.voice_recall``: the voices' ``voice_recall`` weighted by the notes each plays alone
    (``n - n_doubled``; voices the referee cannot hear at all in the reference are left out); nan when no voice
    is left.

    Removing a voice that plays a share ``s`` of the notes no other voice doubles lowers it by about ``s``
    whatever the referee's recall on that instrument, as multipitch recall falls with the voice's share of the
    frames.
    """
    rows = [v for v in per_voice if v["n_heard"] > 0]
    weights = [v["n"] - v.get("n_doubled", 0) for v in rows]
    weight = sum(weights)
    return float(sum(w * v["voice_recall"] for w, v in zip(weights, rows)) / weight) if weight else math.nan


def score_notes(clip: Any, opts: Mapping[str, Any], art: dict | None,
                mono: Callable[[str], np.ndarray]) -> dict:
    """``notes.*``: annotations (all stems) when the clip has them, else the referee on the reference audio.

    ``notes.voice_recall`` (:func:`voice_recall`) is computed per stem; the per-voice figures are kept in
    ``clip.cache["voice_recalls"]`` for the per-voice rows of ``per_part.csv``.

    Args:
        mono: ``side -> notes [N, 3]``, the monophonic transcriber (f0 track + onsets) of ``"ref"``/``"gen"``.
    """
    poly = use_polyphonic(clip, opts)

    def transcribe(side: str) -> np.ndarray:
        return poly_analysis(clip, side)[0] if poly else np.asarray(mono(side), float).reshape(-1, 3)

    stems, why_not = stem_annotations(clip, "notes")
    if stems is not None and not poly and getattr(clip, "ref_notes", None) is None:
        stems, why_not = None, "annotations not used for this clip (--annotations)"
    annotated = stems is not None
    _used(clip, "notes", why_not)
    ref = union_notes(stems) if annotated else transcribe("ref")
    est = transcribe("gen")
    if art is not None:
        art["ref_notes"], art["gen_notes"] = ref, est
    scores = dict(notes_mod.evaluate(ref, est))
    if not annotated:  # the reference is the referee's transcription: every one of its notes is heard
        scores["notes.voice_recall"] = voice_recall(voice_recalls([ref], None, est))
        return scores
    try:
        ref_est = transcribe("ref")
    except MetricUndefinedError:
        scores["notes.voice_recall"] = math.nan  # nothing known of what the referee hears in the reference
        return scores
    per_voice = voice_recalls([np.asarray(s, float).reshape(-1, 3) for s in stems], ref_est, est)
    if poly:  # per-voice rows are about the polyphonic referee (a single voice has its ceiling already)
        clip.cache["voice_recalls"] = per_voice
    scores["notes.voice_recall"] = voice_recall(per_voice)
    return _with_ceiling(scores, lambda: notes_mod.evaluate(ref, ref_est))
