"""The Python API: the few calls a notebook needs, re-exported lazily by ``import vitmusic``.

::

    import vitmusic
    pipe = vitmusic.load_pipeline("runs/tiny-midi")             # any run folder: its kind says how to load it
    audio = pipe.generate_video("clip.mp4")                     # float32 [N] at pipe.sample_rate

``docs/api.md`` has the full walk-through (a test runs it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["embed_video", "evaluate", "frames", "load_encoder", "load_pipeline"]


def load_pipeline(run: str | os.PathLike, *, device: str | None = None, **options: Any):
    """The trained model of a run folder, ready to generate (:class:`vitmusic.inference.base.Pipeline`).

    The run's ``config.json`` records its model kind; the kind loads it (a plug-in kind must be registered,
    :func:`vitmusic.plugins.load_plugins`).

    Args:
        run: ``RUN`` (its ``final/``), ``RUN/checkpoints/step_<n>`` or an exported model folder.
        device: torch device (default: CUDA when available, else CPU).
        **options: the kind's pipeline options (the MIDI kind: ``synth``, ``soundfont``, ``synth_checkpoint``,
            ``instruments``).

    Returns:
        an object with ``sample_rate``, ``generate_video(video, *, t0_s=0, t1_s=None, seed=None, ...) ->
        float32 [N]``; the MIDI kind's also ``transcribe_video(video) -> Transcription`` (notes per part).

    Raises:
        ConfigError: no run there, an unknown kind, an option the kind does not take.
    """
    from vitmusic.errors import ConfigError
    from vitmusic.workflow.kinds import kind_of_run

    kind = kind_of_run(run)
    unknown = sorted(set(options) - set(kind.pipeline_options))
    if unknown:
        raise ConfigError(f"{unknown[0]!r} is not an option of the {kind.name!r} kind's pipeline "
                          f"(it takes: {', '.join(kind.pipeline_options) or 'none'})")
    return kind.load_pipeline(run, device=device, **options)


def frames(data: np.ndarray, fps: float):
    """Frames in memory (uint8 ``[T, H, W, 3]`` at ``fps``) as a video a pipeline or :func:`embed_video` takes."""
    from vitmusic.encoders.video import FramesVideo

    return FramesVideo(data, fps)


def load_encoder(name: str, **kwargs: Any):
    """A frozen pretrained vision encoder (:func:`vitmusic.encoders.load_encoder`: a preset, hub id or folder)."""
    from vitmusic.encoders import load_encoder as load

    return load(name, **kwargs)


def embed_video(encoder, video, *, rate_hz: float | None = None, t0_s: float = 0.0, t1_s: float | None = None,
                progress: bool = False):
    """Encoder embeddings of a video (a file or :func:`frames`): ``VideoEmbeddings`` with ``embeds [1, T, D]``,
    ``mask [1, T]`` and the step times ``times_s [T]`` (:func:`vitmusic.encoders.video.embed_video`).

    ``encoder``: a loaded encoder or a name for :func:`load_encoder`.
    """
    from vitmusic.encoders.video import embed_video as embed

    if isinstance(encoder, str):
        encoder = load_encoder(encoder)
    return embed(encoder, video, rate_hz=rate_hz, t0_s=t0_s, t1_s=t1_s, progress=progress)


def evaluate(generated: str | os.PathLike, *, manifest: str | os.PathLike | None = None,
             reference: str | os.PathLike | None = None, metrics: str | None = None, sample_rate: int = 22050,
             out_dir: str | os.PathLike | None = None, progress: bool = False, **options: Any) -> dict[str, Any]:
    """Score generated audio against its ground truth, as ``vitmusic evaluate`` does; returns the summary.

    Args:
        generated: folder of generated files (``<clip_id>.wav``).
        manifest: a prepared manifest (references and annotations of each ``clip_id``), and/or
        reference: a folder of reference audio paired by file name.
        metrics: metric groups or names, comma-separated (default: all).
        sample_rate: the common rate both sides are loaded at.
        out_dir: also write ``per_clip.csv``, ``summary.json`` and ``report.md`` there.
        progress: progress bar.
        **options: further :class:`vitmusic.evaluation.schema.EvalConfig` fields (``annotations``, ``n_boot``...).

    Returns:
        the summary dict (``summary.json``): ``{"metrics": {name: {"mean", "ci95", "n", ...}}, ...}``.
    """
    from vitmusic.evaluation.runner import EvalConfig, evaluate_dirs, resolve_metrics, run_evaluation

    cfg = EvalConfig(gen_dir=Path(generated), manifest=None if manifest is None else Path(manifest),
                     ref_dir=None if reference is None else Path(reference), metrics=resolve_metrics(metrics),
                     sample_rate=sample_rate, **options)
    result = (run_evaluation(cfg, out_dir, progress=progress) if out_dir is not None
              else evaluate_dirs(cfg, progress=progress))
    return result.summary
