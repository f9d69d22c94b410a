"""The one accelerate training loop, shared by every task (video->MusicGen now, video->MIDI later).

A :class:`Task` supplies the trainable modules, the frozen ones, the datasets, a collate function, a loss on a
batch (a scalar, or a dict with the scalar under ``"loss"`` and named terms that are logged next to it, e.g.
MusicGen's per-codebook cross-entropy) and an exporter; :func:`train` does the rest: AdamW + warmup/cosine, gradient accumulation and
clipping, mixed precision, validation loss, tensorboard through accelerate's trackers, checkpoints and exact
resumption. Everything goes through ``accelerator.prepare`` so the same code runs under ``accelerate launch``
on several GPUs.

A run holds its folder's lock while it trains (:func:`vitmusic.runs.run_lock`: a second training into the same
``train.output_dir`` is refused in one line), and stops in one line when the loss, the gradient norm or the
weights become non-finite, before anything non-finite is saved: the last checkpoint stays the last good one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from vitmusic import __version__
from vitmusic.config import Config, config_to_dict, flat_config, save_config
from vitmusic.errors import ConfigError
from vitmusic.runs import FINAL_DIR, run_lock, step_dir
from vitmusic.training.checkpoint import (
    ACCELERATE_DIR,
    check_checkpoint,
    list_checkpoints,
    resolve_resume,
    save_checkpoint,
    save_final,
)
from vitmusic.training.distributed import check_divisible, is_main_process
from vitmusic.training.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)


@runtime_checkable
class Task(Protocol):
    """What :func:`train` needs from a task."""

    def trainable(self) -> nn.Module:
        """All modules that train, as one module (e.g. an ``nn.ModuleDict``); exported by ``save_pretrained``."""

    def frozen(self) -> dict[str, nn.Module]:
        """Modules that must not change (pretrained encoder, generator); asserted frozen at start."""

    def train_dataset(self) -> Dataset:
        """Training examples."""

    def val_dataset(self) -> Dataset | None:
        """Held-out examples for the validation loss, or ``None``."""

    def collate(self, items: list[Any]) -> Any:
        """Batch a list of dataset items."""

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor | Mapping[str, torch.Tensor]:
        """Scalar mean loss of ``batch`` (or ``{"loss": scalar, term: scalar, ...}``: the terms are logged);
        ``model`` is the prepared (possibly wrapped) ``trainable()``."""

    def to(self, device: torch.device) -> Any:
        """Move the frozen modules to ``device``."""

    def describe(self) -> dict[str, Any]:
        """Ids/revisions/fingerprints of the frozen pretrained models (stored in every ``config.json``)."""

    def save_pretrained(self, model: nn.Module, out_dir: Path, meta: dict[str, Any]) -> None:
        """Write ``model.safetensors`` + ``config.json`` (including ``meta``) for the unwrapped ``model``."""


class EpochSampler(Sampler[int]):
    """A shuffling sampler whose order depends only on ``(seed, epoch)``, so a resumed run sees the same data."""

    def __init__(self, num_items: int, seed: int, shuffle: bool = True) -> None:
        self.num_items, self.seed, self.shuffle, self.epoch = num_items, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_items

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.num_items))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.num_items, generator=g).tolist())


def split_loss(out: torch.Tensor | Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss, {term: value})`` of what :meth:`Task.loss` returned (no terms for a plain scalar)."""
    if isinstance(out, Mapping):
        if "loss" not in out:
            raise TypeError(f"a task's loss dict needs the key 'loss', got {sorted(out)}")
        return out["loss"], {k: v for k, v in out.items() if k != "loss"}
    return out, {}


