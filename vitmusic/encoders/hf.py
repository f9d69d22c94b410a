"""transformers-backed encoders: VideoMAE (tubelet tokens per temporal slot), ViT and CLIP (per frame).

Preprocessing always comes from the checkpoint's own image processor, loaded with ``from_pretrained`` from
the same id/dir as the model. The Pil processor class is picked explicitly per model type, because
``AutoImageProcessor`` may choose the torchvision-backed class, and torchvision is not usable here.

Output choices (documented, and recorded in :meth:`HFVisionEncoder.fingerprint`):

- ViT: the final-layernorm CLS token of every frame (``last_hidden_state[:, 0]``), D = hidden_size. The
  ViT pooler (dense + tanh) is not used: in21k checkpoints ship it untrained for downstream use.
- CLIP: ``clip_output="pooled"`` (default) = ``CLIPVisionModel``'s pooler output (post-layernorm CLS),
  D = hidden_size; ``clip_output="projected"`` = that vector through ``visual_projection`` into the
  image-text space, D = projection_dim. Pooled keeps more visual detail for a trained projection.
- VideoMAE: frames are cut into consecutive chunks of ``num_frames`` F; each chunk gives F / tubelet_size
  temporal slots; the spatial patch tokens of each slot are mean-pooled, D = hidden_size. The last chunk is
  padded by repeating the final (valid) frame; a slot is valid when its first frame is a real frame, so
  the number of valid slots is ``ceil(T / tubelet_size)`` and slots made only of padding are masked out.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitmusic.encoders.base import VisionEncoder
from vitmusic.encoders.lora import adapters_sha256, add_lora, normalize_lora_config
from vitmusic.encoders.presets import TINY_PRESETS, materialize_tiny_preset
from vitmusic.errors import ConfigError, VitmusicError
from vitmusic.hf_quiet import hf_model_build

# transformers config.model_type -> encoder kind
KIND_BY_MODEL_TYPE = {
    "videomae": "videomae",
    "vit": "vit",
    "clip": "clip",
    "clip_vision_model": "clip",
}
CLIP_OUTPUTS = ("pooled", "projected")
# image processor settings applied after preprocess_frames (so not part of the frame cache's key)
VALUE_STEP_KEYS = ("do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std")


class HFVisionEncoder(VisionEncoder):
    """Common code of the transformers wrappers (loading info, preprocessing, fingerprint).

    Args:
        model: the transformers model (weights frozen here).
        processor: its Pil image processor.
        name_or_path: what the user asked for (preset name, hub id or dir).
        source: the local directory loaded (tiny presets / local dirs); None for hub ids.
        revision: hub revision asked for, if any.
        snapshot: hub ids: the local cache snapshot folder the files came from (its name is the commit).
        rate_hz: default embedding rate for :meth:`sample_fps`.
        lora: LoRA options (see :mod:`vitmusic.encoders.lora`) or None for a frozen encoder.
        batch_frames: at most this many frames per forward pass (bounds memory).
    """

    output_name = ""

    def __init__(
        self,
        model: torch.nn.Module,
        processor: Any,
        *,
        name_or_path: str,
        source: Path | None = None,
        revision: str | None = None,
        snapshot: Path | None = None,
        rate_hz: float | None = None,
        lora: dict[str, Any] | None = None,
        batch_frames: int = 64,
    ) -> None:
        super().__init__(name_or_path, rate_hz)
        if batch_frames < 1:
            raise ConfigError(f"batch_frames must be >= 1, got {batch_frames}")
        self.processor = processor
        self.source = source
        self.snapshot = snapshot
        self.revision = revision
        self.batch_frames = int(batch_frames)
        self._fingerprint: dict[str, Any] | None = None
        self._table: torch.Tensor | None = None
        for p in model.parameters():
            p.requires_grad_(False)
        self.lora_config = normalize_lora_config(lora, model)
        if self.lora_config is not None:
            model = add_lora(model, self.lora_config)
        self.model = model
        self.train(False)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def input_size(self) -> tuple[int, int] | None:
        size = getattr(self.config, "image_size", None)
        if isinstance(size, int):
            return (size, size)
        return tuple(size) if isinstance(size, (list, tuple)) and len(size) == 2 else None

    def _processor_input(self, images: list[np.ndarray]) -> Any:
        """How the processor takes N frames (one image each; VideoMAE: one video of N frames)."""
        return images

    def _preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """The processor's geometric steps on ``uint8 [N, H, W, 3]`` -> ``uint8 [N, C, h, w]``.

        The Pil processors (ViT, CLIP, VideoMAE) resize and center-crop uint8 images through PIL and keep
        uint8; rescale and normalize are switched off here and done by :meth:`_pixel_values`.
        """
        pv = self.processor(
            self._processor_input(list(frames)), do_rescale=False, do_normalize=False, return_tensors="pt"
        )["pixel_values"]
        pv = pv.reshape(len(frames), *pv.shape[-3:])
        if pv.dtype != torch.uint8:
            raise VitmusicError(f"encoder {self.name_or_path!r}: its image processor did not keep uint8 frames")
        return pv

    def _value_table(self) -> torch.Tensor:
        """float32 ``[3, 256]``: the processor's rescale + normalize of every uint8 value, per channel.

        The same float operations as the Pil processor (uint8 -> float64 * rescale_factor -> float32, then
        ``(x - mean) / std`` in float32), so looking values up is exact, and cheap on any device.
        """
        p = self.processor
        values = np.arange(256, dtype=np.uint8)
        x = (values.astype(np.float64) * p.rescale_factor).astype(np.float32) if p.do_rescale else values
        x = np.broadcast_to(x.astype(np.float32), (3, 256))
        if p.do_normalize:
            mean = np.broadcast_to(np.asarray(p.image_mean, np.float32), (3,))[:, None]
            std = np.broadcast_to(np.asarray(p.image_std, np.float32), (3,))[:, None]
            x = (x - mean) / std
        return torch.from_numpy(np.ascontiguousarray(x, np.float32))

    def _pixel_values(self, pixels: torch.Tensor) -> torch.Tensor:
        """Rescale + normalize preprocessed ``uint8 [..., C, h, w]`` -> model input on the encoder's device."""
        if self._table is None:
            self._table = self._value_table()
        pixels = pixels.to(self.device)
        table = self._table.to(pixels.device)
        out = torch.empty(pixels.shape, dtype=torch.float32, device=pixels.device)
        for c in range(pixels.shape[-3]):  # per channel: 3x faster than one lookup with channel offsets
            out[..., c, :, :] = table[c][pixels[..., c, :, :].long()]
        return out.to(self.dtype)

    def _weights_hash(self) -> str | None:
        folder = self.source or self.snapshot
        if folder is None:
            return None
        h = hashlib.sha256()
        files = [folder / "config.json"] + sorted(
            p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin")
        )
        for path in files:
            h.update(path.name.encode())
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()

    def fingerprint(self) -> dict[str, Any]:
        """Identity of what produces the embeddings: weights, preprocessing, output choice, adapters.

        ``weights_sha256`` is a sha256 of config.json + the weight files (local dirs, tiny presets and the
        hub cache snapshot alike; computed once per encoder, about 1 s per 400 MB); hub checkpoints also
        record the revision asked for and the commit it resolved to.
        """
        if self._fingerprint is None:
            self._fingerprint = {
                "kind": self.kind,
                "name_or_path": self.name_or_path,
                "revision": self.revision if self.source is None else None,
                "commit": self.snapshot.name if self.snapshot is not None else None,
                "weights_sha256": self._weights_hash(),
                "model_class": type(self.model).__name__,
                "output": self.output_name,
                "frames_per_step": self.frames_per_step,
                "image_processor": json.loads(self.processor.to_json_string()),
            }
        fp = dict(self._fingerprint)
        fp["embed_dim"] = self.embed_dim
        fp["lora"] = dict(self.lora_config) if self.lora_config else None
        # Adapters change while they train: features of a trainable encoder must not be cached.
        fp["trainable"] = self.is_trainable
        if self.lora_config and not self.is_trainable:
            # frozen trained adapters (a loaded LoRA run) are part of the function the encoder computes
            fp["adapters_sha256"] = adapters_sha256(self.model)
        return fp

    def preprocess_fingerprint(self) -> dict[str, Any]:
        """What determines :meth:`preprocess_frames`: the processor's settings without its value steps.

        Rescale / normalize settings are left out (they run after the frame cache), and so are the weights
        and adapters.
        """
        processor = json.loads(self.processor.to_json_string())
        for key in VALUE_STEP_KEYS:
            processor.pop(key, None)
        return {"image_processor": processor}

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, name_or_path={self.name_or_path!r}, embed_dim={self.embed_dim}"


