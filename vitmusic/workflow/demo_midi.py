"""The demo's MIDI path: video -> notes (trained transcription head) -> MIDI -> audio, vs a shuffled video.

Stages (each a function the demo times; a rerun reuses what is finished)::

    features   the frozen encoder (``small-vit``, 96x96 pixels per performer, 30 Hz) on every clip's
               performer slots, into the shared feature cache       embeds [P, S, D] per clip
    train      the transcription head (``configs/tiny-midi.yaml`` + :data:`MIDI_OVERRIDES`)
    render     the test clips decoded with their own video and with the video of a clip of another test
               piece (the control), notes -> MIDI -> audio (FluidSynth + a GM soundfont when installed,
               the built-in synthesizer otherwise): ``midi/<variant>/generated/<clip_id>.{wav,mid}``
    evaluate   the rendered audio against the manifest's annotations through the evaluation runner
               (``midi/<variant>/eval``), plus the decoded notes themselves scored per clip against the
               annotated notes (``transcription.notes.*``: onset within 50 ms, pitch within 50 cents)

The onset threshold of the decoding is chosen on the validation pieces (a small grid), never on the test pieces.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from vitmusic.atomic import atomic_write_text

# the figures the report leads with, in this order; names absent from a summary are skipped
HEADLINE_METRICS: tuple[str, ...] = (
    "transcription.notes.f1_no_offset",
    "transcription.notes.f1",
    "notes.f1_no_offset",
    "multipitch.accuracy",
    "multipitch.chroma_accuracy",
    "chroma.cosine",
    "tempo.p_score",
)
# evaluation-runner groups for the rendered audio; groups the installed runner lacks are dropped
MIDI_EVAL_GROUPS: tuple[str, ...] = ("notes", "multipitch", "chroma", "tempo")
TRANSCRIPTION_METRICS: tuple[str, ...] = tuple(
    f"transcription.{m}" for m in ("notes.precision", "notes.recall", "notes.f1", "notes.f1_no_offset"))
ONSET_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7, 0.8, 0.9)


@dataclasses.dataclass(frozen=True)
class MidiSettings:
    """The MIDI path's model and protocol (sizes measured to fit the demo's time bound on 2 CPU cores)."""

    encoder: str = "small-vit"
    steps: int = 1500
    lr: float = 0.003
    batch_size: int = 8
    sample_rate: int = 22050  # rendered audio; the evaluation resamples to 22.05 kHz anyway
    video_clips: int = 4  # test clips muxed into OUT/videos per variant
    plot_clips: int = 2
    seed: int = 0


def midi_config_path() -> Path:
    return Path(__file__).resolve().parents[2] / "configs" / "tiny-midi.yaml"


def midi_overrides(manifest: Path, work: Path, s: MidiSettings, synth: str) -> list[str]:
    return [f"data.manifest={manifest}", f"extract.cache_dir={work / 'cache'}",
            f"train.output_dir={work / 'run'}", f"train.max_steps={s.steps}", "train.log_with=none",
            f"train.eval_every={max(1, s.steps // 4)}", f"train.save_every={s.steps}", f"train.lr={s.lr}",
            f"train.batch_size={s.batch_size}", f"train.warmup_steps={max(1, s.steps // 20)}",
            f"train.seed={s.seed}", f"encoder.name={s.encoder}", f"transcription.synth={synth}",
            f"transcription.sample_rate={s.sample_rate}"]


def available_synth() -> tuple[str, str]:
    """``("fluidsynth", soundfont)`` when FluidSynth and a GM soundfont are installed, else ``("builtin", "")``."""
    from vitmusic.errors import ConfigError
    from vitmusic.generators.midi.export import check_fluidsynth

    for sf2 in ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2", None):
        if sf2 is not None and not Path(sf2).is_file():
            continue
        try:
            return "fluidsynth", check_fluidsynth(sf2)
        except ConfigError:
            return "builtin", ""
    return "builtin", ""


def build_features(config, progress: bool):
    """Frozen encoder over every clip into the cache, and the transcription task on it."""
    from vitmusic.training.tasks.transcription import build_task

    return build_task(config, progress=progress)


def train_head(config, task, progress: bool) -> Path:
    """Train the head unless ``RUN/final`` exists (then load its weights); returns ``RUN/final``."""
    from vitmusic.generators.midi.transcription import load_head
    from vitmusic.runs import FINAL_DIR, WEIGHTS_NAME
    from vitmusic.training.loop import train

    final = Path(config.train.output_dir) / FINAL_DIR
    if (final / WEIGHTS_NAME).is_file():
        task.head.load_state_dict(load_head(final).state_dict())
        return final
    return train(config, task, progress=progress)


def _clip_scores(ref_parts, est_parts, start_s: float) -> dict[str, float]:
    """Note scores of one clip: the mean over its parts with reference notes (carried-over notes left out)."""
    from vitmusic.metrics import notes as notes_metrics

    per: dict[str, list[float]] = {m: [] for m in notes_metrics.METRIC_NAMES}
    for ref, est in zip(ref_parts, est_parts):
        ref = np.asarray(ref, dtype=np.float64).reshape(-1, 3)
        ref, est = ref[ref[:, 2] > 0], np.asarray(est, dtype=np.float64).reshape(-1, 3)
        if start_s > 0:  # a note sounding from the clip's first step started before the cut
            ref, est = ref[ref[:, 0] > 1e-6], est[est[:, 0] > 1e-6]
        if len(ref):
            for k, v in notes_metrics.evaluate(ref, est).items():
                per[k].append(v)
    return {f"transcription.{k}": _mean_defined(v) for k, v in per.items()}


def _mean_defined(values: list[float]) -> float:
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def decode_clips(task, split: str, *, donors: dict[str, str] | None = None) -> dict[str, list[np.ndarray]]:
    """``{clip_id: per-part notes [N, 3] (onset_s from the clip start, f0_hz, duration_s)}`` of a split.

    ``donors`` maps a clip to the clip whose video embeddings it gets instead of its own (the control).
    """
    import torch

    from vitmusic.generators.midi.transcription import decode_parts
    from vitmusic.training.tasks.transcription import collate_parts, thresholds

    ds = task.split_dataset(split, donors)
    head = task.head.eval()
    out: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for a in range(0, len(ds), 8):
            batch = collate_parts([ds[i] for i in range(a, min(a + 8, len(ds)))])
            probs = head.predict(batch["embeds"], batch["mask"], batch["instruments"])
            for b, cid in enumerate(batch["clip_id"]):
                clip = task.clips[cid]
                P = len(clip["instruments"])
                duration_s = float(clip["end_s"]) - float(clip["start_s"])
                parts = decode_parts({k: v[b, :P] for k, v in probs.items()}, batch["mask"][b, :P].numpy(),
                                     rate_hz=task.config.encoder.rate_hz, min_midi=head.min_midi,
                                     **thresholds(task.config))
                notes = []
                for est, _ in parts:  # a note may not outlast the clip
                    est = est[est[:, 0] < duration_s].copy()
                    est[:, 2] = np.minimum(est[:, 2], duration_s - est[:, 0])
                    notes.append(est)
                out[cid] = notes
    return out


def score_clips(task, decoded: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    return {cid: _clip_scores(task.clips[cid]["notes"], parts, float(task.clips[cid]["start_s"]))
            for cid, parts in decoded.items()}


def choose_onset_threshold(task) -> dict[float, float]:
    """Set ``transcription.onset_threshold`` to the best of :data:`ONSET_THRESHOLDS` on the validation split."""
    tc = task.config.transcription
    f1 = {}
    for thr in ONSET_THRESHOLDS:
        tc.onset_threshold = thr
        per = score_clips(task, decode_clips(task, task.config.data.val_split))
        mean = _mean_defined([v["transcription.notes.f1_no_offset"] for v in per.values()])
        f1[thr] = mean if math.isfinite(mean) else -1.0
    tc.onset_threshold = max(f1, key=f1.get)
    return f1


def render_split(task, work: Path, variant: str, donors: dict[str, str] | None, synth: str,
                 soundfont: str) -> dict[str, dict[str, float]]:
    """Decode, write MIDI and audio per test clip into ``work/<variant>/generated``; per-clip note scores."""
    from vitmusic.data.audio import write_audio
    from vitmusic.generators.midi.export import notes_to_midi, render_midi, write_midi

    cfg = task.config
    gen = work / variant / "generated"
    gen.mkdir(parents=True, exist_ok=True)
    decoded = decode_clips(task, cfg.data.test_split, donors=donors)
    for cid, parts in decoded.items():
        clip = task.clips[cid]
        codes = list(clip["instruments"])
        pm = notes_to_midi(parts, codes, velocities=[np.full(len(p), 0.8) for p in parts])
        write_midi(pm, gen / f"{cid}.mid")
        duration_s = float(clip["end_s"]) - float(clip["start_s"])
        y = render_midi(pm, cfg.transcription.sample_rate, duration_s, synth=synth, soundfont=soundfont or None,
                        instruments=codes, seed=cfg.generate.seed)
        write_audio(gen / f"{cid}.wav", y, cfg.transcription.sample_rate, subtype="PCM_16")
    scores = score_clips(task, decoded)
    rows = [{"clip_id": cid, **{m: v for m, v in s.items()}} for cid, s in scores.items()]
    _write_csv(work / variant / "transcription.csv", ["clip_id", *TRANSCRIPTION_METRICS], rows)
    return scores


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in columns})
    atomic_write_text(path, buf.getvalue())


def read_transcription_csv(path: Path) -> dict[str, dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["clip_id"]: {k: float(v) for k, v in r.items() if k != "clip_id"} for r in csv.DictReader(f)}


def evaluate_variant(work: Path, variant: str, manifest: Path, n_boot: int, plot_clips: int,
                     progress: bool) -> Path:
    """The evaluation runner on the rendered audio, references and annotations from the manifest."""
    from vitmusic.evaluation.runner import METRICS, EvalConfig, resolve_metrics, run_evaluation

    groups = [g for g in MIDI_EVAL_GROUPS if g in METRICS]
    cfg = EvalConfig(gen_dir=work / variant / "generated", manifest=manifest, metrics=resolve_metrics(groups),
                     n_boot=n_boot, n_plot_clips=plot_clips)
    out = work / variant / "eval"
    run_evaluation(cfg, out, progress=progress)
    return out


def transcription_rows(per_clip: dict[str, dict[str, dict[str, float]]], baseline: str,
                       n_boot: int) -> list[dict[str, Any]]:
    """Result rows (``vitmusic.workflow.results`` columns) of the decoded notes' scores, with CIs and paired
    differences against ``baseline`` over the clips both variants share."""
    from vitmusic.metrics.stats import paired_difference, summarize

    rows = []
    clips = sorted(per_clip[baseline])
    for variant, scores in per_clip.items():
        for m in TRANSCRIPTION_METRICS:
            x = np.array([scores.get(c, {}).get(m, math.nan) for c in clips], float)
            s = summarize(x, n_boot=n_boot)
            row = {"variant": variant, "system": variant, "metric": m,
                   "mean": math.nan if s["mean"] is None else s["mean"],
                   "ci95_lo": _f(s["ci95"][0]), "ci95_hi": _f(s["ci95"][1]), "n": s["n"],
                   "diff": math.nan, "diff_ci95_lo": math.nan, "diff_ci95_hi": math.nan,
                   "p_wilcoxon": math.nan, "n_paired": 0}
            if variant != baseline:
                base = np.array([per_clip[baseline][c].get(m, math.nan) for c in clips], float)
                d = paired_difference(base, x, n_boot=n_boot)
                row.update(diff=d["mean_diff"], diff_ci95_lo=d["ci95"][0], diff_ci95_hi=d["ci95"][1],
                           p_wilcoxon=d["p_wilcoxon"], n_paired=d["n"])
            rows.append(row)
    return rows


def _f(x) -> float:
    return math.nan if x is None else float(x)


def plot_piano_rolls(task, work: Path, clip_ids: list[str], path: Path) -> Path | None:
    """Reference notes (grey) vs the notes decoded with the true video and with the shuffled video."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vitmusic.generators.midi.export import midi_to_parts, read_midi

    if not clip_ids:
        return None
    fig, axes = plt.subplots(len(clip_ids), 2, figsize=(11, 2.6 * len(clip_ids)), squeeze=False)
    colours = plt.get_cmap("tab10")
    for i, cid in enumerate(clip_ids):
        clip = task.clips[cid]
        t0 = float(clip["start_s"])
        for j, variant in enumerate(("model", "shuffled")):
            ax = axes[i, j]
            est_parts = midi_to_parts(read_midi(work / variant / "generated" / f"{cid}.mid"))[0]
            for k, ref in enumerate(clip["notes"]):
                ref = np.asarray(ref, float).reshape(-1, 3)
                for on, hz, dur in ref:
                    if hz > 0:
                        m = 69 + 12 * np.log2(hz / 440.0)
                        ax.add_patch(plt.Rectangle((on, m - 0.45), dur, 0.9, color="0.8", lw=0))
                if k < len(est_parts):
                    for on, hz, dur in np.asarray(est_parts[k], float).reshape(-1, 3):
                        m = 69 + 12 * np.log2(hz / 440.0)
                        ax.add_patch(plt.Rectangle((on, m - 0.25), dur, 0.5, color=colours(k), lw=0))
            ax.set_xlim(0, float(clip["end_s"]) - t0)
            ax.autoscale(axis="y")
            lo, hi = _pitch_span(clip["notes"])
            ax.set_ylim(lo - 2, hi + 2)
            ax.set_title(f"{cid}: {'own video' if variant == 'model' else 'shuffled video'}", fontsize=9)
            ax.set_xlabel("s")
            ax.set_ylabel("MIDI pitch")
    fig.suptitle("Piano rolls: annotated notes (grey) vs notes decoded from the video (colour per performer)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _pitch_span(notes) -> tuple[float, float]:
    hz = np.concatenate([np.asarray(n, float).reshape(-1, 3)[:, 1] for n in notes] or [np.array([440.0])])
    hz = hz[hz > 0]
    m = 69 + 12 * np.log2(hz / 440.0) if len(hz) else np.array([69.0])
    return float(m.min()), float(m.max())


def write_midi_videos(task, work: Path, out_dir: Path, n_clips: int) -> list[Path]:
    """``<clip>_midi_<variant>.mp4``: the first test clips' video with the rendered audio of each variant."""
    from vitmusic.data.audio import load_audio
    from vitmusic.data.video import VideoReader
    from vitmusic.data.videowriter import write_video

    written = []
    ids = [c for c in sorted(task.clips) if task.clips[c]["split"] == task.config.data.test_split][:n_clips]
    for cid in ids:
        clip = task.clips[cid]
        with VideoReader(clip["video"]) as reader:
            frames = reader.read(float(clip["start_s"]), float(clip["end_s"]))
            fps = reader.info.fps
        for v in ("model", "shuffled"):
            path = out_dir / f"{cid}_midi_{v}.mp4"
            if not path.is_file():
                y, sr = load_audio(work / v / "generated" / f"{cid}.wav")
                write_video(path, frames.data, fps, audio=y, sample_rate=sr)
            written.append(path)
    return written


def headline(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{variant: {metric: mean}}`` of the rows (every metric with a finite mean)."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        if isinstance(r["mean"], float) and math.isfinite(r["mean"]) and not r["metric"].startswith("train."):
            out.setdefault(r["variant"], {})[r["metric"]] = float(r["mean"])
    return out


def save_run_info(work: Path, info: dict[str, Any]) -> None:
    atomic_write_text(work / "midi.json", json.dumps(info, indent=1, sort_keys=True) + "\n")


def run_midi_path(work: Path, manifest: Path, s: MidiSettings, stages, *, n_boot: int, videos_dir: Path,
                  progress: bool) -> dict[str, Any]:
    """All stages of the MIDI path into ``work`` (``stages(name, fn, *args)`` times each one).

    Returns:
        ``{"rows": result rows (model vs the shuffled baseline), "synth", "soundfont", "onset_threshold",
        "val_f1_by_threshold", "piano_roll": png path or None, "videos": [mp4 paths], "config": overrides}``.
    """

    from vitmusic.config import load_config
    from vitmusic.training.tasks.transcription import shuffled_donors
    from vitmusic.workflow.results import collect_results

    synth, soundfont = available_synth()
    overrides = midi_overrides(manifest, work, s, synth)
    config = load_config(midi_config_path(), overrides)
    # torch's own thread count (one per core): measured on 2 cores, the small ViT's extraction takes 27 s with
    # 2 threads vs 32 s with 1, a head training step 0.072 s vs 0.114 s
    task = stages("MIDI path: features (small-vit, every clip)", build_features, config, progress)
    stages("MIDI path: train the video -> notes head", train_head, config, task, progress)
    val_f1 = choose_onset_threshold(task)
    donors = shuffled_donors(task.split_dataset(config.data.test_split), config.train.seed)
    per_clip = {}
    for v, d in (("model", None), ("shuffled", donors)):
        per_clip[v] = stages(f"MIDI path: {v}: notes -> MIDI -> audio", render_split, task, work, v, d, synth,
                             soundfont)
    for v in ("model", "shuffled"):
        stages(f"MIDI path: {v}: evaluate", evaluate_variant, work, v, manifest, n_boot, 2, progress)
    rows = collect_results({v: work / v / "eval" for v in ("model", "shuffled")},
                           {"model": "model", "shuffled": "shuffled"}, "shuffled", n_boot=n_boot)
    rows = transcription_rows(per_clip, "shuffled", n_boot) + rows
    test_ids = sorted(per_clip["model"])
    png = plot_piano_rolls(task, work, test_ids[: s.plot_clips], work / "piano_rolls.png")
    videos = stages("MIDI path: videos", write_midi_videos, task, work, videos_dir, s.video_clips)
    info = {"synth": synth, "soundfont": soundfont, "onset_threshold": config.transcription.onset_threshold,
            "val_f1_by_threshold": {str(k): v for k, v in val_f1.items()}, "config": overrides,
            "test_clips": len(test_ids), "shuffled_donors": donors}
    save_run_info(work, info)
    return {**info, "rows": rows, "piano_roll": png, "videos": videos}
