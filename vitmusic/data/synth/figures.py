"""Performers at a realistic scale for the levels ``fingering`` and ``hidden`` (the level ``painted`` is
:func:`vitmusic.data.synth.performer.draw_painted`).

In a video of a real violinist, flautist or trumpeter the pitch is in small finger positions, or not visible
at all, while timing (bow changes, breaths, attacks), dynamics (motion energy, bow speed) and who plays are.
These figures show an instrument at roughly its real size next to the body (a violin's fingerboard is about
a sixth of a seated player's height, a cello's a third) and play it as instruments are played:

- ``fingering``: the pitch shows only through instrument-like cues a few pixels large, and ambiguously, as it
  does on the real instrument:
  - strings: the left hand's *position* along the fingerboard (it shifts only when a note is out of reach)
    and a finger dot on one of four strings 1 px apart; the same note can be played on several strings
    and an open string shows no finger (:func:`string_fingerings`);
  - woodwinds: seven keys of 1-2 px along the tube, closed or open in a recorder-like pattern of the pitch
    class, plus a register key; every register above the second repeats the second's pattern
    (:func:`wind_fingerings`);
  - brass: the three valves' combination (or the trombone's slide position) picks a harmonic series, the
    lips (invisible) pick the partial: one valve pattern serves several pitches (:func:`brass_fingerings`);
- ``hidden``: the same figures with the fingering cues frozen (hand, keys, valves and slide never move with
  the pitch), so nothing in the picture depends on the pitch; onsets (bow reversals, a finger lift, an
  attack nudge), dynamics (bow length, body sway) and phrasing (a breath / bow lift before an entry) remain.

The two levels draw the same pixels except for the fingering cues.
"""

from __future__ import annotations

import functools

import numpy as np

from vitmusic.data.synth.performer import SKIN, PlayerState, _disc, _line, _paint, player_state

FIGURE_LEVELS = ("fingering", "hidden")

# open strings (MIDI), low to high
OPEN_STRINGS = {"vn": (55, 62, 69, 76), "va": (48, 55, 62, 69), "vc": (36, 43, 50, 57), "db": (28, 33, 38, 43)}
# lowest written note of the key pattern per woodwind (MIDI)
WIND_BASE = {"fl": 60, "ob": 58, "cl": 50, "sax": 49, "bn": 34}
# fundamental of the open (no valve) harmonic series per brass instrument (MIDI)
BRASS_FUNDAMENTAL = {"tpt": 46, "hn": 29, "tbn": 34, "tba": 22}
# valves pressed (1, 2, 3) to lower a partial by 0..6 semitones
VALVES_FOR_LOWERING = ((), (2,), (1,), (1, 2), (2, 3), (1, 3), (1, 2, 3))
# instrument length as a fraction of the panel height (a seated player fills most of it)
LENGTH = {"vn": 0.16, "va": 0.19, "vc": 0.34, "db": 0.42, "fl": 0.3, "ob": 0.26, "cl": 0.27, "sax": 0.28,
          "bn": 0.42, "tpt": 0.2, "hn": 0.12, "tbn": 0.26, "tba": 0.3}
BODY_COLOURS = {"strings": (120, 70, 35), "woodwinds": (35, 35, 40), "brass": (205, 165, 60)}
SILVER = (185, 185, 195)
CLOTHES = (70, 72, 84)
FINGER = (120, 80, 70)


