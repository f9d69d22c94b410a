"""Notes -> audio with a trainable denoising-diffusion synthesizer over log-mel frames.

The model (a DiffWave-style stack of gated, dilated 1-D convolutions over time, mel bins as channels)
predicts the noise in a noisy log-mel spectrogram ``x_t [B, M, T]`` given the diffusion step ``t``
(sinusoidal embedding), a piano roll of the part and its instrument (a learned embedding of the URMP code).
The piano roll is ``[2 K, T]`` (frame and onset rows of :func:`vitmusic.generators.midi.transcription.notes_to_roll`,
``K`` pitches from ``min_midi``), sampled at the mel frame rate ``sample_rate / hop_length``; the model also
turns the frame rows into an *ideal harmonic mel pattern* (a fixed ``[K, M]`` matrix: every pitch's
harmonics with 1/h amplitudes, through the mel filterbank), so that a pitch rarely seen in training still
tells the network where its partials lie.

Training is DDPM's noise-prediction objective (cosine or linear beta schedule, uniform steps, MSE masked
to the valid frames); synthesis is DDIM with a configurable number of steps (``eta = 0`` and a seed make it
deterministic). The log-mel frames are turned into a waveform by a :class:`Vocoder`, Griffin-Lim by default
(features and vocoders: :mod:`vitmusic.generators.synthesizer.features`, re-exported here). URMP notes carry
no velocity, so MIDI velocities are ignored.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vitmusic.config import DiffusionConfig
from vitmusic.errors import ConfigError, DataError
from vitmusic.generators.midi.export import PEAK
from vitmusic.generators.midi.transcription import URMP_TABLE_SIZE, instrument_index
from vitmusic.generators.synthesizer.features import (
    GriffinLimVocoder,
    Vocoder,
    harmonic_templates,
    log_mel,
    mel_from_log,
    num_frames,
    piano_roll,
)
from vitmusic.runs import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_weights,
    read_model_config,
    resolve_checkpoint,
    save_module,
)

__all__ = [
    "MODEL_KIND",
    "DiffusionSynth",
    "GriffinLimVocoder",
    "Vocoder",
    "beta_schedule",
    "ddim_timesteps",
    "harmonic_templates",
    "load_diffusion_synth",
    "log_mel",
    "mel_from_log",
    "num_frames",
    "piano_roll",
]

MODEL_KIND = "diffusion_synth"


# ---------------------------------------------------------------------------------------------- schedule


def beta_schedule(kind: str, num_timesteps: int) -> torch.Tensor:
    """float64 ``[num_timesteps]`` noise variances: ``"linear"`` (Ho et al.) or ``"cosine"`` (Nichol & Dhariwal)."""
    if kind == "linear":
        scale = 1000.0 / num_timesteps  # keeps the end points meaningful for any number of steps
        return torch.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        x = torch.linspace(0, num_timesteps, num_timesteps + 1, dtype=torch.float64) / num_timesteps
        ab = torch.cos((x + s) / (1 + s) * math.pi / 2) ** 2
        return torch.clip(1 - ab[1:] / ab[:-1], 0.0, 0.999)
    raise ConfigError(f"unknown beta schedule {kind!r}; choose cosine or linear")


def ddim_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """``steps`` distinct training steps from ``num_timesteps - 1`` down to 0 (evenly spaced)."""
    if not 1 <= int(steps) <= num_timesteps:
        raise ConfigError(f"DDIM steps must be in [1, {num_timesteps}], got {steps}")
    return [int(t) for t in np.round(np.linspace(num_timesteps - 1, 0, int(steps))).astype(int)]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``[B, dim]`` of diffusion steps ``t [B]`` (as in the Transformer / DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    return F.pad(emb, (0, dim - 2 * half))


# ---------------------------------------------------------------------------------------------- denoiser


def _shifted(x: torch.Tensor, kernel_size: int, dilation: int) -> torch.Tensor:
    """``[B, T, k C]``: the ``k`` time-shifted copies of ``x [B, T, C]`` that a dilated convolution reads.

    A dilated 1-D convolution is this followed by a ``Linear``; on CPUs the time-major matrix product is
    several times faster than ``Conv1d`` at these sizes.
    """
    half = (kernel_size // 2) * dilation
    T = x.shape[1]
    xp = F.pad(x, (0, 0, half, half))
    return torch.cat([xp[:, i * dilation : i * dilation + T] for i in range(kernel_size)], dim=-1)


class _ResidualBlock(nn.Module):
    """Gated dilated convolution with step and condition inputs; returns (residual out, skip out)."""

    def __init__(self, hidden: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.step = nn.Linear(hidden, hidden)
        self.conv = nn.Linear((kernel_size + 1) * hidden, 2 * hidden)  # k shifted inputs + the condition
        self.out = nn.Linear(hidden, 2 * hidden)

    def forward(self, x: torch.Tensor, step: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x, cond [B, T, H]; step [B, H]
        h = _shifted(x + self.step(step)[:, None], self.kernel_size, self.dilation)
        gate, filt = self.conv(torch.cat([h, cond], dim=-1)).chunk(2, dim=-1)  # [B, T, H] each
        res, skip = self.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, dim=-1)
        return (x + res) / math.sqrt(2.0), skip


class DiffusionSynth(nn.Module):
    """Log-mel denoiser conditioned on a piano roll and an instrument, with DDPM training and DDIM sampling.

    Args:
        config: features, architecture, schedule and sampling defaults (:class:`vitmusic.config.DiffusionConfig`).
        vocoder: mel -> waveform (default :class:`GriffinLimVocoder`).
    """

    def __init__(self, config: DiffusionConfig, vocoder: Vocoder | None = None) -> None:
        super().__init__()
        self.config = c = config
        H, M, K = c.hidden_dim, c.n_mels, c.num_pitches
        self.vocoder: Vocoder = vocoder if vocoder is not None else GriffinLimVocoder(c)
        self.input = nn.Linear(M, H)
        # roll rows (frame, onset) + the harmonic mel pattern of the sounding pitches, over 3 frames twice
        self.cond_in = nn.Linear(3 * (2 * K + M), H)
        self.cond_mid = nn.Linear(3 * H, H)
        # URMP's 13 instruments + unknown (other instruments use the unknown row; instrument_index's default)
        self.instrument = nn.Embedding(URMP_TABLE_SIZE + 1, H)
        self.step_mlp = nn.Sequential(nn.Linear(H, 4 * H), nn.SiLU(), nn.Linear(4 * H, H))
        self.blocks = nn.ModuleList(
            _ResidualBlock(H, c.kernel_size, 2 ** (i % c.dilation_cycle)) for i in range(c.num_layers)
        )
        self.output = nn.Sequential(nn.SiLU(), nn.Linear(H, H), nn.SiLU(), nn.Linear(H, M))
        # a per-step, per-band gain on x_t itself: at high noise the noise is mostly x_t, which the hidden
        # width (often <= the number of mel bands) could not pass through on its own
        self.x_gain = nn.Linear(H, M)
        # derived from the config, so not saved with the weights
        self.register_buffer("templates", torch.from_numpy(harmonic_templates(c)), persistent=False)
        betas = beta_schedule(c.schedule, c.train_timesteps)
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, 0).float(), persistent=False)

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def frame_rate(self) -> float:
        """Mel frames per second."""
        return self.config.sample_rate / self.config.hop_length

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ network
    def denoise(
        self, x: torch.Tensor, t: torch.Tensor, roll: torch.Tensor, instrument: torch.Tensor
    ) -> torch.Tensor:
        """Predicted noise ``[B, M, T]`` of ``x [B, M, T]`` at steps ``t [B]`` given ``roll [B, 2K, T]``, ``instrument [B]``."""
        K = self.config.num_pitches
        roll = roll.transpose(1, 2)  # time-major inside: [B, T, 2K]
        harm = (roll[..., :K] @ self.templates).clamp(max=1.0)  # [B, T, M]
        cond = F.silu(self.cond_in(_shifted(torch.cat([roll, harm], dim=-1), 3, 1)))
        cond = self.cond_mid(_shifted(cond, 3, 1)) + self.instrument(instrument)[:, None]  # [B, T, H]
        step = self.step_mlp(timestep_embedding(t, self.config.hidden_dim))  # [B, H]
        x = x.transpose(1, 2)  # [B, T, M]
        h, skips = self.input(x), 0.0
        for block in self.blocks:
            h, skip = block(h, step, cond)
            skips = skips + skip
        eps = self.output(skips / math.sqrt(len(self.blocks))) + self.x_gain(step)[:, None] * x
        return eps.transpose(1, 2)  # [B, M, T]

    def forward(
        self,
        mel: torch.Tensor,
        roll: torch.Tensor,
        instrument: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """DDPM noise-prediction loss (scalar): MSE over the valid frames of ``mel [B, M, T]``.

        Args:
            mel: clean normalised log-mel frames ``[B, M, T]``.
            roll: ``[B, 2K, T]`` (:func:`piano_roll`).
            instrument: ``[B]`` rows of :func:`vitmusic.generators.midi.transcription.instrument_index`.
            mask: bool ``[B, T]`` valid frames (None: all).
        """
        B = mel.shape[0]
        t = torch.randint(0, self.config.train_timesteps, (B,), device=mel.device)
        noise = torch.randn_like(mel)
        ab = self.alphas_cumprod[t][:, None, None]
        x_t = ab.sqrt() * mel + (1 - ab).sqrt() * noise
        err = (self.denoise(x_t, t, roll, instrument) - noise) ** 2  # [B, M, T]
        if mask is None:
            return err.mean()
        w = mask[:, None, :].to(err.dtype).expand_as(err)
        return (err * w).sum() / w.sum().clamp(min=1.0)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        roll: torch.Tensor,
        instrument: torch.Tensor,
        *,
        steps: int | None = None,
        seed: int = 0,
        eta: float | None = None,
    ) -> torch.Tensor:
        """DDIM sampling of log-mel frames ``[B, M, T]`` (in ``[-1, 1]``) for ``roll [B, 2K, T]``.

        Args:
            roll, instrument: the conditioning (see :meth:`forward`).
            steps: denoiser evaluations (default ``config.sample_steps``).
            seed: the initial noise (and, for ``eta > 0``, the added noise) come from a generator seeded with it.
            eta: DDIM stochasticity (default ``config.eta``; 0 = deterministic).
        """
        c = self.config
        steps = c.sample_steps if steps is None else int(steps)
        eta = c.eta if eta is None else float(eta)
        device = self.device
        roll, instrument = roll.to(device).float(), instrument.to(device).long()
        B, T = roll.shape[0], roll.shape[-1]
        g = torch.Generator().manual_seed(int(seed))  # CPU generator: the same noise on every device
        x = torch.randn(B, c.n_mels, T, generator=g).to(device)
        was_training = self.training
        self.eval()
        ts = ddim_timesteps(c.train_timesteps, steps)
        for i, t in enumerate(ts):
            ab = self.alphas_cumprod[t]
            ab_prev = self.alphas_cumprod[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), device=device)
            eps = self.denoise(x, torch.full((B,), t, device=device, dtype=torch.long), roll, instrument)
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1.0, 1.0)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()  # consistent with the clipped estimate
            sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
            x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
            if eta > 0 and i + 1 < len(ts):
                x = x + sigma * torch.randn(x.shape, generator=g).to(device)
        self.train(was_training)
        return x.clamp(-1.0, 1.0)

    def render_parts(
        self,
        parts: Sequence[np.ndarray],
        instruments: Sequence[str],
        duration_s: float,
        *,
        steps: int | None = None,
        seed: int = 0,
    ) -> list[np.ndarray]:
        """One waveform per part, each exactly ``round(duration_s * sample_rate)`` samples (not normalised).

        Args:
            parts: per part, notes ``[N, 3]`` (onset_s, f0_hz, duration_s).
            instruments: instrument per part (sets the instrument embedding: URMP's 13 have their own rows,
                any other name of :mod:`vitmusic.data.instruments` the unknown row).
            duration_s: output length in seconds.
            steps, seed: see :meth:`sample` (all parts are sampled together in one batch).

        Raises:
            ConfigError: a parts/instruments count mismatch or an unknown instrument code.
        """
        from vitmusic.data.instruments import canonical_code

        if len(parts) != len(instruments):
            raise ConfigError(f"{len(parts)} parts but {len(instruments)} instruments")
        instruments = [canonical_code(code, ConfigError) for code in instruments]
        if not duration_s > 0:
            raise ConfigError(f"duration_s must be > 0, got {duration_s}")
        n = int(round(float(duration_s) * self.sample_rate))
        if not parts:
            return []
        T = num_frames(n, self.config.hop_length)
        rolls = torch.from_numpy(np.stack([piano_roll(p, T, self.config) for p in parts]))  # [P, 2K, T]
        codes = torch.tensor([instrument_index(c) for c in instruments], dtype=torch.long)
        mels = self.sample(rolls, codes, steps=steps, seed=seed).cpu().numpy()  # [P, M, T]
        return [np.asarray(self.vocoder(mel_from_log(m, self.config), n), np.float32)[:n] for m in mels]

    def synthesize(
        self,
        midi,
        duration_s: float,
        *,
        steps: int | None = 50,
        seed: int = 0,
        instruments: Sequence[str] | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """Audio of a MIDI performance: every track rendered with its instrument, summed.

        Args:
            midi: :class:`pretty_midi.PrettyMIDI`; each track's instrument comes from its GM program
                (:func:`vitmusic.generators.midi.export.instrument_code`) unless ``instruments`` is given.
            duration_s: output length in seconds (later notes are dropped, tails cut).
            steps: DDIM steps (None: ``config.sample_steps``).
            seed: sampling seed (deterministic output for a given seed).
            instruments: instrument per track, overriding the programs.
            normalize: scale the mix to a peak of :data:`vitmusic.generators.midi.export.PEAK` (silence stays silent).

        Returns:
            float32 ``[round(duration_s * sample_rate)]`` mono waveform at :attr:`sample_rate`.

        Raises:
            ConfigError: bad duration, track/instrument count mismatch, unknown instrument name.
        """
        from vitmusic.generators.midi.export import instrument_code, track_notes

        if isinstance(duration_s, (str, bytes)) or not isinstance(duration_s, (int, float, np.number)):
            raise ConfigError(f"duration_s must be a number of seconds, got {type(duration_s).__name__}")
        if instruments is not None and len(instruments) != len(midi.instruments):
            raise ConfigError(f"{len(instruments)} instrument codes for {len(midi.instruments)} MIDI tracks")
        codes = list(instruments) if instruments is not None else [instrument_code(i) for i in midi.instruments]
        parts, keep = [], []
        for inst, code in zip(midi.instruments, codes):
            notes = track_notes(inst)[0]
            notes = notes[notes[:, 0] < duration_s]
            if len(notes):
                parts.append(notes)
                keep.append(code)
        n = int(round(float(duration_s) * self.sample_rate))
        mix = np.zeros(n, np.float32)
        for wav in self.render_parts(parts, keep, float(duration_s), steps=steps, seed=seed):
            mix += wav
        peak = float(np.max(np.abs(mix))) if n else 0.0
        if normalize and peak > 0:
            mix *= PEAK / peak
        return mix

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, out_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` + ``config.json`` (``kind``, ``model`` = the config, then ``extra``), atomically."""
        meta = {"kind": MODEL_KIND, "model": dataclasses.asdict(self.config), **(extra or {})}
        return save_module(self, out_dir, meta)


