"""The video -> notes task: a transcription head on cached per-part video embeddings, URMP Notes as targets.

Per clip: the video is cut into ``P`` part crops (part ``k`` = the ``k``-th performer from the left, ``P`` = the
number of instruments of the piece; equal horizontal slots, or located from motion with
``transcription.slots=located``) and every crop is encoded by the frozen encoder, so a
clip gives ``embeds [P, T, D]``; the manifest's per-stem notes give the rolls ``[P, 4, T, K]``
(:func:`vitmusic.generators.midi.transcription.notes_to_roll`). Only the head trains.

The embeddings come from the shared feature cache (:func:`vitmusic.training.features.extract_features`):
its frame reader hook returns a clip's slots one after the other in time (``[P * T_pad, H, W / P, 3]``,
each slot padded to whole encoder clips by repeating its last frame), which the frozen encoder turns into
``[P * S, D]``; the rows are cut back into ``[P, S, D]`` here. The slot layout is part of the cache key (a
``part_slots`` entry in the encoder fingerprint). Transcription needs no audio codes, so a
:class:`NullCodec` stands in for the generator (no audio is read; one zero code per clip).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vitmusic.config import Config
from vitmusic.data.manifest import read_clips
from vitmusic.encoders.video import frame_unit, read_clip_frames
from vitmusic.errors import ConfigError
from vitmusic.generators.midi.slots import PartSlotEncoder, cut_parts, slot_layout
from vitmusic.generators.midi.transcription import (
    HeadConfig,
    TranscriptionHead,
    decode_parts,
    instrument_index,
    instrument_table_size,
    notes_to_roll,
    transcription_loss,
)

log = logging.getLogger(__name__)


class NullCodec:
    """Stands in for the generator in the feature cache: transcription trains on notes, not audio codes."""

    sample_rate = 1000

    def fingerprint(self) -> dict[str, Any]:
        return {"id": "none", "kind": "transcription"}

    def encode_audio(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.zeros(wav.shape[0], 1, 1, dtype=torch.long)  # [B, K=1, T_a=1]


def _no_audio(path: str, start_s: float, end_s: float, sample_rate: int) -> np.ndarray:
    return np.zeros(1, np.float32)


def slot_frame_reader(clips: list[dict[str, Any]], unit: int, slots: str = "equal"):
    """The cache's frame reader: a clip's slots one after the other in time, each padded to ``unit`` frames.

    ``slots``: ``equal`` or ``located`` (:func:`vitmusic.generators.midi.slots.cut_parts`).
    """
    parts = {c["video"]: len(c["instruments"]) for c in clips if c.get("video")}

    def read(path: str, start_s: float, end_s: float, fps: float) -> np.ndarray:
        frames = read_clip_frames(path, start_s, end_s, fps)  # [T, H, W, 3]
        if len(frames) == 0:
            return frames
        crops = cut_parts(frames, parts[path], slots)  # [P, T, H, w, 3]
        pad = -len(frames) % unit
        if pad:
            crops = np.concatenate([crops, np.repeat(crops[:, -1:], pad, axis=1)], axis=1)
        return crops.reshape(-1, *crops.shape[2:])

    return read


# ---------------------------------------------------------------------------------------------- data


def thresholds(config: Config) -> dict[str, float]:
    """The decoding thresholds of a run config (keyword arguments of :func:`decode_parts`)."""
    t = config.transcription
    return {
        "onset_threshold": t.onset_threshold,
        "frame_threshold": t.frame_threshold,
        "offset_threshold": t.offset_threshold,
        "frame_onsets": t.frame_onsets,
    }


def head_config(config: Config, in_dim: int, instruments=()) -> HeadConfig:
    """The head of a run; its instrument table has a row for every instrument in ``instruments``."""
    t = config.transcription
    return HeadConfig(
        num_instruments=instrument_table_size(instruments) + 1,
        in_dim=in_dim,
        hidden_dim=t.hidden_dim,
        num_layers=t.num_layers,
        kernel_size=t.kernel_size,
        dropout=t.dropout,
        min_midi=t.min_midi,
        num_pitches=t.num_pitches,
    )


class TranscriptionDataset(torch.utils.data.Dataset):
    """Cached clips as ``{"embeds" [P, S, D], "mask" [P, S], "instruments" [P], "targets" [P, 4, S, K]}``.

    Args:
        rows: the cache split (``datasets`` rows with ``clip_id``, ``embeds [P*S, D]``, ``mask``).
        clips: manifest rows by clip id (instruments and notes).
        rate_hz: embedding steps per second.
        min_midi, num_pitches: the head's pitch axis.
        num_codes: the head's instrument table size (:func:`instrument_index`).
        donors: optional clip id -> clip id whose video embeddings replace the clip's own (the
            shuffled-video control keeps the targets and swaps the video; :func:`vitmusic.data.donors.donor_map`).
    """

    def __init__(
        self,
        rows,
        clips: dict[str, dict[str, Any]],
        rate_hz: float,
        min_midi: int,
        num_pitches: int,
        donors: dict[str, str] | None = None,
        num_codes: int | None = None,
    ) -> None:
        self.rows, self.clips, self.rate_hz = rows, clips, float(rate_hz)
        self.num_codes = instrument_index(None) if num_codes is None else int(num_codes)
        self.min_midi, self.num_pitches = min_midi, num_pitches
        self.ids = [str(c) for c in rows["clip_id"]]
        self.index = {c: i for i, c in enumerate(self.ids)}
        self.donors = donors or {}
        self._items: dict[int, dict[str, Any]] = {}  # a split is small ([P, S, D] per clip): build items once

    def __len__(self) -> int:
        return len(self.ids)

    def part_embeds(self, clip_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(embeds [P, S, D], mask [P, S])`` of a cached clip."""
        row = self.rows[self.index[clip_id]]
        P = len(self.clips[clip_id]["instruments"])
        e = np.asarray(row["embeds"], np.float32)
        m = np.asarray(row["mask"], bool)
        S = len(e) // P
        return e[: P * S].reshape(P, S, -1), m[: P * S].reshape(P, S)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if int(i) not in self._items:
            self._items[int(i)] = self._item(int(i))
        return self._items[int(i)]

    def _item(self, i: int) -> dict[str, Any]:
        cid = self.ids[i]
        clip = self.clips[cid]
        P = len(clip["instruments"])
        e, m = self.part_embeds(cid)
        if cid in self.donors:  # the video of another clip, its parts cycled to this clip's count
            de, dm = self.part_embeds(self.donors[cid])
            S = min(e.shape[1], de.shape[1])
            take = [k % de.shape[0] for k in range(P)]
            e, m = de[take, :S], dm[take, :S] & m[:, :S]
        S = e.shape[1]
        duration_s = float(clip["end_s"]) - float(clip["start_s"])
        m = m & (np.arange(S) / self.rate_hz < duration_s - 1e-9)[None]  # slot padding past the clip end
        targets = np.stack(
            [
                notes_to_roll(
                    np.asarray(clip["notes"][k] if k < len(clip["notes"]) else []),
                    S,
                    self.rate_hz,
                    min_midi=self.min_midi,
                    num_pitches=self.num_pitches,
                    carried_over=float(clip["start_s"]) > 0,
                ).stack()
                for k in range(P)
            ]
        )
        return {
            "clip_id": cid,
            "embeds": torch.from_numpy(e),
            "mask": torch.from_numpy(m),
            "instruments": torch.tensor([instrument_index(c, self.num_codes) for c in clip["instruments"]],
                                        dtype=torch.long),
            "targets": torch.from_numpy(targets),
        }


