"""The run / checkpoint format, one place for every model kind (projection, transcription head, diffusion synth).

Layout of a run folder ``RUN`` (= ``train.output_dir``)::

    RUN/config.yaml                    resolved config of the run
    RUN/checkpoints/step_<n>/          every ``train.save_every`` optimizer steps
        model.safetensors, config.json   the trainable modules (``Task.save_pretrained``), no pickles
        encoder_adapters.safetensors     runs with encoder LoRA adapters (``encoder.lora.rank > 0``) only
        trainer_state.json               step, data position, loss history (:mod:`vitmusic.training.checkpoint`)
        accelerate/                      optimizer, scheduler, RNG states (``Accelerator.save_state``)
    RUN/final/                         the exported files (no trainer/accelerate state) at the end of training
    RUN/history.json, RUN/loss.png     losses and learning rate per logged step

A *model folder* holds ``model.safetensors`` (a module's state dict) + ``config.json`` (what rebuilds the module,
its ``kind``, and what training stored with it, e.g. ``extra.config``: the resolved run config, and
``extra.frozen_models``: the fingerprints of the frozen pretrained models). Both files are written atomically
by :func:`save_module`; other files already in the folder (a training checkpoint's own) are left alone.

``config.json`` also records the sha256 of every weights file of the folder (``weights_sha256``:
``{"model.safetensors": ..., "encoder_adapters.safetensors": ...}``); :func:`check_weights` compares it on
load, so weights changed after training (edited, damaged) are refused in one line unless the caller accepts
them explicitly (:func:`accept_changed_weights`, the commands' ``--accept-changed-weights``).

Only one training writes a run folder at a time: :func:`run_lock` holds ``RUN/.lock`` (an ``flock``) while
it runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vitmusic.atomic import open_locked, release_locked
from vitmusic.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINTS_DIR",
    "CONFIG_NAME",
    "FINAL_DIR",
    "WEIGHTS_NAME",
    "accept_changed_weights",
    "check_weights",
    "file_sha256",
    "has_model",
    "list_steps",
    "load_weights",
    "read_model_config",
    "read_run",
    "resolve_checkpoint",
    "run_lock",
    "save_module",
    "step_dir",
    "step_of",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FINAL_DIR = "final"
CHECKPOINTS_DIR = "checkpoints"
HASHES_KEY = "weights_sha256"  # in config.json: {weights file name: sha256 hex}
LOCK_NAME = ".lock"
_STEP_RE = re.compile(r"^step_(\d+)$")


# ---------------------------------------------------------------------------------------------- folders


def step_dir(run_dir: str | os.PathLike, step: int) -> Path:
    """``RUN/checkpoints/step_<step>``."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"step_{step}"


def step_of(path: str | os.PathLike) -> int | None:
    """The step of a ``step_<n>`` folder name, None for any other name (e.g. an unfinished ``.step_5.tmp``)."""
    m = _STEP_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def list_steps(run_dir: str | os.PathLike, *, containing: str | None = None) -> list[Path]:
    """The ``step_<n>`` folders of a run, oldest first.

    Args:
        run_dir: the run folder.
        containing: a file name every listed folder must hold (``trainer_state.json`` for complete training
            checkpoints, :data:`WEIGHTS_NAME` for exported models); None lists every step folder.
    """
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(n, p) for p in root.iterdir() if (n := step_of(p)) is not None and p.is_dir()]
    return [p for _, p in sorted(found) if containing is None or (p / containing).is_file()]


def has_model(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds an exported model (``model.safetensors`` + ``config.json``)."""
    folder = Path(folder)
    return (folder / WEIGHTS_NAME).is_file() and (folder / CONFIG_NAME).is_file()


def resolve_checkpoint(path: str | os.PathLike, *, latest_step: bool = False, what: str = "trained model") -> Path:
    """The model folder a ``--checkpoint`` value names.

    Args:
        path: a model folder, a run folder (its ``final/``) or ``RUN/checkpoints/step_<n>``.
        latest_step: a run without ``final/`` (training interrupted) gives its latest step folder holding a
            model; otherwise the error names that folder.
        what: what is looked for, for the error message.

    Raises:
        ConfigError: missing path, or no model in it (one line, naming what was looked for).
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"checkpoint not found: {p}")
    for folder in (p, p / FINAL_DIR):
        if has_model(folder):
            return folder
    steps = [s for s in list_steps(p, containing=WEIGHTS_NAME) if has_model(s)]
    if latest_step and steps:
        return steps[-1]
    hint = f"; the latest checkpoint is {steps[-1]}" if steps else ""
    raise ConfigError(
        f"no {what} in {p}: expected {WEIGHTS_NAME} + {CONFIG_NAME} in it or in {p / FINAL_DIR}{hint}"
    )


