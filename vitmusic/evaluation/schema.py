"""The evaluation protocol's names and types: summary metrics, ``per_clip.csv`` columns, the inputs a metric
group scores, the run's arguments and result (the runner computes, the report writes; both read this)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ANNOTATION_POLICIES",
    "DEFAULT_PITCH_BACKEND",
    "CLIP_COLUMNS",
    "METRIC_GROUPS",
    "PER_CLIP_METRICS",
    "REFEREE_METRICS",
    "SET_LEVEL_METRICS",
    "SUMMARY_METRICS",
    "ClipInput",
    "ClipScorer",
    "EvalConfig",
    "EvalResult",
    "MetricGroup",
]

# the ``--metrics`` groups, in the order of the runner's registry (vitmusic.evaluation.runner.METRICS)
METRIC_GROUPS: tuple[str, ...] = ("tempo", "pitch", "notes", "chroma", "emotion", "sync", "multipitch", "fad")
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
    "multipitch.precision",
    "multipitch.recall",
    "multipitch.accuracy",
    "multipitch.chroma_accuracy",
    "fad",
)
SET_LEVEL_METRICS: tuple[str, ...] = ("fad",)
PER_CLIP_METRICS: tuple[str, ...] = tuple(m for m in SUMMARY_METRICS if m not in SET_LEVEL_METRICS)
# what the referee (tracker / transcriber) achieves on the reference audio against the annotations
REFEREE_METRICS: tuple[str, ...] = tuple(
    "referee." + m for m in SUMMARY_METRICS if m.split(".")[0] in ("pitch", "notes", "multipitch"))
# per_clip.csv columns ahead of the metric columns
CLIP_COLUMNS: tuple[str, ...] = ("clip_id", "ref", "gen", "duration_s", "ref_duration_s", "gen_duration_s")

# When URMP / manifest annotations replace the tracked reference f0 / transcribed reference notes:
# "solo" = single-voice pieces only (a monophonic tracker applied to an ensemble mix follows whichever voice
# dominates, so for ensembles both sides go through the same tracker/transcriber instead), "always", "never".
ANNOTATION_POLICIES: tuple[str, ...] = ("solo", "always", "never")
# single-voice f0 tracker of the pitch metrics: swift-f0 tracks the benchmark's stems about as well as pYIN
# (raw pitch accuracy 0.940 vs 0.953) at 1/8 of its time (eval/README.md, "f0 trackers")
DEFAULT_PITCH_BACKEND = "swift"


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
    n_voices: int = 1
    stem_f0s: list | None = None  # per stem (times_s, f0_hz) or None, for the ensemble metrics
    stem_notes: list | None = None  # per stem notes [M_k, 3] or None
    stem_problems: list = dataclasses.field(default_factory=list)

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


@dataclasses.dataclass
class EvalConfig:
    """Arguments of one evaluation run (also written to ``summary.json`` as ``config``)."""

    gen_dir: Path
    ref_dir: Path | None = None
    metrics: tuple[str, ...] = METRIC_GROUPS
    sample_rate: int = 22050
    videos_dir: Path | None = None
    urmp_root: Path | None = None
    manifest: Path | None = None
    pitch_backend: str = DEFAULT_PITCH_BACKEND  # measured on the benchmark stems: eval/README.md
    notes_backend: str = "auto"  # "auto": basic-pitch for ensembles, the f0-based transcriber for one voice
    emotion_model: str | None = None  # transformers audio model (hub id / folder) replacing the proxy
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
    parts: list[dict] = dataclasses.field(default_factory=list)  # per_part.csv rows (MIDI parts vs stems)
