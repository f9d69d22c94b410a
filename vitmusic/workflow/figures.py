"""Figures and media of a workflow's outputs: piano rolls of written notes, videos with the generated audio."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _midi(hz: np.ndarray) -> np.ndarray:
    return 69 + 12 * np.log2(np.asarray(hz, float) / 440.0)


def plot_piano_rolls(clips: Sequence[Mapping[str, Any]], generated: Mapping[str, Path], path: Path) -> Path | None:
    """Annotated notes (grey) vs the notes each system wrote (``<dir>/<clip_id>.mid``, colour per performer).

    Args:
        clips: manifest rows (one figure row each).
        generated: ``{label: generated folder}`` (one figure column each, e.g. own vs shuffled video).
        path: the PNG to write.

    Returns:
        the PNG path, or None with nothing to draw.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vitmusic.atomic import atomic_path
    from vitmusic.workflow.kinds.transcription import midi_parts

    if not clips or not generated:
        return None
    fig, axes = plt.subplots(len(clips), len(generated), figsize=(5.5 * len(generated), 2.6 * len(clips)),
                             squeeze=False)
    colours = plt.get_cmap("tab10")
    for i, clip in enumerate(clips):
        cid = str(clip["clip_id"])
        refs = [np.asarray(n, float).reshape(-1, 3) for n in clip.get("notes") or []]
        for j, (label, folder) in enumerate(generated.items()):
            ax = axes[i, j]
            for ref in refs:
                for on, hz, dur in ref[ref[:, 1] > 0]:
                    ax.add_patch(plt.Rectangle((on, _midi(hz) - 0.45), dur, 0.9, color="0.8", lw=0))
            mid = Path(folder) / f"{cid}.mid"
            if mid.is_file():
                for k, est in enumerate(midi_parts(mid, len(clip.get("instruments") or refs))):
                    for on, hz, dur in est:
                        ax.add_patch(plt.Rectangle((on, _midi(hz) - 0.25), dur, 0.5, color=colours(k), lw=0))
            pitches = np.concatenate([_midi(r[r[:, 1] > 0, 1]) for r in refs] or [np.array([69.0])])
            lo, hi = (float(pitches.min()), float(pitches.max())) if pitches.size else (60.0, 72.0)
            ax.set_xlim(0, float(clip["end_s"]) - float(clip["start_s"]))
            ax.set_ylim(lo - 2, hi + 2)
            ax.set_title(f"{cid}: {label}", fontsize=9)
            ax.set_xlabel("s")
            ax.set_ylabel("MIDI pitch")
    fig.suptitle("Piano rolls: annotated notes (grey) vs the notes written (colour per performer)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return path


def write_videos(clips: Sequence[Mapping[str, Any]], generated: Mapping[str, Path], out_dir: Path,
                 prefix: str = "") -> list[Path]:
    """``<clip>_<prefix><label>.mp4``: each clip's video with each system's generated audio (existing files kept)."""
    from vitmusic.data.audio import load_audio
    from vitmusic.data.video import VideoReader
    from vitmusic.data.videowriter import write_video

    written = []
    for clip in clips:
        if not clip.get("video"):
            continue
        frames = None
        for label, folder in generated.items():
            wav = Path(folder) / f"{clip['clip_id']}.wav"
            path = Path(out_dir) / f"{clip['clip_id']}_{prefix}{label}.mp4"
            if wav.is_file() and not path.is_file():
                if frames is None:
                    with VideoReader(clip["video"]) as reader:
                        frames = reader.read(float(clip["start_s"]), float(clip["end_s"]))
                        fps = reader.info.fps
                y, sr = load_audio(wav)
                write_video(path, frames.data, fps, audio=y, sample_rate=sr)
            if path.is_file():
                written.append(path)
    return written