# ---------------------------------------------------------------------------------------------- files


def save_module(
    module, save_dir: str | os.PathLike, config: dict[str, Any], *, metadata: dict[str, str] | None = None
) -> Path:
    """Write a module's state dict (``model.safetensors``) and ``config`` (``config.json``), each atomically.

    Args:
        module: a ``torch.nn.Module``; its parameters and buffers are saved (on CPU, contiguous).
        save_dir: destination folder (created); other files in it are left alone.
        config: JSON-able dict (a non-JSON-able value raises ``TypeError`` before anything is written).
        metadata: string metadata of the safetensors file.

    ``config.json`` gets ``weights_sha256``: the sha256 of every ``*.safetensors`` file in the folder.
    """
    from safetensors.torch import save_file

    from vitmusic.atomic import atomic_path, atomic_write_text

    folder = Path(save_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json.dumps(config)  # fails early on a non-JSON-able value
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata=metadata)
        sort_safetensors_metadata(tmp)
    # every weights file of the folder (a run's adapters are written before its projection)
    hashes = {p.name: file_sha256(p) for p in sorted(folder.glob("*.safetensors"))}
    atomic_write_text(folder / CONFIG_NAME, json.dumps({**config, HASHES_KEY: hashes}, indent=2, sort_keys=True) + "\n")
    return folder


