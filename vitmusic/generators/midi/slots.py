"""Part slots: a frozen encoder seen through one crop of the frame per performer.

Parts. A piece has ``P`` parts (performers) that vary per piece, left to right in the frame. Each part's crop
is encoded on its own: the embeddings of a clip are ``[P, T, D]`` and one shared head transcribes every part,
told which instrument the part plays by a learned instrument embedding (the same hand height means a
different pitch on a violin and on a cello). Batches pad parts up to the largest ``P`` and mask the padding
(``mask [B, P, T]``).

Two layouts (``transcription.slots``), recorded in feature-cache keys and run descriptions:

- ``equal``: part ``k`` is the ``k``-th of ``P`` equal horizontal slots (the original synthetic benchmark draws
  its performers exactly so; on a real stage, or with the benchmark's ``layout`` nuisance, it cuts performers
  in two and gives one slot two halves);
- ``located``: :func:`locate_parts` finds the performers from the pixels of the clip itself (no annotation):
  motion energy after removing the camera's global motion, clustered into ``P`` column groups, each boxed and
  cropped, then resized to the equal slot's size so everything downstream is unchanged. It needs no training
  and nothing synthetic, so it runs the same on a user's video; the benchmark's ``Boxes_*.json`` only serve
  to measure it (IoU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vitmusic.encoders.video import frame_unit
from vitmusic.errors import ConfigError, DataError

__all__ = ["SLOT_LAYOUT", "SLOT_LAYOUTS", "PartSlotEncoder", "cut_parts", "frame_unit", "locate_parts",
           "split_slots"]

SLOT_LAYOUT = "horizontal-equal-v1"  # how frames are cut into parts (recorded in feature-cache keys)
SLOT_LAYOUTS = {"equal": SLOT_LAYOUT, "located": "motion-located-v1"}
_WORK_WIDTH = 192  # frames are analysed at about this width (px)
BACKGROUND_LEVEL = 3.0  # motion energy up to this multiple of its median is the backdrop's
RUN_LEVEL = 0.1  # a box spans the columns / rows whose motion exceeds this fraction of the performer's peak
WIDEN = 1.15  # ... widened by this factor


def slot_layout(name: str) -> str:
    """The versioned layout id of a ``transcription.slots`` value."""
    try:
        return SLOT_LAYOUTS[name]
    except KeyError:
        raise ConfigError(f"unknown part slots {name!r}; choose from {', '.join(SLOT_LAYOUTS)}") from None


def split_slots(frames: np.ndarray, num_parts: int) -> np.ndarray:
    """``uint8 [..., H, W, 3]`` -> ``[P, ..., H, W // P, 3]``: part ``k`` is the ``k``-th slot from the left."""
    if num_parts < 1:
        raise DataError(f"need at least one part, got {num_parts}")
    w = frames.shape[-2] // num_parts
    if w < 1:
        raise DataError(f"frames {frames.shape[-2]} px wide cannot hold {num_parts} parts")
    return np.stack([frames[..., :, k * w:(k + 1) * w, :] for k in range(num_parts)])


def equal_boxes(height: int, width: int, num_parts: int) -> np.ndarray:
    """The equal slots as boxes, int ``[P, 4]`` ``(x0, y0, x1, y1)``."""
    w = width // num_parts
    return np.array([[k * w, 0, (k + 1) * w, height] for k in range(num_parts)], np.int64)


# ---------------------------------------------------------------------------------------------- locating
def _shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``img`` [h, w] moved by (dy, dx) px, uncovered pixels NaN."""
    out = np.full_like(img, np.nan)
    h, w = img.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = img[ys, xs]
    return out


def _global_shift(a: np.ndarray, b: np.ndarray, max_shift: int) -> tuple[int, int]:
    """Integer translation (dy, dx) that carries ``a`` onto ``b`` (phase correlation), at most ``max_shift``."""
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1])).astype(np.float32)
    fa = np.fft.rfft2((a - a.mean()) * win)
    fb = np.fft.rfft2((b - b.mean()) * win)
    cross = fb * np.conj(fa)
    corr = np.fft.irfft2(cross / (np.abs(cross) + 1e-6), s=a.shape)
    corr = np.fft.fftshift(corr)
    cy, cx = a.shape[0] // 2, a.shape[1] // 2
    sub = corr[cy - max_shift: cy + max_shift + 1, cx - max_shift: cx + max_shift + 1]
    iy, ix = np.unravel_index(int(np.argmax(sub)), sub.shape)
    return int(iy - max_shift), int(ix - max_shift)


def motion_energy(frames: np.ndarray) -> np.ndarray:
    """Where things move, float ``[h, w]`` at a reduced size (factor ``W // _WORK_WIDTH``), camera motion removed.

    Grey frames are normalised for brightness (lighting changes), consecutive frames aligned by their global
    translation (pan, shake), differenced, and each difference's median (sensor noise, compression)
    subtracted before summing over time; finally ``BACKGROUND_LEVEL`` times the map's median is taken off.
    """
    from PIL import Image

    T, H, W = frames.shape[:3]
    f = max(W // _WORK_WIDTH, 1)
    # grey, box-averaged f x f (PIL's C loops: numpy's strided reductions were 20x slower here)
    grey = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(fr)).convert("L").reduce(f)) for fr in frames])
    grey = grey.astype(np.float32)
    h, w = grey.shape[1:]
    grey /= grey.mean(axis=(1, 2), keepdims=True) + 1e-6
    energy = np.zeros((h, w), np.float32)
    max_shift = max(min(h, w) // 8, 1)
    for t in range(1, T):
        dy, dx = _global_shift(grey[t - 1], grey[t], max_shift)
        d = np.abs(grey[t] - _shift(grey[t - 1], dy, dx))
        valid = np.isfinite(d)
        if not valid.any():
            continue
        d = np.where(valid, d - np.median(d[valid]), 0.0)
        energy += np.maximum(d, 0.0)
    # what is left everywhere (noise, blocking, the textured backdrop under zoom) is not a performer
    return np.maximum(energy - BACKGROUND_LEVEL * np.median(energy), 0.0)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    width = max(int(width), 1)
    return np.convolve(x, np.ones(width) / width, mode="same")


def _quantile_range(weights: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    c = np.cumsum(weights)
    c = c / max(c[-1], 1e-12)
    return float(np.searchsorted(c, lo)), float(np.searchsorted(c, hi) + 1)


def _peaks(profile: np.ndarray, num: int, min_gap: float) -> np.ndarray | None:
    """Positions of the ``num`` highest local maxima of ``profile`` at least ``min_gap`` apart (None: fewer)."""
    inner = (profile[1:-1] >= profile[:-2]) & (profile[1:-1] > profile[2:])
    cand = np.nonzero(inner)[0] + 1
    chosen: list[int] = []
    for c in cand[np.argsort(-profile[cand], kind="stable")]:
        if all(abs(int(c) - q) >= min_gap for q in chosen):
            chosen.append(int(c))
        if len(chosen) == num:
            return np.sort(np.asarray(chosen, dtype=np.float64))
    return None


def _run_around(profile: np.ndarray, centre: int, a: int, b: int, level: float) -> tuple[int, int]:
    """The run of ``profile[a:b]`` above ``level`` that contains (or is nearest to) ``centre``."""
    above = np.nonzero(profile[a:b] > level)[0] + a
    if len(above) == 0:
        return a, b
    c = int(above[np.argmin(np.abs(above - centre))])
    lo, hi = c, c + 1
    while lo > a and profile[lo - 1] > level:
        lo -= 1
    while hi < b and profile[hi] > level:
        hi += 1
    return lo, hi


def locate_parts(frames: np.ndarray, num_parts: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Boxes of the ``P`` performers, left to right, from the frames alone: int ``[P, 4]`` ``(x0, y0, x1, y1)``.

    Motion energy (:func:`motion_energy`) is summed over rows into a column profile; its ``P`` most prominent
    peaks (else its mass quantiles) start a weighted 1-D k-means that splits the columns into ``P`` groups,
    one per performer. Each group's box spans the run of columns (then rows) around its centre where the
    motion exceeds ``RUN_LEVEL`` of the group's peak, widened by ``WIDEN``, then grown to the equal slot's aspect
    ratio (``H`` : ``W / P``), mostly downwards (hands, bows and instruments move; legs rarely do), so the
    crop is not distorted. With (almost) no motion, e.g. a single frame, the equal slots are returned.

    Args:
        frames: uint8 ``[T, H, W, 3]``.
        num_parts: ``P`` >= 1.
        mask: bool ``[T]``: frames to use (padding excluded); default all.
    """
    if num_parts < 1:
        raise DataError(f"need at least one part, got {num_parts}")
    frames = np.asarray(frames)
    if mask is not None:
        frames = frames[np.asarray(mask, bool)]
    T, H, W = frames.shape[:3]
    fallback = equal_boxes(H, W, num_parts)
    if T < 2:
        return fallback
    f = max(W // _WORK_WIDTH, 1)
    energy = motion_energy(frames)
    h, w = energy.shape
    cols = _smooth(energy.sum(axis=0), w / 60)
    if cols.sum() < 1e-3 * T:
        return fallback
    x = np.arange(w, dtype=np.float64)
    centres = _peaks(_smooth(cols, w / (4 * num_parts)), num_parts, w / (4 * num_parts))
    if centres is None:
        cuts = np.linspace(0, 1, num_parts + 1)
        centres = np.array([sum(_quantile_range(cols, a, b)) / 2 for a, b in zip(cuts[:-1], cuts[1:])])
    for _ in range(30):  # weighted k-means in one dimension
        bounds = (centres[1:] + centres[:-1]) / 2
        label = np.searchsorted(bounds, x)
        mass = np.array([np.sum(cols[label == k]) for k in range(num_parts)])
        new = np.array([np.sum(cols[label == k] * x[label == k]) / mass[k] if mass[k] > 0 else centres[k]
                        for k in range(num_parts)])
        new = np.sort(new)
        if np.allclose(new, centres):
            break
        centres = new
    bounds = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [float(w)]])
    aspect = H / (W / num_parts)
    boxes = []
    for k in range(num_parts):
        a, b = int(np.floor(bounds[k])), int(np.ceil(bounds[k + 1]))
        seg = cols[a:b]
        if seg.size == 0 or seg.max() <= 0:
            boxes.append(fallback[k])
            continue
        x0, x1 = _run_around(cols, int(centres[k]), a, b, RUN_LEVEL * seg.max())
        rows = _smooth(energy[:, x0:x1].sum(axis=1), h / 60)
        y0, y1 = _run_around(rows, int(np.argmax(rows)), 0, h, RUN_LEVEL * rows.max()) if rows.max() > 0 else (0, h)
        bw, bh = (x1 - x0) * WIDEN + 2, (y1 - y0) * WIDEN + 2
        cx, top = (x0 + x1) / 2, (y0 + y1) / 2 - bh / 2
        if bh / bw < aspect:
            grow = bw * aspect - bh
            bh, top = bw * aspect, top - 0.25 * grow
        else:
            bw = bh / aspect
        bw, bh = min(bw, w), min(bh, h)
        bx0 = float(np.clip(cx - bw / 2, 0, w - bw))
        by0 = float(np.clip(top, 0, h - bh))
        box = np.array([bx0, by0, bx0 + bw, by0 + bh]) * f
        boxes.append(np.round(np.clip(box, 0, [W, H, W, H])).astype(np.int64))
    return np.stack(boxes)


def crop_resize(frames: np.ndarray, box: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """The ``box`` ``(x0, y0, x1, y1)`` of every frame resized to ``out_h`` x ``out_w`` (PIL's bilinear filter).

    Args:
        frames: uint8 ``[T, H, W, 3]``.

    Returns:
        uint8 ``[T, out_h, out_w, 3]``.
    """
    from PIL import Image

    x0, y0, x1, y1 = (float(v) for v in box)
    H, W = frames.shape[1:3]
    # only the box (and the pixels its filter reaches) leaves numpy
    xa, ya = max(int(np.floor(x0)) - 2, 0), max(int(np.floor(y0)) - 2, 0)
    xb, yb = min(int(np.ceil(x1)) + 2, W), min(int(np.ceil(y1)) + 2, H)
    sub = np.ascontiguousarray(frames[:, ya:yb, xa:xb])
    region = (x0 - xa, y0 - ya, x1 - xa, y1 - ya)
    out = np.empty((len(frames), out_h, out_w, 3), np.uint8)
    for t in range(len(sub)):
        out[t] = np.asarray(Image.fromarray(sub[t]).resize((out_w, out_h), Image.BILINEAR, box=region))
    return out


def cut_parts(frames: np.ndarray, num_parts: int, slots: str = "equal", mask: np.ndarray | None = None) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` -> ``[P, T, H, W // P, 3]``: each part's crop, left to right.

    ``slots="equal"``: :func:`split_slots`; ``"located"``: the boxes of :func:`locate_parts` (from the frames
    ``mask`` marks), each resized to the equal slot's size.
    """
    slot_layout(slots)
    if slots == "equal":
        return split_slots(frames, num_parts)
    if num_parts < 1:
        raise DataError(f"need at least one part, got {num_parts}")
    H, W = frames.shape[1:3]
    if W // num_parts < 1:
        raise DataError(f"frames {W} px wide cannot hold {num_parts} parts")
    boxes = locate_parts(frames, num_parts, mask)
    return np.stack([crop_resize(frames, b, H, W // num_parts) for b in boxes])


class PartSlotEncoder:
    """A frozen encoder seen through the part slots.

    With ``num_parts`` set, :meth:`encode_frames` takes whole frames ``[B, T, H, W, 3]`` and returns the
    parts' embeddings side by side, ``[B, T', P * D]`` (used with :func:`vitmusic.encoders.video.embed_video`
    at generation time). With ``num_parts=None`` the frames are already slot-major (the cache's reader)
    and it only delegates; either way :meth:`fingerprint` records the slot layout.
    """

    def __init__(self, encoder, num_parts: int | None = None, slots: str = "equal") -> None:
        self.encoder, self.num_parts, self.slots = encoder, num_parts, slots
        self.layout = slot_layout(slots)
        self.frames_per_step = encoder.frames_per_step
        self.clip_frames = int(getattr(encoder, "clip_frames", 1))

    @property
    def embed_dim(self) -> int:
        return self.encoder.embed_dim * (self.num_parts or 1)

    def sample_fps(self, rate_hz: float | None = None) -> float:
        return self.encoder.sample_fps(rate_hz)

    def fingerprint(self) -> dict[str, Any]:
        return {**self.encoder.fingerprint(), "part_slots": self.layout}

    def encode_frames(self, frames, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.num_parts is None:
            return self.encoder.encode_frames(frames, mask)
        arr = np.asarray(frames)
        B, T, P = arr.shape[0], arr.shape[1], self.num_parts
        fm = None if mask is None else np.asarray(mask, bool)
        slots = np.stack([cut_parts(arr[b], P, self.slots, None if fm is None else fm[b]) for b in range(B)])
        slots = slots.reshape(B * P, T, *slots.shape[3:])  # [B*P, T, H, w, 3]
        m = None if mask is None else np.repeat(np.asarray(mask), P, axis=0)
        e, em = self.encoder.encode_frames(slots, m)  # [B*P, T', D]
        e = e.reshape(B, P, e.shape[1], -1).permute(0, 2, 1, 3).reshape(B, e.shape[1], -1)
        return e, em.reshape(B, P, -1)[:, 0]
