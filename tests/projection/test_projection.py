"""Projections: shapes/masks, padding invariance, gradients, save/load round trips, PCA whitening."""

from __future__ import annotations

import json

import pytest
import torch

from vitmusic.errors import ConfigError, DataError, VitmusicError
from vitmusic.projection import (
    PCAProjection,
    Projection,
    TransformerProjection,
    build_projection,
    load_projection,
    pool_time,
    read_projection_config,
)

TINY = {
    "linear": {},
    "mlp": {"hidden_dim": 20, "num_layers": 3},
    "transformer": {
        "d_model": 16,
        "num_layers": 2,
        "num_heads": 2,
        "ff_mult": 2,
        "dropout": 0.0,
        "rate_hz": 4.0,
    },
    "pca": {},
}


def _data(b: int = 3, t: int = 10, d: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    embeds = torch.randn(b, t, d, generator=gen)
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, 3:] = False
    return embeds, mask


def _build(kind: str, in_dim: int = 12, out_dim: int = 8, **kw) -> Projection:
    torch.manual_seed(0)
    proj = build_projection(kind, in_dim, out_dim, **{**TINY[kind], **kw})
    if kind == "pca":
        gen = torch.Generator().manual_seed(1)
        proj.fit(torch.randn(200, in_dim, generator=gen) * torch.linspace(0.1, 3.0, in_dim))
    return proj.eval()


def test_pool_time_known_answer():
    embeds = torch.arange(10.0).view(1, 5, 2)  # steps: [0,1] [2,3] [4,5] [6,7] [8,9]
    mask = torch.tensor([[True, False, True, True, True]])
    pooled, pmask = pool_time(embeds, mask, 2)
    assert pooled.tolist() == [[[0.0, 1.0], [5.0, 6.0], [8.0, 9.0]]]
    assert pmask.tolist() == [[True, True, True]]
    pooled, pmask = pool_time(embeds, torch.tensor([[True, True, False, False, True]]), 2)
    assert pmask.tolist() == [[True, False, True]] and pooled[0, 1].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("kind", sorted(TINY))
def test_shapes_masks_and_stride(kind):
    embeds, mask = _data()
    proj = _build(kind)
    tokens, out_mask = proj(embeds, mask)
    assert tokens.shape == (3, 10, 8) and torch.equal(out_mask, mask)
    assert torch.all(tokens[~mask] == 0) and torch.all(tokens[mask].abs().sum(-1) > 0)
    assert torch.isfinite(tokens).all()
    tokens, _ = proj(embeds)  # mask=None: everything valid
    assert tokens.shape == (3, 10, 8)
    strided = _build(kind, stride=3)
    tokens, out_mask = strided(embeds, mask)
    assert tokens.shape == (3, 4, 8)
    assert out_mask.tolist() == [[True] * 4, [True, True, False, False], [True, False, False, False]]
    with pytest.raises(ValueError, match=r"\[B, T, 12\]"):
        proj(torch.zeros(1, 4, 5))


@pytest.mark.parametrize("kind", sorted(TINY))
def test_padding_does_not_affect_valid_outputs(kind):
    embeds, mask = _data()
    proj = _build(kind)
    ref, _ = proj(embeds, mask)
    noisy = embeds.clone()
    noisy[~mask] = 1e3 * torch.randn(int((~mask).sum()), embeds.shape[-1])
    out, _ = proj(noisy, mask)
    torch.testing.assert_close(out[mask], ref[mask], rtol=1e-5, atol=1e-5)
    # A batch row alone gives the same valid outputs as inside the padded batch.
    alone, _ = proj(embeds[2:, :3], mask[2:, :3])
    torch.testing.assert_close(alone[0], ref[2, :3], rtol=1e-5, atol=1e-5)


def test_transformer_mixes_time_and_survives_empty_rows():
    embeds, mask = _data()
    proj = _build("transformer")
    ref, _ = proj(embeds, mask)
    changed = embeds.clone()
    changed[0, 0] += 1.0
    out, _ = proj(changed, mask)
    assert not torch.allclose(out[0, 5], ref[0, 5])  # attention carries step 0 to step 5
    mask[1] = False
    out, out_mask = proj(embeds, mask)
    assert torch.isfinite(out).all() and torch.all(out[1] == 0) and not out_mask[1].any()


def test_transformer_time_embedding_in_seconds():
    # rate_hz is the rate of the output tokens: a 4 Hz encoder pooled by stride 2 gives 2 Hz tokens.
    proj = TransformerProjection(12, 8, d_model=16, num_heads=2, rate_hz=2.0, stride=2)
    assert proj.token_times(3).tolist() == [0.0, 0.5, 1.0]
    assert TransformerProjection(12, 8, d_model=16, num_heads=2).token_times(3).tolist() == [0.0, 1.0, 2.0]
    # Same token times -> same time embedding -> strided and unstrided paths see consistent positions.
    embeds = torch.randn(1, 6, 12)
    torch.manual_seed(0)
    strided = TransformerProjection(12, 8, d_model=16, num_heads=2, dropout=0.0, rate_hz=2.0, stride=2).eval()
    torch.manual_seed(0)
    plain = TransformerProjection(12, 8, d_model=16, num_heads=2, dropout=0.0, rate_hz=2.0).eval()
    pooled = embeds.view(1, 3, 2, 12).mean(2)
    torch.testing.assert_close(strided(embeds)[0], plain(pooled)[0])
    other = TransformerProjection(12, 8, d_model=16, num_heads=2, dropout=0.0, rate_hz=4.0).eval()
    other.load_state_dict(plain.state_dict())
    assert not torch.allclose(other(pooled)[0], plain(pooled)[0])
    learned = build_projection(
        "transformer", 12, 8, d_model=16, num_heads=2, time_embedding="learned", max_len=4
    )
    with pytest.raises(ValueError, match="max_len=4"):
        learned(torch.zeros(1, 5, 12))


