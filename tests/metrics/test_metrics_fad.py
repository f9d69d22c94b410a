"""FAD / KID: closed forms, brute-force estimators, size-bias simulations, loudness invariance, embedders."""

from __future__ import annotations

import math
import os
import warnings
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from metrics_signals import SR, chord_progression, clicks_at_bpm, harmonic_tone, save_tiny_wav2vec2

from vitmusic.metrics import fad, fad_embeddings, loudness


# ------------------------------------------------------------------------------------------- Fréchet
def test_one_dimensional_closed_form():
    # For 1-D Gaussians FAD = (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2.
    got = fad.frechet_distance_from_stats(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]]))
    assert got == pytest.approx((1 - 3) ** 2 + (2 - 3) ** 2)


def test_matches_eigenvalue_method():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.3
    mu_a, s_a = a.mean(0), np.cov(a, rowvar=False)
    mu_b, s_b = b.mean(0), np.cov(b, rowvar=False)
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvals(s_a @ s_b).real, 0, None)))
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * tr_sqrt
    assert fad.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_identical_sets_zero_and_shift_adds_squared_distance():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 4))
    assert fad.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, 0.0, -2.0, 0.5])
    assert fad.frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_small_samples_warn_and_undefined_is_nan():
    rng = np.random.default_rng(2)
    with pytest.warns(UserWarning, match="biased"):
        value = fad.frechet_distance(rng.normal(size=(10, 20)), rng.normal(size=(10, 20)))
    assert math.isfinite(value) and value > 0  # singular covariances are exact with eigh, not a crash
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(fad.frechet_distance(np.ones((1, 3)), np.ones((5, 3))))


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.ones(5), np.ones((5, 2)), r"\[N, D\]"),
        (np.ones((5, 2)), np.ones((5, 3)), "widths differ"),
        (np.full((5, 2), np.nan), np.ones((5, 2)), "NaN/inf"),
    ],
)
def test_validate(a, b, match):
    with pytest.raises(ValueError, match=match):
        fad.frechet_distance(a, b)


@pytest.mark.parametrize(
    ("ref", "gen", "match"),
    [
        ([], [np.ones((2, 3))], "no clip"),
        (np.ones((4, 3)), [np.ones((2, 3))], "one pooled array"),
        ([np.ones((2, 3)), np.ones((2, 4))], [np.ones((2, 3))], "different embedding widths"),
        ([np.ones((2, 3))], [np.ones((2, 4))], "widths differ"),
        ([np.ones(3)], [np.ones((2, 3))], r"ref_clips\[0\] must be \[N, D\]"),
    ],
)
def test_validate_clips(ref, gen, match):
    with pytest.raises(ValueError, match=match):
        fad.set_scores(ref, gen)


# ------------------------------------------------------------------- estimators against brute force
def _clips(rng, n, dim=3, windows=(2, 4)):
    return [rng.normal(size=(int(rng.integers(*windows)), dim)) for _ in range(n)]


def _brute_kid(ref, gen, center, scale):
    """KID by its definition: mean kernel over window pairs of different clips (and different pair indices)."""
    x = [(c - center) / scale for c in ref]
    y = [(c - center) / scale for c in gen]
    d = ref[0].shape[1]

    def k(p, q):
        return np.mean([(u @ v / d + 1) ** 3 for u, v in product(p, q)])

    def mean_off(p, q):
        return np.mean([k(p[i], q[j]) for i in range(len(p)) for j in range(len(q)) if i != j])

    cross = mean_off(x, y) if len(x) == len(y) else np.mean([k(u, v) for u in x for v in y])
    return mean_off(x, x) + mean_off(y, y) - 2 * cross


