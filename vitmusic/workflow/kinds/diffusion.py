"""The ``diffusion`` kind: the notes -> audio diffusion synthesizer (:mod:`vitmusic.training.tasks.diffusion`).

It trains on (annotated notes, stem audio) pairs and turns notes, not videos, into audio: a trained run is the
synthesizer of the MIDI path (``vitmusic generate --synth diffusion --synth-checkpoint RUN`` on a transcription
run), so it has no video pipeline of its own. In an ablation its systems render the test clips' annotated notes:

* ``model`` -- with the trained synthesizer;
* ``builtin`` -- with the built-in synthesizer (the reference it should beat on timbre, not on notes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitmusic.config import Config
from vitmusic.errors import ConfigError
from vitmusic.workflow.kinds import ModelKind, System, SystemContext, run_clips


def _build_task(config: Config, *, progress: bool = True):
    from vitmusic.training.tasks.diffusion import build_task

    return build_task(config, progress=progress)


def _no_pipeline(checkpoint, **_: Any):
    raise ConfigError(f"{checkpoint} is a notes -> audio diffusion synthesizer (task diffusion), not a video -> "
                      "audio model: use it as --synth diffusion --synth-checkpoint RUN of a transcription run")


def _render(ctx: SystemContext, synth) -> list[dict[str, Any]]:
    from vitmusic.workflow.kinds.transcription import annotated_parts, render_clip

    def write(clip, src, path: Path, seed: int) -> None:
        duration_s = float(clip["end_s"]) - float(clip["start_s"])
        render_clip(path, clip, annotated_parts(clip, len(clip["instruments"]), duration_s), ctx.config, seed,
                    synth=synth)

    return run_clips(ctx, [(c, c) for c in ctx.clips()], write, desc="render notes")


def _model(ctx: SystemContext) -> list[dict[str, Any]]:
    from vitmusic.generators.synthesizer.diffusion import load_diffusion_synth
    from vitmusic.training.distributed import process_device

    return _render(ctx, load_diffusion_synth(ctx.run, device=process_device()))


def _builtin(ctx: SystemContext) -> list[dict[str, Any]]:
    import dataclasses

    cfg = dataclasses.replace(ctx.config, transcription=dataclasses.replace(ctx.config.transcription, synth="builtin"))
    return _render(dataclasses.replace(ctx, config=cfg), None)


KIND = ModelKind(
    name="diffusion",
    description="annotated notes -> audio diffusion synthesizer (the MIDI path's trainable synthesizer)",
    build_task=_build_task,
    load_pipeline=_no_pipeline,
    inputs=("mix",),
    systems={
        "model": System("model", _model, "own", "the clip's annotated notes through the trained synthesizer"),
        "builtin": System("builtin", _builtin, "none", "the clip's annotated notes through the built-in synth"),
    },
    generation_keys=("generate", "diffusion.sample_steps", "diffusion.eta", "diffusion.griffin_lim_iters"),
    eval_metrics="notes,multipitch,chroma",
)
