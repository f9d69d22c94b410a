"""MusicGen / MusicGen-melody conditioned on projected video embeddings (the generator stays frozen).

The projection outputs tokens ``cond [B, S, cond_dim]`` at the text-encoder width with a mask ``[B, S]``. They
enter MusicGen through one of two entry points (an ablation switch):

- ``entry="encoder_outputs"``: the tokens replace the T5 hidden states; MusicGen's ``enc_to_dec_proj`` maps them
  to the decoder width (cross-attention for MusicGen, a prefix for MusicGen-melody).
- ``entry="inputs_embeds"``: the tokens are a soft prompt fed through the frozen T5 encoder.

An optional text prompt's T5 hidden states are concatenated before the video tokens along the sequence axis.
Everything is turned into *decoder-level* conditioning ``(hidden [B, S', H], mask [B, S'])`` by
:meth:`MusicGenGenerator.condition`; training (:meth:`~MusicGenGenerator.teacher_forced`) and generation share it, and the
null condition for classifier-free guidance is zeros with mask 0 in both (see :meth:`null_condition`).

Generation runs the decoder's own ``generate`` with ``[cond; null]`` and an explicit ``EncoderDecoderCache``:
``MusicgenForConditionalGeneration.generate(encoder_outputs=..., guidance_scale>1)`` has no null branch, and the
decoder without an explicit ``EncoderDecoderCache`` puts cross-attention keys in the self-attention cache
(silently wrong codes). MusicGen-melody's decoder ``generate`` is broken with a prefix in transformers 5.23, so it
runs the equivalent loop :func:`vitmusic.generators.musicgen.melody.prefix_decoder_sample`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from vitmusic.errors import ConfigError, VitmusicError
from vitmusic.generators.musicgen.decoder_cache import cache_kwargs
from vitmusic.generators.musicgen.melody import prefix_decoder_sample
from vitmusic.generators.musicgen.presets import TINY_PRESETS, materialize_tiny_generator
from vitmusic.generators.musicgen.windowed import generate_long
from vitmusic.hf_quiet import filter_known_config_warnings, hf_model_build

__all__ = ["ENTRIES", "KINDS", "MusicGenGenerator", "load_generator", "materialize_tiny_generator"]

ENTRIES = ("encoder_outputs", "inputs_embeds")
KINDS = ("musicgen", "musicgen-melody")
_MODEL_TYPES = {"musicgen": "musicgen", "musicgen_melody": "musicgen-melody"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class MusicGenGenerator(nn.Module):
    """A frozen MusicGen(-melody) model behind the vitmusic conditioning contract.

    Args:
        model: ``MusicgenForConditionalGeneration`` or ``MusicgenMelodyForConditionalGeneration``.
        name: id the model was loaded from (hub id, folder or preset name), for :meth:`fingerprint`.
        kind: "musicgen" or "musicgen-melody".
        revision: hub revision, if any.
        entry: "encoder_outputs" or "inputs_embeds".
        text_prompt: optional text whose T5 encoding is prepended to every condition.
        tokenizer: tokenizer for ``text_prompt``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        name: str,
        kind: str,
        revision: str | None = None,
        entry: str = "encoder_outputs",
        text_prompt: str | None = None,
        tokenizer: Any = None,
    ) -> None:
        super().__init__()
        if entry not in ENTRIES:
            raise ConfigError(f"unknown conditioning entry {entry!r}; choose one of {', '.join(ENTRIES)}")
        if kind not in KINDS:
            raise ConfigError(f"unknown generator kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.model = model
        self.name, self.kind, self.revision, self.entry = name, kind, revision, entry
        self.text_prompt = text_prompt
        self._text_ids: torch.Tensor | None = None
        if text_prompt is not None:
            if tokenizer is None:
                raise ConfigError(f"text_prompt needs a tokenizer, and none could be loaded for {name!r}")
            enc = tokenizer([text_prompt], return_tensors="pt")
            self._text_ids = enc["input_ids"]
        dec = model.decoder
        pad = dec.config.pad_token_id
        for g in (dec.generation_config,):
            g.pad_token_id = pad
            g.bos_token_id = g.decoder_start_token_id = dec.config.bos_token_id
        self.requires_grad_(False)
        self.model.eval()

    # ------------------------------------------------------------------ properties
    @property
    def is_melody(self) -> bool:
        return self.kind == "musicgen-melody"

    @property
    def cond_dim(self) -> int:
        """Width of the tokens the projection must output (the T5 hidden size)."""
        return int(self.model.config.text_encoder.hidden_size)

    @property
    def sample_rate(self) -> int:
        """Audio sample rate in Hz."""
        return int(self.model.config.audio_encoder.sampling_rate)

    @property
    def hop_length(self) -> int:
        """Audio samples per code frame."""
        return int(np.prod(self.model.config.audio_encoder.upsampling_ratios))

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        return self.sample_rate / self.hop_length

    @property
    def num_codebooks(self) -> int:
        return int(self.model.decoder.config.num_codebooks)

    @property
    def pad_token_id(self) -> int:
        return int(self.model.decoder.config.pad_token_id)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def train(self, mode: bool = True) -> MusicGenGenerator:
        """The generator is frozen: whatever ``mode`` says, the wrapped model stays in eval mode."""
        super().train(mode)
        self.model.eval()
        return self

    def fingerprint(self) -> dict:
        """Identity of the generator and its conditioning setup, for cache keys and checkpoint configs."""
        # the hash covers the architecture only: not where the files lie nor which transformers wrote them
        cfg_dict = {k: v for k, v in self.model.config.to_dict().items()
                    if k not in ("_name_or_path", "transformers_version")}
        cfg = json.dumps(cfg_dict, sort_keys=True, default=str)
        return {
            "id": self.name,
            "kind": self.kind,
            "revision": self.revision,
            "config_sha256": hashlib.sha256(cfg.encode()).hexdigest()[:16],
            "entry": self.entry,
            "text_prompt": self.text_prompt,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "num_codebooks": self.num_codebooks,
            "cond_dim": self.cond_dim,
        }

    # ------------------------------------------------------------------ audio <-> codes
    def _bandwidth(self) -> float | None:
        quantizer = self.model.audio_encoder.quantizer
        for bw in self.model.config.audio_encoder.target_bandwidths:
            if quantizer.get_num_quantizers_for_bandwidth(bw) == self.num_codebooks:
                return bw
        return None

    @torch.no_grad()
    def encode_audio(self, wav: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Encodec codes of a waveform.

        Args:
            wav: float audio [B, N] (or [N]) at :attr:`sample_rate`.

        Returns:
            codes long [B, K, T] with T = ceil(N / hop_length).
        """
        x = torch.as_tensor(np.asarray(wav) if not isinstance(wav, torch.Tensor) else wav)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise ValueError(f"wav must be [B, N], got shape {tuple(x.shape)}")
        x = x.to(self.device, self.dtype)[:, None]
        enc = self.model.audio_encoder.encode(x, bandwidth=self._bandwidth())
        codes = enc.audio_codes[0]  # [B, K, T]
        if codes.shape[1] != self.num_codebooks:
            raise RuntimeError(f"Encodec produced {codes.shape[1]} codebooks, decoder expects {self.num_codebooks}")
        return codes.long()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Waveform of Encodec codes.

        Args:
            codes: long [B, K, T].

        Returns:
            float wav [B, T * hop_length] at :attr:`sample_rate`.
        """
        if codes.ndim != 3 or codes.shape[1] != self.num_codebooks:
            raise ValueError(f"codes must be [B, {self.num_codebooks}, T], got shape {tuple(codes.shape)}")
        out = self.model.audio_encoder.decode(codes.to(self.device)[None], [None]).audio_values
        return out[:, 0]

    # ------------------------------------------------------------------ conditioning
    def melody_features(self, audio: torch.Tensor | np.ndarray, sample_rate: int | None = None) -> torch.Tensor:
        """One-hot chroma ``[B, T, num_chroma]`` of melody audio ``[B, N]`` (MusicGen-melody only)."""
        from vitmusic.generators.musicgen.melody import melody_chroma

        arr = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
        chroma = melody_chroma(arr if arr.ndim == 2 else arr[None], sample_rate or self.sample_rate,
                               model_sample_rate=self.sample_rate, num_chroma=int(self.model.config.num_chroma))
        return torch.from_numpy(chroma)

    def condition(
        self, cond: torch.Tensor, cond_mask: torch.Tensor | None, chroma: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder-level conditioning from projected tokens (differentiable w.r.t. ``cond``).

        Args:
            cond: projected tokens [B, S, cond_dim].
            cond_mask: [B, S] (1 = real token), or None for all ones.
            chroma: MusicGen-melody only: melody chroma [B, T, num_chroma]; None = the model's "no melody".

        Returns:
            (hidden [B, S', H_decoder], mask long [B, S']); masked positions of ``hidden`` are zero.
        """
        if cond.ndim != 3 or cond.shape[-1] != self.cond_dim:
            raise ValueError(f"cond must be [B, S, {self.cond_dim}], got shape {tuple(cond.shape)}")
        B, S = cond.shape[:2]
        x = cond.to(self.device, self.dtype)
        mask = torch.ones(B, S, dtype=torch.long) if cond_mask is None else cond_mask
        if tuple(mask.shape) != (B, S):
            raise ValueError(f"cond_mask must be [{B}, {S}], got shape {tuple(mask.shape)}")
        mask = mask.to(self.device).long()
        text_encoder = self.model.text_encoder
        if self.entry == "inputs_embeds":
            x = text_encoder(inputs_embeds=x, attention_mask=mask).last_hidden_state
        if self._text_ids is not None:
            ids = self._text_ids.to(self.device)
            t = text_encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            x = torch.cat([t.expand(B, -1, -1), x], dim=1)
            mask = torch.cat([torch.ones(B, ids.shape[1], dtype=torch.long, device=self.device), mask], dim=1)
        proj = getattr(self.model, "enc_to_dec_proj", None)
        if proj is not None:
            x = proj(x)
        x = x * mask[..., None].to(x.dtype)
        if self.is_melody:
            x, mask = self._prepend_chroma(x, mask, chroma)
        elif chroma is not None:
            raise ValueError("a melody chroma is only used by MusicGen-melody generators")
        return x, mask

    def _prepend_chroma(self, x: torch.Tensor, mask: torch.Tensor, chroma: torch.Tensor | None):
        cfg = self.model.config
        B = x.shape[0]
        if chroma is None:
            # transformers' own "no melody" input: a one-hot on the first chroma bin.
            a = torch.zeros(B, 1, cfg.num_chroma, device=self.device, dtype=self.dtype)
            a[:, :, 0] = 1
        else:
            a = torch.as_tensor(chroma).to(self.device, self.dtype)
            if a.ndim == 2:
                a = a[None].expand(B, -1, -1)
            if a.ndim != 3 or a.shape[0] != B or a.shape[-1] != cfg.num_chroma:
                raise ValueError(f"chroma must be [{B}, T, {cfg.num_chroma}], got shape {tuple(a.shape)}")
        if cfg.num_chroma != self.model.decoder.config.hidden_size:
            a = self.model.audio_enc_to_dec_proj(a)
        # like transformers: tile a short chroma, cut a long one, to exactly chroma_length frames
        a = a.repeat(1, math.ceil(cfg.chroma_length / a.shape[1]), 1)[:, : cfg.chroma_length]
        ones = torch.ones(B, a.shape[1], dtype=torch.long, device=self.device)
        return torch.cat([a, x], dim=1), torch.cat([ones, mask], dim=1)

    @staticmethod
    def null_condition(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The unconditional input of classifier-free guidance: zeros with mask 0 (same shapes)."""
        return torch.zeros_like(hidden), torch.zeros_like(mask)

    def drop_condition(
        self, hidden: torch.Tensor, mask: torch.Tensor, p: float, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace each example's condition by :meth:`null_condition` with probability ``p`` (CFG training)."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"condition dropout must be in [0, 1], got {p}")
        if p == 0.0:
            return hidden, mask
        drop = torch.rand(hidden.shape[0], generator=generator) < p
        drop = drop.to(hidden.device)
        null_h, null_m = self.null_condition(hidden, mask)
        return torch.where(drop[:, None, None], null_h, hidden), torch.where(drop[:, None], null_m, mask)

    # ------------------------------------------------------------------ training
    def delayed_labels(self, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing labels in MusicGen's delay pattern.

        ``labels[b, s, k] = codes[b, k, s - k]`` for ``0 <= s - k < T``, else the pad id (ignored by the loss).

        Args:
            codes: long [B, K, T].

        Returns:
            labels long [B, T + K - 1, K].
        """
        B, K, T = codes.shape
        if K != self.num_codebooks:
            raise ValueError(f"codes must have {self.num_codebooks} codebooks, got shape {tuple(codes.shape)}")
        pad = self.pad_token_id
        ids = torch.cat([torch.full((B, K, 1), pad, dtype=torch.long, device=codes.device), codes.long()], dim=-1)
        _, pattern = self.model.decoder.build_delay_pattern_mask(ids.reshape(B * K, T + 1), pad_token_id=pad,
                                                                 max_length=T + K)
        return pattern.reshape(B, K, T + K)[:, :, 1:].transpose(1, 2)

    def teacher_forced(
        self,
        cond: torch.Tensor,
        cond_mask: torch.Tensor | None,
        codes: torch.Tensor,
        audio: torch.Tensor | None = None,
        *,
        cond_dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's next-code logits for the codes given the projected tokens (teacher forcing).

        The loss is not computed here: a training task turns these into its loss (the video -> MusicGen task's
        per-codebook cross-entropy, :func:`vitmusic.training.tasks.musicgen.codebook_cross_entropy`).

        Args:
            cond: projected tokens [B, S, cond_dim] (gradients flow back into the projection).
            cond_mask: [B, S] or None.
            codes: target Encodec codes long [B, K, T].
            audio: MusicGen-melody only: melody audio [B, N] at :attr:`sample_rate` whose chroma conditions too.
            cond_dropout: probability per example of replacing the condition with the null condition.
            generator: RNG for the dropout draw.

        Returns:
            ``(logits [B, K, L, V], labels long [B, L, K])`` with ``L = T + K - 1`` (the delay pattern) and
            label -100 where there is nothing to predict (the pattern's padding).
        """
        chroma = self.melody_features(audio) if (audio is not None and self.is_melody) else None
        hidden, mask = self.condition(cond, cond_mask, chroma)
        hidden, mask = self.drop_condition(hidden, mask, cond_dropout, generator)
        codes = codes.to(self.device)
        labels = self.delayed_labels(codes)  # [B, L, K], L = T + K - 1
        B, L, K = labels.shape
        pad = torch.full((B, 1, K), self.pad_token_id, dtype=torch.long, device=self.device)
        inputs = torch.cat([pad, labels[:, :-1]], dim=1).transpose(1, 2).reshape(B * K, L)
        out = self.model.decoder(input_ids=inputs, use_cache=False, **self._decoder_cond(hidden, mask))
        # [B * K, L', V] -> [B, K, L, V]: a melody prefix comes first, the last L steps are the codes'
        logits = out.logits.reshape(B, K, -1, out.logits.shape[-1])[:, :, -L:]
        return logits, labels.masked_fill(labels == self.pad_token_id, -100)

    def _decoder_cond(self, hidden: torch.Tensor, mask: torch.Tensor) -> dict:
        # MusicGen-melody's decoder takes the condition as a prefix; masked entries are already zero and (as in
        # transformers' own melody forward) no mask is passed, so training and guided generation see the same.
        if self.is_melody:
            return {"encoder_hidden_states": hidden}
        return {"encoder_hidden_states": hidden, "encoder_attention_mask": mask}

    # ------------------------------------------------------------------ generation
    def num_frames(self, duration_s: float) -> int:
        """Number of code frames for ``duration_s`` seconds of audio."""
        return int(round(duration_s * self.frame_rate))

    @torch.no_grad()
    def generate(
        self,
        cond: torch.Tensor,
        cond_mask: torch.Tensor | None,
        *,
        duration_s: float | None = None,
        num_frames: int | None = None,
        guidance_scale: float = 1.0,
        seed: int | None = None,
        prompt_codes: torch.Tensor | None = None,
        do_sample: bool = True,
        top_k: int = 250,
        temperature: float = 1.0,
        chroma: torch.Tensor | None = None,
        unconditional: bool = False,
    ) -> torch.Tensor:
        """Generate codes conditioned on projected tokens, with optional classifier-free guidance.

        Args:
            cond: projected tokens [B, S, cond_dim].
            cond_mask: [B, S] or None.
            duration_s: seconds of new audio; frames = round(duration_s * frame_rate).
            num_frames: number of new frames instead of ``duration_s``.
            guidance_scale: CFG scale; 1 = no guidance.
            seed: makes sampling reproducible (the global RNG state is left untouched).
            prompt_codes: long [B, K, P] codes to continue from.
            do_sample: sample (top-k) or greedy.
            top_k: top-k for sampling (MusicGen's default 250).
            temperature: sampling temperature.
            chroma: MusicGen-melody only: melody chroma [B, T, num_chroma] (see :meth:`melody_features`).
            unconditional: replace the condition by :meth:`null_condition` (the input that condition dropout
                trained), a baseline; ``cond`` then only sets the batch size.

        Returns:
            the new codes long [B, K, frames] (the prompt is not repeated).
        """
        if (duration_s is None) == (num_frames is None):
            raise ValueError("give exactly one of duration_s and num_frames")
        frames = self.num_frames(duration_s) if num_frames is None else int(num_frames)
        if frames < 1:
            raise ValueError(f"nothing to generate: {frames} frames (duration_s={duration_s})")
        if guidance_scale < 1.0:
            raise ValueError(f"guidance_scale must be >= 1, got {guidance_scale}")
        if do_sample and not temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
        hidden, mask = self.condition(cond, cond_mask, chroma)
        if unconditional:
            hidden, mask = self.null_condition(hidden, mask)
        return self.generate_from_condition(hidden, mask, num_frames=frames, guidance_scale=guidance_scale, seed=seed,
                                            prompt_codes=prompt_codes, do_sample=do_sample, top_k=top_k,
                                            temperature=temperature)

    @torch.no_grad()
    def generate_from_condition(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        *,
        num_frames: int,
        guidance_scale: float = 1.0,
        seed: int | None = None,
        prompt_codes: torch.Tensor | None = None,
        do_sample: bool = True,
        top_k: int = 250,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """:meth:`generate` from decoder-level conditioning ``(hidden [B, S', H], mask [B, S'])``."""
        from transformers import DynamicCache, EncoderDecoderCache

        B, K, pad = hidden.shape[0], self.num_codebooks, self.pad_token_id
        ids = torch.full((B, K, 1), pad, dtype=torch.long, device=self.device)
        P = 0
        if prompt_codes is not None:
            if prompt_codes.ndim != 3 or prompt_codes.shape[:2] != (B, K):
                raise ValueError(f"prompt_codes must be [{B}, {K}, P], got shape {tuple(prompt_codes.shape)}")
            P = prompt_codes.shape[-1]
            ids = torch.cat([ids, prompt_codes.to(self.device).long()], dim=-1)
        guided = guidance_scale > 1.0
        wanted = num_frames
        # transformers skips the delay pattern for sequences shorter than 2K - 1: generate a little more
        num_frames = max(num_frames, K - 1 - P)
        input_ids = ids.reshape(B * K, P + 1)
        kwargs: dict[str, Any] = dict(
            input_ids=input_ids,
            # MusicGen's start token is its pad token, so generate would infer a mask that hides it from
            # self-attention; training (and the composite model's own generate) attends to it: say so explicitly.
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=num_frames + K - 1,  # the delay pattern needs K - 1 extra steps
            do_sample=do_sample,
            num_return_sequences=1,
            guidance_scale=guidance_scale if guided else None,
        )
        if do_sample:
            kwargs.update(top_k=top_k, temperature=temperature)
        else:
            kwargs.update(top_k=None, temperature=None)
        if guided:
            null_h, null_m = self.null_condition(hidden, mask)
            hidden, mask = torch.cat([hidden, null_h]), torch.cat([mask, null_m])
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            if self.is_melody:
                out = prefix_decoder_sample(self.model.decoder, ids, hidden, num_frames=num_frames,
                                            guidance_scale=guidance_scale, do_sample=do_sample, top_k=top_k,
                                            temperature=temperature)
            else:
                cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
                if P:
                    self._prefill(cache, kwargs["input_ids"], hidden, mask, guided)
                kwargs.update(encoder_hidden_states=hidden, encoder_attention_mask=mask,
                              **cache_kwargs(self.model.decoder, cache))
                out = self.model.decoder.generate(**kwargs)  # [B, K, P + num_frames]
        return out[:, :, P:P + wanted]

    def _prefill(self, cache: Any, ids: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor, guided: bool) -> None:
        # With an explicit cache object, the decoder's generate feeds only the LAST input position at its first
        # step, so a multi-frame prompt would be dropped; run the prompt (all but its last position) through the
        # cache first, delayed exactly as generate will lay it out.
        dec = self.model.decoder
        K = self.num_codebooks
        seq, pattern = dec.build_delay_pattern_mask(ids, pad_token_id=self.pad_token_id,
                                                    max_length=ids.shape[-1] + 2 * K)
        x = dec.apply_delay_pattern_mask(seq, pattern)[:, :-1]
        dec(input_ids=x.repeat(2, 1) if guided else x, encoder_hidden_states=hidden, encoder_attention_mask=mask,
            use_cache=True, **cache_kwargs(dec, cache))

    # windowed generation with continuation for any length (vitmusic.generators.musicgen.windowed)
    generate_long = generate_long


def load_generator(
    name_or_path: str | os.PathLike,
    *,
    kind: str | None = None,
    revision: str | None = None,
    entry: str = "encoder_outputs",
    text_prompt: str | None = None,
) -> MusicGenGenerator:
    """Load a frozen MusicGen(-melody) generator.

    Args:
        name_or_path: tiny preset ("tiny-musicgen", "tiny-musicgen-melody"), hub id or local folder.
        kind: "musicgen" | "musicgen-melody"; inferred from the config when None.
        revision: hub revision.
        entry: "encoder_outputs" (tokens replace the T5 states) or "inputs_embeds" (soft prompt through T5).
        text_prompt: optional text prompt prepended to every condition (needs the checkpoint's tokenizer).

    Raises:
        VitmusicError: the model cannot be found/loaded (e.g. offline and not cached), or ``kind`` mismatches.
    """
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        MusicgenForConditionalGeneration,
        MusicgenMelodyForConditionalGeneration,
    )

    filter_known_config_warnings()
    if entry not in ENTRIES:
        raise ConfigError(f"unknown conditioning entry {entry!r}; choose one of {', '.join(ENTRIES)}")
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"unknown generator kind {kind!r}; choose one of {', '.join(KINDS)}")
    name = str(name_or_path)
    path: str | os.PathLike = materialize_tiny_generator(name) if name in TINY_PRESETS else name_or_path
    try:
        config = AutoConfig.from_pretrained(path, revision=revision)
    except (OSError, ValueError, KeyError) as exc:
        raise VitmusicError(f"cannot load generator {name!r}: {_first_line(exc)}") from None
    found = _MODEL_TYPES.get(config.model_type)
    if found is None:
        raise VitmusicError(f"{name!r} is a {config.model_type!r} model, not MusicGen or MusicGen-melody")
    if kind is not None and kind != found:
        raise ConfigError(f"generator {name!r} is {found!r}, but kind={kind!r} was asked for")
    cls = MusicgenMelodyForConditionalGeneration if found == "musicgen-melody" else MusicgenForConditionalGeneration
    try:
        with hf_model_build():
            model = cls.from_pretrained(path, revision=revision)
    except (OSError, ValueError) as exc:
        raise VitmusicError(f"cannot load generator {name!r}: {_first_line(exc)}") from None
    tokenizer = None
    if text_prompt is not None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
        except (OSError, ValueError) as exc:
            raise VitmusicError(f"cannot load the text tokenizer of {name!r}: {_first_line(exc)}") from None
    return MusicGenGenerator(model, name=name, kind=found, revision=revision, entry=entry, text_prompt=text_prompt,
                             tokenizer=tokenizer)