def collate_parts(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad parts and time to the batch's largest (masked): ``embeds [B, P, S, D]``, ``targets [B, P, 4, S, K]``."""
    B = len(items)
    P = max(it["embeds"].shape[0] for it in items)
    S = max(it["embeds"].shape[1] for it in items)
    D = items[0]["embeds"].shape[2]
    K = items[0]["targets"].shape[-1]
    embeds = torch.zeros(B, P, S, D)
    mask = torch.zeros(B, P, S, dtype=torch.bool)
    instruments = torch.full((B, P), instrument_index(None), dtype=torch.long)
    targets = torch.zeros(B, P, 4, S, K)
    for b, it in enumerate(items):
        p, s = it["embeds"].shape[:2]
        embeds[b, :p, :s], mask[b, :p, :s] = it["embeds"], it["mask"]
        instruments[b, :p] = it["instruments"]
        targets[b, :p, :, :s] = it["targets"]
    return {
        "embeds": embeds,
        "mask": mask,
        "instruments": instruments,
        "targets": targets,
        "clip_id": [it["clip_id"] for it in items],
    }


# ---------------------------------------------------------------------------------------------- task


def load_encoder_for(config: Config):
    from vitmusic.inference.models import load_run_encoder

    if config.encoder.lora.rank > 0:
        raise ConfigError(
            "encoder.lora.rank > 0 needs on-the-fly encoding, which training from the feature "
            "cache does not do; set encoder.lora.rank=0"
        )
    return load_run_encoder(config, adapters=False)


def build_cache(config: Config, encoder=None, progress: bool = True) -> Path:
    """Extract (or find) the per-part feature cache of the configured manifest and encoder."""
    from vitmusic.training.features import extract_features

    clips = read_clips(config)
    if encoder is None:
        encoder = load_encoder_for(config)
    return extract_features(
        clips,
        PartSlotEncoder(encoder, slots=config.transcription.slots),
        NullCodec(),
        config.extract.cache_dir,
        rate_hz=config.encoder.rate_hz,
        batch_size=config.extract.batch_size,
        shard_size=config.extract.shard_size,
        progress=progress,
        read_frames=slot_frame_reader(clips, frame_unit(encoder), config.transcription.slots),
        read_audio=_no_audio,
    )


class TranscriptionTask:
    """Train a :class:`TranscriptionHead` on cached per-part embeddings (see the module docstring)."""

    def __init__(
        self, config: Config, cache: Path, clips: list[dict[str, Any]], encoder_fingerprint: dict[str, Any]
    ):
        from vitmusic.training.features import load_train_val

        self.config, self.cache = config, Path(cache)
        self.clips = {str(c["clip_id"]): c for c in clips}
        self.encoder_fingerprint = encoder_fingerprint
        self._train, self._val, ref = load_train_val(cache, config.data.train_split, config.data.val_split)
        in_dim = int(np.asarray(ref[0]["embeds"]).shape[-1])
        torch.manual_seed(config.train.seed)  # the head's init is part of the run's seed
        train_instruments = [c for cid in self._train["clip_id"] for c in self.clips[str(cid)]["instruments"]]
        self.head = TranscriptionHead(head_config(config, in_dim, train_instruments))
        valid = [np.asarray(r["embeds"], np.float32)[np.asarray(r["mask"], bool)] for r in ref]
        self.head.fit_input_stats(torch.from_numpy(np.concatenate(valid)))

    def dataset(self, rows, donors: dict[str, str] | None = None) -> TranscriptionDataset:
        h = self.head.config
        return TranscriptionDataset(
            rows, self.clips, self.config.encoder.rate_hz, h.min_midi, h.num_pitches, donors,
            num_codes=h.num_instruments - 1,
        )

    def clip_pieces(self, split: str) -> dict[str, str]:
        """``{clip_id: piece}`` of a split's clips (the donor rule's input)."""
        return {cid: str(c["piece"]) for cid, c in self.clips.items() if c["split"] == split}

    def split_dataset(self, split: str, donors: dict[str, str] | None = None) -> TranscriptionDataset:
        """A split of the cache; ``donors`` (clip id -> clip id) swaps in another clip's video (the control)."""
        from vitmusic.training.features import load_cache

        return self.dataset(load_cache(self.cache, split), donors)

    # ------------------------------------------------------------------ Task protocol
    def trainable(self) -> nn.Module:
        return self.head

    def frozen(self) -> dict[str, nn.Module]:
        return {}  # the encoder only matters through the cache (its fingerprint is part of the key)

    def train_dataset(self) -> TranscriptionDataset:
        return self.dataset(self._train)

    def val_dataset(self) -> TranscriptionDataset:
        return self.dataset(self._val)

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_parts(items)

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        device = next(model.parameters()).device
        logits = model(batch["embeds"].to(device), batch["mask"].to(device), batch["instruments"].to(device))
        losses = transcription_loss(
            logits,
            batch["targets"].to(device),
            batch["mask"].to(device),
            onset_pos_weight=self.config.transcription.onset_pos_weight,
        )
        return losses["total"]

    def to(self, device: torch.device) -> TranscriptionTask:
        return self

    def describe(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder_fingerprint,
            "feature_cache": self.cache.name,
            "part_slots": slot_layout(self.config.transcription.slots),
        }

    def save_pretrained(self, model: nn.Module, out_dir: Path, meta: dict[str, Any]) -> None:
        model.save_pretrained(out_dir, extra=meta)


def build_task(config: Config, *, progress: bool = True) -> TranscriptionTask:
    """Load the frozen encoder, find or build the per-part feature cache, and set up the task."""
    clips = read_clips(config)  # fail fast on a bad manifest, before loading the encoder
    encoder = load_encoder_for(config)
    cache = build_cache(config, encoder, progress=progress)
    return TranscriptionTask(config, cache, clips, encoder.fingerprint())


# ---------------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def decode_split(task: TranscriptionTask, split: str, *, donors: dict[str, str] | None = None,
                 batch_size: int = 8) -> dict[str, list[np.ndarray]]:
    """``{clip_id: per-part notes [N, 3] (onset_s from the clip start, f0_hz, duration_s)}`` of a cached split.

    The trained head on the cached per-part embeddings, decoded with the config's thresholds; a note may not
    outlast its clip. ``donors`` maps a clip to the clip whose video it gets instead of its own (the control).
    """
    out: dict[str, list[np.ndarray]] = {}
    for cid, probs, mask in predict_split(task, split, donors=donors, batch_size=batch_size):
        clip = task.clips[cid]
        duration_s = float(clip["end_s"]) - float(clip["start_s"])
        parts = decode_parts(probs, mask, rate_hz=task.config.encoder.rate_hz, min_midi=task.head.min_midi,
                             **thresholds(task.config))
        notes = []
        for est, _ in parts:
            est = est[est[:, 0] < duration_s].copy()
            est[:, 2] = np.minimum(est[:, 2], duration_s - est[:, 0])
            notes.append(est)
        out[cid] = notes
    return out