def count_parameters(module: nn.Module, trainable: bool) -> int:
    """Number of parameters with ``requires_grad == trainable``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad == trainable)


def check_frozen(task: Task) -> tuple[int, int]:
    """Assert only ``task.trainable()`` trains; return (trainable, frozen) parameter counts."""
    model = task.trainable()
    trainable_ids = {id(p) for p in model.parameters() if p.requires_grad}
    if not trainable_ids:
        raise ConfigError(
            "nothing to train: the task's trainable modules have no parameter with requires_grad"
        )
    n_frozen = 0
    for name, module in task.frozen().items():
        for pname, p in module.named_parameters():
            if p.requires_grad and id(p) not in trainable_ids:
                raise RuntimeError(f"frozen module '{name}' has a trainable parameter '{pname}'")
            n_frozen += p.numel() if id(p) not in trainable_ids else 0
    return count_parameters(model, True), n_frozen


def _make_accelerator(config: Config, run_dir: Path):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import ProjectConfiguration

    # The accelerate state is a process-wide singleton; in a plain (non-launched) process several runs may
    # follow each other (tests, notebooks), each with its own precision and accumulation settings.
    from vitmusic.training.distributed import accelerate_state

    if accelerate_state().distributed_type.value == "NO":
        AcceleratorState._reset_state()
        GradientState._reset_state()
    log_with = None
    if config.train.log_with == "tensorboard":
        try:
            import tensorboard  # noqa: F401

            log_with = "tensorboard"
        except ImportError:
            log.warning("tensorboard is not installed: logging to history.json only")
    try:
        return Accelerator(
            mixed_precision=config.train.mixed_precision,
            gradient_accumulation_steps=config.train.grad_accum,
            log_with=log_with,
            project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "logs")),
        )
    except ValueError as e:  # e.g. fp16 requested on a machine without a GPU
        raise ConfigError(f"train.mixed_precision={config.train.mixed_precision!r}: {e}") from e


def effective_precision(accelerator, requested: str) -> str:
    """What precision training actually runs in: ``requested`` when accelerate applies it, else ``"no"``.

    accelerate accepts ``fp16`` on a CPU but applies no autocast there (``native_amp`` stays False), so the
    run is plain fp32; ``bf16`` on a CPU does autocast.
    """
    if requested == "no" or getattr(accelerator, "native_amp", False):
        return requested
    return "no"


@torch.no_grad()
def evaluate_loss(accelerator, task: Task, model: nn.Module, loader: DataLoader) -> dict[str, float]:
    """Means of the per-batch validation loss (``"loss"``) and loss terms over all processes (NaN when empty)."""
    model.eval()
    losses: dict[str, list[torch.Tensor]] = {}
    for batch in loader:
        loss, terms = split_loss(task.loss(model, batch))
        for k, v in {"loss": loss, **terms}.items():  # one scalar per process and batch
            losses.setdefault(k, []).append(accelerator.gather(v.detach().float().reshape(1)))
    model.train()
    return {k: float(torch.cat(v).mean()) for k, v in losses.items()} or {"loss": float("nan")}


def _plot_history(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vitmusic.atomic import atomic_path

    tr = [(h["step"], h["loss"]) for h in history if "loss" in h]
    va = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    lr = [(h["step"], h["lr"]) for h in history if "lr" in h]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=(3, 1))
    if tr:
        ax.plot(*zip(*tr), label="train loss")
    if va:
        ax.plot(*zip(*va), "o-", label="validation loss")
    ax.set_ylabel("loss")
    ax.legend()
    if lr:
        ax2.plot(*zip(*lr), color="gray")
    ax2.set_ylabel("learning rate")
    ax2.set_xlabel("optimizer step")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


class Diverged(ConfigError):
    """The loss, the gradient norm or the weights became non-finite (a setting such as the learning rate, or
    the data): training stops before saving them."""


def _diverged(what: str, value: float, step: int, lr: float, run_dir: Path) -> Diverged:
    from vitmusic.training.checkpoint import list_checkpoints

    found = list_checkpoints(run_dir)
    last = f"the last checkpoint, {found[-1]}, is from before" if found else "no checkpoint was written"
    return Diverged(f"training stopped at step {step}: the {what} became {value} (lr {lr:.3g}); {last}; lower "
                    "train.lr, set train.max_grad_norm or check the data")


def _nonfinite_parameter(model: nn.Module) -> str | None:
    """The name of the first trainable parameter holding a NaN or inf, else None."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad and not bool(torch.isfinite(p).all()):
                return name
    return None