@pytest.mark.parametrize(
    "kind,kw",
    [
        ("linear", {}),
        ("mlp", {}),
        ("transformer", {}),
        ("transformer", {"time_embedding": "learned", "max_len": 10}),
    ],
)
def test_every_trainable_parameter_gets_a_gradient(kind, kw):
    embeds, mask = _data()
    mask[:] = True  # every learned position is used
    proj = _build(kind, **kw).train()
    params = proj.trainable_parameters()
    assert params and len(params) == len(list(proj.parameters()))
    tokens, out_mask = proj(embeds, mask)
    tokens[out_mask].pow(2).mean().backward()
    for name, p in proj.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", sorted(TINY))
def test_save_load_round_trip(kind, tmp_path):
    embeds, mask = _data(seed=5)
    proj = _build(kind, stride=2)
    (tmp_path / "keep.txt").write_text("other checkpoint file")
    extra = {"encoder": {"name_or_path": "tiny-vit", "revision": None}, "generator": "tiny-musicgen"}
    assert proj.save_pretrained(tmp_path, extra=extra) == tmp_path
    assert (tmp_path / "keep.txt").read_text() == "other checkpoint file"
    config = read_projection_config(tmp_path)
    assert config["kind"] == kind and config["extra"] == extra and config["hparams"]["stride"] == 2
    back = load_projection(tmp_path).eval()
    assert type(back) is type(proj) and back.hparams() == proj.hparams()
    torch.testing.assert_close(back(embeds, mask)[0], proj(embeds, mask)[0], rtol=0, atol=0)
    with pytest.raises(TypeError):
        proj.save_pretrained(tmp_path / "bad", extra={"x": object()})


def test_pca_whitens_training_data():
    gen = torch.Generator().manual_seed(0)
    mixing = torch.randn(12, 12, generator=gen)
    train = torch.randn(4000, 12, generator=gen) @ mixing + 5.0
    pca = build_projection("pca", 12, 16, n_components=6, mapping="pad").fit(train)
    assert pca.trainable_parameters() == []
    white = pca.whiten(train)
    assert white.shape == (4000, 6)
    torch.testing.assert_close(white.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(white.T), torch.eye(6), atol=1e-3, rtol=0)
    assert torch.all(pca.explained_variance[:-1] >= pca.explained_variance[1:])
    # "pad": whitened coordinates land in channels 0..5, the rest are zero.
    tokens, _ = pca(train.view(40, 100, 12))
    flat = tokens.reshape(-1, 16)
    torch.testing.assert_close(flat[:, :6], white, rtol=1e-5, atol=1e-5)
    assert torch.all(flat[:, 6:] == 0)
    # "orthogonal": a fixed isometry of the whitened coordinates (inner products preserved).
    ortho = build_projection("pca", 12, 16, n_components=6).fit(train)
    out = ortho(train[None, :50])[0][0]
    torch.testing.assert_close(out @ out.T, white[:50] @ white[:50].T, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ortho.mapping @ ortho.mapping.T, torch.eye(6), rtol=0, atol=1e-5)
    again = build_projection("pca", 12, 16, n_components=6, seed=0)
    assert torch.equal(again.mapping, ortho.mapping)
    assert not torch.equal(build_projection("pca", 12, 16, n_components=6, seed=1).mapping, ortho.mapping)


def test_pca_fit_with_mask_and_errors():
    embeds, mask = _data(t=40, seed=2)
    pca = PCAProjection(12, 4)
    with pytest.raises(VitmusicError, match="before fit"):
        pca(embeds, mask)
    pca.fit(embeds, mask)
    ref = PCAProjection(12, 4).fit(embeds[mask])
    torch.testing.assert_close(pca.components, ref.components)
    from_numpy = PCAProjection(12, 4).fit(embeds.numpy(), mask.numpy())
    torch.testing.assert_close(from_numpy.components, ref.components)
    with pytest.raises(VitmusicError, match="more than n_components=4"):
        PCAProjection(12, 4).fit(torch.randn(4, 12))
    with pytest.raises(VitmusicError, match=r"\[N, 12\]"):
        PCAProjection(12, 4).fit(torch.randn(30, 5))


def test_build_and_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown projection kind 'conv'"):
        build_projection("conv", 4, 4)
    with pytest.raises(ConfigError, match="num_layer"):
        build_projection("mlp", 4, 4, num_layer=2)
    with pytest.raises(ConfigError, match="time_embedding"):
        build_projection("transformer", 4, 4, d_model=8, num_heads=2, time_embedding="rope")
    with pytest.raises(DataError, match="config not found"):
        load_projection(tmp_path / "nowhere")
    _build("linear").save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(DataError, match="model.safetensors"):
        load_projection(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    _build("linear").save_pretrained(tmp_path)
    config["out_dim"] = 9
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="do not match"):
        load_projection(tmp_path)


@pytest.mark.parametrize("edit", [
    {"hparams": {"hidden_dim": "sixty-four"}}, {"hparams": {"hidden_dim": -5}}, {"hparams": [1, 2]},
    {"in_dim": "wide"}, {"hparams": {"num_layers": "two"}},
])
def test_tampered_config_json_is_a_data_error(tmp_path, edit):
    """A hand-edited config.json (e.g. hparams.hidden_dim "sixty-four") is one DataError, not a ValueError."""
    _build("mlp").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key, value in edit.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="config.json"):
        load_projection(tmp_path)
