"""Compose a piece's video: performers (one level of pitch cue) on a backdrop, then the camera's nuisance.

Per frame: the backdrop (plain, or a photograph) -> each performer drawn in its panel on a canvas larger than
the frame (where the layout put it, plus its drift) -> the camera's view of the canvas (pan, zoom, shake;
bilinear) -> lighting -> sensor noise -> compression. :meth:`Scene.boxes` gives every performer's box in
frame pixels, the annotation written next to the video.

The level ``painted`` without ``layout`` and ``background`` keeps the original opaque, family-coloured panels
(exactly the original pictures without any nuisance); otherwise performers are drawn over the backdrop.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np

from vitmusic.data.synth.figures import Figure, figure_box, phrase_sway
from vitmusic.data.synth.nuisance import (
    NUISANCE_SALT,
    NUISANCES,
    STAGE_COLOUR,
    NuisanceDraws,
    load_background,
)
from vitmusic.data.synth.performer import PlayerState, draw_painted, draw_painted_static, painted_box


def _backdrop(draws: NuisanceDraws, height: int, width: int) -> np.ndarray:
    if draws.background is None:
        img = np.empty((height, width, 3), np.uint8)
        img[:] = STAGE_COLOUR
        return img
    from PIL import Image

    photo = load_background(draws.background)
    fx, fy, zoom = draws.background_crop
    scale = zoom * max(height / photo.shape[0], width / photo.shape[1])
    size = (max(int(np.ceil(photo.shape[1] * scale)), width), max(int(np.ceil(photo.shape[0] * scale)), height))
    big = np.asarray(Image.fromarray(photo).resize(size, Image.BILINEAR))
    x0 = int(fx * (big.shape[1] - width))
    y0 = int(fy * (big.shape[0] - height))
    crop = big[y0:y0 + height, x0:x0 + width].astype(np.float32) * draws.background_gain
    return np.clip(np.rint(crop), 0, 255).astype(np.uint8)


def _view(canvas: np.ndarray, cx: float, cy: float, zoom: float, height: int, width: int) -> np.ndarray:
    """The camera's ``height`` x ``width`` view of ``canvas`` centred at (cx, cy), magnified ``zoom`` (bilinear)."""
    xs = cx + (np.arange(width) + 0.5 - width / 2) / zoom - 0.5
    ys = cy + (np.arange(height) + 0.5 - height / 2) / zoom - 0.5
    x0 = np.clip(np.floor(xs).astype(int), 0, canvas.shape[1] - 2)
    y0 = np.clip(np.floor(ys).astype(int), 0, canvas.shape[0] - 2)
    fx = np.clip(xs - x0, 0.0, 1.0).astype(np.float32)[None, :, None]
    fy = np.clip(ys - y0, 0.0, 1.0).astype(np.float32)[:, None, None]
    rows = canvas[y0].astype(np.float32) * (1 - fy) + canvas[y0 + 1].astype(np.float32) * fy
    return rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx


def part_box(level: str, instruments: list[str]):
    """``(part, w, h) -> (x0, y0, x1, y1)``: a performer's extent in its panel at ``level`` (for the layout)."""
    from vitmusic.data.urmp import INSTRUMENTS

    def box(k: int, w: int, h: int) -> tuple[int, int, int, int]:
        if level == "painted":
            return painted_box(w, h)
        return figure_box(instruments[k], INSTRUMENTS[instruments[k]].family, w, h)

    return box


