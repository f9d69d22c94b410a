"""The evaluation protocol's types: ``per_clip.csv``'s leading columns, the inputs a metric group scores, the
run's arguments and result (the runner computes, the report writes; both read this). The metrics themselves
are declared in the registry (:mod:`vitmusic.evaluation.registry`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

__all__ = [
    "ANNOTATION_POLICIES",
    "DEFAULT_BEAT_REFEREE",
    "DEFAULT_CHORD_REFEREE",
    "DEFAULT_EMOTION_REFEREE",
    "DEFAULT_PITCH_BACKEND",
    "CLIP_COLUMNS",
    "ClipInput",
    "EvalConfig",
    "EvalResult",
]

# per_clip.csv columns ahead of the metric columns
CLIP_COLUMNS: tuple[str, ...] = ("clip_id", "piece", "ref", "gen", "duration_s", "ref_duration_s", "gen_duration_s")

# When the URMP / manifest melody annotation is the reference of the single-voice pitch metrics: "solo" =
# single-voice pieces only (for ensembles pitch.* is then undefined: a monophonic tracker on a mix follows
# whichever voice dominates, and the ensemble answer is multipitch.*), "always" (ensembles: the top voice of the
# stems' F0s, with its referee ceiling), "never" (the tracker on the reference audio, single voices only).
# The ensemble metrics (notes, multipitch) use every stem's annotations whenever they are complete.
ANNOTATION_POLICIES: tuple[str, ...] = ("solo", "always", "never")
# single-voice f0 tracker of the pitch metrics: swift-f0 tracks the benchmark's stems about as well as pYIN
# (raw pitch accuracy 0.940 vs 0.953) at 1/8 of its time (docs/evaluation.md, "f0 trackers")
DEFAULT_PITCH_BACKEND = "swift"
# referees of the rhythm / harmony / emotion metrics (docs/evaluation.md "Trained referees"): the defaults are in the
# default (MIT-compatible) install; BeatNet (CC BY), madmom (models CC BY-NC-SA) and vibenet (GPL) are optional
DEFAULT_BEAT_REFEREE = "librosa"
DEFAULT_CHORD_REFEREE = "template"
DEFAULT_EMOTION_REFEREE = "proxy"


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
    piece: str = ""  # the piece the clip belongs to (the unit of the intervals); the clip id when unknown
    # metric group -> which reference it used for this clip ("annotations", "reference audio", ...)
    reference_used: dict = dataclasses.field(default_factory=dict)
    # annotated beats [B, 2] (time_s, position in bar; 1 = downbeat, 0 = unknown), or None; why they are unusable
    ref_beats: np.ndarray | None = None
    ref_beats_problem: str = ""
    # metric group -> the referee that scored it ("name version (settings; licence)")
    referee_used: dict = dataclasses.field(default_factory=dict)
    gen_midi: Path | None = None  # the generated side's MIDI (one track per part) next to its audio, if any
    stem_programs: list = dataclasses.field(default_factory=list)  # GM program per stem (-1: none / drums)
    start_s: float = 0.0  # the clip's start within its piece (> 0: notes at 0 s were carried over from before)

    @property
    def duration_s(self) -> float:
        return len(self.gen_audio) / float(self.sample_rate)


@dataclasses.dataclass
class EvalConfig:
    """Arguments of one evaluation run (also written to ``summary.json`` as ``config``)."""

    gen_dir: Path
    ref_dir: Path | None = None
    metrics: tuple[str, ...] | None = None  # metric groups; None = every registered group
    sample_rate: int = 22050
    videos_dir: Path | None = None
    urmp_root: Path | None = None
    manifest: Path | None = None
    pitch_backend: str = DEFAULT_PITCH_BACKEND  # measured on the benchmark stems: docs/evaluation.md
    notes_backend: str = "auto"  # "auto": basic-pitch for ensembles, the f0-based transcriber for one voice
    # the referee on each stem's own audio (per-voice ceilings in per_part.csv) when stems have audio; it costs
    # one referee run per stem
    voice_ceilings: bool = True
    emotion_model: str | None = None  # transformers audio model (hub id / folder) replacing the proxy
    beat_referee: str = DEFAULT_BEAT_REFEREE  # rhythm metrics: librosa, beatnet or madmom
    chord_referee: str = DEFAULT_CHORD_REFEREE  # harmony metrics: template or madmom
    emotion_referee: str = DEFAULT_EMOTION_REFEREE  # emotion metrics: proxy or vibenet
    fad_embedding: str = "mel-stats"  # kid / fad / fad_inf embedding: fadtk name, hub id or folder
    fad_layer: int | None = None  # hidden-state layer of a transformers fad_embedding (None: its default)
    annotations: str = "solo"
    n_boot: int = 1000
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
    parts: list[dict] = dataclasses.field(default_factory=list)  # per_part.csv rows (MIDI parts, voices vs stems)
