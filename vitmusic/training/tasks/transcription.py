"""The video -> notes task: a transcription head on cached per-part video embeddings, URMP Notes as targets.

Per clip: the video is cut into ``P`` equal horizontal slots (part ``k`` = the ``k``-th performer from the
left, ``P`` = the number of instruments of the piece) and every slot is encoded by the frozen encoder, so a
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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vitmusic.config import Config
from vitmusic.data.manifest import read_clips
from vitmusic.encoders.video import frame_unit, read_clip_frames
from vitmusic.errors import ConfigError
from vitmusic.generators.midi.slots import SLOT_LAYOUT, PartSlotEncoder, split_slots
from vitmusic.generators.midi.transcription import (
    HeadConfig,
    TranscriptionHead,
    decode_parts,
    instrument_index,
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


def slot_frame_reader(clips: list[dict[str, Any]], unit: int):
    """The cache's frame reader: a clip's slots one after the other in time, each padded to ``unit`` frames."""
    parts = {c["video"]: len(c["instruments"]) for c in clips if c.get("video")}

    def read(path: str, start_s: float, end_s: float, fps: float) -> np.ndarray:
        frames = read_clip_frames(path, start_s, end_s, fps)  # [T, H, W, 3]
        if len(frames) == 0:
            return frames
        slots = split_slots(frames, parts[path])  # [P, T, H, w, 3]
        pad = -len(frames) % unit
        if pad:
            slots = np.concatenate([slots, np.repeat(slots[:, -1:], pad, axis=1)], axis=1)
        return slots.reshape(-1, *slots.shape[2:])

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


def head_config(config: Config, in_dim: int) -> HeadConfig:
    t = config.transcription
    return HeadConfig(
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
        embeds_from: optional clip id -> clip id whose video embeddings replace the clip's own (the
            shuffled-video control keeps the targets and swaps the video).
    """

    def __init__(
        self,
        rows,
        clips: dict[str, dict[str, Any]],
        rate_hz: float,
        min_midi: int,
        num_pitches: int,
        embeds_from: dict[str, str] | None = None,
    ) -> None:
        self.rows, self.clips, self.rate_hz = rows, clips, float(rate_hz)
        self.min_midi, self.num_pitches = min_midi, num_pitches
        self.ids = [str(c) for c in rows["clip_id"]]
        self.index = {c: i for i, c in enumerate(self.ids)}
        self.embeds_from = embeds_from or {}
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
        if cid in self.embeds_from:  # the video of another clip, its parts cycled to this clip's count
            de, dm = self.part_embeds(self.embeds_from[cid])
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
            "instruments": torch.tensor([instrument_index(c) for c in clip["instruments"]], dtype=torch.long),
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
        PartSlotEncoder(encoder),
        NullCodec(),
        config.extract.cache_dir,
        rate_hz=config.encoder.rate_hz,
        batch_size=config.extract.batch_size,
        shard_size=config.extract.shard_size,
        progress=progress,
        read_frames=slot_frame_reader(clips, frame_unit(encoder)),
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
        self.head = TranscriptionHead(head_config(config, in_dim))
        valid = [np.asarray(r["embeds"], np.float32)[np.asarray(r["mask"], bool)] for r in ref]
        self.head.fit_input_stats(torch.from_numpy(np.concatenate(valid)))

    def dataset(self, rows, embeds_from: dict[str, str] | None = None) -> TranscriptionDataset:
        h = self.head.config
        return TranscriptionDataset(
            rows, self.clips, self.config.encoder.rate_hz, h.min_midi, h.num_pitches, embeds_from
        )

    def split_dataset(self, split: str, embeds_from: dict[str, str] | None = None) -> TranscriptionDataset:
        from vitmusic.training.features import load_cache

        return self.dataset(load_cache(self.cache, split), embeds_from)

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
            "part_slots": SLOT_LAYOUT,
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


def shuffled_donors(ds: TranscriptionDataset, seed: int = 0) -> dict[str, str]:
    """For every clip, a clip of a *different* piece (seeded) whose video replaces its own (the control)."""
    rng = np.random.default_rng(seed)
    pieces = {cid: ds.clips[cid]["piece"] for cid in ds.ids}
    donors = {}
    for cid in ds.ids:
        others = [o for o in ds.ids if pieces[o] != pieces[cid]] or [o for o in ds.ids if o != cid] or [cid]
        donors[cid] = str(rng.choice(others))
    return donors


@torch.no_grad()
def evaluate_split(
    task: TranscriptionTask,
    split: str = "test",
    *,
    shuffled: bool = False,
    seed: int = 0,
    batch_size: int = 8,
) -> dict[str, float]:
    """Note P/R/F1 (:func:`vitmusic.metrics.notes.evaluate`) of the decoded parts of a split's clips.

    Scores are means over (clip, part) pairs with at least one reference note; ``shuffled`` feeds every
    clip the video of a clip from another piece (the control that a model reading the video must fail).
    In a clip that starts mid-piece, notes sounding from its first step (carried over from before the cut)
    are left out on both sides: their onset is not in the clip.

    Returns:
        ``notes.precision``, ``notes.recall``, ``notes.f1``, ``notes.f1_no_offset`` and ``parts`` (count).
    """
    from vitmusic.metrics import notes as notes_metrics

    base = task.split_dataset(split)
    ds = task.split_dataset(split, shuffled_donors(base, seed)) if shuffled else base
    model = task.head
    was = model.training
    model.eval()
    scores: dict[str, list[float]] = {k: [] for k in notes_metrics.METRIC_NAMES}
    for a in range(0, len(ds), batch_size):
        batch = collate_parts([ds[i] for i in range(a, min(a + batch_size, len(ds)))])
        probs = model.predict(batch["embeds"], batch["mask"], batch["instruments"])
        for b, cid in enumerate(batch["clip_id"]):
            clip = task.clips[cid]
            P = len(clip["instruments"])
            parts = decode_parts(
                {k: v[b, :P] for k, v in probs.items()},
                batch["mask"][b, :P].numpy(),
                rate_hz=task.config.encoder.rate_hz,
                min_midi=model.min_midi,
                **thresholds(task.config),
            )
            for k, (est, _) in enumerate(parts):
                ref = np.asarray(clip["notes"][k], dtype=np.float64).reshape(-1, 3)
                ref = ref[ref[:, 2] > 0]
                if float(clip["start_s"]) > 0:  # notes carried over from the previous clip have no onset here
                    ref, est = ref[ref[:, 0] > 1e-6], est[est[:, 0] > 1e-6]
                if len(ref) == 0:
                    continue
                for name, value in notes_metrics.evaluate(ref, est).items():
                    scores[name].append(value)
    model.train(was)
    out = {
        k: float(np.nanmean(v)) if v and not np.all(np.isnan(v)) else float("nan") for k, v in scores.items()
    }
    out["parts"] = float(len(scores["notes.f1"]))
    return out