# ---------------------------------------------------------------------------------------------- fingerings
def string_fingerings(midi: np.ndarray, code: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(string [N], semitones above the open string [N], hand position [N])`` of a string part's notes.

    The hand stays in its position (index finger ``position`` semitones above the nut; the four fingers reach
    ``position - 1 .. position + 5``, first position being 2) while the notes allow it, on the highest string
    that does; otherwise it shifts (third finger on the note) to the candidate position nearest the current
    one. Open strings (0 semitones) need no finger.
    """
    opens = np.asarray(OPEN_STRINGS[code])
    strings, semis, hands = [], [], []
    pos = 2
    for m in np.asarray(midi, dtype=int):
        n_all = m - opens
        ok = np.nonzero((n_all >= 0) & (n_all <= 19))[0]
        if len(ok) == 0:  # below the lowest string (or above reach): the nearest string's end
            s = 0 if m < opens[0] else len(opens) - 1
            n = int(np.clip(m - opens[s], 0, 19))
        else:
            reach = [s for s in ok if n_all[s] == 0 or pos - 1 <= n_all[s] <= pos + 5]
            if reach:
                s = int(max(reach))
            else:  # shift: the third finger on the note, on the string needing the smallest shift
                s = int(min(ok, key=lambda q: (abs(max(n_all[q] - 3, 2) - pos), -q)))
                pos = max(int(n_all[s]) - 3, 2)
            n = int(n_all[s])
        strings.append(s)
        semis.append(n)
        hands.append(pos)
    return np.asarray(strings, int), np.asarray(semis, int), np.asarray(hands, int)


def wind_fingerings(midi: np.ndarray, code: str) -> np.ndarray:
    """Keys closed ``[N, 8]`` bool: seven tone holes top to bottom and the register key.

    Diatonic steps above the instrument's base note close fewer holes from the bottom up, chromatic steps
    use a cross fingering; the register key opens from the second octave on, and higher octaves reuse it.
    """
    diatonic = {0: 7, 2: 6, 4: 5, 5: 4, 7: 3, 9: 2, 11: 1}
    patterns = {}
    for s in range(12):
        if s in diatonic:
            c = diatonic[s]
            patterns[s] = [True] * c + [False] * (7 - c)
        else:  # cross fingering: one hole open above a closed one
            c = diatonic[s - 1]
            patterns[s] = [True] * (c - 2) + [False, True] + [False] * (7 - c)
    out = []
    for m in np.asarray(midi, dtype=int):
        rel = max(int(m) - WIND_BASE[code], 0)
        out.append(patterns[rel % 12] + [rel >= 12])
    return np.asarray(out, bool).reshape(-1, 8)


def brass_fingerings(midi: np.ndarray, code: str) -> np.ndarray:
    """Semitones ``[N]`` by which valves (or the slide) lower the nearest partial at or above each note.

    Partials 2-16 of the open instrument; the lowering is 0-6 (valve combination, or slide position - 1).
    """
    f = BRASS_FUNDAMENTAL[code]
    partials = f + 12 * np.log2(np.arange(2, 17))
    out = []
    for m in np.asarray(midi, dtype=float):
        d = np.round(partials - m)
        ok = d[(d >= 0) & (d <= 6)]
        out.append(int(ok.min()) if len(ok) else 0)
    return np.asarray(out, int)


def fingering_cues(code: str, family: str, midi: np.ndarray) -> np.ndarray:
    """Per-note cue rows ``[N, C]`` int for :class:`Figure` (see the fingering functions)."""
    if family == "strings":
        return np.stack(string_fingerings(midi, code), axis=1) if len(midi) else np.zeros((0, 3), int)
    if family == "woodwinds":
        return wind_fingerings(midi, code).astype(int)
    return brass_fingerings(midi, code)[:, None] if len(midi) else np.zeros((0, 1), int)


def _neutral_cue(family: str) -> np.ndarray:
    """The cue of ``hidden`` (and before the first note): first position on the D (A) string, the upper
    three keys closed, no valve."""
    if family == "strings":
        return np.array([1, 0, 2])
    if family == "woodwinds":
        return np.array([1, 1, 1, 1, 0, 0, 0, 0])
    return np.array([0])


# ---------------------------------------------------------------------------------------------- drawing
@functools.lru_cache(maxsize=256)
def figure_box(code: str, family: str, w: int, h: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` in a ``w`` x ``h`` panel that holds everything a :class:`Figure` of ``code`` draws.

    Measured, not guessed: the union of the pixels the figure paints over its range of pitches, bow strokes,
    loudness and breaths, widened by the largest phrase sway.
    """
    from vitmusic.data.urmp import INSTRUMENTS

    info = INSTRUMENTS[code]
    midi = np.arange(info.low_midi, info.high_midi + 1)
    notes = np.stack([np.arange(len(midi)) * 0.5 + 0.3, 440.0 + 0 * midi, np.full(len(midi), 0.4)], axis=1)
    times = np.concatenate([notes[:, 0] + d for d in (-0.1, 0.0, 0.05, 0.2, 0.35)])
    st = player_state(notes, midi, np.full(len(midi), 1.0), info.low_midi, info.high_midi, np.sort(times))
    fig = Figure(code, family, midi, "fingering")
    used = np.zeros((h, w), bool)
    for i in range(len(st.loudness)):
        panel = np.zeros((h, w, 3), np.uint8)
        fig.draw(panel, st, i)
        used |= panel.any(axis=-1)
    ys, xs = np.nonzero(used)
    sway = int(np.ceil(4.0 * h / 240)) + 1
    return (max(int(xs.min()) - sway, 0), max(int(ys.min()) - sway, 0), min(int(xs.max()) + 1 + sway, w),
            min(int(ys.max()) + 1, h))


class Figure:
    """One performer of the levels ``fingering``/``hidden`` in a ``w`` x ``h`` panel.

    Args:
        code, family: the URMP instrument code and its family.
        midi: [N] the part's MIDI pitches (only the level ``fingering`` looks at them).
        level: ``fingering`` or ``hidden``.
    """

    def __init__(self, code: str, family: str, midi: np.ndarray, level: str) -> None:
        if level not in FIGURE_LEVELS:
            raise ValueError(f"unknown figure level {level!r}")
        self.code, self.family, self.level = code, family, level
        self.neutral = _neutral_cue(family)
        self.cues = fingering_cues(code, family, np.asarray(midi)) if level == "fingering" else None

    def cue(self, st: PlayerState, i: int) -> np.ndarray:
        j = int(st.note_index[i]) if st.note_index is not None else -1
        if self.cues is None or j < 0 or j >= len(self.cues):
            return self.neutral
        return self.cues[j]

    def draw(self, panel: np.ndarray, st: PlayerState, i: int, sway: np.ndarray | None = None) -> None:
        """Frame ``i`` of the performer into ``panel`` [h, w, 3] (a view; unpainted pixels are left alone).

        ``sway`` [T] (px at scale 1) is the slow lean that follows the phrase dynamics.
        """
        h, w = panel.shape[:2]
        sc = h / 240.0
        loud = float(min(st.loudness[i], 1.2))
        tau = float(st.since_onset_s[i])
        attack = float(np.exp(-tau / 0.06)) if tau < 1.0 else 0.0
        breath = float(st.breath[i]) if st.breath is not None else 0.0
        dx = int(round((float(sway[i]) if sway is not None else 0.0) * sc))
        dy = -int(round(2 * sc * breath))  # shoulders rise with a breath
        hx, hy, r = int(0.45 * w) + dx, int(0.2 * h) + dy, max(int(h / 18), 3)
        shoulder_y = hy + r + max(int(4 * sc), 1)
        sl, sr = hx - int(0.15 * w), hx + int(0.15 * w)  # viewer's left (player's right), viewer's right
        _paint(panel, hy + r + 1, int(0.8 * h), sl, sr, CLOTHES)
        _paint(panel, int(0.8 * h), int(0.95 * h), sl + int(0.02 * w), sr - int(0.02 * w), (50, 50, 58))
        _disc(panel, hy, hx, r, SKIN)
        arm = max(int(3 * sc), 1)
        cue = self.cue(st, i)
        draw = {"strings": self._strings, "woodwinds": self._winds, "brass": self._brass}[self.family]
        draw(panel, sc, hx, hy, r, shoulder_y, sl, sr, arm, cue, loud, tau, attack, breath, float(st.stroke[i]))

    # ------------------------------------------------------------------ families
    def _strings(self, panel, sc, hx, hy, r, shoulder_y, sl, sr, arm, cue, loud, tau, attack, breath, stroke):
        h, w = panel.shape[:2]
        string, semis, pos = (int(c) for c in cue)
        L = int(LENGTH[self.code] * h)
        scale_len = L / 0.7  # the fingerboard covers ~70 % of the vibrating string
        fb = max(int(round(4 * sc)), 4)  # fingerboard width: four strings ~1 px apart
        body_c, board_c, string_c = BODY_COLOURS["strings"], (30, 22, 18), (215, 205, 170)
        vib = int(round(np.sin(2 * np.pi * 5.5 * tau))) if (tau > 0.25 and loud > 0.3) else 0  # vibrato: timing only

        def along(n):  # distance of semitone n from the nut, in px
            return int(round(scale_len * (1.0 - 2.0 ** (-n / 12.0))))

        bow_len = int(0.3 * h)
        travel = bow_len * (0.4 + 0.6 * min(loud, 1.0))
        lift = int(round(2 * sc * breath))
        if self.code in ("vn", "va"):  # held horizontally under the chin, scroll to the viewer's right
            y = shoulder_y + max(int(2 * sc), 1)
            x_bridge = hx + int(0.02 * w)
            x_nut = x_bridge + L
            _paint(panel, y - int(0.035 * h), y + int(0.035 * h), x_bridge - int(0.09 * h), x_bridge + int(0.03 * h),
                   body_c)
            _paint(panel, y - fb // 2, y - fb // 2 + fb, x_bridge, x_nut, board_c)
            rows = [y - fb // 2 + k for k in range(4)]  # the highest string on top
            for k in range(4):
                _paint(panel, rows[k], rows[k] + 1, x_bridge - int(0.04 * h), x_nut, string_c)
            hand_x = x_nut - along(pos) + vib
            _paint(panel, y + 1, y + 1 + max(int(7 * sc), 2), hand_x - max(int(4 * sc), 2), hand_x + max(int(3 * sc), 1),
                   SKIN)
            _line(panel, shoulder_y, sr, y + max(int(5 * sc), 2), hand_x, SKIN, arm)
            if semis > 0 and loud > 0.05:
                fx = x_nut - along(semis) + vib
                _paint(panel, rows[3 - string], rows[3 - string] + 1, fx - 1, fx + 1, FINGER)
            # the bow crosses the strings near the bridge, nearly upright; its contact point slides with the
            # stroke, its tilt follows the string (1 px per string), it lifts during a rest
            cx = x_bridge - int(0.02 * h)
            contact = stroke * travel
            top = y - int(bow_len / 2 + contact) - lift
            bottom = top + bow_len
            tilt = (string - 1.5) * max(sc, 0.5) * 2
            _line(panel, top, cx - int(round(tilt)), bottom, cx + int(round(tilt)), (225, 215, 190), max(int(sc), 1))
            _line(panel, shoulder_y + int(0.1 * h), sl, bottom, cx + int(round(tilt)), SKIN, arm)
        else:  # cello / bass: upright in front of the player, scroll at the head's height
            x = hx + int(0.12 * w)
            y_nut = hy - r + int(0.02 * h)
            y_bridge = y_nut + L
            _paint(panel, y_bridge - int(0.08 * h), min(y_bridge + int(0.2 * h), h - 2),
                   x - int(0.07 * h), x + int(0.07 * h), body_c)
            _paint(panel, y_nut, y_bridge, x - fb // 2, x - fb // 2 + fb, board_c)
            cols = [x - fb // 2 + k for k in range(4)]
            for k in range(4):
                _paint(panel, y_nut, y_bridge + int(0.05 * h), cols[k], cols[k] + 1, string_c)
            hand_y = y_nut + along(pos) + vib
            _paint(panel, hand_y - max(int(3 * sc), 1), hand_y + max(int(4 * sc), 2), x + fb // 2 + 1,
                   x + fb // 2 + 1 + max(int(6 * sc), 2), SKIN)
            _line(panel, shoulder_y, sr, hand_y, x + fb // 2 + 2, SKIN, arm)
            if semis > 0 and loud > 0.05:
                fy = y_nut + along(semis) + vib
                _paint(panel, fy - 1, fy + 1, cols[string], cols[string] + 1, FINGER)
            y_bow = y_bridge + int(0.02 * h)
            contact = stroke * travel
            left = x - int(bow_len / 2 + contact)
            tilt = (string - 1.5) * max(sc, 0.5) * 2
            _line(panel, y_bow - int(round(tilt)) - lift, left, y_bow + int(round(tilt)) - lift, left + bow_len,
                  (225, 215, 190), max(int(sc), 1))
            _line(panel, shoulder_y + int(0.1 * h), sl, y_bow - lift, left, SKIN, arm)

    def _keys(self, panel, xs, ys, cue, sc, tau):
        """Seven tone holes and the register key at the given pixel positions."""
        size = max(int(round(1.5 * sc)), 1)
        lifted = 0 if tau > 0.06 else 6  # a finger lifts at every attack (the same finger whatever the pitch)
        for k in range(8):
            closed = bool(cue[k]) and k != lifted
            colour = FINGER if closed else SILVER
            _paint(panel, ys[k], ys[k] + size, xs[k], xs[k] + size, colour)

    def _winds(self, panel, sc, hx, hy, r, shoulder_y, sl, sr, arm, cue, loud, tau, attack, breath, stroke):
        h, w = panel.shape[:2]
        L = int(LENGTH[self.code] * h)
        tube = max(int(round(4 * sc)), 2)
        nudge = int(round(2 * sc * attack))  # the instrument dips at an attack
        colour = SILVER if self.code == "fl" else BODY_COLOURS["woodwinds"] if self.code != "sax" else (200, 160, 70)
        if self.code == "fl":  # transverse, to the viewer's left at mouth height
            y = hy + r // 2 + nudge
            x0 = hx + int(0.03 * w)
            _paint(panel, y - tube // 2, y - tube // 2 + tube, x0 - L, x0, colour)
            xs = [x0 - int(L * (0.35 + 0.08 * k)) for k in range(7)] + [x0 - int(L * 0.25)]
            ys = [y - tube // 2] * 7 + [y + tube // 2]
            if colour == SILVER:
                _paint(panel, y - tube // 2, y - tube // 2 + 1, x0 - L, x0, (150, 150, 160))
            hands = (xs[1], xs[5])
            for hxk in hands:
                _paint(panel, y + 1, y + 1 + max(int(5 * sc), 2), hxk - max(int(3 * sc), 1), hxk + max(int(3 * sc), 1),
                       SKIN)
            _line(panel, shoulder_y, sl, y + 2, hands[1], SKIN, arm)
            _line(panel, shoulder_y, sr, y + 2, hands[0], SKIN, arm)
        else:  # held down-forward from the mouth
            x = hx
            y0 = hy + r // 2 + nudge
            _paint(panel, y0, y0 + L, x - tube // 2, x - tube // 2 + tube, colour)
            if self.code in ("sax", "cl", "ob"):
                bell = max(int(0.02 * h), 2)
                _paint(panel, y0 + L - bell, y0 + L + bell, x - tube, x + tube, colour)
            xs = [x - tube // 2 + tube - 1] * 7 + [x - tube // 2]
            ys = [y0 + int(L * (0.2 + 0.08 * k)) for k in range(7)] + [y0 + int(L * 0.12)]
            hands = (ys[1], ys[5])
            for hyk in hands:
                _paint(panel, hyk - max(int(2 * sc), 1), hyk + max(int(3 * sc), 2), x + tube // 2,
                       x + tube // 2 + max(int(5 * sc), 2), SKIN)
            _line(panel, shoulder_y, sr, hands[0], x + tube, SKIN, arm)
            _line(panel, shoulder_y, sl, hands[1], x + tube, SKIN, arm)
        self._keys(panel, xs, ys, cue, sc, tau)

    def _brass(self, panel, sc, hx, hy, r, shoulder_y, sl, sr, arm, cue, loud, tau, attack, breath, stroke):
        h, w = panel.shape[:2]
        L = int(LENGTH[self.code] * h)
        colour = BODY_COLOURS["brass"]
        tube = max(int(round(4 * sc)), 2)
        nudge = int(round(2 * sc * attack))
        lower = int(cue[0])
        y = hy + r // 2 + nudge
        vw, vh = max(int(round(1.5 * sc)), 1), max(int(round(4 * sc)), 2)
        if self.code == "tbn":  # the slide: each position lowers a semitone, ~3.5 % of a player's height
            x0 = hx - int(0.02 * w)
            _paint(panel, y - tube // 2, y - tube // 2 + tube, x0 - int(0.4 * L), x0, colour)  # bell section
            _disc(panel, y, x0 - int(0.4 * L), max(int(0.03 * h), 2), colour)
            slide = int(0.6 * L + lower * 0.035 * h)
            _paint(panel, y + tube, y + tube + max(tube // 2, 1), x0 - slide, x0, SILVER)
            hand_x = x0 - slide + max(int(3 * sc), 1)
            _paint(panel, y + tube, y + tube + max(int(5 * sc), 2), hand_x - 2, hand_x + 2, SKIN)
            _line(panel, shoulder_y, sl, y + tube + 2, hand_x, SKIN, arm)
            _line(panel, shoulder_y, sr, y + 2, x0 - 3, SKIN, arm)
            return
        if self.code == "tba":  # upright in front of the torso, bell up
            x = hx + int(0.05 * w)
            top = y + int(0.02 * h)
            _paint(panel, top, top + L, x - int(0.05 * h), x + int(0.05 * h), colour)
            _disc(panel, top, x, max(int(0.06 * h), 3), colour)
            vx, vy = x + int(0.05 * h) + 1, top + int(0.3 * L)
            valves = [(vx, vy + k * (vw + 1)) for k in range(3)]
        else:  # trumpet (horizontal to the viewer's left), horn (coiled at the chest)
            if self.code == "tpt":
                x0 = hx - int(0.02 * w)
                _paint(panel, y - tube // 2, y - tube // 2 + tube, x0 - L, x0, colour)
                _disc(panel, y, x0 - L, max(int(0.025 * h), 2), colour)
                valves = [(x0 - int(L * (0.45 + 0.08 * k)), y - tube // 2 - vh) for k in range(3)]
            else:
                cx, cy = hx + int(0.02 * w), shoulder_y + int(0.08 * h) + nudge
                _disc(panel, cy, cx, max(L // 2, 3), colour)
                _disc(panel, cy, cx, max(L // 2 - tube, 1), CLOTHES)
                _disc(panel, cy + L // 2, cx + L // 2, max(int(0.03 * h), 2), colour)  # bell
                valves = [(cx - L // 4 + k * (vw + 1), cy - L // 2 - vh + tube) for k in range(3)]
        pressed = set(VALVES_FOR_LOWERING[lower])
        for k, (vx, vy) in enumerate(valves, start=1):
            down = max(int(sc), 1) if k in pressed else 0
            _paint(panel, vy + down, vy + vh, vx, vx + vw, SILVER)
        hand_x, hand_y = valves[1][0], valves[1][1] + vh
        _paint(panel, hand_y, hand_y + max(int(4 * sc), 2), hand_x - 2, hand_x + 3, SKIN)
        _line(panel, shoulder_y, sl, hand_y + 1, hand_x, SKIN, arm)
        _line(panel, shoulder_y, sr, y + 2, hx, SKIN, arm)


def phrase_sway(loudness: np.ndarray, fps: float, amplitude_px: float = 4.0) -> np.ndarray:
    """Body lean [T] (px at scale 1): the loudness smoothed over ~0.7 s, so it follows phrase dynamics."""
    x = np.asarray(loudness, dtype=np.float64)
    if len(x) == 0:
        return x
    alpha = 1.0 - np.exp(-1.0 / (0.7 * float(fps)))
    out = np.empty_like(x)
    acc = 0.0
    for i, v in enumerate(x):  # one-pole low-pass: the body lags the sound
        acc += alpha * (min(v, 1.2) - acc)
        out[i] = acc
    return amplitude_px * out

