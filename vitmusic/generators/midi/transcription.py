"""Video -> notes: a transcription head on the encoder's per-frame sequence, its targets and its decoding.

In the spirit of Onsets and Frames (Hawthorne et al., 2018): for every time step and every pitch the head
predicts an onset, a frame (sounding) and an offset probability and a velocity; the frame output also sees
the onset probabilities, so a note is only sustained where it started.

Parts. A piece has ``P`` parts (performers); each is cropped from its own slot of the frame and encoded on
its own (:mod:`vitmusic.generators.midi.slots`), so the embeddings of a clip are ``[P, T, D]`` and one shared
head transcribes every part, told which instrument the part plays by a learned instrument embedding (the same
hand height means a different pitch on a violin and on a cello). Batches pad parts up to the largest ``P``
and mask the padding (``mask [B, P, T]``).

Instrument table. The embedding rows are the first ``n`` codes of :data:`INSTRUMENT_CODES` (the instrument
vocabulary in its frozen, append-only order: URMP's 13 codes first) plus one row for "unknown instrument"; a
head stores ``num_instruments = n + 1`` in its config, so its table is known by name. The default (and every
head saved before other instruments existed) has URMP's 13 codes; a training set with other instruments gets
a longer table (:func:`instrument_table_size`). An instrument outside a head's table is transcribed with the
unknown row.

Targets come from a part's notes ``[N, 3]`` (onset_s, f0_hz, duration_s) at the encoder rate ``rate_hz``.
Step ``i`` shows the video at ``i / rate_hz``, so a note from ``on`` to ``off`` seconds is first visible at
step ``ceil(on * rate_hz)`` (its onset step; rounding would label half the onsets one frame before anything
can be seen) and sounds up to step ``ceil(off * rate_hz)`` (its offset step, excluded from the frame target).
:func:`decode_notes` inverts this, placing a note that starts at step ``a`` half a step earlier, in the middle
of the interval its true onset lies in: a perfect target roll decodes back to the notes within half a step.

The head saves as a model folder of the run format (:mod:`vitmusic.runs`).
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

from vitmusic.data.instruments import URMP_INSTRUMENTS, VOCABULARY, find_instrument
from vitmusic.errors import ConfigError, DataError
from vitmusic.runs import load_weights, read_model_config, save_module

__all__ = [
    "INSTRUMENT_CODES",
    "HEAD_KIND",
    "HeadConfig",
    "Roll",
    "TranscriptionHead",
    "decode_notes",
    "decode_parts",
    "instrument_index",
    "instrument_table_size",
    "load_head",
    "notes_to_roll",
    "transcription_loss",
]

HEAD_KIND = "transcription"
OUTPUTS = ("onset", "frame", "offset", "velocity")
# instrument embedding rows: a prefix of the vocabulary (frozen order, URMP's 13 sorted codes first), then one
# row for "unknown instrument"
INSTRUMENT_CODES: tuple[str, ...] = tuple(VOCABULARY)
URMP_TABLE_SIZE = len(URMP_INSTRUMENTS)  # the table of the first heads, and the default
_ROW = {code: i for i, code in enumerate(INSTRUMENT_CODES)}


def instrument_index(code: str | None, num_codes: int = URMP_TABLE_SIZE) -> int:
    """Row of an instrument in a table of the first ``num_codes`` codes (``num_codes`` = unknown / ``None``).

    ``code`` may be any name of the vocabulary (``"violin"`` and ``"vn"`` share a row).
    """
    info = find_instrument(code) if code else None
    row = _ROW[info.code] if info is not None else num_codes
    return row if row < num_codes else num_codes


def instrument_table_size(codes) -> int:
    """Smallest table (number of codes, >= URMP's 13) with a row for every known instrument in ``codes``."""
    rows = [_ROW[info.code] for info in map(find_instrument, codes) if info is not None]
    return max([URMP_TABLE_SIZE] + [r + 1 for r in rows])


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def hz_to_midi(f0_hz: np.ndarray | float) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(np.asarray(f0_hz, dtype=np.float64) / 440.0)


# ---------------------------------------------------------------------------------------------- targets


@dataclass
class Roll:
    """Piano-roll targets of one part, float32 ``[T, K]`` each (``K`` pitches from ``min_midi``)."""

    onset: np.ndarray
    frame: np.ndarray
    offset: np.ndarray
    velocity: np.ndarray  # velocity in [0, 1] at the onset steps, 0 elsewhere

    def stack(self) -> np.ndarray:
        """``[4, T, K]`` in the order of :data:`OUTPUTS`."""
        return np.stack([self.onset, self.frame, self.offset, self.velocity])


def notes_to_roll(
    notes: np.ndarray,
    num_steps: int,
    rate_hz: float,
    *,
    min_midi: int = 21,
    num_pitches: int = 88,
    velocities: np.ndarray | None = None,
    carried_over: bool = False,
) -> Roll:
    """Onset / frame / offset / velocity targets of one part at ``rate_hz`` steps per second.

    Args:
        notes: ``[N, 3]`` (onset_s, f0_hz, duration_s), times relative to step 0; notes outside
            ``[min_midi, min_midi + num_pitches)`` or starting after the last step are dropped.
        num_steps: ``T``.
        rate_hz: steps per second (the encoder's embedding rate).
        min_midi, num_pitches: pitch axis (default: the 88 piano keys, MIDI 21-108).
        velocities: ``[N]`` in [0, 1]; default 0.8 (URMP annotations carry none).
        carried_over: notes at time 0 started before step 0 (a clip cut from a longer piece): they sound
            from step 0 but get no onset target (no attack is visible there).

    Returns:
        :class:`Roll` with ``[T, K]`` arrays.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    vel = np.full(len(notes), 0.8) if velocities is None else np.asarray(velocities, dtype=np.float64)
    shape = (int(num_steps), int(num_pitches))
    onset, frame, offset, velocity = (np.zeros(shape, np.float32) for _ in range(4))
    for (on_s, f0_hz, dur_s), v in zip(notes, vel):
        if not (f0_hz > 0 and dur_s >= 0):
            continue
        k = int(np.round(hz_to_midi(f0_hz))) - min_midi
        start = int(np.ceil(on_s * rate_hz - 1e-6))
        if not 0 <= k < num_pitches or not 0 <= start < num_steps:
            continue
        stop = max(start + 1, int(np.ceil((on_s + dur_s) * rate_hz - 1e-6)))
        frame[start:stop, k] = 1.0
        if not (carried_over and on_s <= 1e-6):
            onset[start, k] = 1.0
            velocity[start, k] = float(v)
        if stop < num_steps:
            offset[stop, k] = 1.0
    return Roll(onset, frame, offset, velocity)


# ---------------------------------------------------------------------------------------------- decoding


def _peaks(prob: np.ndarray, threshold: float) -> np.ndarray:
    """bool ``[T, K]``: local maxima over time above ``threshold`` (the first step of a plateau)."""
    prev = np.concatenate([np.full((1, prob.shape[1]), -np.inf), prob[:-1]])
    nxt = np.concatenate([prob[1:], np.full((1, prob.shape[1]), -np.inf)])
    return (prob >= threshold) & (prob > prev) & (prob >= nxt)


def decode_notes(
    onset_prob: np.ndarray,
    frame_prob: np.ndarray,
    offset_prob: np.ndarray | None = None,
    *,
    rate_hz: float,
    min_midi: int = 21,
    onset_threshold: float = 0.5,
    frame_threshold: float = 0.5,
    offset_threshold: float = 0.5,
    velocity: np.ndarray | None = None,
    default_velocity: float = 0.8,
    t0_s: float = 0.0,
    frame_onsets: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Notes of one part from its probabilities: onset peak picking, frame continuation, offset.

    A note of pitch ``k`` starts at every onset peak (a local maximum over time of ``onset_prob[:, k]`` at or
    above ``onset_threshold``), and lasts while ``frame_prob`` stays at or above ``frame_threshold``; it
    ends earlier at an offset peak or at the next onset of the same pitch (a repeated note).

    Args:
        onset_prob, frame_prob, offset_prob: ``[T, K]`` probabilities (``offset_prob`` optional).
        rate_hz: steps per second; step ``i`` is at ``t0_s + i / rate_hz`` seconds, and a note whose onset
            (offset) step is ``a`` (``b``) is placed at ``t0_s + max(a - 0.5, 0) / rate_hz`` for ``(b - a) / rate_hz``
            seconds (see the module docstring).
        min_midi: MIDI pitch of column 0.
        velocity: ``[T, K]`` predicted velocity in [0, 1] (read at the onset step), or None for
            ``default_velocity``.
        frame_onsets: when > 0, a run of at least this many sounding steps that no onset peak started is a
            note too (for weak onset predictions: a change of pitch still shows in the frames; repeated
            notes still need onset peaks). 0: Onsets and Frames' rule, no note without an onset.

    Returns:
        ``(notes [N, 3] (onset_s, f0_hz, duration_s) sorted by onset then pitch, velocities [N] in [0, 1])``.
    """
    onset_prob = np.asarray(onset_prob, dtype=np.float64)
    frame_prob = np.asarray(frame_prob, dtype=np.float64)
    if onset_prob.ndim != 2 or onset_prob.shape != frame_prob.shape:
        raise ValueError(f"onset and frame probabilities must be equal [T, K], got {onset_prob.shape} and "
                         f"{frame_prob.shape}")
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    T, K = onset_prob.shape
    starts = _peaks(onset_prob, onset_threshold) if T else np.zeros((0, K), bool)
    ends = (_peaks(np.asarray(offset_prob, dtype=np.float64), offset_threshold) if offset_prob is not None and T
            else np.zeros((T, K), bool))
    sounding = frame_prob >= frame_threshold
    runs: list[tuple[int, int, int, bool]] = []  # (start step, stop step, pitch column, started by frames)
    for k in range(K):
        if not starts[:, k].any() and not (frame_onsets and sounding[:, k].any()):
            continue
        start, from_frames = -1, False
        for t in range(T):
            if starts[t, k]:
                if start >= 0:
                    runs.append((start, t, k, from_frames))
                start, from_frames = t, False
            elif start >= 0 and (not sounding[t, k] or ends[t, k]):
                runs.append((start, t, k, from_frames))
                start = -1
            elif start < 0 and frame_onsets and sounding[t, k] and (t == 0 or not sounding[t - 1, k]):
                start, from_frames = t, True
        if start >= 0:
            runs.append((start, T, k, from_frames))
    found = [(a, b, k) for a, b, k, by_frames in runs if not (by_frames and b - a < frame_onsets)]
    found.sort()
    notes = np.asarray([(t0_s + max(a - 0.5, 0.0) / rate_hz, float(midi_to_hz(min_midi + k)), (b - a) / rate_hz)
                        for a, b, k in found], dtype=np.float64).reshape(-1, 3)
    if velocity is None:
        vel = np.full(len(found), float(default_velocity))
    else:
        velocity = np.asarray(velocity, dtype=np.float64)
        vel = np.asarray([velocity[a, k] for a, _, k in found], dtype=np.float64)
    return notes, np.clip(vel, 0.0, 1.0)


def decode_parts(probs: dict[str, np.ndarray], mask: np.ndarray, *, rate_hz: float, min_midi: int,
                 **thresholds: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Notes of every part of one clip from ``[P, T, K]`` probabilities and the valid steps ``mask [P, T]``.

    Returns:
        per part ``(notes [N, 3], velocities [N])`` (see :func:`decode_notes`; ``thresholds`` go to it).
    """
    out = []
    for k in range(probs["onset"].shape[0]):
        n = int(np.asarray(mask[k]).sum())
        out.append(decode_notes(probs["onset"][k, :n], probs["frame"][k, :n], probs["offset"][k, :n],
                                rate_hz=rate_hz, min_midi=min_midi, **thresholds))
    return out


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
    num_instruments: int = URMP_TABLE_SIZE + 1  # codes of the instrument table + the unknown row

    def check(self) -> HeadConfig:
        for name in ("in_dim", "hidden_dim", "num_layers", "kernel_size", "num_pitches", "num_instruments"):
            if not int(getattr(self, name)) > 0:
                raise ConfigError(f"transcription head: {name} must be > 0, got {getattr(self, name)}")
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"transcription head: kernel_size must be odd, got {self.kernel_size}")
        if self.num_instruments - 1 > len(INSTRUMENT_CODES):
            raise ConfigError(f"transcription head: {self.num_instruments} instrument rows but the vocabulary has "
                              f"{len(INSTRUMENT_CODES)} instruments (+1 unknown); is vitmusic older than the head?")
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
    def num_codes(self) -> int:
        """Instruments with their own embedding row (the unknown row is ``num_codes``)."""
        return self.config.num_instruments - 1

    @property
    def instrument_codes(self) -> tuple[str, ...]:
        """The instrument table by name: row ``i`` embeds ``instrument_codes[i]``."""
        return INSTRUMENT_CODES[: self.num_codes]

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
        # only the parts with a valid step go through the stack (a batch of pieces with 1-4 performers is padded
        # to its largest: ~20 % of the rows of the demo's batches); every op works per row, so the rows that
        # are computed get the same values, and the padded rows' logits are 0 (the loss masks them anyway)
        rows = mask.reshape(B * P, T).any(-1)
        keep = None if bool(rows.all()) else rows.nonzero().squeeze(-1)
        m = mask.reshape(B * P, T).to(embeds.dtype)
        z = embeds.reshape(B * P, T, D)
        inst = instruments.reshape(B * P)
        if keep is not None:
            m, z, inst = m[keep], z[keep], inst[keep]
        x = self.inp((z - self.input_mean) / self.input_std) + self.instrument(inst).unsqueeze(1)
        for block in self.blocks:
            x = block(x, m)
        x = self.norm(x)  # [N, T, C], N = the parts computed
        onset = self.onset(x)
        out = {
            "onset": onset,
            "frame": self.frame(torch.cat([x, torch.sigmoid(onset).detach()], -1)),
            "offset": self.offset(x),
            "velocity": self.velocity(x),
        }
        if keep is not None:
            out = {k: v.new_zeros(B * P, T, self.num_pitches).index_copy(0, keep, v) for k, v in out.items()}
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
