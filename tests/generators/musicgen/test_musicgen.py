"""MusicGen generator wrapper: tiny random-init models, CPU, offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitmusic.errors import VitmusicError
from vitmusic.generators.musicgen.model import MusicGenGenerator, load_generator
from vitmusic.generators.musicgen.presets import build_tiny_model, materialize_tiny_generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ce(gen, *args, **kwargs):
    """The video -> MusicGen task's loss of the generator's teacher-forced logits (mean CE over the codebooks)."""
    from vitmusic.training.tasks.musicgen import codebook_cross_entropy

    return codebook_cross_entropy(*gen.teacher_forced(*args, **kwargs)).mean()


@pytest.fixture(scope="module")
def preset_root(tmp_path_factory):
    return tmp_path_factory.mktemp("presets")


@pytest.fixture(scope="module")
def gen(preset_root) -> MusicGenGenerator:
    return load_generator(materialize_tiny_generator("tiny-musicgen", root=preset_root))


@pytest.fixture(scope="module")
def melody(preset_root) -> MusicGenGenerator:
    return load_generator(materialize_tiny_generator("tiny-musicgen-melody", root=preset_root))


def _cond(g: MusicGenGenerator, B: int = 2, S: int = 6, seed: int = 0):
    rng = torch.Generator().manual_seed(seed)
    cond = torch.randn(B, S, g.cond_dim, generator=rng)
    mask = torch.ones(B, S, dtype=torch.long)
    mask[-1, S - 2:] = 0  # a padded example
    return cond, mask


def _uncached_greedy(g: MusicGenGenerator, hidden, mask, num_frames: int, guidance_scale: float):
    """Reference: full forward passes over the whole delayed sequence at every step, no cache."""
    dec, K, V = g.model.decoder, g.num_codebooks, g.pad_token_id
    B = hidden.shape[0]
    ids, pattern = dec.build_delay_pattern_mask(torch.full((B * K, 1), V), pad_token_id=V,
                                                max_length=1 + num_frames + K - 1)
    extra = {} if g.is_melody else {"encoder_attention_mask": torch.cat([mask, 0 * mask])}
    extra1 = {} if g.is_melody else {"encoder_attention_mask": mask}
    with torch.no_grad():
        for _ in range(num_frames + K - 1):
            x = dec.apply_delay_pattern_mask(ids, pattern)
            if guidance_scale > 1:
                logits = dec(input_ids=x.repeat(2, 1), encoder_hidden_states=torch.cat([hidden, 0 * hidden]),
                             use_cache=False, **extra).logits[:, -1]
                c, u = logits.split(B * K)
                logits = u + guidance_scale * (c - u)
            else:
                logits = dec(input_ids=x, encoder_hidden_states=hidden, use_cache=False, **extra1).logits[:, -1]
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=-1)
    ids = dec.apply_delay_pattern_mask(ids, pattern)
    return ids[ids != V].reshape(B, K, -1)


def test_properties_and_audio_codes_shapes(gen):
    assert (gen.sample_rate, gen.frame_rate, gen.num_codebooks, gen.cond_dim) == (32000, 50.0, 4, 32)
    wav = torch.randn(2, 32000 + 100) * 0.1
    codes = gen.encode_audio(wav)
    assert codes.dtype == torch.long and codes.shape == (2, 4, 51)  # ceil(32100 / 640)
    assert int(codes.max()) < 64 and len(torch.unique(codes)) > 1  # codebooks were filled: not all zeros
    out = gen.decode(codes)
    assert out.shape == (2, 51 * 640)
    fp = gen.fingerprint()
    assert fp["kind"] == "musicgen" and fp["entry"] == "encoder_outputs" and len(fp["config_sha256"]) == 16


def test_frozen_even_after_train(gen):
    gen.train()
    assert not gen.model.training and not any(m.training for m in gen.model.modules())
    assert all(not p.requires_grad for p in gen.parameters())


def test_delayed_labels_match_hand_built_layout(gen):
    B, K, T, V = 2, 4, 5, gen.pad_token_id
    codes = torch.arange(B * K * T).reshape(B, K, T) % 60
    labels = gen.delayed_labels(codes)
    assert labels.shape == (B, T + K - 1, K)
    expected = torch.full((B, T + K - 1, K), V)
    for b in range(B):
        for k in range(K):
            for t in range(T):
                expected[b, t + k, k] = codes[b, k, t]
    assert torch.equal(labels, expected)


def test_loss_finite_and_gradient_reaches_projection(gen):
    proj = torch.nn.Linear(16, gen.cond_dim)
    feats = torch.randn(2, 6, 16)
    mask = torch.ones(2, 6, dtype=torch.long)
    codes = torch.randint(0, 64, (2, 4, 20))
    loss = _ce(gen, proj(feats), mask, codes)
    assert loss.ndim == 0 and torch.isfinite(loss)
    # random codes under a random decoder: about ln(64); the preset's lm-head gain spreads its logits, which
    # costs up to ~0.5 nat more on random targets
    assert np.log(64) - 0.3 < loss.item() < np.log(64) + 1.0
    loss.backward()
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in gen.parameters())


def test_condition_dropout_is_the_generation_null_branch(gen):
    cond, mask = _cond(gen)
    codes = torch.randint(0, 64, (2, 4, 10))
    h, m = gen.condition(cond, mask)
    dropped_h, dropped_m = gen.drop_condition(h, m, 1.0)
    assert torch.equal(dropped_h, torch.zeros_like(h)) and torch.equal(dropped_m, torch.zeros_like(m))
    kept_h, kept_m = gen.drop_condition(h, m, 0.0)
    assert kept_h is h and kept_m is m
    # loss with p=1 equals the loss of a different condition with p=1 (the condition is gone) ...
    other = torch.randn_like(cond)
    l1 = _ce(gen, cond, mask, codes, cond_dropout=1.0)
    l2 = _ce(gen, other, mask, codes, cond_dropout=1.0)
    assert torch.equal(l1, l2) and not torch.equal(l1, _ce(gen, cond, mask, codes))
    # ... and the guided generation's unconditional half sees exactly that null condition
    seen = []
    hook = gen.model.decoder.register_forward_pre_hook(lambda mod, a, kw: seen.append(kw), with_kwargs=True)
    try:
        gen.generate(cond, mask, num_frames=2, guidance_scale=3.0, do_sample=False)
    finally:
        hook.remove()
    first = seen[0]
    B = cond.shape[0]
    assert torch.equal(first["encoder_hidden_states"][:B], h)
    assert torch.equal(first["encoder_hidden_states"][B:], dropped_h)
    assert torch.equal(first["encoder_attention_mask"][B:], dropped_m)


@pytest.mark.parametrize("which", ["gen", "melody"])
@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_cached_generation_equals_uncached(which, scale, request):
    g = request.getfixturevalue(which)
    cond, mask = _cond(g)
    h, m = g.condition(cond, mask)
    codes = g.generate(cond, mask, num_frames=6, guidance_scale=scale, do_sample=False)
    ref = _uncached_greedy(g, h.detach(), m, 6, scale)
    assert codes.shape == (2, 4, 6)
    assert torch.equal(codes, ref)


def test_guidance_scale_one_matches_plain_generate(gen):
    cond, mask = _cond(gen)
    frames = 8
    codes = gen.generate(cond, mask, num_frames=frames, guidance_scale=1.0, do_sample=False)
    with torch.no_grad():
        out = gen.model.generate(encoder_outputs=(cond,), attention_mask=mask, max_new_tokens=frames + 3,
                                 do_sample=False, guidance_scale=1.0)
    assert out.shape == (2, 1, frames * 640)
    assert torch.allclose(gen.decode(codes), out[:, 0], atol=1e-5)


def test_guidance_changes_codes_and_seed_reproducibility(gen):
    cond, mask = _cond(gen)
    a = gen.generate(cond, mask, duration_s=0.2, guidance_scale=3.0, seed=7)
    b = gen.generate(cond, mask, duration_s=0.2, guidance_scale=3.0, seed=7)
    c = gen.generate(cond, mask, duration_s=0.2, guidance_scale=3.0, seed=8)
    assert a.shape == (2, 4, 10)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("which", ["gen", "melody"])
@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_prompt_codes_continuation(which, scale, request):
    g = request.getfixturevalue(which)
    cond, mask = _cond(g)
    full = g.generate(cond, mask, num_frames=8, do_sample=False, guidance_scale=scale)
    cont = g.generate(cond, mask, num_frames=4, do_sample=False, guidance_scale=scale, prompt_codes=full[:, :, :4])
    # greedy continuation of the first 4 frames reproduces the rest of the greedy run
    assert cont.shape == (2, 4, 4) and torch.equal(cont, full[:, :, 4:])


def test_save_load_round_trip_identical_codes(tmp_path, gen):
    # materialisation is deterministic: a fresh build is identical to the cached one
    again = load_generator(materialize_tiny_generator("tiny-musicgen", root=tmp_path / "fresh"))
    build_tiny_model("tiny-musicgen").save_pretrained(tmp_path / "saved")
    saved = load_generator(tmp_path / "saved")
    cond, mask = _cond(gen)
    ref = gen.generate(cond, mask, num_frames=5, guidance_scale=2.0, seed=3)
    assert torch.equal(ref, again.generate(cond, mask, num_frames=5, guidance_scale=2.0, seed=3))
    assert torch.equal(ref, saved.generate(cond, mask, num_frames=5, guidance_scale=2.0, seed=3))
    # same architecture -> same fingerprint hash, wherever the files lie
    assert saved.fingerprint()["config_sha256"] == gen.fingerprint()["config_sha256"]


def test_the_session_cache_is_not_the_users(vitmusic_cache, tmp_path_factory):
    """tests/conftest.py points VITMUSIC_CACHE into the session's temp folder: no test writes ~/.cache."""
    import os

    from vitmusic.encoders.presets import cache_root

    assert os.environ["VITMUSIC_CACHE"] == str(vitmusic_cache)
    assert cache_root() == vitmusic_cache and vitmusic_cache.is_relative_to(tmp_path_factory.getbasetemp())