def predict_split(task: TranscriptionTask, split: str, *, donors: dict[str, str] | None = None,
                  batch_size: int = 8) -> Iterator[tuple[str, dict[str, np.ndarray], np.ndarray]]:
    """The trained head's outputs on a cached split, clip by clip: ``(clip_id, {"onset", "frame", "offset",
    "velocity"}: [P, T, K] probabilities, mask [P, T])`` (``P``: the clip's parts). ``donors``: as in
    :func:`decode_split`."""
    ds = task.split_dataset(split, donors)
    head = task.head
    was = head.training
    head.eval()
    try:
        for a in range(0, len(ds), batch_size):
            batch = collate_parts([ds[i] for i in range(a, min(a + batch_size, len(ds)))])
            probs = head.predict(batch["embeds"], batch["mask"], batch["instruments"])
            for b, cid in enumerate(batch["clip_id"]):
                P = len(task.clips[cid]["instruments"])
                yield cid, {k: v[b, :P] for k, v in probs.items()}, batch["mask"][b, :P].numpy()
    finally:
        head.train(was)


def score_decoded(clips: dict[str, dict[str, Any]], decoded: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Per clip, the decoded notes against the clip's annotated notes (:func:`vitmusic.metrics.parts.score_clip_parts`:
    part k against stem k, the mean over the parts with reference notes, notes carried over from before the
    clip left out): ``{clip_id: {"notes.precision", "notes.recall", "notes.f1", "notes.f1_no_offset",
    "notes.parts"}}``."""
    from vitmusic.metrics.parts import score_clip_parts

    return {cid: score_clip_parts(clips[cid]["notes"], parts, carried_over=float(clips[cid]["start_s"]) > 0)
            for cid, parts in decoded.items()}


def evaluate_split(
    task: TranscriptionTask,
    split: str = "test",
    *,
    shuffled: bool = False,
    seed: int = 0,
    batch_size: int = 8,
) -> dict[str, float]:
    """Note P/R/F1 of the decoded parts of a split's clips: the mean over clips of :func:`score_decoded`.

    ``shuffled`` feeds every clip the video of a clip of another piece (:func:`vitmusic.data.donors.donor_map`
    with ``seed``: the control that a model reading the video must fail).

    Returns:
        ``notes.precision``, ``notes.recall``, ``notes.f1``, ``notes.f1_no_offset`` (means over the clips
        where defined) and ``clips`` (clips with at least one scored part).
    """
    from vitmusic.data.donors import donor_map
    from vitmusic.metrics import notes as notes_metrics

    donors = None
    if shuffled:
        donors = donor_map([{"clip_id": c, "piece": p} for c, p in task.clip_pieces(split).items()], seed)
    per = score_decoded(task.clips, decode_split(task, split, donors=donors, batch_size=batch_size))
    scored = [v for v in per.values() if v["notes.parts"] > 0]
    out = {}
    for k in notes_metrics.METRIC_NAMES:
        x = np.array([v[k] for v in scored], float)
        out[k] = float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")
    out["clips"] = float(len(scored))
    return out
