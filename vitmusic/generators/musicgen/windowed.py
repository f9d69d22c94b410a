"""Windowed generation with continuation: music of any length at a cost linear in its duration.

Window 0 generates ``window_s`` seconds; every later window is prompted with the last ``context_s`` seconds of
codes generated so far and adds ``window_s - context_s`` new seconds. Each window is conditioned only on the
tokens whose times fall inside its span (prompt included). All codes are decoded in one pass, so the audio is
contiguous, and cut to exactly ``round(duration_s * sample_rate)`` samples.

It needs of the generator only ``frame_rate``, ``sample_rate``, ``hop_length``, ``num_codebooks``, ``device``,
``generate`` and ``decode`` (so this module does not import the model; the model imports it:
``MusicGenGenerator.generate_long`` is :func:`generate_long`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm


@dataclass(frozen=True)
class Window:
    """One generation window, in code frames.

    Attributes:
        index: window number.
        start_frame: first new frame this window generates.
        num_frames: number of new frames it generates.
        context_frames: frames before ``start_frame`` used as its prompt (0 for the first window).
    """

    index: int
    start_frame: int
    num_frames: int
    context_frames: int

    @property
    def span(self) -> tuple[int, int]:
        """Frames [first, end) the window covers, prompt included."""
        return self.start_frame - self.context_frames, self.start_frame + self.num_frames


def plan_windows(total_frames: int, window_frames: int, context_frames: int) -> list[Window]:
    """Split ``total_frames`` into windows of ``window_frames`` that overlap by ``context_frames``."""
    if window_frames < 1:
        raise ValueError(f"window must hold at least one frame, got {window_frames}")
    if not 0 <= context_frames < window_frames:
        raise ValueError(f"context ({context_frames} frames) must be >= 0 and shorter than the window "
                         f"({window_frames} frames)")
    windows = [Window(0, 0, min(window_frames, total_frames), 0)]
    end = windows[0].num_frames
    while end < total_frames:
        ctx = min(context_frames, end)
        n = min(window_frames - ctx, total_frames - end)
        windows.append(Window(len(windows), end, n, ctx))
        end += n
    return windows


def _select_tokens(times_s: np.ndarray, valid: np.ndarray, t0_s: float, t1_s: float) -> np.ndarray:
    idx = np.flatnonzero(valid & (times_s >= t0_s) & (times_s < t1_s))
    if idx.size == 0:
        # sparse conditioning (a token every few seconds): fall back to the valid token nearest the window centre
        candidates = np.flatnonzero(valid)
        if candidates.size == 0:
            raise ValueError("cond_mask has no valid token")
        idx = candidates[[np.argmin(np.abs(times_s[candidates] - 0.5 * (t0_s + t1_s)))]]
    return idx


def generate_long_codes(
    generator: MusicGenGenerator,  # noqa: F821  (vitmusic.generators.musicgen.model, not imported)
    cond_tokens: torch.Tensor,
    cond_mask: torch.Tensor | None,
    cond_times_s: torch.Tensor | np.ndarray,
    *,
    duration_s: float,
    window_s: float = 10.0,
    context_s: float = 2.0,
    guidance_scale: float = 1.0,
    seed: int | None = None,
    progress: bool = True,
    **generate_kwargs: Any,
) -> tuple[torch.Tensor, list[Window]]:
    """Codes for ``duration_s`` seconds of music for a video of any length, generated window by window.

    Args:
        generator: a loaded :class:`~vitmusic.generators.musicgen.model.MusicGenGenerator`.
        cond_tokens: projected tokens of the whole video [1, S, cond_dim].
        cond_mask: [1, S] or None.
        cond_times_s: time in seconds of each token [S].
        duration_s: length of the output in seconds.
        window_s: window length in seconds (the model's context; MusicGen was trained on 30 s).
        context_s: seconds of previous codes that prompt each next window (< window_s).
        guidance_scale: classifier-free guidance scale.
        seed: window i samples with seed + i (reproducible).
        progress: show a progress bar over windows (stderr).
        **generate_kwargs: passed to :meth:`MusicGenGenerator.generate` for every window (do_sample, top_k, ...;
            a MusicGen-melody ``chroma`` is given unchanged to every window).

    Returns:
        (codes long [1, K, F] with F = ceil(round(duration_s * sample_rate) / hop_length), the windows used).
    """
    if cond_tokens.ndim != 3 or cond_tokens.shape[0] != 1:
        raise ValueError(f"cond_tokens must be [1, S, D], got shape {tuple(cond_tokens.shape)}")
    S = cond_tokens.shape[1]
    times = np.asarray(cond_times_s.detach().cpu() if isinstance(cond_times_s, torch.Tensor) else cond_times_s,
                       dtype=np.float64).reshape(-1)
    if times.shape[0] != S:
        raise ValueError(f"cond_times_s must have one time per token ({S}), got {times.shape[0]}")
    mask = torch.ones(1, S, dtype=torch.long) if cond_mask is None else cond_mask
    valid = mask.reshape(-1).detach().cpu().numpy().astype(bool)
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    fr = generator.frame_rate
    num_samples = int(round(duration_s * generator.sample_rate))
    total = math.ceil(num_samples / generator.hop_length)
    windows = plan_windows(total, int(round(window_s * fr)), int(round(context_s * fr)))
    codes = torch.zeros(1, generator.num_codebooks, total, dtype=torch.long, device=generator.device)
    for w in tqdm(windows, desc="generating windows", unit="window", disable=not progress):
        first, end = w.span
        idx = torch.from_numpy(_select_tokens(times, valid, first / fr, end / fr))
        prompt = codes[:, :, first:w.start_frame] if w.context_frames else None
        new = generator.generate(
            cond_tokens[:, idx], mask[:, idx], num_frames=w.num_frames, guidance_scale=guidance_scale,
            seed=None if seed is None else seed + w.index, prompt_codes=prompt, **generate_kwargs,
        )
        codes[:, :, w.start_frame:end] = new
    return codes, windows


def generate_long(
    generator: MusicGenGenerator,  # noqa: F821  (vitmusic.generators.musicgen.model, not imported)
    cond_tokens: torch.Tensor,
    cond_mask: torch.Tensor | None,
    cond_times_s: torch.Tensor | np.ndarray,
    *,
    duration_s: float,
    **kwargs: Any,
) -> torch.Tensor:
    """Generate ``duration_s`` seconds of audio for a video of any length: :func:`generate_long_codes`
    (which documents the arguments: ``window_s``, ``context_s``, ``guidance_scale``, ``seed``, ``progress``
    and the per-window ``generate`` keywords), decoded in one pass.

    Returns:
        float wav [N] with N = round(duration_s * sample_rate) exactly.
    """
    codes, _ = generate_long_codes(generator, cond_tokens, cond_mask, cond_times_s, duration_s=duration_s, **kwargs)
    num_samples = int(round(duration_s * generator.sample_rate))
    wav = generator.decode(codes)[0]
    if wav.shape[0] < num_samples:
        wav = torch.nn.functional.pad(wav, (0, num_samples - wav.shape[0]))
    return wav[:num_samples]