class Scene:
    """Frames and performer boxes of one piece.

    Args:
        level: ``painted``, ``fingering`` or ``hidden`` (see :mod:`vitmusic.data.synth.figures`).
        instruments, families: URMP codes and families of the parts, left to right.
        midi: [N] MIDI pitches per part (the fingering cues).
        states: per-part :class:`PlayerState` at the frame times.
        draws: the piece's nuisance (:func:`vitmusic.data.synth.nuisance.draw_nuisance`).
        panel_w, panel_h: a performer's panel at scale 1 (the frame is ``panel_w * P`` x ``panel_h``).
        fps: frame rate (the phrase sway's time constant).
        noise_key: ``(seed, piece)``: the sensor noise of frame i is drawn from ``(seed, piece, salt, k, i)``.
    """

    def __init__(self, level: str, instruments: list[str], families: list[str], midi: list[np.ndarray],
                 states: list[PlayerState], draws: NuisanceDraws, panel_w: int, panel_h: int, fps: float,
                 noise_key: tuple[int, int] = (0, 0)) -> None:
        self.level, self.instruments, self.families = level, list(instruments), list(families)
        self.states, self.draws = states, draws
        self.W, self.H = panel_w * len(instruments), panel_h
        my, mx = draws.margin
        self.canvas_shape = (self.H + 2 * my, self.W + 2 * mx)
        self.opaque = level == "painted" and not {"layout", "background"} & set(draws.nuisance)
        self.figures = ([Figure(c, f, m, level) for c, f, m in zip(instruments, families, midi)]
                        if level != "painted" else None)
        self.sways = [phrase_sway(st.loudness, fps) for st in states] if self.figures else None
        self.backdrop = _backdrop(draws, *self.canvas_shape)
        self.noise_key = noise_key
        self.num_frames = len(states[0].loudness) if states else 0

    def box_in_panel(self, k: int, w: int, h: int) -> tuple[int, int, int, int]:
        """Performer ``k``'s extent in its ``w`` x ``h`` panel (:func:`painted_box` / :func:`figure_box`)."""
        if self.figures is None:
            return painted_box(w, h)
        return figure_box(self.instruments[k], self.families[k], w, h)

    def _panel(self, k: int, i: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of performer ``k``'s panel on the canvas at frame ``i`` (kept on the canvas)."""
        L = self.draws.layout
        w, h = int(L.w[k]), int(L.h[k])
        x = int(np.clip(L.x[k] + L.drift[i, k, 0], 0, self.canvas_shape[1] - w))
        y = int(np.clip(L.y[k] + L.drift[i, k, 1], 0, self.canvas_shape[0] - h))
        return x, y, w, h

    def canvas(self, i: int) -> np.ndarray:
        """The scene at frame ``i`` before the camera, uint8 [H + 2 my, W + 2 mx, 3]."""
        img = self.backdrop.copy()
        for k, (code, fam, st) in enumerate(zip(self.instruments, self.families, self.states)):
            x, y, w, h = self._panel(k, i)
            view = img[y:y + h, x:x + w]
            if self.figures is None:
                draw_painted_static(view, fam, opaque=self.opaque)
                draw_painted(view, code, fam, st, i)
            else:
                self.figures[k].draw(view, st, i, self.sways[k])
        return img

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i``, uint8 [H, W, 3]."""
        d = self.draws
        canvas = self.canvas(i)
        my, mx = d.margin
        if d.camera is not None:
            f = _view(canvas, float(d.camera.cx[i]), float(d.camera.cy[i]), float(d.camera.zoom[i]), self.H, self.W)
        elif d.gains is None and d.noise_sigma == 0 and d.jpeg_quality is None:
            return canvas[my:my + self.H, mx:mx + self.W]
        else:
            f = canvas[my:my + self.H, mx:mx + self.W].astype(np.float32)
        if d.gains is not None:
            f = f * d.light_map[..., None] * d.gains[i]
        if d.noise_sigma > 0:
            rng = np.random.default_rng([*self.noise_key, NUISANCE_SALT, NUISANCES.index("noise"), i])
            f = f + d.noise_sigma * rng.standard_normal(f.shape, dtype=np.float32)
        out = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        if d.jpeg_quality is not None:
            out = self._compress(out)
        return out

    def _compress(self, frame: np.ndarray) -> np.ndarray:
        from PIL import Image

        d = self.draws
        im = Image.fromarray(frame)
        small = (max(int(round(self.W * d.resolution)), 8), max(int(round(self.H * d.resolution)), 8))
        im = im.resize(small, Image.BILINEAR).resize((self.W, self.H), Image.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(d.jpeg_quality))
        buf.seek(0)
        with Image.open(buf) as j:
            return np.asarray(j.convert("RGB"))

    def boxes(self, i: int) -> np.ndarray:
        """Performer boxes at frame ``i``: int [P, 4] ``(x0, y0, x1, y1)`` in frame pixels, clipped to the frame."""
        d = self.draws
        my, mx = d.margin
        out = np.zeros((len(self.instruments), 4), np.int64)
        for k in range(len(self.instruments)):
            x, y, w, h = self._panel(k, i)
            b0, b1, b2, b3 = self.box_in_panel(k, w, h)
            X = np.array([x + b0, x + b2], np.float64)
            Y = np.array([y + b1, y + b3], np.float64)
            if d.camera is not None:
                z = float(d.camera.zoom[i])
                X = (X - float(d.camera.cx[i])) * z + self.W / 2
                Y = (Y - float(d.camera.cy[i])) * z + self.H / 2
            else:
                X, Y = X - mx, Y - my
            X, Y = np.clip(np.round(X), 0, self.W), np.clip(np.round(Y), 0, self.H)
            out[k] = (X[0], Y[0], X[1], Y[1])
        return out

    def frames(self) -> Iterator[np.ndarray]:
        for i in range(self.num_frames):
            yield self.frame(i)
