"""The notes -> audio task (``task: diffusion``): train the diffusion synthesizer on the stems of manifest clips.

Every clip of the train / val splits gives one example per stem that has both an audio file (URMP
``AuSep_*``) and a notes annotation: the stem audio of the clip's window, resampled to
``diffusion.sample_rate`` and turned into normalised log-mel frames ``[M, T]`` (:func:`log_mel`), its notes
(relative to the clip start) and its instrument code. The frames are computed once, when the task is built
(a tqdm bar over the clips). Training items are random crops of ``diffusion.segment_s`` seconds (drawn
from torch's global RNG, which accelerate's checkpoints restore, so a resumed run sees the same crops); the
piano roll of a crop comes from its notes shifted to the crop start (a note already sounding there gets no
onset, as one carried over from before a clip's start). Validation items are whole clips.
Nothing is frozen: the synthesizer has no pretrained parts.
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
from vitmusic.errors import DataError
from vitmusic.generators.midi.transcription import instrument_index
from vitmusic.generators.synthesizer.diffusion import DiffusionSynth, log_mel, piano_roll

log = logging.getLogger(__name__)


def stem_examples(clips: list[dict[str, Any]], config: Config, *, progress: bool = True) -> list[dict[str, Any]]:
    """Per clip and annotated stem: ``{"mel" float16 [M, T], "notes" [N, 3], "instrument", "carried_over",
    "clip_id", "stem"}``.

    Raises:
        DataError: an unreadable stem audio file.
    """
    from tqdm.auto import tqdm

    from vitmusic.data.audio import load_audio

    cfg = config.diffusion
    out = []
    for clip in tqdm(clips, desc="stem log-mels", disable=not progress):
        t0, t1 = float(clip["start_s"]), float(clip["end_s"])
        for k, stem in enumerate(clip.get("stems", [])):
            if not stem.get("audio") or not stem.get("notes") or k >= len(clip.get("notes", [])):
                continue
            wav, _ = load_audio(stem["audio"], sample_rate=cfg.sample_rate, mono=True, t0=t0, t1=t1)
            n = int(round((t1 - t0) * cfg.sample_rate))  # a stem a few samples short is padded with silence
            wav = wav[:n] if len(wav) >= n else np.pad(wav, (0, n - len(wav)))
            out.append(
                {
                    "mel": log_mel(wav, cfg).astype(np.float16),
                    "notes": np.asarray(clip["notes"][k], dtype=np.float64).reshape(-1, 3),
                    "instrument": stem["instrument"],
                    "carried_over": t0 > 0,  # notes at 0 may have begun before the clip
                    "clip_id": clip["clip_id"],
                    "stem": int(stem.get("index", k + 1)),
                }
            )
    return out


class StemDataset(torch.utils.data.Dataset):
    """Examples of :func:`stem_examples` as ``{"mel" [M, S], "roll" [2K, S], "instrument" (), "mask" [S]}``.

    Args:
        examples: from :func:`stem_examples`.
        config: the run config (``diffusion`` section).
        crop: take a random ``segment_s`` crop (training); otherwise the whole clip.
    """

    def __init__(self, examples: list[dict[str, Any]], config: Config, crop: bool) -> None:
        self.examples, self.cfg, self.crop = examples, config.diffusion, crop
        self.segment = max(1, int(round(self.cfg.segment_s * self.cfg.sample_rate / self.cfg.hop_length)))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ex = self.examples[int(i)]
        mel = ex["mel"]
        T = mel.shape[1]
        start = 0
        if self.crop and T > self.segment:
            start = int(torch.randint(0, T - self.segment + 1, ()).item())
            mel = mel[:, start : start + self.segment]
        notes = ex["notes"].copy()
        if start:  # notes relative to the crop; a note sounding across the crop start begins at 0
            shift = start * self.cfg.hop_length / self.cfg.sample_rate
            end = notes[:, 0] + notes[:, 2] - shift
            notes[:, 0] = np.maximum(notes[:, 0] - shift, 0.0)
            notes[:, 2] = end - notes[:, 0]
            notes = notes[end > 0]
        return {
            "mel": torch.from_numpy(mel.astype(np.float32)),
            "roll": torch.from_numpy(
                piano_roll(notes, mel.shape[1], self.cfg, carried_over=bool(start) or ex.get("carried_over", False))
            ),
            "instrument": instrument_index(ex["instrument"]),
        }


def collate_stems(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad to the longest item: ``mel [B, M, T]``, ``roll [B, 2K, T]``, ``instrument [B]``, ``mask [B, T]``."""
    T = max(it["mel"].shape[1] for it in items)
    B, M, C = len(items), items[0]["mel"].shape[0], items[0]["roll"].shape[0]
    mel, roll = torch.full((B, M, T), -1.0), torch.zeros(B, C, T)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, it in enumerate(items):
        t = it["mel"].shape[1]
        mel[b, :, :t], roll[b, :, :t], mask[b, :t] = it["mel"], it["roll"], True
    return {
        "mel": mel,
        "roll": roll,
        "instrument": torch.tensor([it["instrument"] for it in items], dtype=torch.long),
        "mask": mask,
    }


class DiffusionTask:
    """Train a :class:`DiffusionSynth` on (notes, stem audio) pairs (see the module docstring).

    Args:
        config: resolved config (``diffusion`` section, data splits, ``train.seed``).
        train_examples, val_examples: from :func:`stem_examples`.
    """

    def __init__(self, config: Config, train_examples: list[dict[str, Any]], val_examples: list[dict[str, Any]]):
        if not train_examples:
            raise DataError(
                f"no stem with both audio and notes in split '{config.data.train_split}' of {config.data.manifest}"
            )
        self.config = config
        self._train, self._val = train_examples, val_examples
        torch.manual_seed(config.train.seed)  # the model's init is part of the run's seed
        self.model = DiffusionSynth(config.diffusion)

    # ------------------------------------------------------------------ Task protocol
    def trainable(self) -> nn.Module:
        return self.model

    def frozen(self) -> dict[str, nn.Module]:
        return {}

    def train_dataset(self) -> StemDataset:
        return StemDataset(self._train, self.config, crop=True)

    def val_dataset(self) -> StemDataset:
        return StemDataset(self._val, self.config, crop=False)

    def collate(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return collate_stems(items)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        device = next(model.parameters()).device
        return model(
            batch["mel"].to(device), batch["roll"].to(device), batch["instrument"].to(device), batch["mask"].to(device)
        )

    def to(self, device: torch.device) -> DiffusionTask:
        return self

    def describe(self) -> dict[str, Any]:
        return {}  # no pretrained model takes part

    def save_pretrained(self, model: nn.Module, out_dir: Path, meta: dict[str, Any]) -> None:
        model.save_pretrained(out_dir, extra=meta)


def build_task(config: Config, *, progress: bool = True) -> DiffusionTask:
    """Read the manifest's train/val clips, compute their stems' log-mel frames and set up the task."""
    clips = read_clips(config)
    by_split = {
        split: [c for c in clips if c["split"] == split] for split in (config.data.train_split, config.data.val_split)
    }
    train = stem_examples(by_split[config.data.train_split], config, progress=progress)
    val = stem_examples(by_split[config.data.val_split], config, progress=progress)
    log.info("diffusion synthesizer: %d training and %d validation stems", len(train), len(val))
    return DiffusionTask(config, train, val)
