"""Sharing work between the processes of ``accelerate launch`` (several GPUs, nodes, or CPU processes with gloo).

Everything here is a no-op in a plain (non-launched) process: rank 0 of 1. Under ``accelerate launch
--num_processes N`` the feature extraction and batch generation split their items between the N processes
(:func:`split_for_process`: process ``r`` takes items ``r, r + N, ...``), the main process writes what is
shared, and :func:`wait_for_everyone` keeps the others from reading it early. Training needs none of this: the
accelerate loop (:mod:`vitmusic.training.loop`) shards its batches itself.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from vitmusic.errors import ConfigError

T = TypeVar("T")
# Set inside on_this_process_only(): the helpers below then act as in a single process.
_ALONE: contextvars.ContextVar[bool] = contextvars.ContextVar("vitmusic_alone", default=False)


@contextlib.contextmanager
def on_this_process_only() -> Iterator[None]:
    """Work that one process does while the others wait (e.g. ``ablate``'s evaluation on the main process):
    inside, extraction and batch generation do everything themselves and wait for nobody (no deadlock)."""
    token = _ALONE.set(True)
    try:
        yield
    finally:
        _ALONE.reset(token)


def accelerate_state():
    """accelerate's process state, set up as the launcher asked: ``ACCELERATE_USE_CPU`` gives CPU processes
    with gloo (a bare ``PartialState()`` would ignore it and, when first, leave every process alone)."""
    from accelerate.state import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))




def process_info() -> tuple[int, int]:
    """``(rank, num_processes)`` of this process; ``(0, 1)`` when not launched by accelerate (or alone)."""
    if _ALONE.get():
        return 0, 1
    state = accelerate_state()
    return int(state.process_index), int(state.num_processes)


def is_main_process() -> bool:
    """True in the one process that writes shared files (the only one when not launched)."""
    return bool(accelerate_state().is_main_process)


def wait_for_everyone() -> None:
    """Barrier over all processes (returns at once in a single process)."""
    if process_info()[1] > 1:
        accelerate_state().wait_for_everyone()


def end_processes() -> None:
    """At the end of a command that succeeded: wait for every process, then tear the process group down.

    A launched process that exits with its group still up leaves gloo's threads to static destruction, which
    sometimes aborts it (``terminate called without an active exception``, SIGABRT) while the others still
    work, and the launcher then kills them. A no-op when no process group was set up (a command that never
    imported torch does not import it here).
    """
    import sys

    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_divisible(num_items: int, what: str, per_process: int = 1, num_processes: int | None = None) -> None:
    """Raise a one-line :class:`ConfigError` when ``num_items`` cannot give every process work.

    Args:
        num_items: how many items (clips, shards) the work has.
        what: what they are, for the message ("clips to extract", ...).
        per_process: the least items each process needs (e.g. a batch).
        num_processes: the process count (default: this launch's).
    """
    world = process_info()[1] if num_processes is None else num_processes
    if world > 1 and num_items < world * per_process:
        need = f"{per_process} each" if per_process > 1 else "at least one each"
        raise ConfigError(
            f"{world} processes but only {num_items} {what}: every process needs {need}; launch with "
            f"--num_processes {max(1, num_items // per_process)} or fewer"
        )


def split_for_process(items: Sequence[T], what: str) -> list[T]:
    """This process's share of ``items``: every ``N``-th item from its rank (all of them in one process).

    Raises:
        ConfigError: fewer items than processes (see :func:`check_divisible`).
    """
    rank, world = process_info()
    check_divisible(len(items), what, num_processes=world)
    return list(items[rank::world])


def gather_objects(objects: list[Any]) -> list[Any]:
    """The concatenation of every process's ``objects`` (picklable), on every process, in rank order."""
    if process_info()[1] == 1:
        return list(objects)
    from accelerate.utils import gather_object

    return list(gather_object(list(objects)))


def process_device() -> str | None:
    """This process's device under ``accelerate launch`` (``cuda:<local rank>``, or ``cpu`` with ``--cpu``);
    None in a single process (the caller's own default applies)."""
    if process_info()[1] == 1:
        return None
    device = accelerate_state().device
    return "cpu" if device.type == "cpu" else str(device)  # "cpu:0" is no device name for safetensors