@pytest.mark.parametrize("sizes", [(5, 5), (4, 6)])
def test_kid_matches_its_definition_and_the_jackknife(sizes):
    rng = np.random.default_rng(3)
    ref, gen = _clips(rng, sizes[0]), [c + 0.3 for c in _clips(rng, sizes[1])]
    got = fad.kid(ref, gen)
    pooled = np.concatenate(ref)
    center, scale = pooled.mean(0), np.sqrt(np.mean((pooled - pooled.mean(0)) ** 2))
    assert got["scale"] == pytest.approx(scale)
    assert got["kid"] == pytest.approx(_brute_kid(ref, gen, center, scale), rel=1e-10)
    # jackknife over clips (pairs of clips when the sets are paired), same centring and scale
    if sizes[0] == sizes[1]:
        loo = [[_brute_kid([c for i, c in enumerate(ref) if i != k], [c for i, c in enumerate(gen) if i != k],
                           center, scale) for k in range(sizes[0])]]
    else:
        loo = [[_brute_kid([c for i, c in enumerate(ref) if i != k], gen, center, scale) for k in range(sizes[0])],
               [_brute_kid(ref, [c for i, c in enumerate(gen) if i != k], center, scale) for k in range(sizes[1])]]
    var = sum((len(v) - 1) / len(v) * np.sum((np.array(v) - np.mean(v)) ** 2) for v in loo)
    assert got["se"] == pytest.approx(math.sqrt(var), rel=1e-8)
    lo, hi = got["ci95"]
    assert lo < got["kid"] < hi and (hi - lo) / 2 > 1.96 * got["se"]  # t quantile, not z


def test_kid_of_a_copy_is_exactly_zero_and_undefined_below_two_clips():
    rng = np.random.default_rng(4)
    ref = _clips(rng, 6)
    assert fad.kid(ref, ref)["kid"] == pytest.approx(0.0, abs=1e-12)
    one = fad.kid(ref[:1], ref[:1])
    assert math.isnan(one["kid"]) and math.isnan(one["se"])
    two = fad.kid(ref[:2], ref[2:4])
    assert math.isfinite(two["kid"]) and math.isnan(two["se"])  # the interval needs 3 clips


def test_kid_thins_long_clips_evenly():
    rng = np.random.default_rng(5)
    ref, gen = [rng.normal(size=(120, 3)) for _ in range(4)], [rng.normal(size=(120, 3)) + 0.2 for _ in range(4)]
    idx = np.unique(np.linspace(0, 119, 10).round().astype(int))
    pooled = np.concatenate(ref)  # centre and scale come from every window; the kernel sees 10 per clip
    center, scale = pooled.mean(0), np.sqrt(np.mean((pooled - pooled.mean(0)) ** 2))
    want = _brute_kid([c[idx] for c in ref], [c[idx] for c in gen], center, scale)
    assert fad.kid(ref, gen, max_windows_per_clip=10)["kid"] == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("sizes", [(6, 6), (5, 7)])
def test_fad_inf_is_the_jackknife_of_pooled_fad(sizes):
    rng = np.random.default_rng(6)
    ref, gen = _clips(rng, sizes[0], windows=(3, 6)), [c * 1.2 for c in _clips(rng, sizes[1], windows=(3, 6))]
    pooled = lambda r, g: fad.frechet_distance_from_stats(  # noqa: E731
        *fad.gaussian_stats(np.concatenate(r)), *fad.gaussian_stats(np.concatenate(g)))
    full = pooled(ref, gen)
    drop = lambda s, k: [c for i, c in enumerate(s) if i != k]  # noqa: E731
    if sizes[0] == sizes[1]:
        want = len(ref) * full - (len(ref) - 1) * np.mean([pooled(drop(ref, k), drop(gen, k)) for k in range(len(ref))])
    else:
        bias_a = (len(ref) - 1) * (np.mean([pooled(drop(ref, k), gen) for k in range(len(ref))]) - full)
        bias_b = (len(gen) - 1) * (np.mean([pooled(ref, drop(gen, k)) for k in range(len(gen))]) - full)
        want = full - bias_a - bias_b
    got = fad.fad_inf(ref, gen)
    assert got["fad"] == pytest.approx(full, rel=1e-9)
    assert got["fad_inf"] == pytest.approx(want, rel=1e-8)
    assert got["n_groups"] == sum(sizes) if sizes[0] != sizes[1] else sizes[0]