class _PerFrameEncoder(HFVisionEncoder):
    """ViT / CLIP: one embedding per frame; only valid frames are run through the model."""

    frames_per_step = 1

    def _embed_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _encode(self, pixels: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = pixels.shape[:2]
        flat = pixels.reshape(b * t, *pixels.shape[2:])
        valid = torch.nonzero(frame_mask.reshape(-1)).squeeze(1)
        out = torch.zeros(b * t, self.embed_dim, device=self.device, dtype=self.dtype)
        chunks = []
        for start in range(0, len(valid), self.batch_frames):
            idx = valid[start : start + self.batch_frames]
            pv = self._pixel_values(flat[idx.to(flat.device)])  # [n, C, h, w]
            chunks.append(self._embed_images(pv))
        if chunks:
            # index_copy (not in-place assignment) keeps the graph intact when LoRA adapters train.
            out = out.index_copy(0, valid.to(self.device), torch.cat(chunks).to(out.dtype))
        return out.view(b, t, self.embed_dim), frame_mask.clone()


class ViTEncoder(_PerFrameEncoder):
    """ViT, per frame: final-layernorm CLS token; D = hidden_size."""

    kind = "vit"
    output_name = "cls"

    @property
    def embed_dim(self) -> int:
        return int(self.config.hidden_size)

    def _embed_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).last_hidden_state[:, 0]


