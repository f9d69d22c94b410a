"""Video -> notes: a transcription head on the encoder's per-frame sequence, and its loss.

In the spirit of Onsets and Frames (Hawthorne et al., 2018): for every time step and every pitch the head
predicts an onset, a frame (sounding) and an offset probability and a velocity; the frame output also sees
the onset probabilities, so a note is only sustained where it started.

The head reads the per-part embeddings of :mod:`vitmusic.generators.midi.slots` (``[B, P, T, D]``), is trained
on the rolls of :mod:`vitmusic.generators.midi.roll` and saves as a model folder of the run format
(:mod:`vitmusic.runs`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vitmusic.data.urmp import INSTRUMENTS
from vitmusic.errors import ConfigError, DataError
from vitmusic.runs import load_weights, read_model_config, save_module

__all__ = [
    "INSTRUMENT_CODES",
    "HEAD_KIND",
    "HeadConfig",
    "TranscriptionHead",
    "instrument_index",
    "load_head",
    "transcription_loss",
]

HEAD_KIND = "transcription"
# instrument embedding rows: the URMP codes in a fixed order, then one row for "unknown instrument"
INSTRUMENT_CODES: tuple[str, ...] = tuple(sorted(INSTRUMENTS))


def instrument_index(code: str | None) -> int:
    """Row of ``code`` in the instrument embedding (the last row for ``None`` / unknown codes)."""
    return INSTRUMENT_CODES.index(code) if code in INSTRUMENT_CODES else len(INSTRUMENT_CODES)


# ---------------------------------------------------------------------------------------------- the head


@dataclass
class HeadConfig:
    """Hyper-parameters of :class:`TranscriptionHead` (stored in its ``config.json``)."""

    in_dim: int
    hidden_dim: int = 128
    num_layers: int = 3
    kernel_size: int = 5
    dropout: float = 0.1
    min_midi: int = 21
    num_pitches: int = 88
    num_instruments: int = len(INSTRUMENT_CODES) + 1

    def check(self) -> HeadConfig:
        for name in ("in_dim", "hidden_dim", "num_layers", "kernel_size", "num_pitches", "num_instruments"):
            if not int(getattr(self, name)) > 0:
                raise ConfigError(f"transcription head: {name} must be > 0, got {getattr(self, name)}")
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"transcription head: kernel_size must be odd, got {self.kernel_size}")
        if not (0 <= self.min_midi and self.min_midi + self.num_pitches <= 128):
            raise ConfigError(f"transcription head: pitches {self.min_midi}..{self.min_midi + self.num_pitches - 1} "
                              "are not all MIDI notes (0-127)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"transcription head: dropout must be in [0, 1), got {self.dropout}")
        return self


class _ConvBlock(nn.Module):
    """Residual temporal convolution (pre-norm), so onsets can be read from changes between frames."""

    def __init__(self, dim: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # [N, T, C], [N, T]
        h = (self.norm(x) * mask.unsqueeze(-1)).transpose(1, 2)  # padding must not leak into valid steps
        return x + self.drop(F.gelu(self.conv(h).transpose(1, 2)))


class TranscriptionHead(nn.Module):
    """Per-part onset / frame / offset / velocity predictions from per-part embedding sequences.

    Shapes: ``embeds [B, P, T, D]``, ``mask [B, P, T]`` (bool), ``instruments [B, P]`` (long rows of
    :func:`instrument_index`) -> dict of ``[B, P, T, K]`` logits ``onset``, ``frame``, ``offset`` and the
    ``velocity`` logit (sigmoid -> [0, 1]).
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config.check()
        c = self.config
        # Frozen random-init (or pretrained) encoders give embeddings that differ from frame to frame by a
        # small fraction of their norm: standardise every dimension with statistics of the training set
        # (set by fit_input_stats, stored with the weights) before anything else.
        self.register_buffer("input_mean", torch.zeros(c.in_dim))
        self.register_buffer("input_std", torch.ones(c.in_dim))
        self.inp = nn.Linear(c.in_dim, c.hidden_dim)
        self.instrument = nn.Embedding(c.num_instruments, c.hidden_dim)
        self.blocks = nn.ModuleList(_ConvBlock(c.hidden_dim, c.kernel_size, c.dropout) for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.hidden_dim)
        self.onset = nn.Linear(c.hidden_dim, c.num_pitches)
        self.offset = nn.Linear(c.hidden_dim, c.num_pitches)
        self.velocity = nn.Linear(c.hidden_dim, c.num_pitches)
        # Onsets and Frames: the frame stack sees the (detached) onset probabilities
        self.frame = nn.Sequential(nn.Linear(c.hidden_dim + c.num_pitches, c.hidden_dim), nn.GELU(),
                                   nn.Linear(c.hidden_dim, c.num_pitches))

    @property
    def in_dim(self) -> int:
        return self.config.in_dim

    @property
    def min_midi(self) -> int:
        return self.config.min_midi

    @property
    def num_pitches(self) -> int:
        return self.config.num_pitches

    @torch.no_grad()
    def fit_input_stats(self, embeds: torch.Tensor) -> None:
        """Per-dimension mean and std of training embeddings ``[N, D]`` (valid steps only) for standardising."""
        embeds = embeds.reshape(-1, self.in_dim).float()
        self.input_mean.copy_(embeds.mean(0))
        self.input_std.copy_(embeds.std(0).clamp_min(1e-6) if len(embeds) > 1 else torch.ones(self.in_dim))

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor, instruments: torch.Tensor) -> dict[str, torch.Tensor]:
        if embeds.ndim != 4 or embeds.shape[-1] != self.in_dim:
            raise ValueError(f"embeds must be [B, P, T, {self.in_dim}], got {tuple(embeds.shape)}")
        B, P, T, D = embeds.shape
        if tuple(mask.shape) != (B, P, T) or tuple(instruments.shape) != (B, P):
            raise ValueError(f"mask must be [B, P, T] = {(B, P, T)} and instruments [B, P], got "
                             f"{tuple(mask.shape)} and {tuple(instruments.shape)}")
        m = mask.reshape(B * P, T).to(embeds.dtype)
        z = (embeds.reshape(B * P, T, D) - self.input_mean) / self.input_std
        x = self.inp(z) + self.instrument(instruments.reshape(B * P)).unsqueeze(1)
        for block in self.blocks:
            x = block(x, m)
        x = self.norm(x)  # [B*P, T, C]
        onset = self.onset(x)
        out = {
            "onset": onset,
            "frame": self.frame(torch.cat([x, torch.sigmoid(onset).detach()], -1)),
            "offset": self.offset(x),
            "velocity": self.velocity(x),
        }
        return {k: v.reshape(B, P, T, self.num_pitches) for k, v in out.items()}

    @torch.no_grad()
    def predict(self, embeds: torch.Tensor, mask: torch.Tensor, instruments: torch.Tensor) -> dict[str, np.ndarray]:
        """Probabilities ``[B, P, T, K]`` (numpy float32) of the four outputs, in eval mode."""
        was = self.training
        self.eval()
        out = {k: torch.sigmoid(v).float().cpu().numpy() for k, v in self(embeds, mask, instruments).items()}
        self.train(was)
        return out

    # ------------------------------------------------------------------ export
    def save_pretrained(self, out_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` + ``config.json`` (``kind``, ``in_dim``, ``out_dim``, ``hparams``, ``extra``),
        each atomically (:func:`vitmusic.runs.save_module`)."""
        meta = {"kind": HEAD_KIND, "in_dim": self.in_dim, "out_dim": self.num_pitches,
                "hparams": asdict(self.config), "extra": extra or {}}
        return save_module(self, out_dir, meta)


def load_head(load_dir: str | os.PathLike, device: str | torch.device | None = None) -> TranscriptionHead:
    """Rebuild a head saved with :meth:`TranscriptionHead.save_pretrained`.

    Raises:
        DataError: missing/corrupt files, not a transcription head, or weights that do not fit its config.
    """
    folder = Path(load_dir)
    meta = read_model_config(folder, what="transcription head")
    if meta.get("kind") != HEAD_KIND:
        raise DataError(f"{folder}: not a transcription head (kind {meta.get('kind')!r}); was it trained with "
                        "task=transcription?")
    try:
        head = TranscriptionHead(HeadConfig(**meta["hparams"]))
        head.load_state_dict(load_weights(folder, what="transcription head"))
    except (KeyError, TypeError, RuntimeError) as e:
        raise DataError(f"{folder}: transcription head weights do not load ({str(e).splitlines()[0]})") from e
    return head.to(device) if device is not None else head


# ---------------------------------------------------------------------------------------------- loss


def transcription_loss(
    logits: dict[str, torch.Tensor],
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    onset_pos_weight: float = 1.0,
    velocity_known: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Masked binary cross-entropies of onset / frame / offset and the velocity error at onsets.

    Args:
        logits: the head's output, ``[B, P, T, K]`` each.
        targets: ``[B, P, 4, T, K]`` rolls (:meth:`Roll.stack` per part).
        mask: bool ``[B, P, T]``: valid steps of real parts.
        onset_pos_weight: weight of the (rare) positive steps of the onset, frame and offset targets.
        velocity_known: bool ``[B, P]``: parts whose annotation has velocities (default: none, so the
            velocity output is not trained on URMP's velocity-less notes).

    Returns:
        ``{"onset", "frame", "offset", "velocity", "total"}`` scalar losses (means over valid steps x pitches).
    """
    m = mask.unsqueeze(-1).to(targets.dtype)  # [B, P, T, 1]
    denom = (m.sum() * targets.shape[-1]).clamp_min(1.0)
    pos = torch.tensor(float(onset_pos_weight), dtype=targets.dtype, device=targets.device)
    out = {}
    for i, name in enumerate(("onset", "frame", "offset")):
        bce = F.binary_cross_entropy_with_logits(logits[name], targets[:, :, i], reduction="none",
                                                 pos_weight=pos)
        out[name] = (bce * m).sum() / denom
    vm = targets[:, :, 0] * m  # velocity only where a note starts
    if velocity_known is not None:
        vm = vm * velocity_known.to(vm.dtype)[:, :, None, None]
    else:
        vm = vm * 0.0
    err = (torch.sigmoid(logits["velocity"]) - targets[:, :, 3]) ** 2
    out["velocity"] = (err * vm).sum() / vm.sum().clamp_min(1.0)
    out["total"] = out["onset"] + out["frame"] + out["offset"] + out["velocity"]
    return out