def train(
    config: Config,
    task: Task,
    *,
    resume: str | Path | bool | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Train ``task`` as configured by ``config.train``; return the exported ``RUN/final`` folder.

    The main process holds the run folder's lock throughout (:func:`vitmusic.runs.run_lock`).

    Args:
        config: resolved config (``train.output_dir`` is the run folder; it receives ``config.yaml``).
        task: what to train (see :class:`Task`).
        resume: ``None`` (fresh), ``True``/``"latest"`` or a checkpoint/run path (see
            :func:`vitmusic.training.checkpoint.resolve_resume`). Restores step, optimizer, scheduler, RNG
            and data position, so the continued run matches an uninterrupted one.
        progress: show a tqdm bar on stderr.
        stop_after: stop (as if interrupted) after this optimizer step, writing a checkpoint first and
            no ``final/`` folder; used to test resumption.

    Raises:
        ConfigError: another training holds the run folder, or it already holds checkpoints and ``resume`` is
            not given; :class:`Diverged` when the loss or the weights become non-finite.
    """
    lock = run_lock(config.train.output_dir) if is_main_process() else contextlib.nullcontext()
    with lock:
        return _train(config, task, resume, progress, stop_after)


def _train(config: Config, task: Task, resume: str | Path | bool | None, progress: bool, stop_after: int | None) -> Path:
    """:func:`train` under the run folder's lock."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    tc = config.train
    run_dir = Path(tc.output_dir)
    ckpt = resolve_resume(run_dir, resume)
    resume_state = check_checkpoint(ckpt) if ckpt is not None else None  # a bad checkpoint fails before any work
    accelerator = _make_accelerator(config, run_dir)
    precision = effective_precision(accelerator, tc.mixed_precision)
    if precision != tc.mixed_precision:
        log.warning("train.mixed_precision=%s is not available on %s: training runs in full precision (fp32)",
                    tc.mixed_precision, accelerator.device.type)
    set_seed(tc.seed)
    n_trainable, n_frozen = check_frozen(task)
    log.info("trainable parameters: %d, frozen parameters: %d", n_trainable, n_frozen)

    train_ds = task.train_dataset()
    if len(train_ds) == 0:
        raise ConfigError(f"no training examples (split '{config.data.train_split}')")
    check_divisible(len(train_ds), f"training clips (split '{config.data.train_split}')")
    sampler = EpochSampler(len(train_ds), tc.seed)
    # Private generators: a DataLoader draws a worker base seed from the global RNG each time it is iterated,
    # which would make a resumed run (that restarts iteration mid-epoch) consume the dropout RNG differently.
    loader = DataLoader(
        train_ds,
        batch_size=tc.batch_size,
        sampler=sampler,
        collate_fn=task.collate,
        num_workers=tc.num_workers,
        generator=torch.Generator().manual_seed(tc.seed),
    )
    val_ds = task.val_dataset()
    val_loader = (
        DataLoader(
            val_ds,
            batch_size=tc.batch_size,
            shuffle=False,
            collate_fn=task.collate,
            generator=torch.Generator(),
        )
        if val_ds is not None and len(val_ds) > 0
        else None
    )
    model = task.trainable()
    optimizer = build_optimizer(list(model.parameters()), tc.lr, tc.weight_decay)
    # accelerate steps a prepared scheduler once per process per optimizer step: scale the horizon to match.
    n_proc = accelerator.num_processes
    scheduler = build_scheduler(optimizer, tc.warmup_steps * n_proc, tc.max_steps * n_proc, tc.min_lr_ratio)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    task.to(accelerator.device)

    step, batches_seen, history = 0, 0, []
    running, running_n = 0.0, 0  # loss sum / batches since the last logged step
    running_terms: dict[str, float] = {}  # the loss terms' sums over the same batches
    if ckpt is not None:
        state = resume_state
        try:
            accelerator.load_state(str(ckpt / ACCELERATE_DIR))
        except Exception as e:  # a tampered pickle refused by weights_only, a truncated file, a shape mismatch
            first = " ".join(str(e).split())[:200]
            raise ConfigError(f"corrupt checkpoint {ckpt}: cannot restore its training state "
                              f"({type(e).__name__}: {first})") from e
        step, batches_seen, history = state["step"], state["batches_seen"], state.get("history", [])
        running, running_n = state.get("running", [0.0, 0])
        running_terms = dict(state.get("running_terms", {}))
        log.info("resumed from %s at step %d", ckpt, step)
    elif resume:
        log.info("no checkpoint in %s: starting fresh", run_dir)
    elif list_checkpoints(run_dir):
        raise ConfigError(
            f"run folder {run_dir} already holds checkpoints: resume it (--resume) or choose another "
            "train.output_dir"
        )

    meta = {
        "config": config_to_dict(config),
        "frozen_models": task.describe(),
        "vitmusic_version": __version__,
        "parameters": {"trainable": n_trainable, "frozen": n_frozen},
        "mixed_precision": {"requested": tc.mixed_precision, "ran": precision, "device": accelerator.device.type},
    }
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
    if accelerator.trackers == [] and accelerator.log_with:
        accelerator.init_trackers("tensorboard", config=flat_config(config))

    def write_history() -> None:
        if accelerator.is_main_process:
            from vitmusic.atomic import atomic_write_text

            atomic_write_text(run_dir / "history.json", json.dumps(history, indent=0))

    def check_weights_finite(at: int) -> None:
        bad = _nonfinite_parameter(model)
        if bad is not None:
            write_history()
            raise _diverged(f"parameter {bad}", float("nan"), at, scheduler.get_last_lr()[0], run_dir)

    def checkpoint(at: int) -> None:
        check_weights_finite(at)
        state = {
            "step": at,
            "batches_seen": batches_seen,
            "history": history,
            "running": [running, running_n],
            "running_terms": running_terms,
        }
        save_checkpoint(accelerator, task, model, step_dir(run_dir, at), {**meta, "step": at}, state)
        write_history()

    bar = tqdm(
        total=tc.max_steps,
        initial=step,
        desc="train",
        disable=not progress or not accelerator.is_main_process,
    )
    n_batches = len(loader)
    checked_grads = False
    model.train()
    while step < tc.max_steps and (stop_after is None or step < stop_after):
        epoch, skip = divmod(batches_seen, n_batches)
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        # accelerate's loaders re-set the sampler epoch from their own iteration counter when iterated, and a
        # skipping loader starts that counter at 0: set it through the loader, not only on the sampler.
        sampler.set_epoch(epoch)
        if hasattr(epoch_loader, "set_epoch"):
            epoch_loader.set_epoch(epoch)
        for batch in epoch_loader:
            with accelerator.accumulate(model):
                loss, terms = split_loss(task.loss(model, batch))  # scalar, {term: scalar}
                # the mean over the processes' batches: the loss of the global batch, the same on every process
                value = float(accelerator.reduce(loss.detach(), "mean")) if n_proc > 1 else float(loss.detach())
                if not math.isfinite(value):  # before it reaches the weights
                    write_history()
                    raise _diverged("loss", value, step + 1, scheduler.get_last_lr()[0], run_dir)
                accelerator.backward(loss)
                grad_norm = None
                if accelerator.sync_gradients:
                    if not checked_grads:
                        missing = [
                            n for n, p in model.named_parameters() if p.requires_grad and p.grad is None
                        ]
                        if missing:
                            log.warning("trainable parameters without gradient: %s", ", ".join(missing[:5]))
                        checked_grads = True
                    if tc.max_grad_norm > 0:
                        grad_norm = accelerator.clip_grad_norm_(model.parameters(), tc.max_grad_norm)
                        # fp16's loss scaler skips a step with inf gradients by itself; otherwise it would
                        # poison every weight
                        if precision != "fp16" and not math.isfinite(float(grad_norm)):
                            write_history()
                            raise _diverged("gradient norm", float(grad_norm), step + 1,
                                            scheduler.get_last_lr()[0], run_dir)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            batches_seen += 1
            running += value
            for k, v in terms.items():  # the loss terms, reduced the same way
                v = float(accelerator.reduce(v.detach(), "mean")) if n_proc > 1 else float(v.detach())
                running_terms[k] = running_terms.get(k, 0.0) + v
            running_n += 1
            if not accelerator.sync_gradients:
                continue
            step += 1
            bar.update(1)
            if step % tc.log_every == 0 or step == tc.max_steps:
                entry = {"step": step, "loss": running / running_n, "lr": scheduler.get_last_lr()[0],
                         **{k: v / running_n for k, v in running_terms.items()}}
                if grad_norm is not None:
                    entry["grad_norm"] = float(grad_norm)
                history.append(entry)
                accelerator.log({f"train/{k}": v for k, v in entry.items() if k != "step"}, step=step)
                bar.set_postfix(loss=f"{entry['loss']:.4f}")
                running, running_n, running_terms = 0.0, 0, {}
            if val_loader is not None and (step % tc.eval_every == 0 or step == tc.max_steps):
                val = evaluate_loss(accelerator, task, model, val_loader)
                history.append({"step": step, **{f"val_{k}": v for k, v in val.items()}})
                accelerator.log({f"val/{k}": v for k, v in val.items()}, step=step)
                write_history()
            if step % tc.save_every == 0 or step == tc.max_steps or step == stop_after:
                checkpoint(step)
            if step >= tc.max_steps or step == stop_after:
                break
    bar.close()
    write_history()
    final = run_dir / FINAL_DIR
    if stop_after is None or step >= tc.max_steps:
        check_weights_finite(step)
        save_final(accelerator, task, model, final, {**meta, "step": step})
        if accelerator.is_main_process and history:
            _plot_history(history, run_dir / "loss.png")
    # Not accelerator.end_training(): it also destroys the process group, and a launched process may go on
    # (ablate trains several variants and then waits for its main process); the group ends with the process.
    for tracker in accelerator.trackers:
        tracker.finish()
    return final