class CLIPEncoder(_PerFrameEncoder):
    """CLIP vision tower, per frame: pooled output, or the image-text space when ``clip_output="projected"``."""

    kind = "clip"

    def __init__(self, *args: Any, clip_output: str = "pooled", **kwargs: Any) -> None:
        if clip_output not in CLIP_OUTPUTS:
            raise ConfigError(f"clip_output must be one of {CLIP_OUTPUTS}, got {clip_output!r}")
        self.output_name = clip_output
        super().__init__(*args, **kwargs)

    @property
    def embed_dim(self) -> int:
        if self.output_name == "projected":
            return int(self.config.projection_dim)
        return int(self.config.hidden_size)

    def _embed_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.output_name == "projected":
            return self.model(pixel_values=pixel_values).image_embeds
        return self.model.vision_model(pixel_values=pixel_values).pooler_output


class VideoMAEEncoder(HFVisionEncoder):
    """VideoMAE: mean-pooled patch tokens per temporal slot (tubelet); D = hidden_size."""

    kind = "videomae"
    output_name = "slot_mean"

    @property
    def embed_dim(self) -> int:
        return int(self.config.hidden_size)

    @property
    def frames_per_step(self) -> int:
        return int(self.config.tubelet_size)

    @property
    def clip_frames(self) -> int:
        """F, frames per model input clip."""
        return int(self.config.num_frames)

    def _processor_input(self, images: list[np.ndarray]) -> Any:
        return [images]  # one video: the VideoMAE processor resizes / crops each frame the same way

    def _encode(self, pixels: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = pixels.shape[:2]
        f, ts = self.clip_frames, self.frames_per_step
        n_chunks = math.ceil(t / f)
        pixels = torch.cat([pixels, torch.zeros_like(pixels[:, : n_chunks * f - t])], dim=1)
        frame_mask = torch.cat([frame_mask, torch.zeros(b, n_chunks * f - t, dtype=torch.bool)], dim=1)
        # Pad every clip after its last valid frame by repeating that frame, so a clip padded inside a
        # batch is encoded exactly like the same clip on its own.
        for j in range(b):
            valid = torch.nonzero(frame_mask[j]).squeeze(1)
            if len(valid):
                pixels[j, int(valid[-1]) + 1 :] = pixels[j, int(valid[-1])]
        clips = pixels.reshape(b * n_chunks, f, *pixels.shape[2:])
        slots = f // ts
        # Chunks without a valid frame are not run through the model (their slots stay 0 and masked).
        todo = torch.nonzero(frame_mask.reshape(b * n_chunks, f).any(dim=1)).squeeze(1)
        pooled = torch.zeros(b * n_chunks, slots, self.embed_dim, device=self.device, dtype=self.dtype)
        per_forward = max(1, self.batch_frames // f)
        chunks = []
        for start in range(0, len(todo), per_forward):
            idx = todo[start : start + per_forward]
            pv = self._pixel_values(clips[idx.to(clips.device)])  # [c, F, C, h, w]
            hidden = self.model(pixel_values=pv).last_hidden_state  # [c, slots * P, D]
            # Conv3d patching flattens (time, height, width) time-major, so slot j owns a contiguous block.
            chunks.append(hidden.reshape(hidden.shape[0], slots, -1, hidden.shape[-1]).mean(dim=2))
        if chunks:
            pooled = pooled.index_copy(0, todo.to(self.device), torch.cat(chunks).to(pooled.dtype))
        embeds = pooled.reshape(b, n_chunks * slots, self.embed_dim)
        slot_mask = frame_mask.reshape(b, n_chunks * slots, ts)[..., 0]
        return embeds, slot_mask


ENCODER_CLASSES: dict[str, type[HFVisionEncoder]] = {
    "videomae": VideoMAEEncoder,
    "vit": ViTEncoder,
    "clip": CLIPEncoder,
}


def _model_and_processor_classes(kind: str) -> tuple[Any, Any, dict[str, Any]]:
    import transformers as tf

    if kind == "videomae":
        return tf.VideoMAEModel, tf.VideoMAEImageProcessorPil, {}
    if kind == "vit":
        return tf.ViTModel, tf.ViTImageProcessorPil, {"add_pooling_layer": False}
    return tf.CLIPVisionModelWithProjection, tf.CLIPImageProcessorPil, {}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def _from_pretrained(fn: Any, what: str, name: str, **kwargs: Any) -> Any:
    """Call a ``from_pretrained`` and turn hub / file errors into one VitmusicError line."""
    from huggingface_hub.errors import HFValidationError

    try:
        with hf_model_build():
            return fn(name, **kwargs)
    except (OSError, HFValidationError, ValueError) as exc:
        if Path(name).is_dir():  # a local folder: say what is wrong with it (e.g. no config.json)
            raise VitmusicError(f"cannot load encoder {what} from folder {name!r}: {_one_line(exc)}") from exc
        raise VitmusicError(
            f"cannot load encoder {what} from {name!r}: not a local model folder, and not downloadable or in "
            f"the Hugging Face cache (offline?) [{_one_line(exc)}]"
        ) from exc


def _load_weights(model_cls: Any, source: str, name: str, hub_kwargs: dict[str, Any],
                  model_kwargs: dict[str, Any]) -> Any:
    """``from_pretrained`` the weights; a folder whose weights do not fit its config.json is one error line.

    transformers raises on tensors of the wrong shape, but only warns about tensors that are missing (and
    initialises them at random): a folder whose config names another architecture than its weights would
    otherwise load as a silently random encoder.
    """
    try:
        model, info = _from_pretrained(model_cls.from_pretrained, "weights", source, output_loading_info=True,
                                       **hub_kwargs, **model_kwargs)
    except RuntimeError as exc:  # ignore_mismatched_sizes=False: shapes disagree with config.json
        raise VitmusicError(
            f"encoder {name!r}: its weights do not match its config.json (tensor shapes differ; a config of "
            "another model size?)"
        ) from exc
    # A CLIP vision-only checkpoint has no visual_projection: fine for the pooled output.
    missing = [k for k in info.get("missing_keys", []) if not str(k).startswith("visual_projection")]
    if missing:
        raise VitmusicError(
            f"encoder {name!r}: {len(missing)} weight tensor(s) its config.json needs are not in the checkpoint "
            f"(e.g. {sorted(missing)[0]!r}): config and weights are of different models"
        )
    return model


def _hub_snapshot(repo_id: str, hub_kwargs: dict[str, Any]) -> Path | None:
    """The HF cache snapshot folder a hub checkpoint was just loaded from (named by its commit)."""
    from transformers.utils import cached_file

    try:
        path = cached_file(
            repo_id,
            "config.json",
            revision=hub_kwargs.get("revision"),
            cache_dir=hub_kwargs.get("cache_dir"),
            local_files_only=True,
        )
    except OSError:
        return None
    return Path(path).parent if path else None


def _resolve_source(name_or_path: str) -> tuple[str, Path | None]:
    """Return (what to pass to from_pretrained, local folder or None for hub ids)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path), path.resolve()
    if name_or_path in TINY_PRESETS:
        folder = materialize_tiny_preset(name_or_path)
        return str(folder), folder.resolve()
    if path.exists() or name_or_path.startswith((".", "/", "~")):
        raise VitmusicError(f"encoder path {name_or_path!r} is not a model folder")
    return name_or_path, None


def load_encoder(
    name_or_path: str,
    *,
    kind: str | None = None,
    revision: str | None = None,
    rate_hz: float | None = None,
    lora: dict[str, Any] | None = None,
    clip_output: str = "pooled",
    batch_frames: int = 64,
    local_files_only: bool = False,
    cache_dir: str | None = None,
    device: str | torch.device | None = None,
) -> VisionEncoder:
    """Load a vision encoder (model + its image processor) through ``from_pretrained``.

    Args:
        name_or_path: tiny preset name (``"tiny-videomae"``, ``"tiny-vit"``, ``"tiny-clip"``), hub id
            (``"MCG-NJU/videomae-base"``) or local directory written by ``save_pretrained``.
        kind: ``"videomae"``, ``"vit"``, ``"clip"`` or ``"efficientnet"`` (``"efficientnet-lite0"``, the ImageNet
            weights of :mod:`vitmusic.encoders.efficientnet`); inferred from the config's model_type when None.
        revision: hub revision (branch, tag or commit) for hub ids.
        rate_hz: default embedding rate (steps/s) for :meth:`VisionEncoder.sample_fps`.
        lora: e.g. ``{"r": 8, "alpha": 16, "target_modules": ["query", "value"]}`` to add trainable LoRA
            adapters; None keeps the encoder fully frozen.
        clip_output: CLIP only: ``"pooled"`` (D = hidden_size) or ``"projected"`` (D = projection_dim).
        batch_frames: most frames per forward pass.
        local_files_only: never contact the hub.
        cache_dir: Hugging Face cache folder for hub ids (default: the standard HF cache).
        device: where to put the model.

    Raises:
        VitmusicError: the checkpoint cannot be found/loaded (one line), or kind/config mismatch.
    """
    from transformers import AutoConfig

    from vitmusic.encoders.efficientnet import is_efficientnet, load_efficientnet

    if is_efficientnet(str(name_or_path), kind):  # a torch CNN, not a transformers checkpoint
        return load_efficientnet(str(name_or_path), rate_hz=rate_hz, lora=lora, batch_frames=batch_frames,
                                 device=device)
    source, folder = _resolve_source(str(name_or_path))
    hub_kwargs: dict[str, Any] = {"local_files_only": local_files_only}
    if folder is None:
        hub_kwargs.update({"revision": revision, "cache_dir": cache_dir})
    config = _from_pretrained(AutoConfig.from_pretrained, "config", source, **hub_kwargs)
    inferred = KIND_BY_MODEL_TYPE.get(getattr(config, "model_type", ""))
    if kind is None:
        if inferred is None:
            raise ConfigError(
                f"encoder {name_or_path!r} has model_type {config.model_type!r}; supported: "
                f"{sorted(KIND_BY_MODEL_TYPE)} (or pass kind=)"
            )
        kind = inferred
    if kind not in ENCODER_CLASSES:
        raise ConfigError(f"unknown encoder kind {kind!r}; known: {sorted(ENCODER_CLASSES)}")
    if inferred is not None and inferred != kind:
        raise ConfigError(f"encoder {name_or_path!r} is a {inferred!r} checkpoint, not {kind!r}")

    model_cls, proc_cls, model_kwargs = _model_and_processor_classes(kind)
    if config.model_type == "clip":
        # A full CLIPModel checkpoint keeps projection_dim at the top level; the vision sub-config
        # transformers would extract has the default (512) and visual_projection would be re-initialised.
        vision_config = config.vision_config
        vision_config.projection_dim = config.projection_dim
        model_kwargs["config"] = vision_config
    model = _load_weights(model_cls, source, name_or_path, hub_kwargs, model_kwargs)
    processor = _from_pretrained(proc_cls.from_pretrained, "image processor", source, **hub_kwargs)
    snapshot = _hub_snapshot(source, hub_kwargs) if folder is None else None
    if device is not None:
        model = model.to(device)
    extra = {"clip_output": clip_output} if kind == "clip" else {}
    return ENCODER_CLASSES[kind](
        model,
        processor,
        name_or_path=str(name_or_path),
        source=folder,
        revision=revision,
        snapshot=snapshot,
        rate_hz=rate_hz,
        lora=lora,
        batch_frames=batch_frames,
        **extra,
    )
