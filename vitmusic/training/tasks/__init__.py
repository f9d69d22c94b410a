"""Training tasks, one per model kind, and the registry that picks one by ``config.task``.

=================  ===============================================  =========================================
``task``           module                                           trains
=================  ===============================================  =========================================
``musicgen``       :mod:`vitmusic.training.tasks.musicgen`          the projection (and encoder LoRA adapters)
``transcription``  :mod:`vitmusic.training.tasks.transcription`     the video -> notes head
``diffusion``      :mod:`vitmusic.training.tasks.diffusion`         the notes -> audio diffusion synthesizer
=================  ===============================================  =========================================

Each module has ``build_task(config, *, progress)``; the ones that train from a feature cache also have
``build_cache(config, progress=...)`` (``vitmusic extract``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from vitmusic.config import Config

__all__ = ["TASKS", "build_cache", "build_task", "run_training", "task_module"]

TASKS: dict[str, str] = {
    "musicgen": "vitmusic.training.tasks.musicgen",
    "transcription": "vitmusic.training.tasks.transcription",
    "diffusion": "vitmusic.training.tasks.diffusion",
}


def task_module(config: Config) -> ModuleType:
    """The module of ``config.task`` (the config schema has already checked the name)."""
    return importlib.import_module(TASKS[config.task])


def build_task(config: Config, *, progress: bool = True):
    """Load what ``config.task`` needs (models, cache, data) and set up its task."""
    return task_module(config).build_task(config, progress=progress)


def build_cache(config: Config, *, progress: bool = True) -> Path:
    """Extract (or find) the feature cache of ``config.task`` (the MusicGen cache for tasks without their own)."""
    module = task_module(config)
    if not hasattr(module, "build_cache"):
        module = importlib.import_module(TASKS["musicgen"])
    return module.build_cache(config, progress=progress)


def run_training(config: Config, task, *, resume=None, progress: bool = True) -> Path:
    """Train ``task`` with the one loop (:func:`vitmusic.training.loop.train`) and return ``RUN/final``.

    The MusicGen task's fitted PCA baseline is only exported (:func:`vitmusic.training.tasks.musicgen.run_training`).
    """
    if config.task == "musicgen":
        from vitmusic.training.tasks.musicgen import run_training as run_musicgen

        return run_musicgen(config, task, resume=resume, progress=progress)
    from vitmusic.training.loop import train

    return train(config, task, resume=resume, progress=progress)
