"""Music for a video from a trained run: frozen vision encoder -> trained projection -> frozen MusicGen.

A run folder ``RUN`` (the run format of :mod:`vitmusic.runs`) exports its trainable projection to
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

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitmusic.config import Config
from vitmusic.encoders.video import FramesVideo, VideoEmbeddings, embed_video
from vitmusic.errors import ConfigError, DataError
from vitmusic.inference.models import ENCODER_KEYS, GENERATOR_KEYS, load_run_models, mismatches
from vitmusic.runs import read_run

log = logging.getLogger(__name__)

__all__ = ["MusicGenPipeline", "load_pipeline"]


class MusicGenPipeline:
    """A trained video -> MusicGen model, ready to generate (everything in eval mode, nothing trains).

    Args:
        config: the run's resolved config (encoder rate, projection chunking, ``generate`` defaults).
        encoder: the frozen :class:`~vitmusic.encoders.VisionEncoder`.
        projection: the trained :class:`~vitmusic.projection.Projection` (switched to eval mode).
        generator: the frozen :class:`~vitmusic.generators.musicgen.model.MusicGenGenerator`.
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
    @torch.no_grad()
    def embed_video(
        self, video: str | os.PathLike | FramesVideo, *, t0_s: float = 0.0, t1_s: float | None = None, progress: bool = False
    ) -> VideoEmbeddings:
        """Encoder embeddings of a video's ``[t0_s, t1_s)`` (default: all of it), decoded window by window.

        Raises:
            DataError: missing, empty or corrupt video, or a range outside it.
        """
        return embed_video(self.encoder, video, rate_hz=self.rate_hz, t0_s=t0_s, t1_s=t1_s, progress=progress)

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
        video: str | os.PathLike | FramesVideo,
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
    if config.task != "musicgen":
        raise ConfigError(f"{folder}: trained with task={config.task}, not a video -> MusicGen run (load it "
                          "through its kind: vitmusic.load_pipeline / vitmusic generate)")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        projection = load_projection(folder, device=str(device))
    except DataError as e:
        raise ConfigError(str(e)) from e
    encoder, generator = load_run_models(config, device, adapters=folder)
    diffs = [f"encoder {d}" for d in mismatches(stored.get("encoder", {}), encoder.fingerprint(), ENCODER_KEYS)]
    diffs += [f"generator {d}" for d in mismatches(stored.get("generator", {}), generator.fingerprint(),
                                                   GENERATOR_KEYS)]
    if diffs:
        msg = f"{folder}: the frozen models differ from the ones it was trained with ({'; '.join(diffs)})"
        if strict:
            raise ConfigError(msg)
        log.warning(msg)
    log.info("loaded %s (%s)", folder, json.dumps({"encoder": config.encoder.name,
                                                   "generator": config.generator.name}))
    return MusicGenPipeline(config, encoder, projection, generator, checkpoint=folder)
