"""Render one cartoon performer per part, side by side, whose motion is a function of the notes it plays.

What the picture encodes (so music is genuinely predictable from video):

- pitch: the "hand" marker's height along the fingerboard / tube, linear in MIDI pitch over the
  instrument's range (high notes near the top);
- onsets: strings reverse the bow at every onset (bow position is linear in the note's elapsed fraction);
  woodwinds and brass strike a key/valve that springs back; every instrument body brightens at the attack;
- loudness: bow stroke length, breath circle / bell size and body brightness follow the note envelope;
- instrument family: colour and shape (strings: brown fingerboard + bow; woodwinds: dark tube + breath
  circle; brass: golden tube + bell), with a hue per instrument.

Drawing is plain numpy slicing on a pre-rendered static background, so a 20 s clip takes well under a
second to draw.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

FAMILY_COLOURS = {  # background, instrument body
    "strings": ((46, 30, 24), (150, 90, 45)),
    "woodwinds": ((22, 32, 50), (120, 125, 140)),
    "brass": ((44, 40, 18), (215, 170, 60)),
}
SKIN = (200, 170, 150)
# per-instrument accent (hand marker, breath, bell) so instruments within a family differ too
ACCENTS = {
    "vn": (255, 230, 200), "va": (255, 200, 150), "vc": (240, 170, 120), "db": (220, 140, 100),
    "fl": (190, 230, 255), "ob": (150, 255, 200), "cl": (120, 180, 255), "sax": (200, 160, 255),
    "bn": (120, 255, 230), "tpt": (255, 250, 160), "hn": (255, 210, 120), "tbn": (255, 180, 90),
    "tba": (255, 150, 60),
}


@dataclass
class PlayerState:
    """Per-frame state of one player, all arrays [T].

    Attributes:
        pitch_pos: pitch as a fraction of the instrument's range (0 = lowest, 1 = highest); kept after a
            note ends (the hand stays where it was).
        loudness: envelope in [0, ~1.3]: attack accent, sustain at the note velocity, decay after release.
        since_onset_s: seconds since the latest onset (large before the first one).
        stroke: bow position in [-0.5, 0.5] (strings), reverses at every onset.
        note_index: index of the latest note started (-1 before the first), for per-note cues (fingering).
        breath: in [0, 1], rises over the 0.3 s before an onset that follows a rest of at least 0.25 s
            (a wind player's inhale, a string player's bow lift): timing, never pitch.
    """

    pitch_pos: np.ndarray
    loudness: np.ndarray
    since_onset_s: np.ndarray
    stroke: np.ndarray
    note_index: np.ndarray | None = None
    breath: np.ndarray | None = None


def player_state(notes: np.ndarray, midi: np.ndarray, velocities: np.ndarray, low_midi: int, high_midi: int,
                 times_s: np.ndarray) -> PlayerState:
    """Deterministic state of a player at ``times_s`` [T] from its notes [N, 3] (onset_s, f0_hz, duration_s)."""
    t = np.asarray(times_s, dtype=np.float64)
    n = len(notes)
    if n == 0:
        zeros = np.zeros(len(t))
        return PlayerState(zeros + 0.5, zeros, zeros + 1e3, zeros, np.full(len(t), -1), zeros)
    idx = np.searchsorted(notes[:, 0], t, side="right") - 1  # latest note started at or before t
    started = idx >= 0
    j = np.clip(idx, 0, n - 1)
    onset, dur = notes[j, 0], np.maximum(notes[j, 2], 1e-3)
    tau = np.where(started, t - onset, 1e3)
    pitch_pos = np.clip((midi[j] - low_midi) / max(high_midi - low_midi, 1), 0.0, 1.0)
    pitch_pos = np.where(started, pitch_pos, 0.5)
    vel = velocities[j]
    attack = np.clip(tau / 0.04, 0.0, 1.0) * (1.0 + 0.3 * np.exp(-tau / 0.08))
    after = np.maximum(tau - dur, 0.0)
    loud = np.where(started, vel * attack * np.exp(-after / 0.08), 0.0)
    frac = np.clip(tau / dur, 0.0, 1.0)
    direction = np.where(j % 2 == 0, 1.0, -1.0)
    stroke = np.where(started, direction * (frac - 0.5), -0.5)
    # breathing: the next onset, and how long the rest before it is (the first note follows a long rest)
    nxt = np.clip(idx + 1, 0, n - 1)
    has_next = idx + 1 < n
    prev_end = np.where(started, onset + dur, -1e3)
    rest = notes[nxt, 0] - prev_end
    lead = notes[nxt, 0] - t
    breath = np.where(has_next & (rest >= 0.25) & (lead < 0.3), np.clip(1.0 - lead / 0.3, 0.0, 1.0), 0.0)
    return PlayerState(pitch_pos, loud, tau, stroke, np.where(started, j, -1), breath)


def _disc_mask(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius: radius + 1, -radius: radius + 1]
    return (yy**2 + xx**2) <= radius**2


def _paint(img: np.ndarray, y0: int, y1: int, x0: int, x1: int, colour, alpha: float = 1.0) -> None:
    h, w = img.shape[:2]
    y0, y1, x0, x1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if y1 <= y0 or x1 <= x0:
        return
    if alpha >= 1.0:
        img[y0:y1, x0:x1] = colour
    else:
        region = img[y0:y1, x0:x1].astype(np.float32)
        img[y0:y1, x0:x1] = (region * (1 - alpha) + np.asarray(colour, np.float32) * alpha).astype(np.uint8)


def _disc(img: np.ndarray, cy: int, cx: int, radius: int, colour) -> None:
    radius = max(int(radius), 1)
    mask = _disc_mask(radius)
    h, w = img.shape[:2]
    y0, x0 = cy - radius, cx - radius
    ys, xs = slice(max(y0, 0), min(y0 + 2 * radius + 1, h)), slice(max(x0, 0), min(x0 + 2 * radius + 1, w))
    m = mask[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0]
    img[ys, xs][m] = colour


def _line(img: np.ndarray, y0: int, x0: int, y1: int, x1: int, colour, width: int = 3) -> None:
    """A thick straight segment (an arm): the pixels of its bounding box within width/2 of the segment."""
    h, w = img.shape[:2]
    r = width / 2.0
    by0, by1 = max(int(min(y0, y1) - r), 0), min(int(max(y0, y1) + r) + 1, h)
    bx0, bx1 = max(int(min(x0, x1) - r), 0), min(int(max(x0, x1) + r) + 1, w)
    if by1 <= by0 or bx1 <= bx0:
        return
    yy = np.arange(by0, by1, dtype=np.float32)[:, None] - y0
    xx = np.arange(bx0, bx1, dtype=np.float32)[None, :] - x0
    dy, dx = float(y1 - y0), float(x1 - x0)
    u = np.clip((yy * dy + xx * dx) / max(dy * dy + dx * dx, 1e-6), 0.0, 1.0)
    mask = (yy - u * dy) ** 2 + (xx - u * dx) ** 2 <= r * r
    img[by0:by1, bx0:bx1][mask] = colour


def panel_geometry(w: int, h: int) -> dict[str, int]:
    """Geometry of the painted performer in a ``w`` x ``h`` panel, in pixels relative to its top-left corner."""
    return {"neck_x0": int(w * 0.55), "neck_x1": int(w * 0.55) + max(w // 10, 6), "top": int(h * 0.12),
            "bottom": int(h * 0.88), "head_x": int(w * 0.28), "head_y": int(h * 0.18), "head_r": max(h // 16, 5)}


def painted_box(w: int, h: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` in a panel that holds everything :func:`draw_painted` can paint (bow swing included)."""
    g = panel_geometry(w, h)
    length = int(w * 0.22)
    centre = (g["neck_x0"] + g["neck_x1"]) // 2
    x0 = min(g["head_x"] - w // 7, centre - 2 * length)
    x1 = max(g["neck_x1"] + 14, centre + 2 * length)
    y0 = min(g["head_y"] - g["head_r"], g["top"] - 2 - int(3 + 0.1 * w))
    y1 = g["bottom"] + int(5 + 0.13 * w)
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def draw_painted_static(panel: np.ndarray, fam: str, opaque: bool = True) -> None:
    """The still part of a painted performer (head, torso; with ``opaque`` the family's panel colour too)."""
    h, w = panel.shape[:2]
    g = panel_geometry(w, h)
    if opaque:
        bg, _ = FAMILY_COLOURS[fam]
        panel[:] = bg
        panel[:, -1] = (0, 0, 0)  # separator between players
    # the player: head and torso, neutral grey so the instrument carries the colour
    _disc(panel, g["head_y"], g["head_x"], g["head_r"], SKIN)
    _paint(panel, g["head_y"] + g["head_r"] + 2, int(h * 0.8), g["head_x"] - w // 7, g["head_x"] + w // 7,
           (90, 90, 100))


def draw_painted(panel: np.ndarray, code: str, fam: str, st: PlayerState, i: int) -> None:
    """Frame ``i`` of a painted performer's moving parts into ``panel`` [h, w, 3] (a view; drawn in place).

    The hand marker's height along the fingerboard / tube is linear in pitch (the level ``painted``).
    """
    h, w = panel.shape[:2]
    g = panel_geometry(w, h)
    loud = float(st.loudness[i])
    tau = float(st.since_onset_s[i])
    _, body = FAMILY_COLOURS[fam]
    accent = np.asarray(ACCENTS.get(code, (255, 255, 255)), np.float32)
    glow = min(1.0, 0.35 + 0.65 * loud)
    body_c = tuple(int(c * glow) for c in body)
    x0, x1, top, bottom = g["neck_x0"], g["neck_x1"], g["top"], g["bottom"]
    _paint(panel, top, bottom, x0, x1, body_c)
    span = bottom - top - 12
    y_hand = int(round(bottom - 6 - float(st.pitch_pos[i]) * span))
    hand_c = tuple(int(c * (0.5 + 0.5 * min(loud, 1.0))) for c in accent)
    # the left arm reaches for the fingering position, so it too follows the pitch
    shoulder_y, shoulder_x = g["head_y"] + g["head_r"] + 8, g["head_x"] + w // 7
    _line(panel, shoulder_y, shoulder_x, y_hand, x0 - 6, SKIN, max(w // 40, 2))
    _paint(panel, y_hand - 5, y_hand + 5, x0 - 8, x1 + 8, hand_c)
    strike = np.exp(-tau / 0.06) if tau < 1.0 else 0.0
    if fam == "strings":
        y_bow = int(h * 0.7)
        length = int(w * 0.22 * (0.4 + 0.6 * min(loud, 1.0)))
        cx = (x0 + x1) // 2 + int(round(float(st.stroke[i]) * 2 * length))
        _paint(panel, y_bow - 3, y_bow + 3, cx - length, cx + length, (230, 220, 200))
        # the bow arm holds the frog end of the bow, so it swings with every stroke
        _line(panel, int(h * 0.45), g["head_x"] + w // 7, y_bow, cx - length, SKIN, max(w // 40, 2))
    elif fam == "woodwinds":
        _disc(panel, top - 2, (x0 + x1) // 2, int(3 + 0.08 * w * min(loud, 1.3)), tuple(accent * 0.9))
        key_x = x1 + 3 + int(6 * strike)
        _paint(panel, y_hand - 3, y_hand + 3, key_x, key_x + 6, (230, 230, 230))
    else:  # brass
        _disc(panel, bottom, (x0 + x1) // 2, int(5 + 0.1 * w * min(loud, 1.3)), tuple(int(c * glow) for c in body))
        piston_y = top + 10 + int(10 * strike)
        _paint(panel, piston_y, piston_y + 8, x1 + 2, x1 + 10, (240, 240, 240))


class Stage:
    """Draws frames for a band of painted players in equal, opaque panels (codes and families in playing order,
    left to right): the level ``painted`` without nuisance (the encoder presets calibrate on these frames)."""

    def __init__(self, instruments: list[str], families: list[str], width_per_player: int = 160,
                 height: int = 240):
        if width_per_player % 2 or height % 2:
            raise ValueError("width_per_player and height must be even (H.264 yuv420p)")
        if width_per_player < 64 or height < 96:
            raise ValueError("performer panels must be at least 64x96 pixels")
        self.instruments, self.families = list(instruments), list(families)
        self.w, self.h = width_per_player, height
        self.background = np.zeros((height, width_per_player * len(instruments), 3), np.uint8)
        for p, fam in enumerate(self.families):
            draw_painted_static(self.background[:, p * self.w: (p + 1) * self.w], fam)

    def draw(self, states: list[PlayerState], i: int) -> np.ndarray:
        """Frame ``i`` [H, W·P, 3] uint8 from the players' states."""
        img = self.background.copy()
        for p, (code, fam, st) in enumerate(zip(self.instruments, self.families, states)):
            draw_painted(img[:, p * self.w: (p + 1) * self.w], code, fam, st, i)
        return img


def render_frames(stage: Stage, states: list[PlayerState]) -> Iterator[np.ndarray]:
    """Yield the frames [H, W·P, 3] uint8 one at a time (for streaming into the video encoder)."""
    num = len(states[0].loudness) if states else 0
    for i in range(num):
        yield stage.draw(states, i)