def test_fad_inf_groups_clips_beyond_the_cap():
    rng = np.random.default_rng(7)
    ref, gen = _clips(rng, 12), _clips(rng, 12)
    got = fad.fad_inf(ref, gen, max_groups=4)
    assert got["n_groups"] == 4 and math.isfinite(got["fad_inf"])
    assert math.isnan(fad.fad_inf(ref[:2], gen[:2])["fad_inf"])


def test_set_scores_warn_about_small_and_unequal_sets():
    rng = np.random.default_rng(8)
    with pytest.warns(UserWarning) as record:
        s = fad.set_scores(_clips(rng, 5), _clips(rng, 7))
    text = " ".join(str(w.message) for w in record)
    assert "differ in size" in text and "strongly biased" in text and "interval is wide" in text
    assert list(s) == list(fad.METRIC_NAMES) == ["kid", "fad", "fad_inf"]
    assert s["kid"]["n_ref"] == 5 and s["kid"]["n_gen"] == 7 and any("wide" in w for w in s["kid"]["warnings"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = fad.set_scores(_clips(rng, 60, windows=(2, 3)), _clips(rng, 60, windows=(2, 3)))
    assert all(not v["warnings"] for v in big.values())


# ------------------------------------------------------------------------------ size-bias simulations
class _World:
    """Gaussian clip embeddings with the structure of real ones: windows of one clip share a latent."""

    def __init__(self, dim=8, windows=5, seed=0):
        rng = np.random.default_rng(seed)
        self.root = np.linalg.qr(rng.normal(size=(dim, dim)))[0] * np.sqrt(np.linspace(0.2, 1.8, dim))
        self.direction = self.root[:, -1] / np.linalg.norm(self.root[:, -1])
        self.dim, self.windows = dim, windows

    def clips(self, rng, n, effect=0.0):
        z = rng.normal(size=(n, 1, self.dim)) + rng.normal(size=(n, self.windows, self.dim))
        return list(np.sqrt(0.5) * z @ self.root.T + math.sqrt(effect) * self.direction)


def _quiet_scores(ref, gen):
    return fad.set_scores(ref, gen, warn=False)


def test_simulation_kid_is_unbiased_at_16_clips_where_fad_is_mostly_bias():
    world, rng, reps = _World(), np.random.default_rng(10), 150
    got = {k: [] for k in fad.METRIC_NAMES}
    covered = 0
    for _ in range(reps):
        s = _quiet_scores(world.clips(rng, 16), world.clips(rng, 16))
        for k in got:
            got[k].append(s[k]["value"])
        covered += s["kid"]["ci95"][0] <= 0.0 <= s["kid"]["ci95"][1]
    mean = {k: np.mean(v) for k, v in got.items()}
    sem = {k: np.std(v) / math.sqrt(reps) for k, v in got.items()}
    # identical distributions: the true value of every estimator is 0
    assert abs(mean["kid"]) < 3 * sem["kid"] and abs(mean["kid"]) < 0.1 * np.std(got["kid"])
    assert mean["fad"] > 20 * sem["fad"] and mean["fad"] > 2 * np.std(got["fad"])  # the issue: fad is bias
    assert abs(mean["fad_inf"]) < 0.15 * mean["fad"]  # the jackknife removes most of it
    assert covered >= 0.9 * reps  # the jackknife interval is, if anything, conservative


def test_simulation_ranking_across_and_at_equal_sizes():
    # the better system has true FAD 0.5, the worse 1.0; the worse is scored on 200 clips ("cross") or, like
    # the better one, on 16 ("equal")
    world, rng, reps = _World(), np.random.default_rng(11), 40
    right = {"cross": dict.fromkeys(fad.METRIC_NAMES, 0), "equal": dict.fromkeys(fad.METRIC_NAMES, 0)}
    for _ in range(reps):
        better = _quiet_scores(world.clips(rng, 16), world.clips(rng, 16, 0.5))
        worse = {"cross": _quiet_scores(world.clips(rng, 200), world.clips(rng, 200, 1.0)),
                 "equal": _quiet_scores(world.clips(rng, 16), world.clips(rng, 16, 1.0))}
        for case, w in worse.items():
            for k in fad.METRIC_NAMES:
                right[case][k] += better[k]["value"] < w[k]["value"]
    assert right["cross"]["fad"] <= 0.2 * reps  # classic FAD ranks by set size, not by quality
    assert right["cross"]["kid"] >= 0.75 * reps and right["cross"]["fad_inf"] >= 0.7 * reps
    # at equal sizes the bias cancels and classic FAD ranks as well as anything: kid gives up little there
    assert right["equal"]["kid"] >= right["equal"]["fad"] - 0.15 * reps


# ------------------------------------------------------------------------------------------ loudness
def test_loudness_normalize_and_short_or_silent_signals():
    y = harmonic_tone(330.0, 2.0)
    out, lufs = loudness.loudness_normalize(y * 0.1, SR)
    assert loudness.integrated_loudness(out, SR) == pytest.approx(loudness.TARGET_LUFS, abs=0.01)
    assert math.isfinite(lufs) and lufs < loudness.TARGET_LUFS
    silent, lufs0 = loudness.loudness_normalize(np.zeros(SR, np.float32), SR)
    assert lufs0 == -math.inf and not silent.any()
    short = y[: int(0.2 * SR)]
    with pytest.raises(ValueError, match="too short"):
        loudness.integrated_loudness(short, SR)
    assert loudness.integrated_loudness(short, SR, tile_short=True) == pytest.approx(
        loudness.integrated_loudness(np.tile(short, 2), SR), abs=0.01)


def test_gain_does_not_move_the_embedding_but_pitch_and_timbre_do():
    chords = [chord_progression([[60, 64, 67], [62, 65, 69]]) for _ in range(3)]
    ref = fad.embed_clips(chords, SR)
    for gain_db in (-20.0, -6.0, 6.0):
        moved = fad.embed_clips([c * 10 ** (gain_db / 20) for c in chords], SR)
        assert max(np.abs(a - b).max() for a, b in zip(ref, moved)) < 1e-3  # dB-valued features
    raw = fad.embed_clips([c * 0.5 for c in chords], SR, loudness_lufs=None)
    assert max(np.abs(a - b).max() for a, b in zip(ref, raw)) > 1.0  # without normalisation level shows
    clicks = fad.embed_clips([clicks_at_bpm(bpm, 4.0) for bpm in (90, 110, 130)], SR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny sets: the size warnings are expected
        same = fad.set_scores(ref, fad.embed_clips([c * 2.0 for c in chords], SR))
        diff = fad.set_scores(ref, clicks)
    for k in ("kid", "fad"):
        assert abs(same[k]["value"]) < 1e-6 and diff[k]["value"] > 1.0


def test_default_embedder_shape_and_evaluate():
    emb = fad.MelStatsEmbedder()
    tone = emb(harmonic_tone(220.0, 4.0), SR)
    assert tone.shape == (7, emb.dim) == (7, 104)  # 1 s windows, 0.5 s hop over 4 s
    assert np.array_equal(fad.embed(harmonic_tone(220.0, 4.0), SR, loudness_lufs=None), tone)
    assert emb.describe()["name"] == "mel-stats" == fad.DEFAULT_EMBEDDING
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = fad.evaluate([harmonic_tone(f, 3.0) for f in (220, 247, 262)],
                           [clicks_at_bpm(b, 3.0) for b in (90, 100, 120)], SR)
    assert list(got) == ["kid", "fad", "fad_inf"] and all(math.isfinite(v) for v in got.values())


def _real_root() -> Path | None:
    here = Path(__file__).resolve().parents[2]
    for cand in (os.environ.get("VITMUSIC_REAL_DIR"), here.parent / "shared" / "real",
                 here.parent.parent / "shared" / "real"):
        if cand and (Path(cand) / "bach10-dev").is_dir():
            return Path(cand) / "bach10-dev"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_real_root() is None, reason="real Bach10 material absent (set VITMUSIC_REAL_DIR)")
def test_metamorphic_on_real_recordings():
    """Bach10 mixes, 10 s from each piece: a gain change scores like the copy; pitch and timbre do not."""
    import librosa
    import soundfile as sf

    root, sr = _real_root(), 22050
    mixes, bassoons = [], []
    for piece in sorted(p for p in root.iterdir() if p.is_dir()):
        for name, out in ((piece.name, mixes), (f"{piece.name}-bassoon", bassoons)):
            y, file_sr = sf.read(piece / f"{name}.flac", frames=10 * 44100, dtype="float32")
            out.append(librosa.resample(y, orig_sr=file_sr, target_sr=sr))
    ref = fad.embed_clips(mixes, sr)
    sets = {"-6 dB": [m * 0.5 for m in mixes], "+6 dB": [m * 2.0 for m in mixes], "bassoon": bassoons,
            "+1 semitone": [librosa.effects.pitch_shift(m, sr=sr, n_steps=1.0) for m in mixes]}
    got = {k: fad.set_scores(ref, fad.embed_clips(v, sr), warn=False) for k, v in sets.items()}
    for k in ("kid", "fad"):
        far = min(got["+1 semitone"][k]["value"], got["bassoon"][k]["value"])
        assert far > 0
        assert abs(got["-6 dB"][k]["value"]) < 1e-6 * far and abs(got["+6 dB"][k]["value"]) < 1e-6 * far
    assert got["bassoon"]["kid"]["ci95"][0] > 0  # the bassoon alone is far beyond the noise of 4 clips


# ---------------------------------------------------------------------------------- named embeddings
def test_fadtk_names_resolve_to_checkpoints_and_layers(tmp_path, monkeypatch):
    assert fad_embeddings.resolve("MERT-v1-95M") == ("MERT-v1-95M", "m-a-p/MERT-v1-95M", 12, True)
    assert fad_embeddings.resolve("MERT-v1-95M-6") == ("MERT-v1-95M-6", "m-a-p/MERT-v1-95M", 6, True)
    assert fad_embeddings.resolve("MERT-v1-95M", layer=12)[0] == "MERT-v1-95M"
    assert fad_embeddings.resolve("hubert-base-3")[1:3] == ("facebook/hubert-base-ls960", 3)
    assert fad_embeddings.resolve("encodec-emb") == ("encodec-emb", "facebook/encodec_24khz", None, False)
    assert fad_embeddings.resolve("clap-laion-audio")[1] == "laion/clap-htsat-unfused"
    # not a layered family: a hub id like any other, never remote code
    assert fad_embeddings.resolve("encodec-emb-5") == ("encodec-emb-5", "encodec-emb-5", None, False)
    assert fad_embeddings.resolve("org/model", layer=4) == ("org/model-4", "org/model", 4, False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hubert-base-3").mkdir()  # an existing folder wins over the fadtk name
    assert fad_embeddings.resolve("hubert-base-3") == ("hubert-base-3", "hubert-base-3", None, False)
    assert isinstance(fad.load_embedder(None), fad.MelStatsEmbedder)
    with pytest.raises(ValueError, match="no layers"):
        fad.load_embedder("mel-stats", layer=2)


def test_hidden_state_embedder_frames_windows_and_layers(tmp_path):
    import torch
    from transformers import Wav2Vec2Model

    model = save_tiny_wav2vec2(tmp_path / "w2v", Wav2Vec2Model)
    y = np.random.default_rng(0).normal(0, 0.1, 3 * 16000).astype(np.float32)
    emb = fad.load_embedder(str(tmp_path / "w2v"))
    frames = fad.embed(y, 16000, emb, loudness_lufs=None)
    inputs = emb.feature_extractor(y, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        direct = model(**inputs, output_hidden_states=True)
    assert np.allclose(frames, direct.last_hidden_state[0].numpy(), atol=1e-5)  # one row per frame (fadtk)
    assert emb.describe() | {"revision": None} == {
        "name": "w2v", "model": str(tmp_path / "w2v"), "revision": None, "model_type": "wav2vec2", "dim": 16,
        "sample_rate": 16000, "pooling": "frames", "window_s": None, "hop_s": None, "layer": None}
    layer1 = fad.load_embedder(str(tmp_path / "w2v"), layer=1)
    assert layer1.name == "w2v-1"
    assert np.allclose(layer1(y, 16000), direct.hidden_states[1][0].numpy(), atol=1e-5)
    windows = fad.TransformersAudioEmbedder(tmp_path / "w2v", window_s=1.0, hop_s=1.0)
    out = windows(y, 16000)
    first = emb.feature_extractor(y[:16000], sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        assert np.allclose(out[0], model(**first).last_hidden_state[0].mean(0).numpy(), atol=1e-5)
    assert out.shape == (3, 16)


def test_hubert_as_a_mert_style_music_model(tmp_path):
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    config = HubertConfig(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
                          conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
                          num_conv_pos_embedding_groups=2)
    model = HubertModel(config).eval()
    model.save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(sampling_rate=24000).save_pretrained(tmp_path)  # MERT's rate
    emb = fad.load_embedder(str(tmp_path), layer=2)
    y = np.random.default_rng(1).normal(0, 0.1, 2 * 22050).astype(np.float32)
    out = emb(y, 22050)
    from vitmusic.metrics.audio_checks import resample

    inputs = emb.feature_extractor(resample(y, 22050, 24000), sampling_rate=24000, return_tensors="pt")
    with torch.inference_mode():
        want = model(**inputs, output_hidden_states=True).hidden_states[2][0].numpy()
    assert out.shape == want.shape and np.allclose(out, want, atol=1e-5)


def test_encodec_embedder_latent_frames(tmp_path):
    import torch
    from transformers import EncodecConfig, EncodecFeatureExtractor, EncodecModel

    torch.manual_seed(0)
    config = EncodecConfig(target_bandwidths=[1.5], sampling_rate=16000, audio_channels=1, hidden_size=8,
                           num_filters=4, num_residual_layers=1, upsampling_ratios=[4, 4], codebook_size=16,
                           codebook_dim=8, num_lstm_layers=1)
    model = EncodecModel(config).eval()
    model.save_pretrained(tmp_path)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=16000).save_pretrained(tmp_path)
    emb = fad.load_embedder(str(tmp_path))
    assert emb.kind == "encodec"
    y = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    out = fad.embed(y, 16000, emb, loudness_lufs=None)
    with torch.inference_mode():
        want = model.encoder(torch.from_numpy(y)[None, None])[0].T.numpy()
    assert out.shape == (1000, 8) == want.shape and np.allclose(out, want, atol=1e-5)  # 16x downsampling


def test_clap_audio_tower_embedder(tmp_path):
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(0)
    config = ClapConfig(
        text_config=dict(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, projection_dim=16, max_position_embeddings=40),
        audio_config=dict(spec_size=64, num_mel_bins=16, window_size=4, patch_size=2, patch_stride=(2, 2),
                          patch_embeds_hidden_size=8, depths=[1, 1], num_attention_heads=[2, 2], hidden_size=16,
                          projection_dim=16, projection_hidden_size=16),
        projection_dim=16)
    model = ClapModel(config).eval()
    model.save_pretrained(tmp_path)
    ClapFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, max_length_s=2,
                         fft_window_size=400, frequency_max=8000, truncation="rand_trunc").save_pretrained(tmp_path)
    emb = fad.load_embedder(str(tmp_path))
    assert emb.kind == "clap" and (emb.window_s, emb.hop_s) == (2.0, 1.0)  # fadtk: the model's window, 1 s hop
    y = np.random.default_rng(0).normal(0, 0.1, 4 * 16000).astype(np.float32)
    out = emb(y, 16000)
    assert out.shape == (3, 16) and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)  # unit-norm
    inputs = emb.feature_extractor(y[16000:48000], sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        want = model.get_audio_features(**inputs)
    want = getattr(want, "pooler_output", want)[0].numpy()
    assert np.allclose(out[1], want, atol=1e-5)