def test_preset_name_uses_vitmusic_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VITMUSIC_CACHE", str(tmp_path))
    g = load_generator("tiny-musicgen", entry="inputs_embeds")
    assert (tmp_path / "presets" / "tiny-musicgen" / "model.safetensors").is_file()
    assert g.kind == "musicgen" and g.fingerprint()["id"] == "tiny-musicgen"


def test_inputs_embeds_entry_and_text_prompt(preset_root):
    path = materialize_tiny_generator("tiny-musicgen", root=preset_root)
    a = load_generator(path, entry="encoder_outputs")
    b = load_generator(path, entry="inputs_embeds")
    t = load_generator(path, entry="inputs_embeds", text_prompt="solo violin, slow")
    cond, mask = _cond(a)
    ha, _ = a.condition(cond, mask)
    hb, _ = b.condition(cond, mask)
    width = a.model.decoder.config.hidden_size  # the condition reaches the decoder at its width
    assert ha.shape == hb.shape == (2, 6, width) and not torch.allclose(ha, hb)
    ht, mt = t.condition(cond, mask)
    assert ht.shape == (2, 6 + 5, width)  # "solo violin , slow </s>" + 6 tokens
    assert torch.equal(mt[:, :5], torch.ones(2, 5, dtype=torch.long)) and torch.equal(mt[:, 5:], mask)
    assert torch.allclose(ht[:, 5:], hb)
    cond = cond.clone().requires_grad_(True)
    _ce(t, cond, mask, torch.randint(0, 64, (2, 4, 6))).backward()
    assert cond.grad.abs().sum() > 0


