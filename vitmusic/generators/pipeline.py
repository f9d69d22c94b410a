"""Music for a video from a trained run: frozen vision encoder -> trained projection -> frozen MusicGen.

A run folder ``RUN`` (see :mod:`vitmusic.training.checkpoint`) exports its trainable projection to
``RUN/final/`` (or ``RUN/checkpoints/step_<n>/``) as ``model.safetensors`` + ``config.json``; the
``config.json``'s ``extra`` holds the resolved run config and the fingerprints of the frozen encoder and
generator. A run that trained encoder LoRA adapters (``encoder.lora.rank > 0``) also has
``encoder_adapters.safetensors`` there. :func:`load_pipeline` rebuilds everything from that one folder
(the encoder with the run's LoRA config and trained adapters, then frozen) and checks that the frozen models
it loads are the ones the projection was trained with.

Generation for a video (:meth:`MusicGenPipeline.generate_video`)::

    frames, streamed in windows at encoder.sample_fps(rate_hz)      uint8 [T_w, H, W, 3] per window
    -> encoder                                                      embeds [1, T, D], one time per step (frame pts)
    -> projection, in chunks of about generate.window_s seconds      tokens [1, S, cond_dim] + token times
    -> MusicGen, window by window, each prompted by the previous tail   codes [1, K, F]
    -> Encodec decoder                                              wav [N], N = round(duration_s * sample_rate)

Only frames are streamed (bounded memory); the embeddings of the whole video are kept (a few MB per hour).
The projection runs in chunks because training only showed it clips of about a window's length (a temporal
transformer's time embedding starts at 0 for every clip), and so that its cost stays linear in the length.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitmusic.config import Config, config_from_dict
from vitmusic.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = [
    "MusicGenPipeline",
    "VideoEmbeddings",
    "item_seed",
    "load_pipeline",
    "read_run",
    "resolve_checkpoint",
]

FINAL_DIR = "final"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
ENCODE_WINDOW_S = 4.0  # seconds of frames decoded at a time (rounded to whole encoder chunks)

# fingerprint fields that decide what the frozen models compute; anything else (e.g. a processor's JSON
# layout) may change with library versions without changing the outputs
_ENCODER_KEYS = ("kind", "name_or_path", "revision", "weights_sha256", "output", "frames_per_step", "lora")
_GENERATOR_KEYS = ("id", "kind", "revision", "config_sha256", "entry", "text_prompt", "cond_dim")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The folder holding the exported projection for a ``--checkpoint`` value.

    Args:
        path: a run folder (its ``final/`` is used), ``RUN/checkpoints/step_<n>`` or any folder with
            ``model.safetensors`` + ``config.json`` written by training.

    Raises:
        ConfigError: missing path, or no exported model in it (one line, naming what was looked for).
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"checkpoint not found: {p}")
    for folder in (p, p / FINAL_DIR):
        if (folder / WEIGHTS_NAME).is_file() and (folder / CONFIG_NAME).is_file():
            return folder
    steps = sorted(
        (int(c.name[5:]), c)
        for c in (p / "checkpoints").glob("step_*")
        if c.name[5:].isdigit() and (c / WEIGHTS_NAME).is_file()
    )
    hint = f"; the latest checkpoint is {steps[-1][1]}" if steps else ""
    raise ConfigError(
        f"no trained model in {p}: expected {WEIGHTS_NAME} + {CONFIG_NAME} in it or in {p / FINAL_DIR}{hint}"
    )


def read_run(checkpoint: str | os.PathLike) -> tuple[Path, Config, dict[str, Any]]:
    """Resolve ``checkpoint`` and read what training stored with it.

    Returns:
        (the model folder, the resolved run :class:`Config`, the frozen models' fingerprints
        ``{"encoder": {...}, "generator": {...}, ...}``).

    Raises:
        ConfigError: no checkpoint, or a ``config.json`` without a run config (not written by training).
    """
    from vitmusic.projection import read_projection_config

    folder = resolve_checkpoint(checkpoint)
    try:
        extra = read_projection_config(folder).get("extra") or {}
    except DataError as e:
        raise ConfigError(str(e)) from e
    if "config" not in extra:
        raise ConfigError(f"{folder / CONFIG_NAME}: no run config stored (not exported by 'vitmusic train')")
    config = config_from_dict(extra["config"], where=str(folder / CONFIG_NAME))
    return folder, config, dict(extra.get("frozen_models") or {})


def _mismatches(stored: dict[str, Any], loaded: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [f"{k}: trained with {stored.get(k)!r}, loaded {loaded.get(k)!r}" for k in keys
            if k in stored and stored.get(k) != loaded.get(k)]


def item_seed(seed: int, name: str) -> int:
    """A per-item seed from a base seed and the item's name (stable across runs, machines and orderings)."""
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class VideoEmbeddings:
    """Encoder output for one video (or a clip of it).

    Attributes:
        embeds: float ``[1, T, D]`` (CPU).
        mask: bool ``[1, T]``.
        times_s: float64 ``[T]``: presentation time of each step's first frame, seconds from the clip start.
        duration_s: length of the music to generate (the video's, or ``t1_s - t0_s``).
    """

    embeds: torch.Tensor
    mask: torch.Tensor
    times_s: np.ndarray
    duration_s: float