def sort_safetensors_metadata(path: str | os.PathLike) -> None:
    """Rewrite, in place, a safetensors file's ``__metadata__`` with its keys sorted.

    safetensors (0.8) writes that mapping from a Rust ``HashMap``, in an order that changes from one save to the
    next: the same tensors with two metadata entries gave two different files, so two different sha256 (and a
    checkpoint refused as "changed since written", one time in two). Sorted, the same tensors give the same
    bytes. The header keeps its length (the same entries, reordered), so nothing after it moves.
    """
    with open(path, "r+b") as f:
        size = int.from_bytes(f.read(8), "little")
        raw = f.read(size)
        header = json.loads(raw)
        meta = header.get("__metadata__")
        if not isinstance(meta, dict) or len(meta) < 2:
            return
        header["__metadata__"] = dict(sorted(meta.items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) > size:  # another serialisation than serde's: leave the file as the library wrote it
            return
        f.seek(8)
        f.write(text.ljust(size, b" "))  # the format pads its header with spaces


def read_model_config(folder: str | os.PathLike, *, what: str = "model") -> dict[str, Any]:
    """The ``config.json`` of a model folder, as a dict.

    Raises:
        DataError: missing, unreadable, or not a JSON object.
    """
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise DataError(f"{path}: {what} config not found")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable {what} config ({exc})") from exc
    if not isinstance(config, dict):
        raise DataError(f"{path}: not a {what} config (not a JSON object)")
    return config


def load_weights(folder: str | os.PathLike, device: str | None = None, *, what: str = "model") -> dict[str, Any]:
    """The state dict in a model folder's ``model.safetensors``.

    Raises:
        DataError: missing or unreadable weights, or weights whose sha256 differs from the one ``config.json``
            records (see :func:`check_weights`).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = Path(folder) / WEIGHTS_NAME
    if not weights.is_file():
        raise DataError(f"{weights}: {what} weights not found")
    check_weights(weights)
    try:
        return load_file(str(weights), device=device or "cpu")
    except (OSError, SafetensorError) as exc:
        raise DataError(f"{weights}: unreadable safetensors file ({exc})") from exc


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


_ACCEPT_CHANGED = contextvars.ContextVar("vitmusic_accept_changed_weights", default=False)


@contextlib.contextmanager
def accept_changed_weights(accept: bool = True) -> Iterator[None]:
    """Within the block, weights whose sha256 differs from the recorded one are used (with a warning), not
    refused: for a deliberate edit (pruning, a merged adapter). The commands' ``--accept-changed-weights``."""
    token = _ACCEPT_CHANGED.set(bool(accept))
    try:
        yield
    finally:
        _ACCEPT_CHANGED.reset(token)


def check_weights(path: str | os.PathLike, recorded: str | None = None, *,
                  error: type[Exception] = DataError) -> None:
    """Refuse a weights file whose content is not what was written.

    Args:
        path: a weights file (``model.safetensors``, ``encoder_adapters.safetensors``, ...).
        recorded: its expected sha256; None reads it from ``weights_sha256`` in the ``config.json`` next to it
            (a folder without that record, written by an older vitmusic, is not checked).
        error: the exception type raised.

    Raises:
        DataError: one line naming the file, unless :func:`accept_changed_weights` is in effect (a warning then).
    """
    path = Path(path)
    where = f"weights_sha256 in {path.parent / CONFIG_NAME}"
    if recorded is None:
        try:
            hashes = read_model_config(path.parent).get(HASHES_KEY)
        except DataError:
            return  # no readable config.json: what reads the model reports that
        recorded = hashes.get(path.name) if isinstance(hashes, dict) else None
        if recorded is None:
            return
    else:
        where = "the checkpoint's record"
    if file_sha256(path) == recorded:
        return
    message = (f"{path}: its content differs from the sha256 recorded when it was written ({where}): changed or "
               "damaged since")
    if _ACCEPT_CHANGED.get():
        log.warning("%s; used anyway (--accept-changed-weights)", message)
        return
    raise error(f"{message}; pass --accept-changed-weights to use it anyway")


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``RUN/.lock`` (an exclusive ``flock``) for the block: one training per run folder at a time.

    The lock ends with the process (a kill frees it). The file is removed on release, and so is the run folder
    when this call created it and nothing else was written into it.

    Raises:
        ConfigError: another process holds it (one line: the folder and that process's id), or the folder
            cannot be created.
    """
    folder = Path(run_dir)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where the folder should be, no permission, a full disk
        raise ConfigError(f"cannot create run folder {folder}: {e.strerror or e}") from None
    path = folder / LOCK_NAME

    def refuse(f) -> None:
        f.seek(0)
        holder = f.read().strip() or "?"
        raise ConfigError(f"run folder {folder} is in use by another training (process {holder}): wait for it "
                          "to end or choose another train.output_dir")

    f = open_locked(path, refuse)
    try:
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield path
    finally:
        release_locked(path, f)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: the run failed before writing anything


def lock_holder(run_dir: str | os.PathLike) -> str | None:
    """The process id written in ``RUN/.lock`` when a process holds it now, else None (a cheap pre-check)."""
    import fcntl

    try:
        with open(Path(run_dir) / LOCK_NAME, encoding="utf-8") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return f.read().strip() or "?"
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:  # no lock file, unreadable: nobody to name
        return None
    return None


def read_run(checkpoint: str | os.PathLike):
    """Resolve ``checkpoint`` and read what training stored with its model.

    Returns:
        (the model folder, the resolved run :class:`~vitmusic.config.Config`, the frozen models' fingerprints
        ``{"encoder": {...}, "generator": {...}, ...}``).

    Raises:
        ConfigError: no checkpoint, or a ``config.json`` without a run config (not written by training).
    """
    from vitmusic.config import config_from_dict

    folder = resolve_checkpoint(checkpoint)
    try:
        extra = read_model_config(folder).get("extra") or {}
    except DataError as e:
        raise ConfigError(str(e)) from e
    if not isinstance(extra, dict) or "config" not in extra:
        raise ConfigError(f"{folder / CONFIG_NAME}: no run config stored (not exported by 'vitmusic train')")
    config = config_from_dict(extra["config"], where=str(folder / CONFIG_NAME))
    return folder, config, dict(extra.get("frozen_models") or {})