def test_melody_path_shapes_and_chroma(melody):
    assert melody.kind == "musicgen-melody"
    sr = melody.sample_rate
    t = np.arange(2 * sr) / sr
    a440 = 0.5 * np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    chroma = melody.melody_features(np.stack([a440, a440]))
    assert chroma.shape[0] == 2 and chroma.shape[2] == 12
    assert chroma.shape[1] == 1 + 2 * sr // 4096
    assert torch.all(chroma.argmax(-1) == 9)  # A is pitch class 9 counting from C
    cond, mask = _cond(melody)
    h, m = melody.condition(cond, mask, chroma)
    assert h.shape == (2, 40 + 6, melody.model.decoder.config.hidden_size) and m.shape == (2, 46)
    h0, _ = melody.condition(cond, mask)
    assert not torch.allclose(h[:, :40], h0[:, :40])
    codes = melody.generate(cond, mask, num_frames=5, chroma=chroma, guidance_scale=3.0, seed=0)
    assert codes.shape == (2, 4, 5)
    proj = torch.nn.Linear(8, melody.cond_dim)
    loss = _ce(melody, proj(torch.randn(2, 6, 8)), mask, torch.randint(0, 64, (2, 4, 6)),
                       audio=torch.from_numpy(np.stack([a440, a440])))
    loss.backward()
    assert torch.isfinite(loss) and proj.weight.grad.abs().sum() > 0


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(VitmusicError) as info:
        load_generator(tmp_path / "no-such-model")
    assert "cannot load generator" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(VitmusicError):
        load_generator("tiny-musicgen", entry="prefix")
    with pytest.raises(VitmusicError):
        load_generator(materialize_tiny_generator("tiny-musicgen", root=tmp_path), kind="musicgen-melody")


