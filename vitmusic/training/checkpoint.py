"""Resume state of a run: training checkpoints (exported weights + trainer and accelerate state), written atomically.

The folder layout (``RUN/checkpoints/step_<n>/``, ``RUN/final/``) and the exported model files are the run
format of :mod:`vitmusic.runs`; this module adds what only resuming needs::

    RUN/checkpoints/step_<n>/trainer_state.json   step, data position, loss history
    RUN/checkpoints/step_<n>/accelerate/          optimizer, scheduler, RNG states (``Accelerator.save_state``)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from vitmusic.errors import ConfigError
from vitmusic.runs import list_steps

STATE_FILE = "trainer_state.json"
ACCELERATE_DIR = "accelerate"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first (unfinished temporary folders are ignored)."""
    return list_steps(run_dir, containing=STATE_FILE)


def resolve_resume(run_dir: str | os.PathLike, resume: str | os.PathLike | bool | None) -> Path | None:
    """Turn a ``--resume`` value into a checkpoint folder.

    Args:
        run_dir: the run folder.
        resume: ``None``/``False`` (start fresh), ``True`` or ``"latest"`` (latest checkpoint of ``run_dir``,
            or a fresh start when there is none), or a path to a run folder or a ``step_<n>`` folder.

    Raises:
        ConfigError: a given path that holds no checkpoint.
    """
    if resume is None or resume is False:
        return None
    if resume is True or str(resume) == "latest":
        found = list_checkpoints(run_dir)
        return found[-1] if found else None
    p = Path(resume)
    if (p / STATE_FILE).is_file():
        return p
    found = list_checkpoints(p)
    if not found:
        raise ConfigError(f"no checkpoint to resume from in {p}")
    return found[-1]


def read_trainer_state(ckpt: Path) -> dict[str, Any]:
    """The ``trainer_state.json`` of a checkpoint folder."""
    try:
        return json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"corrupt checkpoint {ckpt}: cannot read {STATE_FILE} ({e})") from e


def save_checkpoint(
    accelerator, task, model, ckpt: Path, meta: dict[str, Any], state: dict[str, Any]
) -> Path:
    """Write one checkpoint folder from all processes; it appears under its final name only when complete.

    The temporary name is deterministic (not ``tempfile``) because every process writes its own RNG state
    into the same folder under ``accelerate launch``.
    """
    tmp = ckpt.with_name(f".{ckpt.name}.tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        task.save_pretrained(accelerator.unwrap_model(model), tmp, meta)
    accelerator.save_state(str(tmp / ACCELERATE_DIR))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1), encoding="utf-8")
        if ckpt.exists():
            shutil.rmtree(ckpt)
        os.replace(tmp, ckpt)
    accelerator.wait_for_everyone()
    return ckpt


def save_final(accelerator, task, model, final: Path, meta: dict[str, Any]) -> Path:
    """Export the trainable modules (no optimizer state) to ``RUN/final``, atomically."""
    from vitmusic.atomic import atomic_path

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with atomic_path(final, is_dir=True) as tmp:
            task.save_pretrained(accelerator.unwrap_model(model), tmp, meta)
    accelerator.wait_for_everyone()
    return final
