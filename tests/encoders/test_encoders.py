"""Vision encoders: shapes/masks per kind, VideoMAE chunking, frozen + deterministic, LoRA, round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vitmusic.encoders import VisionEncoder, load_encoder, materialize_tiny_preset
from vitmusic.errors import ConfigError, VitmusicError

KINDS = {"tiny-vit": "vit", "tiny-clip": "clip", "tiny-videomae": "videomae"}


def _frames(b: int, t: int, seed: int = 0, h: int = 40, w: int = 56) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (b, t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_shapes_masks_and_frozen(name):
    enc = load_encoder(name, rate_hz=5.0)
    assert isinstance(enc, VisionEncoder) and enc.kind == KINDS[name]
    frames = _frames(2, 12)
    embeds, mask = enc.encode_frames(frames)
    step = 2 if enc.kind == "videomae" else 1
    assert enc.sample_fps() == 5.0 * step and enc.sample_fps(2.0) == 2.0 * step
    assert enc.output_rate(enc.sample_fps()) == pytest.approx(5.0)
    expected_t = 16 // step if enc.kind == "videomae" else 12  # VideoMAE: 2 chunks of F=8 frames
    assert embeds.shape == (2, expected_t, enc.embed_dim) and embeds.dtype == torch.float32
    assert mask.shape == (2, expected_t) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [12 // step] * 2
    assert torch.all(embeds[~mask] == 0) and torch.all(embeds[mask].abs().sum(-1) > 0)
    # Frozen by default, and stays in eval mode even when a parent module calls .train().
    assert enc.trainable_parameters() == [] and not enc.is_trainable
    enc.train()
    assert not enc.training and not enc.model.training
    assert not embeds.requires_grad
    again, _ = enc.encode_frames(torch.from_numpy(frames))
    torch.testing.assert_close(again, embeds, rtol=0, atol=0)


def test_single_clip_and_bad_input():
    enc = load_encoder("tiny-vit")
    embeds, mask = enc.encode_frames(_frames(1, 3)[0])  # [T, H, W, 3] gets a batch axis
    assert embeds.shape == (1, 3, 32) and mask.all()
    with pytest.raises(VitmusicError, match="uint8"):
        enc.encode_frames(_frames(1, 3).astype(np.float32))
    with pytest.raises(VitmusicError, match=r"\[B, T, H, W, 3\]"):
        enc.encode_frames(np.zeros((1, 3, 8, 8), dtype=np.uint8))
    with pytest.raises(ConfigError, match="rate"):
        enc.sample_fps()


def test_preprocessed_frames_input_checks():
    enc = load_encoder("tiny-vit")
    pixels = enc.preprocess_frames(_frames(1, 3)[0])  # [T, H, W, 3] gets a batch axis
    assert pixels.shape == (1, 3, 3, 32, 32) and pixels.dtype == torch.uint8
    embeds, mask = enc.encode_preprocessed(pixels[0].numpy())  # numpy, no batch axis
    assert embeds.shape == (1, 3, 32) and mask.all()
    with pytest.raises(VitmusicError, match="uint8"):
        enc.encode_preprocessed(pixels.float())
    with pytest.raises(VitmusicError, match=r"\[B, T, C, h, w\]"):
        enc.encode_preprocessed(pixels[0, 0])
    with pytest.raises(VitmusicError, match="T = 0"):
        enc.encode_preprocessed(pixels[:, :0])
    # what the frame cache keys on: the geometric settings only
    fp = enc.preprocess_fingerprint()["image_processor"]
    assert fp["size"] == {"height": 32, "width": 32} and "image_mean" not in fp and "do_rescale" not in fp


def test_videomae_chunks_pad_and_mask():
    enc = load_encoder("tiny-videomae")
    f, ts = enc.clip_frames, enc.frames_per_step
    assert (f, ts) == (8, 2)
    frames = _frames(1, 11, seed=3)  # 1 full chunk + 3 frames
    embeds, mask = enc.encode_frames(frames)
    assert embeds.shape == (1, 8, 32)
    # ceil(11 / 2) = 6 valid slots: slot 5 holds frame 10 + one padding copy; slots 6, 7 are padding only.
    assert mask[0].tolist() == [True] * 6 + [False] * 2
    first, _ = enc.encode_frames(frames[:, :8])
    torch.testing.assert_close(embeds[:, :4], first)
    # The last chunk is padded by repeating the final frame.
    padded = np.concatenate([frames[:, 8:], np.repeat(frames[:, 10:], 5, axis=1)], axis=1)
    last, last_mask = enc.encode_frames(padded)
    assert last_mask.all()
    torch.testing.assert_close(embeds[:, 4:6], last[:, :2])
    # Inside a batch, a shorter clip (frame mask) is padded with its own last frame: same embeddings.
    batch = np.concatenate([frames, _frames(1, 11, seed=4)])
    batch[0, 11 - 4 :] = 0
    frame_mask = torch.ones(2, 11, dtype=torch.bool)
    frame_mask[0, 7:] = False
    batched, batched_mask = enc.encode_frames(batch, mask=frame_mask)
    short, short_mask = enc.encode_frames(frames[:, :7])
    assert batched_mask[0].tolist() == [True] * 4 + [False] * 4 and short.shape[1] == 4
    torch.testing.assert_close(batched[:1, :4], short, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batched[1:], enc.encode_frames(batch[1:])[0], rtol=1e-5, atol=1e-5)
    # Mean over the spatial patch tokens of each temporal slot, computed by hand for the first chunk.
    pv = enc.processor([list(frames[0, :8])], return_tensors="pt")["pixel_values"]
    hidden = enc.model(pixel_values=pv).last_hidden_state  # [1, 4 slots * 16 patches, 32]
    torch.testing.assert_close(first[0], hidden[0].reshape(4, 16, 32).mean(1))


def test_frame_mask_and_batching_do_not_change_valid_outputs():
    enc = load_encoder("tiny-clip", batch_frames=64)
    frames = _frames(2, 5, seed=1)
    frame_mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    embeds, mask = enc.encode_frames(frames, mask=frame_mask)
    assert torch.equal(mask, frame_mask) and torch.all(embeds[1, 3:] == 0)
    alone, _ = enc.encode_frames(frames[1:, :3])
    torch.testing.assert_close(embeds[1:, :3], alone, rtol=1e-5, atol=1e-5)
    small = load_encoder("tiny-clip", batch_frames=3)
    torch.testing.assert_close(small.encode_frames(frames, mask=frame_mask)[0], embeds, rtol=1e-5, atol=1e-5)
    with pytest.raises(VitmusicError, match="mask"):
        enc.encode_frames(frames, mask=torch.ones(2, 4, dtype=torch.bool))


def test_clip_output_choice():
    pooled = load_encoder("tiny-clip")
    projected = load_encoder("tiny-clip", clip_output="projected")
    assert pooled.embed_dim == 32 and projected.embed_dim == 24
    frames = _frames(1, 2)
    p, _ = pooled.encode_frames(frames)
    q, _ = projected.encode_frames(frames)
    torch.testing.assert_close(q, projected.model.visual_projection(p))
    assert pooled.fingerprint() != projected.fingerprint()
    with pytest.raises(ConfigError, match="clip_output"):
        load_encoder("tiny-clip", clip_output="cls")


def test_materialisation_is_deterministic_and_round_trips(tmp_path):
    a = materialize_tiny_preset("tiny-vit", root=tmp_path / "a")
    b = materialize_tiny_preset("tiny-vit", root=tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert materialize_tiny_preset("tiny-vit", root=tmp_path / "a") == a  # idempotent
    enc_a, enc_b = load_encoder(str(a)), load_encoder(str(b))
    assert enc_a.fingerprint()["weights_sha256"] == enc_b.fingerprint()["weights_sha256"]
    frames = _frames(1, 4, seed=7)
    ref, _ = enc_a.encode_frames(frames)
    torch.testing.assert_close(enc_b.encode_frames(frames)[0], ref, rtol=0, atol=0)
    # save_pretrained -> from_pretrained through load_encoder, kind inferred from the config.
    out = tmp_path / "saved"
    enc_a.model.save_pretrained(out)
    enc_a.processor.save_pretrained(out)
    back = load_encoder(str(out))
    assert back.kind == "vit"
    torch.testing.assert_close(back.encode_frames(frames)[0], ref, rtol=0, atol=0)
    fp = back.fingerprint()
    json.dumps(fp)
    assert fp["weights_sha256"] == enc_a.fingerprint()["weights_sha256"]
    assert fp["image_processor"]["size"] == {"height": 32, "width": 32}
    with pytest.raises(ConfigError, match="not 'clip'"):
        load_encoder(str(out), kind="clip")
    with pytest.raises(ConfigError, match="unknown tiny encoder preset"):
        materialize_tiny_preset("tiny-nope", root=tmp_path)


def test_full_clip_checkpoint_loads_vision_tower(tmp_path):
    # Real CLIP hub ids (openai/clip-vit-base-patch32) are full CLIPModel checkpoints.
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
        },
        projection_dim=12,
    )
    full = CLIPModel(config).eval()
    full.save_pretrained(tmp_path)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path
    )
    enc = load_encoder(str(tmp_path), clip_output="projected")
    assert enc.kind == "clip" and enc.embed_dim == 12
    frames = _frames(1, 2)
    pv = enc.processor(list(frames[0]), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = full.get_image_features(pixel_values=pv)
    ref = getattr(ref, "pooler_output", ref)
    torch.testing.assert_close(enc.encode_frames(frames)[0][0], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["tiny-vit", "tiny-videomae"])
def test_lora_only_adapters_train_and_receive_gradients(name):
    frozen = load_encoder(name)
    enc = load_encoder(name, lora={"r": 4, "alpha": 8})
    names = [n for n, p in enc.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert len(enc.trainable_parameters()) == len(names) == 8  # 2 layers x (q, v) x (A, B)
    assert enc.fingerprint()["lora"]["r"] == 4 and frozen.fingerprint()["lora"] is None
    frames = _frames(1, 8, seed=2)
    # lora_B starts at zero: the adapted encoder computes the frozen features.
    torch.testing.assert_close(enc.encode_frames(frames)[0], frozen.encode_frames(frames)[0])
    with torch.no_grad():
        for n, p in enc.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.1)
    enc.train()
    assert enc.training
    embeds, mask = enc.encode_frames(frames)
    assert embeds.requires_grad
    embeds[mask].pow(2).mean().backward()
    for n, p in enc.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, n
        else:
            assert p.grad is None, n
    state = enc.trainable_state_dict()
    assert set(state) == set(names)
    fresh = load_encoder(name, lora={"r": 4, "alpha": 8})
    fresh.load_trainable_state_dict(state)
    torch.testing.assert_close(fresh.encode_frames(frames)[0], embeds.detach())
    assert load_encoder(name, lora={"rank": 4, "alpha": 8}).fingerprint()["lora"] == enc.fingerprint()["lora"]
    assert load_encoder(name, lora={"rank": 0}).trainable_parameters() == []
    with pytest.raises(ConfigError, match="disagree"):
        load_encoder(name, lora={"r": 4, "rank": 3})
    with pytest.raises(ConfigError, match="unknown LoRA option"):
        load_encoder(name, lora={"r": 4, "rnak": 3})
    with pytest.raises(ConfigError, match="target_modules"):
        load_encoder(name, lora={"r": 4, "target_modules": ["no_such_layer"]})


def test_offline_unknown_hub_id_is_one_line_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(VitmusicError) as info:
        load_encoder("vitmusic-test/no-such-encoder")
    message = str(info.value)
    assert "\n" not in message and "vitmusic-test/no-such-encoder" in message and "offline" in message
    with pytest.raises(VitmusicError, match="no-such-encoder"):
        load_encoder("vitmusic-test/no-such-encoder", local_files_only=True)
    with pytest.raises(VitmusicError, match="not a model folder"):
        load_encoder("./missing-dir")


def test_concurrent_materialisation_keeps_one_complete_copy(tmp_path):
    """Threads materialising one preset: one copy, and torch.nn.init left as it was (transformers swaps its
    functions process-wide while building a model; unserialised, the threads left them swapped for good and every
    later nn.Linear of the process started uninitialised)."""
    import threading

    init_functions = dict(vars(torch.nn.init))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            materialize_tiny_preset("tiny-clip", root=tmp_path)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert [k for k, f in vars(torch.nn.init).items() if init_functions.get(k) is not f] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-clip"]
    assert load_encoder(str(tmp_path / "tiny-clip")).fingerprint()["trainable"] is False


def test_hub_id_loads_from_the_hf_cache_offline(tmp_path, monkeypatch):
    # Lay out a Hugging Face cache entry by hand: this is how a real hub id is found without network.
    import shutil

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    preset = materialize_tiny_preset("tiny-vit", root=tmp_path / "presets")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "models--vitmusic-test--tiny-vit"
    shutil.copytree(preset, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    enc = load_encoder("vitmusic-test/tiny-vit", cache_dir=str(tmp_path / "hf"))
    local = load_encoder(str(preset))
    fp = enc.fingerprint()
    assert enc.kind == "vit" and fp["commit"] == commit and fp["name_or_path"] == "vitmusic-test/tiny-vit"
    assert (
        fp["weights_sha256"] == local.fingerprint()["weights_sha256"]
        and local.fingerprint()["commit"] is None
    )
    frames = _frames(1, 3)
    torch.testing.assert_close(enc.encode_frames(frames)[0], local.encode_frames(frames)[0], rtol=0, atol=0)
    with pytest.raises(VitmusicError, match="offline"):
        load_encoder("vitmusic-test/tiny-vit", revision="v2", cache_dir=str(tmp_path / "hf"))


@pytest.mark.parametrize("head", ["VideoMAEForPreTraining", "ViTForImageClassification"])
def test_checkpoints_with_heads_load_their_backbone(head, tmp_path):
    # MCG-NJU/videomae-base is a pre-training checkpoint, google/vit-base-patch16-224 a classifier:
    # the backbone weights must be found under the head's prefix, not re-initialised.
    import transformers

    name = "tiny-videomae" if head.startswith("VideoMAE") else "tiny-vit"
    base = load_encoder(name)
    torch.manual_seed(0)
    full = getattr(transformers, head)(base.config)
    backbone = full.videomae if head.startswith("VideoMAE") else full.vit
    backbone.load_state_dict(base.model.state_dict(), strict=False)
    full.save_pretrained(tmp_path)
    base.processor.save_pretrained(tmp_path)
    enc = load_encoder(str(tmp_path))
    frames = _frames(1, 8, seed=9)
    torch.testing.assert_close(enc.encode_frames(frames)[0], base.encode_frames(frames)[0], rtol=0, atol=0)


@pytest.mark.parametrize("name,rate_hz", [("tiny-vit", 4.0), ("tiny-videomae", 2.0)])
def test_encode_video_windows_equal_one_pass(name, rate_hz, tmp_path):
    from vitmusic.data.video import VideoReader
    from vitmusic.data.videowriter import write_video
    from vitmusic.encoders import encode_video

    yy, xx = np.mgrid[0:48, 0:64]
    frames = np.stack(
        [
            np.stack([(xx * 4 + 9 * i) % 256, (yy * 5 + 3 * i) % 256, (xx + yy + 20 * i) % 256], -1)
            for i in range(72)
        ]
    ).astype(np.uint8)
    path = write_video(tmp_path / "v.mp4", frames, 24)  # 3 s
    enc = load_encoder(name, rate_hz=rate_hz)
    embeds, times_s = encode_video(enc, path, window_s=1.0)
    with VideoReader(path) as reader:
        whole = reader.read(fps=enc.sample_fps()).data
    ref, mask = enc.encode_frames(whole)
    assert embeds.shape == (int(3 * rate_hz), enc.embed_dim) and embeds.dtype == np.float32
    np.testing.assert_allclose(embeds, ref[0][mask[0]].numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(times_s, np.arange(len(embeds)) / rate_hz)


def test_encode_clips_batches_without_changing_a_clip():
    """Clips of one frame size share a call (time padded, masked); each comes back as encoded alone."""
    from vitmusic.encoders.video import encode_clips

    enc = load_encoder("tiny-videomae")
    clips = [_frames(1, 11, seed=1)[0], _frames(1, 16, seed=2)[0], _frames(1, 5, seed=3, h=32, w=32)[0]]
    trimmed, full = encode_clips(enc, clips), encode_clips(enc, clips, trim=False)
    for clip, (e, m), (fe, fm) in zip(clips, trimmed, full):
        alone, alone_mask = enc.encode_frames(clip[None])
        np.testing.assert_array_equal(fe, alone[0].numpy())
        np.testing.assert_array_equal(fm, alone_mask[0].numpy())
        n = int(alone_mask[0].sum())  # valid steps: ceil(T / tubelet); the rest pads the last chunk
        assert e.dtype == np.float32 and m.dtype == bool and m.shape == (n,) and m.all()
        np.testing.assert_array_equal(e, fe[:n])  # the 11-frame clip was batched with the 16-frame one