def test_very_short_generation_keeps_the_delay_pattern(gen):
    cond, mask = _cond(gen)
    full = gen.generate(cond, mask, num_frames=6, do_sample=False)
    one = gen.generate(cond, mask, num_frames=1, do_sample=False)
    assert one.shape == (2, 4, 1) and torch.equal(one, full[:, :, :1])


def test_hub_id_offline_and_not_cached_is_one_line_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(VitmusicError) as info:
        load_generator("vitmusic-test/no-such-musicgen")
    assert str(info.value).startswith("cannot load generator 'vitmusic-test/no-such-musicgen': ")
    assert "\n" not in str(info.value)


def test_unconditional_generation_ignores_the_tokens(gen):
    cond, mask = _cond(gen)
    a = gen.generate(cond, mask, num_frames=6, seed=5, unconditional=True)
    b = gen.generate(torch.randn_like(cond), mask, num_frames=6, seed=5, unconditional=True)
    h, m = gen.condition(cond, mask)
    ref = gen.generate_from_condition(torch.zeros_like(h), torch.zeros_like(m), num_frames=6, seed=5)
    assert torch.equal(a, b) and torch.equal(a, ref)


def test_librosa_chroma_matches_the_transformers_extractor_recipe():
    from transformers.audio_utils import chroma_filter_bank

    from vitmusic.generators.musicgen.melody import HOP_LENGTH, N_FFT, melody_chroma

    sr = 32000
    rng = np.random.default_rng(0)
    notes_hz = [261.63, 329.63, 392.0, 440.0, 493.88, 311.13]  # C E G A B D#
    t = np.arange(sr // 2) / sr
    wav = np.concatenate([np.sin(2 * np.pi * f * t) * (0.3 + 0.1 * i) for i, f in enumerate(notes_hz)])
    wav = (wav + 0.01 * rng.standard_normal(wav.shape)).astype(np.float32)
    ours = melody_chroma(wav, sr)
    # the extractor's recipe (it needs torchaudio): hann power STFT, centred with reflection, HF's filter bank
    spec = torch.stft(torch.from_numpy(wav), N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT), center=True,
                      pad_mode="reflect", return_complex=True).abs() ** 2
    bank = torch.from_numpy(chroma_filter_bank(num_frequency_bins=N_FFT, num_chroma=12, sampling_rate=sr, tuning=0))
    ref = torch.einsum("cf,ft->tc", bank.float(), spec).argmax(-1).numpy()
    assert ours.shape == (len(ref), 12) and np.all(ours.sum(-1) == 1)
    assert np.mean(ours.argmax(-1) == ref) == 1.0
    # and the melody is where it should be: frames in the middle of each note carry its pitch class
    mid = [int((i + 0.25) * sr / 2 / HOP_LENGTH) + 1 for i in range(len(notes_hz))]
    assert list(ours.argmax(-1)[mid]) == [0, 4, 7, 9, 11, 3]


@pytest.mark.parametrize("which", ["gen", "melody"])
def test_generation_raises_no_deprecation_warning(which, request):
    # transformers 5.24 renamed MusicGen's cache keyword; the old one warns (and is removed in 5.40)
    import warnings

    g = request.getfixturevalue(which)
    cond, mask = _cond(g)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        full = g.generate(cond, mask, num_frames=6, do_sample=False, guidance_scale=3.0)
        g.generate(cond, mask, num_frames=3, do_sample=False, guidance_scale=3.0, prompt_codes=full[:, :, :3])
