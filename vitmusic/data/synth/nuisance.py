"""Nuisance of the synthetic benchmark: what a real camera adds that says nothing about the music.

Each nuisance is drawn per piece from its own seed sequence ``(seed, piece, NUISANCE_SALT, k)``, so turning
one on or off never changes the draws of another, the music (drawn from ``(seed, piece)``) never depends on
them, and the same seed always gives the same video bytes.

- ``layout``: performers of unequal sizes (0.55-1x) at jittered, unequal positions (random gaps and heights,
  left-to-right order kept), each drifting slowly: equal slots of the frame no longer hold one performer each;
- ``background``: a real photograph behind the performers (shipped inside scikit-image's wheel, see
  :data:`BACKGROUNDS` for sources and licences), dimmed, scaled and cropped at random;
- ``camera``: slow pan and zoom (1-1.12x) plus hand-held shake;
- ``lighting``: per-channel gain (colour temperature), slow brightness changes, flicker and an uneven
  (side-lit, vignetted) illumination;
- ``noise``: Gaussian sensor noise, fresh every frame;
- ``compression``: reduced resolution, per-frame JPEG and a high x264 CRF;
- ``fps``: the piece's frame rate drawn from 24, 25, 29.97 and 30 (overrides ``--fps``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from vitmusic.errors import DataError

LEVELS = ("painted", "fingering", "hidden")
NUISANCES = ("layout", "background", "camera", "lighting", "noise", "compression", "fps")
NUISANCE_SALT = 7919  # seed-sequence word that separates the picture's draws from the music's
FPS_CHOICES = ("24", "25", "30000/1001", "30")
# photographs in scikit-image's wheel (skimage/data/), read offline; licences from skimage.data's docstrings
BACKGROUNDS = {
    "astronaut": ("astronaut.png", "NASA (Eileen Collins), public domain"),
    "coffee": ("coffee.png", "Rachel Michetti, CC0"),
    "chelsea": ("chelsea.png", "Stefan van der Walt, CC0"),
    "rocket": ("rocket.jpg", "SpaceX, public domain"),
    "camera": ("camera.png", "Lav Varshney, CC0"),
    "brick": ("brick.png", "CC0Textures (Bricks25), CC0"),
    "grass": ("grass.png", "linolafett on DeviantArt, CC0"),
    "gravel": ("gravel.png", "CC0Textures (Gravel04), CC0"),
}
STAGE_COLOUR = (58, 58, 64)  # the plain backdrop of the scene without a photograph


def parse_level(text: str) -> str:
    if text not in LEVELS:
        raise DataError(f"unknown level {text!r}; choose from {', '.join(LEVELS)}")
    return text


def parse_nuisance(text: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"none"`` / ``"all"`` / ``"layout,camera"`` (or a list) -> the nuisances, in :data:`NUISANCES` order."""
    if text is None:
        return ()
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t).strip() for t in text]
    items = [t for t in items if t]
    if items in ([], ["none"]):
        return ()
    if items == ["all"]:
        return NUISANCES
    bad = [t for t in items if t not in NUISANCES]
    if bad:
        raise DataError(f"unknown nuisance {bad[0]!r}; choose none, all or a comma-separated list of "
                        f"{', '.join(NUISANCES)}")
    return tuple(n for n in NUISANCES if n in items)


def _rng(seed: int, number: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, number, NUISANCE_SALT, NUISANCES.index(name)])


def piece_fps(seed: int, number: int, nuisance: tuple[str, ...], fps: str) -> str:
    """The piece's frame rate: ``fps``, or a draw from :data:`FPS_CHOICES` with the ``fps`` nuisance."""
    if "fps" not in nuisance:
        return str(fps)
    return str(_rng(seed, number, "fps").choice(FPS_CHOICES))


def smooth_path(rng: np.random.Generator, times_s: np.ndarray, freqs_hz: tuple[float, float],
                num: int = 3) -> np.ndarray:
    """A smooth random signal [T] in about [-1, 1]: ``num`` sinusoids, random frequencies and phases."""
    f = rng.uniform(*freqs_hz, size=num)
    ph = rng.uniform(0, 2 * np.pi, size=num)
    a = rng.uniform(0.5, 1.0, size=num)
    a = a / a.sum()
    return np.sum(a[:, None] * np.sin(2 * np.pi * f[:, None] * np.asarray(times_s)[None] + ph[:, None]), axis=0)


@dataclass
class Layout:
    """Performer panels on the canvas: ``x, y`` top-left and ``w, h`` size [P] (px), drift [T, P, 2] (dx, dy)."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray
    drift: np.ndarray


@dataclass
class Camera:
    """Per-frame view of the canvas: centre ``cx, cy`` [T] (canvas px) and ``zoom`` [T] (>= 1 magnifies)."""

    cx: np.ndarray
    cy: np.ndarray
    zoom: np.ndarray


@dataclass
class NuisanceDraws:
    """Everything drawn for one piece's picture (see the module docstring)."""

    nuisance: tuple[str, ...]
    margin: tuple[int, int]  # canvas margin (y, x) around the frame
    layout: Layout
    camera: Camera | None = None
    background: str | None = None
    background_crop: tuple[float, float, float] = (0.0, 0.0, 1.0)  # (x, y) fraction, scale
    background_gain: float = 1.0
    gains: np.ndarray | None = None  # [T, 3] lighting per frame and channel
    light_map: np.ndarray | None = None  # [H, W] float32 uneven illumination
    noise_sigma: float = 0.0
    jpeg_quality: int | None = None
    resolution: float = 1.0  # compression: the frame passes through this fraction of its size
    crf: int = 23
    info: dict = field(default_factory=dict)


