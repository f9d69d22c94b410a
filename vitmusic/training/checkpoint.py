"""Resume state of a run: training checkpoints (exported weights + trainer and accelerate state), written atomically.

The folder layout (``RUN/checkpoints/step_<n>/``, ``RUN/final/``) and the exported model files are the run
format of :mod:`vitmusic.runs`; this module adds what only resuming needs::

    RUN/checkpoints/step_<n>/trainer_state.json   step, data position, loss history, the sha256 of every other
                                                  file of the checkpoint (``files``)
    RUN/checkpoints/step_<n>/accelerate/          optimizer, scheduler, RNG states (``Accelerator.save_state``)

``--resume`` checks those hashes first (:func:`check_checkpoint`), so a checkpoint whose weights or optimizer
state changed since it was written is refused in one line (unless accepted explicitly:
:func:`vitmusic.runs.accept_changed_weights`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from vitmusic.errors import ConfigError
from vitmusic.runs import check_weights, file_sha256, list_steps

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


def check_checkpoint(ckpt: Path) -> dict[str, Any]:
    """Check a checkpoint folder before anything is loaded; returns its trainer state.

    Looks at what ``--resume`` will read: ``trainer_state.json`` (step and data position), the exported
    ``accelerate/`` resume state (optimizer and scheduler files that are intact zip archives, as ``torch.save``
    writes them, and readable RNG states). An optimizer/scheduler tampered with *inside* a valid archive is
    caught when accelerate loads it (see :func:`vitmusic.training.loop.train`).

    Every file whose sha256 ``trainer_state.json`` records (``files``) must still have it
    (:func:`vitmusic.runs.check_weights`).

    Raises:
        ConfigError: one line naming the first problem (a file changed since the checkpoint was written too).
    """
    import zipfile

    state = read_trainer_state(ckpt)
    if not isinstance(state, dict) or not all(
            isinstance(state.get(k), int) and not isinstance(state.get(k), bool) and state[k] >= 0
            for k in ("step", "batches_seen")):
        raise ConfigError(f"corrupt checkpoint {ckpt}: {STATE_FILE} lacks a valid step / batches_seen")
    acc = ckpt / ACCELERATE_DIR
    if not acc.is_dir():
        raise ConfigError(f"incomplete checkpoint {ckpt}: no {ACCELERATE_DIR}/ folder (optimizer, scheduler and "
                          "RNG states); resume from another checkpoint or start a fresh run")
    for name in ("optimizer.bin", "scheduler.bin"):
        path = acc / name
        if not path.is_file():
            raise ConfigError(f"incomplete checkpoint {ckpt}: {ACCELERATE_DIR}/{name} is missing")
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ConfigError(f"corrupt checkpoint {ckpt}: {ACCELERATE_DIR}/{name} is not a saved torch state "
                              f"({e})") from None
        if bad is not None:
            raise ConfigError(f"corrupt checkpoint {ckpt}: {ACCELERATE_DIR}/{name} fails its checksum ({bad})")
    rng = sorted(acc.glob("random_states_*.pkl"))
    if not rng:
        raise ConfigError(f"incomplete checkpoint {ckpt}: no {ACCELERATE_DIR}/random_states_*.pkl")
    # Read every state file as accelerate will (weights_only, its safe globals), so a refused pickle fails here,
    # before any work; and because accelerate's load_state swallows a failure to read the RNG states (the run
    # would resume with other random numbers, silently).
    from accelerate.utils import load
    from safetensors import safe_open

    def unreadable(path: Path, e: Exception) -> ConfigError:
        return ConfigError(f"corrupt checkpoint {ckpt}: {ACCELERATE_DIR}/{path.name} cannot be read "
                           f"({type(e).__name__}: {' '.join(str(e).split())[:160]})")

    for path in [acc / "optimizer.bin", acc / "scheduler.bin", *rng]:
        try:
            states = load(path, map_location="cpu")
        except Exception as e:  # a refused pickle (UnpicklingError), a truncated file
            raise unreadable(path, e) from None
        if path in rng and (not isinstance(states, dict)
                            or not {"random_state", "numpy_random_seed", "torch_manual_seed"} <= set(states)):
            raise ConfigError(f"corrupt checkpoint {ckpt}: {ACCELERATE_DIR}/{path.name} holds no RNG states")
    for path in sorted(acc.glob("*.safetensors")):
        try:
            with safe_open(str(path), "pt"):
                pass
        except Exception as e:  # SafetensorError: a bad header
            raise unreadable(path, e) from None
    files = state.get("files") or {}  # absent in checkpoints of older versions
    if not isinstance(files, dict):
        raise ConfigError(f"corrupt checkpoint {ckpt}: {STATE_FILE} 'files' is not a mapping")
    for rel, digest in files.items():
        path = ckpt / str(rel)
        if ".." in Path(rel).parts or not path.is_file():
            raise ConfigError(f"incomplete checkpoint {ckpt}: {rel} is missing")
        check_weights(path, str(digest), error=ConfigError)
    return state


def save_checkpoint(
    accelerator, task, model, ckpt: Path, meta: dict[str, Any], state: dict[str, Any]
) -> Path:
    """Write one checkpoint folder from all processes; it appears under its final name only when complete.

    The temporary name is deterministic (not ``tempfile``) because every process writes its own RNG state
    into the same folder under ``accelerate launch``. ``trainer_state.json``, written last, records the sha256
    of every other file. A failure (a full disk, an interrupt) removes the temporary folder.

    Raises:
        DiskFullError: no space left while writing it.
    """
    from vitmusic.atomic import disk_full_error, is_disk_full, replace_dir

    tmp = ckpt.with_name(f".{ckpt.name}.tmp")
    try:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            task.save_pretrained(accelerator.unwrap_model(model), tmp, meta)
        accelerator.save_state(str(tmp / ACCELERATE_DIR))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            files = {p.relative_to(tmp).as_posix(): file_sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
            (tmp / STATE_FILE).write_text(json.dumps({**state, "files": files}, indent=1), encoding="utf-8")
            replace_dir(tmp, ckpt)
    except BaseException as e:
        full = isinstance(e, Exception) and is_disk_full(e, tmp)
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise disk_full_error(ckpt) from e
        raise
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