class MusicGenPipeline:
    """A trained video -> MusicGen model, ready to generate (everything in eval mode, nothing trains).

    Args:
        config: the run's resolved config (encoder rate, projection chunking, ``generate`` defaults).
        encoder: the frozen :class:`~vitmusic.encoders.VisionEncoder`.
        projection: the trained :class:`~vitmusic.projection.Projection` (switched to eval mode).
        generator: the frozen :class:`~vitmusic.generators.musicgen.MusicGenGenerator`.
        checkpoint: the folder it was loaded from, if any (for :meth:`describe`).
    """

    def __init__(self, config: Config, encoder, projection, generator, *, checkpoint: Path | None = None) -> None:
        if projection.in_dim != encoder.embed_dim:
            raise ConfigError(f"projection expects {projection.in_dim}-dim embeddings, the encoder gives "
                              f"{encoder.embed_dim}")
        if projection.out_dim != generator.cond_dim:
            raise ConfigError(f"projection outputs {projection.out_dim}-dim tokens, the generator needs "
                              f"{generator.cond_dim}")
        self.config, self.encoder, self.generator = config, encoder, generator
        self.projection = projection.to(generator.device).eval()
        self.checkpoint = checkpoint

    # ------------------------------------------------------------------ facts
    @property
    def sample_rate(self) -> int:
        """Sample rate of the generated audio in Hz."""
        return self.generator.sample_rate

    @property
    def default_seed(self) -> int:
        return int(self.config.generate.seed)

    @property
    def default_guidance(self) -> float:
        return float(self.config.generate.guidance_scale)

    @property
    def rate_hz(self) -> float:
        """Encoder embedding steps per second."""
        return float(self.config.encoder.rate_hz)

    def describe(self) -> dict[str, Any]:
        """What generated the audio (for reports next to the outputs)."""
        g = self.config.generate
        return {
            "path": "musicgen",
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "encoder": self.config.encoder.name,
            "generator": self.config.generator.name,
            "projection": self.config.projection.kind,
            "rate_hz": self.rate_hz,
            "window_s": g.window_s,
            "context_s": g.context_s,
            "top_k": g.top_k,
            "sample_rate": self.sample_rate,
        }

    # ------------------------------------------------------------------ video -> embeddings
    def encode_window_frames(self, fps: float) -> int:
        """Frames decoded per window: whole encoder chunks (VideoMAE clips), about :data:`ENCODE_WINDOW_S`.

        Whole chunks make windowed encoding identical to encoding the clip in one piece, as training did.
        """
        unit = math.lcm(int(getattr(self.encoder, "clip_frames", 1)), int(self.encoder.frames_per_step))
        return unit * max(1, round(ENCODE_WINDOW_S * fps / unit))

    def _frame_windows(self, reader, t0_s: float, t1_s: float, fps: float, window_frames: int):
        window_s = window_frames / fps
        if t0_s == 0.0 and t1_s >= reader.info.duration_s:
            yield from reader.iter_windows(window_s, fps=fps)  # one sequential pass, bounded memory
            return
        k = 0
        while t0_s + k * window_s < t1_s - 1e-9:
            yield reader.read(t0_s + k * window_s, min(t0_s + (k + 1) * window_s, t1_s), fps=fps)
            k += 1

    @torch.no_grad()
    def embed_video(
        self, video: str | os.PathLike, *, t0_s: float = 0.0, t1_s: float | None = None, progress: bool = False
    ) -> VideoEmbeddings:
        """Encoder embeddings of a video's ``[t0_s, t1_s)`` (default: all of it), decoded window by window.

        Raises:
            DataError: missing, empty or corrupt video, or a range outside it.
        """
        from tqdm.auto import tqdm

        from vitmusic.data.video import VideoReader

        fps = self.encoder.sample_fps(self.rate_hz)
        step_frames = int(self.encoder.frames_per_step)
        with VideoReader(video) as reader:
            end = reader.info.duration_s
            t1 = end if t1_s is None else float(t1_s)
            if not 0.0 <= t0_s < t1:
                raise DataError(f"{video}: empty or negative time range [{t0_s:.3f}, {t1:.3f}) s")
            from vitmusic.encoders.video import check_one_window

            check_one_window(video, min(t1, end) - t0_s, self.encoder, fps)
            n_win = self.encode_window_frames(fps)
            total = math.ceil((min(t1, end) - t0_s) * fps / n_win - 1e-9)
            embeds, masks, times = [], [], []
            bar = tqdm(total=total, desc="encode video", unit="window", disable=not progress, leave=False)
            for frames in self._frame_windows(reader, float(t0_s), t1, fps, n_win):
                if len(frames) == 0:
                    continue
                e, m = self.encoder.encode_frames(frames.data[None])  # [1, T', D], [1, T']
                first = np.minimum(np.arange(e.shape[1]) * step_frames, len(frames) - 1)
                embeds.append(e.float().cpu())
                masks.append(m.cpu())
                times.append(frames.times_s[first] - t0_s)
                bar.update(1)
            bar.close()
        if not embeds:
            raise DataError(f"{video}: no frames in [{t0_s:.3f}, {t1:.3f}) s")
        return VideoEmbeddings(torch.cat(embeds, 1), torch.cat(masks, 1).bool(), np.concatenate(times),
                               float(t1 - t0_s))

    # ------------------------------------------------------------------ embeddings -> tokens -> audio
    @torch.no_grad()
    def project(
        self, embeds: torch.Tensor, mask: torch.Tensor | None, times_s: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Conditioning tokens of a whole video, projected in chunks of about ``generate.window_s`` seconds.

        Args:
            embeds: ``[1, T, D]`` (or ``[T, D]``) encoder embeddings.
            mask: bool ``[1, T]`` (or ``[T]``), None for all valid.
            times_s: ``[T]`` time of each step in seconds.

        Returns:
            (tokens ``[1, S, cond_dim]``, mask bool ``[1, S]``, token times ``[S]``: the mean time of the
            valid steps each token pools).
        """
        embeds = embeds[None] if embeds.ndim == 2 else embeds
        T = embeds.shape[1]
        mask = torch.ones(1, T, dtype=torch.bool) if mask is None else mask.reshape(1, T).bool()
        times = np.asarray(times_s, dtype=np.float64).reshape(-1)
        if embeds.ndim != 3 or embeds.shape[0] != 1 or times.shape[0] != T or T == 0:
            raise ValueError(f"need embeds [1, T, D] with T > 0 and one time per step, got {tuple(embeds.shape)} "
                             f"and {times.shape[0]} times")
        stride = self.projection.stride
        chunk = stride * max(1, round(self.config.generate.window_s * self.rate_hz / stride))
        device = self.generator.device
        tokens, token_mask, token_times = [], [], []
        for a in range(0, T, chunk):
            e, m = embeds[:, a:a + chunk], mask[:, a:a + chunk]
            tok, tm = self.projection(e.to(device), m.to(device))  # [1, S_c, cond_dim], [1, S_c]
            tokens.append(tok)
            token_mask.append(tm)
            t, v = times[a:a + chunk], m[0].cpu().numpy()
            for g in range(0, len(t), stride):
                tg, vg = t[g:g + stride], v[g:g + stride]
                token_times.append(float(tg[vg].mean()) if vg.any() else float(tg[0]))
        return torch.cat(tokens, 1), torch.cat(token_mask, 1), np.asarray(token_times)

    @torch.no_grad()
    def generate_from_embeddings(
        self,
        embeds: torch.Tensor,
        mask: torch.Tensor | None,
        times_s: np.ndarray,
        duration_s: float,
        *,
        guidance_scale: float | None = None,
        seed: int | None = None,
        unconditional: bool = False,
        progress: bool = False,
    ) -> np.ndarray:
        """Audio for precomputed encoder embeddings (e.g. shuffled or foreign ones, for baselines).

        Args:
            embeds: ``[1, T, D]`` encoder embeddings; mask ``[1, T]``; times_s ``[T]`` seconds from the start.
            duration_s: length of the output in seconds.
            guidance_scale: classifier-free guidance (default ``generate.guidance_scale`` of the run).
            seed: sampling seed (default ``generate.seed``); window ``i`` samples with ``seed + i``.
            unconditional: ignore the embeddings and generate from the null condition (the one condition
                dropout trained), the "no video" baseline.
            progress: progress bar over generation windows (stderr).

        Returns:
            float32 wav ``[N]`` at :attr:`sample_rate`, ``N = round(duration_s * sample_rate)`` exactly.
        """
        g = self.config.generate
        guidance = self.default_guidance if guidance_scale is None else float(guidance_scale)
        if guidance < 1.0:
            raise ConfigError(f"guidance scale must be >= 1, got {guidance}")
        if unconditional:
            # the null condition does not depend on the tokens: one dummy token carries the batch shape, and
            # guidance would mix two identical predictions
            tokens = torch.zeros(1, 1, self.generator.cond_dim)
            token_mask, token_times, guidance = torch.ones(1, 1, dtype=torch.bool), np.zeros(1), 1.0
        else:
            tokens, token_mask, token_times = self.project(embeds, mask, times_s)
        wav = self.generator.generate_long(
            tokens, token_mask, token_times, duration_s=float(duration_s), window_s=g.window_s,
            context_s=g.context_s, guidance_scale=guidance, seed=self.default_seed if seed is None else int(seed),
            progress=progress, top_k=g.top_k, unconditional=unconditional,
        )
        return wav.float().cpu().numpy()

    def generate_video(
        self,
        video: str | os.PathLike,
        *,
        t0_s: float = 0.0,
        t1_s: float | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        unconditional: bool = False,
        progress: bool = False,
    ) -> np.ndarray:
        """Audio for a video's ``[t0_s, t1_s)`` (default: the whole video), exactly as long as that span.

        See :meth:`generate_from_embeddings` for the other arguments.

        Raises:
            DataError: missing, empty or corrupt video, or a range outside it.
        """
        emb = self.embed_video(video, t0_s=t0_s, t1_s=t1_s, progress=progress)
        return self.generate_from_embeddings(emb.embeds, emb.mask, emb.times_s, emb.duration_s,
                                             guidance_scale=guidance_scale, seed=seed,
                                             unconditional=unconditional, progress=progress)


def lora_options(config: Config) -> dict[str, Any] | None:
    """The LoRA dict :func:`~vitmusic.encoders.load_encoder` takes, or None when ``encoder.lora.rank == 0``.

    The adapters' initialisation is seeded with ``train.seed`` (part of the run's seed).
    """
    lora = config.encoder.lora
    if lora.rank == 0:
        return None
    return {"r": lora.rank, "alpha": lora.alpha, "dropout": lora.dropout, "seed": config.train.seed}


def load_run_models(
    config: Config,
    device: str | torch.device | None = None,
    *,
    adapters: str | os.PathLike | bool | None = None,
):
    """The encoder and generator a run config names (same ids, kinds and revisions as training).

    Args:
        config: the run config.
        device: where to put both.
        adapters: what a run with ``encoder.lora.rank > 0`` gets: a folder (the trained
            ``encoder_adapters.safetensors`` in it, loaded, then frozen: generation), ``True`` (fresh trainable
            adapters, seeded: training), ``False`` (no adapters: the plain frozen encoder). Ignored when the
            rank is 0.

    Returns:
        ``(encoder, generator)``, frozen except fresh adapters.

    Raises:
        ConfigError: a LoRA run without its adapters, or an adapter file that is missing or does not fit.
    """
    from vitmusic.encoders import load_encoder
    from vitmusic.encoders.lora import load_adapters
    from vitmusic.generators.musicgen import load_generator

    e, g = config.encoder, config.generator
    lora = lora_options(config) if adapters is not False else None
    if lora is not None and adapters is None:
        raise ConfigError(f"this run trained encoder LoRA adapters (encoder.lora.rank={e.lora.rank}): load it "
                          "from its run folder (load_pipeline / --checkpoint RUN)")
    encoder = load_encoder(e.name, kind=e.kind, revision=e.revision, rate_hz=e.rate_hz, lora=lora, device=device)
    if lora is not None and adapters is not True:
        try:
            load_adapters(encoder, adapters)
        except DataError as exc:
            raise ConfigError(str(exc)) from exc
        encoder.freeze()
    generator = load_generator(g.name, kind=g.kind, revision=g.revision, entry=g.entry, text_prompt=g.text_prompt)
    return encoder, generator.to(device) if device is not None else generator


def load_pipeline(
    checkpoint: str | os.PathLike, *, device: str | torch.device | None = None, strict: bool = True
) -> MusicGenPipeline:
    """Load a trained run for generation.

    Args:
        checkpoint: ``RUN`` (uses ``RUN/final``), ``RUN/checkpoints/step_<n>`` or an exported model folder.
        device: where to run (default: CUDA when available, else CPU).
        strict: refuse frozen models that differ from the ones the projection was trained with (weights,
            revision, conditioning entry); False only logs a warning.

    Raises:
        ConfigError: no checkpoint, an unreadable one, or (strict) frozen models that do not match it.
        VitmusicError: a frozen model that cannot be loaded (e.g. offline and not cached).
    """
    from vitmusic.projection import load_projection

    folder, config, stored = read_run(checkpoint)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        projection = load_projection(folder, device=str(device))
    except DataError as e:
        raise ConfigError(str(e)) from e
    encoder, generator = load_run_models(config, device, adapters=folder)
    diffs = [f"encoder {d}" for d in _mismatches(stored.get("encoder", {}), encoder.fingerprint(), _ENCODER_KEYS)]
    diffs += [f"generator {d}" for d in _mismatches(stored.get("generator", {}), generator.fingerprint(),
                                                    _GENERATOR_KEYS)]
    if diffs:
        msg = f"{folder}: the frozen models differ from the ones it was trained with ({'; '.join(diffs)})"
        if strict:
            raise ConfigError(msg)
        log.warning(msg)
    log.info("loaded %s (%s)", folder, json.dumps({"encoder": config.encoder.name,
                                                   "generator": config.generator.name}))
    return MusicGenPipeline(config, encoder, projection, generator, checkpoint=folder)
