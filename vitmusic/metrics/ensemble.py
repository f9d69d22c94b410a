"""Scoring an ensemble against every stem's annotations: multi-pitch, polyphonic notes, referee ceilings.

Used by the evaluate runner; works on its clip object by attribute (``ref_audio``, ``gen_audio``,
``sample_rate``, ``duration_s``, ``cache``, ``n_voices``, ``stem_f0s``, ``stem_notes``, ``stem_problems``),
so this module imports nothing outside :mod:`vitmusic.metrics`.

- **multipitch**: the union of all stems' ``F0s`` (:func:`multipitch.union_f0`) vs the multi-f0 of the
  generated audio from the polyphonic referee (basic-pitch). Undefined without F0s annotations.
- **notes**: all stems' ``Notes`` (unisons merged, :func:`union_notes`) vs the notes transcribed from the
  generated audio: by basic-pitch when the piece has more than one voice (or ``notes_backend=
  "basic-pitch"``), by the monophonic f0-based transcriber for a single voice (``"mono"``).
- **referee ceilings** (``referee.<metric>``): the same referee run on the *reference* audio and scored
  against the same annotations -- what a perfect generator (a copy of the reference) would get, so the gap
  between a score and its ceiling is the generator's, not the referee's.

A metric that cannot be computed for a clip raises :class:`MetricUndefinedError` with the reason (missing
or malformed stem annotation, audio too short for the transcriber, referee not installed); the runner
reports it as null with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vitmusic.metrics import multipitch
from vitmusic.metrics import notes as notes_mod
from vitmusic.metrics.referees import MetricUndefinedError, basic_pitch

REFEREE_PREFIX = "referee."
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


def _stem_annotations(clip: Any, kind: str) -> list:
    stems = getattr(clip, f"stem_{kind}", None)
    label = {"f0s": "F0s", "notes": "Notes"}[kind]
    if not stems:
        raise MetricUndefinedError(f"no {label} annotations for this clip (give --urmp or --manifest)")
    problems = [p for p in (getattr(clip, "stem_problems", None) or []) if label in p]
    if problems:
        raise MetricUndefinedError(problems[0])
    missing = [k + 1 for k, s in enumerate(stems) if s is None]
    if missing:
        raise MetricUndefinedError(f"stem {missing[0]} has no {label} annotation, so the union of the stems "
                                   "would be incomplete")
    return stems


def _with_ceiling(scores: Mapping[str, float], ceiling: Callable[[], Mapping[str, float]]) -> dict:
    out = dict(scores)
    try:
        out.update({REFEREE_PREFIX + k: v for k, v in ceiling().items()})
    except MetricUndefinedError:
        pass  # the generated side's score stands; its ceiling is then undefined (nan)
    return out


def score_multipitch(clip: Any, opts: Mapping[str, Any], art: dict | None) -> dict:
    """``multipitch.*`` of the generated audio against the union of the stems' F0s, plus ceilings."""
    f0s = _stem_annotations(clip, "f0s")
    ref_t, ref_f = multipitch.union_f0(f0s, end_s=clip.duration_s)
    _, (gen_t, gen_f) = poly_analysis(clip, "gen")

    def ceiling():
        _, (t, f) = poly_analysis(clip, "ref")
        return multipitch.evaluate(ref_t, ref_f, t, f)

    return _with_ceiling(multipitch.evaluate(ref_t, ref_f, gen_t, gen_f), ceiling)


def use_polyphonic(clip: Any, opts: Mapping[str, Any]) -> bool:
    backend = opts.get("notes_backend", "auto")
    if backend not in NOTES_BACKENDS:
        raise ValueError(f"unknown notes backend {backend!r}; choose one of {', '.join(NOTES_BACKENDS)}")
    return backend == "basic-pitch" or (backend == "auto" and int(getattr(clip, "n_voices", 1) or 1) > 1)


def score_notes(clip: Any, opts: Mapping[str, Any], art: dict | None,
                mono: Callable[[str], np.ndarray]) -> dict:
    """``notes.*``: annotations (all stems) when the clip has them, else the referee on the reference audio.

    Args:
        mono: ``side -> notes [N, 3]``, the monophonic transcriber (f0 track + onsets) of ``"ref"``/``"gen"``.
    """
    poly = use_polyphonic(clip, opts)

    def transcribe(side: str) -> np.ndarray:
        return poly_analysis(clip, side)[0] if poly else np.asarray(mono(side), float).reshape(-1, 3)

    stems = getattr(clip, "stem_notes", None)
    annotated = bool(stems) and (poly or getattr(clip, "ref_notes", None) is not None)
    if annotated:
        ref = union_notes(_stem_annotations(clip, "notes"))
    else:
        ref = transcribe("ref")
    est = transcribe("gen")
    if art is not None:
        art["ref_notes"], art["gen_notes"] = ref, est
    scores = notes_mod.evaluate(ref, est)
    if not annotated:
        return dict(scores)
    return _with_ceiling(scores, lambda: notes_mod.evaluate(ref, transcribe("ref")))