def load_diffusion_synth(
    path: str | os.PathLike, *, device: str | torch.device | None = None, vocoder: Vocoder | None = None
) -> DiffusionSynth:
    """Load a synthesizer saved by :meth:`DiffusionSynth.save_pretrained` (or a ``task: diffusion`` run).

    Args:
        path: the model folder, a run folder (uses ``RUN/final``, else its latest checkpoint) or a step folder.
        device: where to put it (default CPU).
        vocoder: replaces the default Griffin-Lim vocoder.

    Raises:
        ConfigError: missing folder/files, not a diffusion synthesizer, an invalid stored config.
        DataError: unreadable or mismatching weights.
    """
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"diffusion synthesizer folder not found: {p}")
    folder = resolve_checkpoint(p, latest_step=True, what="diffusion synthesizer")
    try:
        meta = read_model_config(folder, what="diffusion synthesizer")
    except DataError as e:
        raise ConfigError(f"{folder / CONFIG_NAME}: cannot read the model config ({e})") from e
    if meta.get("kind") != MODEL_KIND:
        raise ConfigError(f"{folder}: not a diffusion synthesizer (kind {meta.get('kind')!r})")
    try:
        config = DiffusionConfig(**meta["model"])
    except (KeyError, TypeError) as e:
        raise ConfigError(f"{folder / CONFIG_NAME}: invalid model config ({e})") from e
    model = DiffusionSynth(config, vocoder=vocoder)
    try:
        model.load_state_dict(load_weights(folder, what="diffusion synthesizer"), strict=True)
    except (DataError, RuntimeError) as e:
        raise DataError(f"{folder / WEIGHTS_NAME}: cannot load the weights ({str(e).splitlines()[0]})") from e
    return model.to(device or "cpu").eval()
