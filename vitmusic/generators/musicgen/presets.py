"""Tiny random-init MusicGen / MusicGen-melody presets for tests, CI and the debug config.

A preset is materialised once with ``save_pretrained`` (model + a tiny word-level text tokenizer) into
``$VITMUSIC_CACHE/presets/<name>`` (default ``~/.cache/vitmusic/presets/<name>``) and then loaded back through
the same ``from_pretrained`` path as a real checkpoint, so tests exercise the user code path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from vitmusic.atomic import publish_dir
from vitmusic.encoders.presets import preset_dir
from vitmusic.errors import ConfigError
from vitmusic.hf_quiet import filter_known_config_warnings, hf_model_build, hf_progress

if TYPE_CHECKING:
    import torch

TINY_PRESETS: tuple[str, ...] = ("tiny-musicgen", "tiny-musicgen-melody")

# Tiny sizes: 32 kHz Encodec with hop 640 (50 codes/s), 4 codebooks of 64 entries.
_SAMPLE_RATE = 32000
_CODEBOOK_SIZE = 64
_NUM_CODEBOOKS = 4
_TEXT_VOCAB = 100
_SEED = 0
# The condition reaches the logits only through the final layernorm and the fixed lm heads, a single
# _DECODER_WIDTH-dim vector shared by the 4 codebooks; at 64 it could not shape 4 x 64 logits, and the held-out
# gap between the true and a shuffled video was positive for 9 of 10 data seeds, at 128 for 10 of 10
# (scripts/benchmarks/bench_conditioning_gap.py).
_DECODER_WIDTH = 128
# A random decoder barely responds to its condition: with init std 0.02 the cross-attention adds almost nothing
# to the residual stream and the lm heads map the final-layernorm output to near-uniform logits. These gains
# stand in for what pretraining gives a real MusicGen (a decoder that reads its condition, confident heads).
_COND_GAIN = 2.0  # on the cross-attention value and output projections (their product: 4x)
_LOGIT_GAIN = 5.0  # on the lm heads
# Stored in the preset's config.json: a preset written by an older build is rebuilt, and the generator's config
# hash (hence every feature-cache key made with it) changes with it. 5: k-means codebooks, decoder gains;
# 6: decoder width 128.
PRESET_VERSION = 6

# A small closed vocabulary so text prompts like "solo violin, slow" work offline with the tiny preset.
_WORDS = (
    "solo duet trio quartet quintet ensemble orchestra chamber piece music song melody chorale "
    "violin viola cello double bass contrabass flute oboe clarinet bassoon horn trumpet trombone tuba "
    "saxophone sax piano strings woodwinds brass "
    "slow fast moderate calm lively happy sad dark bright soft loud gentle energetic classical jazz "
    "a and the with in of for , . -"
).split()


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    if len(vocab) > _TEXT_VOCAB:  # a programming error in the word list, not a user's
        raise RuntimeError(f"tiny tokenizer: {len(vocab)} words exceed the text vocabulary of {_TEXT_VOCAB}")
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    # T5 appends </s> to every sequence; keep that convention.
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>")


def build_tiny_model(name: str):
    """Build the random-init tiny model for preset ``name`` (deterministic: fixed seed).

    Random-init Encodec codebooks are all zeros (every code would be 0), and random normal entries are far
    from the encoder's outputs (every clip would get the same code in each codebook), so they are calibrated:
    see :func:`_calibrate_codebooks`.
    """
    import torch
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        MusicgenMelodyForConditionalGeneration,
        T5Config,
    )

    if name not in TINY_PRESETS:
        raise ConfigError(f"unknown tiny generator preset {name!r}; choose one of {', '.join(TINY_PRESETS)}")
    V, K = _CODEBOOK_SIZE, _NUM_CODEBOOKS
    text = T5Config(vocab_size=_TEXT_VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
                    pad_token_id=0, eos_token_id=1)
    audio = EncodecConfig(sampling_rate=_SAMPLE_RATE, hidden_size=32, num_filters=4, upsampling_ratios=[8, 5, 4, 4],
                          num_lstm_layers=1, codebook_size=V, target_bandwidths=[1.2], use_causal_conv=False)
    dec_kw = dict(vocab_size=V, hidden_size=_DECODER_WIDTH, num_hidden_layers=2, num_attention_heads=4,
                  ffn_dim=2 * _DECODER_WIDTH,
                  num_codebooks=K, pad_token_id=V, bos_token_id=V, dropout=0.0)
    with hf_model_build(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        if name == "tiny-musicgen":
            cfg = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=MusicgenDecoderConfig(**dec_kw))
            cfg.decoder.decoder_start_token_id = V
            model = MusicgenForConditionalGeneration(cfg)
        else:
            # chroma_length 40 (~5 s of chroma at 32 kHz / hop 4096) keeps the prefix short for CPU tests.
            cfg = MusicgenMelodyConfig(text_encoder=text, audio_encoder=audio,
                                       decoder=MusicgenMelodyDecoderConfig(**dec_kw), num_chroma=12, chroma_length=40)
            cfg.decoder.decoder_start_token_id = V
            model = MusicgenMelodyForConditionalGeneration(cfg)
        for g in (model.generation_config, model.decoder.generation_config):
            g.pad_token_id = g.bos_token_id = g.decoder_start_token_id = V
            g.top_k = 250
            g.do_sample = True
            g.guidance_scale = None
        _calibrate_codebooks(model.audio_encoder)
        with torch.no_grad():
            for head in model.decoder.lm_heads:
                head.weight.mul_(_LOGIT_GAIN)
            for layer in model.decoder.model.decoder.layers:
                if hasattr(layer, "encoder_attn"):  # MusicGen-melody has none: it reads its condition as a prefix
                    layer.encoder_attn.v_proj.weight.mul_(_COND_GAIN)
                    layer.encoder_attn.out_proj.weight.mul_(_COND_GAIN)
        model.config.vitmusic_preset_version = PRESET_VERSION
    return model.eval()


def calibration_audio(sample_rate: int, seconds: float = 1.0) -> torch.Tensor:
    """The fixed bank the tiny codec is calibrated on: [B, N] float audio at ``sample_rate``.

    Every built-in instrument timbre of the synthetic benchmark plays a low, middle and high note of its range
    (a note change halfway), plus white noise at three levels and silence, so different pitches, timbres and
    levels end up on different codes.
    """
    import numpy as np
    import torch

    from vitmusic.data.synth.instruments import TIMBRES, render_notes
    from vitmusic.data.urmp import INSTRUMENTS

    half = seconds / 2
    bank = []
    for i, code in enumerate(sorted(TIMBRES)):
        low, high = INSTRUMENTS[code].low_midi, INSTRUMENTS[code].high_midi
        for j, midi in enumerate(np.linspace(low + 2, high - 2, 3)):
            notes = np.array([[0.0, 440.0 * 2 ** ((midi - 69) / 12), half * 0.95],
                              [half, 440.0 * 2 ** ((midi + 4 - 69) / 12), half * 0.95]])
            bank.append(render_notes(notes, code, sample_rate, duration_s=seconds, seed=_SEED + 3 * i + j))
    rng = np.random.default_rng(_SEED)
    n = len(bank[0])
    bank += [level * rng.standard_normal(n) for level in (0.01, 0.05, 0.2)] + [np.zeros(n)]
    return torch.tensor(np.stack(bank), dtype=torch.float32)


def _calibrate_codebooks(encodec, iterations: int = 10) -> None:
    """Residual k-means of the codec's own latents on :func:`calibration_audio` (deterministic).

    Codebook 1 clusters the encoder's outputs, each next codebook the residuals the previous ones leave (as
    an RVQ is trained), so the codes of the tiny preset depend on pitch, timbre and level of the audio and
    teacher-forced training on them has something to learn.
    """
    import torch

    g = torch.Generator().manual_seed(_SEED)
    with torch.no_grad():
        emb = encodec.encoder(calibration_audio(int(encodec.config.sampling_rate))[:, None])  # [B, D, T]
        residual = emb.transpose(1, 2).reshape(-1, emb.shape[1])  # [B*T, D]
        for layer in encodec.quantizer.layers:
            book = layer.codebook.embed  # [codebook_size, D]
            centres = residual[torch.randperm(len(residual), generator=g)[: book.shape[0]]].clone()
            for _ in range(iterations):
                assign = torch.cdist(residual, centres).argmin(1)
                counts = torch.bincount(assign, minlength=len(centres))
                sums = torch.zeros_like(centres).index_add_(0, assign, residual)
                used = counts > 0  # an empty cluster keeps its centre
                centres[used] = sums[used] / counts[used, None]
            book.copy_(centres)
            residual = residual - book[torch.cdist(residual, book).argmin(1)]


def materialize_tiny_generator(name: str, root: str | os.PathLike | None = None) -> Path:
    """Write tiny preset ``name`` (model + tokenizer) with ``save_pretrained`` and return its folder.

    The folder is written atomically and reused when it already holds a model.

    Args:
        name: "tiny-musicgen" or "tiny-musicgen-melody".
        root: parent folder; default ``$VITMUSIC_CACHE/presets`` (``~/.cache/vitmusic``), as the encoders'.
    """
    if name not in TINY_PRESETS:
        raise ConfigError(f"unknown tiny generator preset {name!r}; choose one of {', '.join(TINY_PRESETS)}")
    out = preset_dir(name, root)
    if _is_current(out):
        return out
    filter_known_config_warnings()
    model = build_tiny_model(name)

    def write(tmp: Path) -> None:
        with hf_progress(False):
            model.save_pretrained(tmp)
            _tiny_tokenizer().save_pretrained(tmp)

    return publish_dir(out, write, _is_current)


def _is_current(out: Path) -> bool:
    """``out`` holds a complete preset of this :data:`PRESET_VERSION`."""
    import json

    if not ((out / "config.json").is_file() and (out / "model.safetensors").is_file()):
        return False
    try:
        version = json.loads((out / "config.json").read_text(encoding="utf-8")).get("vitmusic_preset_version")
    except (OSError, ValueError):
        return False
    return version == PRESET_VERSION