def draw_nuisance(seed: int, number: int, nuisance: tuple[str, ...], num_parts: int, panel_w: int, panel_h: int,
                  times_s: np.ndarray, box_of) -> NuisanceDraws:
    """Draw a piece's nuisance: layout (panels of ``panel_w`` x ``panel_h`` at scale 1), camera, lighting...

    Args:
        box_of: ``(part, w, h) -> (x0, y0, x1, y1)``, the figure's extent in a panel (to place figures, not
            panels).
    """
    W, H, T = panel_w * num_parts, panel_h, len(times_s)
    moving = "camera" in nuisance or "layout" in nuisance
    my, mx = (int(0.15 * H), int(0.15 * W)) if moving else (0, 0)
    info: dict = {}
    if "layout" in nuisance:
        rng = _rng(seed, number, "layout")
        scales = rng.uniform(0.55, 1.0, size=num_parts)
        w = np.maximum(2 * np.round(panel_w * scales / 2), 2).astype(int)
        h = np.maximum(2 * np.round(panel_h * scales / 2), 2).astype(int)
        boxes = [box_of(k, int(a), int(b)) for k, (a, b) in enumerate(zip(w, h))]
        fig_w = np.array([b[2] - b[0] for b in boxes])
        slack = 0.97 * W - fig_w.sum()
        if slack < 0:  # cannot happen with these scales and figures, but never overlap by construction
            slack = 0.0
        gaps = rng.dirichlet(np.ones(num_parts + 1)) * slack
        left = 0.015 * W + np.cumsum(np.concatenate([[0.0], fig_w[:-1] + gaps[1:-1]])) + gaps[0]
        x = np.round(mx + left - np.array([b[0] for b in boxes])).astype(int)
        y = np.round(my + rng.uniform(0.0, 1.0, size=num_parts) * (H - h)).astype(int)
        drift = np.stack([np.stack([0.04 * wk * smooth_path(rng, times_s, (0.03, 0.15)),
                                    0.02 * hk * smooth_path(rng, times_s, (0.03, 0.15))], axis=1)
                          for wk, hk in zip(w, h)], axis=1)
        layout = Layout(x, y, w, h, np.round(drift).astype(int))
        info["layout_scales"] = [round(float(s), 3) for s in scales]
    else:
        layout = Layout(mx + panel_w * np.arange(num_parts), np.full(num_parts, my), np.full(num_parts, panel_w),
                        np.full(num_parts, panel_h), np.zeros((T, num_parts, 2), int))
    d = NuisanceDraws(nuisance, (my, mx), layout, info=info)
    if "camera" in nuisance:
        rng = _rng(seed, number, "camera")
        zoom = 1.06 + 0.06 * smooth_path(rng, times_s, (0.02, 0.12))
        # the view pans over what the zoom leaves free, plus a little of the room beyond the frame (the margin)
        shake_x = 0.004 * W * smooth_path(rng, times_s, (4.0, 9.0))
        shake_y = 0.006 * H * smooth_path(rng, times_s, (4.0, 9.0))
        pan_x = (W / 2 * (1 - 1 / zoom) + 0.03 * W) * smooth_path(rng, times_s, (0.02, 0.1))
        pan_y = (H / 2 * (1 - 1 / zoom) + 0.03 * H) * smooth_path(rng, times_s, (0.02, 0.1))
        cx = mx + W / 2 + pan_x + shake_x
        cy = my + H / 2 + pan_y + shake_y
        d.camera = Camera(cx, cy, zoom)
    if "background" in nuisance:
        rng = _rng(seed, number, "background")
        d.background = str(rng.choice(sorted(BACKGROUNDS)))
        d.background_crop = (float(rng.uniform()), float(rng.uniform()), float(rng.uniform(1.0, 1.6)))
        d.background_gain = float(rng.uniform(0.45, 0.85))
        info["background"] = d.background
    if "lighting" in nuisance:
        rng = _rng(seed, number, "lighting")
        tint = rng.uniform(0.8, 1.15, size=3)
        slow = 1.0 + 0.15 * smooth_path(rng, times_s, (0.05, 0.3))
        flicker = 1.0 + rng.uniform(0.0, 0.04) * np.sin(2 * np.pi * rng.uniform(1.0, 4.0) * np.asarray(times_s))
        d.gains = (tint[None, :] * (slow * flicker)[:, None]).astype(np.float32)
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        side = rng.uniform(-0.3, 0.3)
        vign = rng.uniform(0.0, 0.35)
        r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
        d.light_map = ((1.0 + side * (xx / W - 0.5) * 2) * (1.0 - vign * r2 / 2)).astype(np.float32)
    if "noise" in nuisance:
        d.noise_sigma = float(_rng(seed, number, "noise").uniform(2.0, 7.0))
    if "compression" in nuisance:
        rng = _rng(seed, number, "compression")
        d.jpeg_quality = int(rng.integers(15, 46))
        d.resolution = float(rng.uniform(0.45, 0.8))
        d.crf = int(rng.integers(28, 35))
    return d


@functools.lru_cache(maxsize=len(BACKGROUNDS))
def load_background(name: str) -> np.ndarray:
    """A background photograph ``uint8 [H, W, 3]`` from scikit-image's wheel (read offline)."""
    from importlib import resources

    from PIL import Image

    try:
        path = resources.files("skimage.data") / BACKGROUNDS[name][0]
        with resources.as_file(path) as p, Image.open(p) as im:
            return np.asarray(im.convert("RGB"))
    except (ModuleNotFoundError, FileNotFoundError, OSError) as e:
        raise DataError(f"--nuisance background needs scikit-image's sample photographs ({e}); "
                        "pip install scikit-image") from e


def check_backgrounds() -> None:
    """Raise :class:`DataError` now if the background photographs cannot be read."""
    load_background(sorted(BACKGROUNDS)[0])

