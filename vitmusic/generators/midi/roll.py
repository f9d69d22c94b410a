"""Piano-roll targets of a part's notes and their decoding back to notes (the transcription head's I/O).

Targets come from a part's notes ``[N, 3]`` (onset_s, f0_hz, duration_s) at the encoder rate ``rate_hz``.
Step ``i`` shows the video at ``i / rate_hz``, so a note from ``on`` to ``off`` seconds is first visible at
step ``ceil(on * rate_hz)`` (its onset step; rounding would label half the onsets one frame before anything
can be seen) and sounds up to step ``ceil(off * rate_hz)`` (its offset step, excluded from the frame target).
:func:`decode_notes` inverts this, placing a note that starts at step ``a`` half a step earlier, in the middle
of the interval its true onset lies in: a perfect target roll decodes back to the notes within half a step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OUTPUTS", "Roll", "decode_notes", "decode_parts", "hz_to_midi", "midi_to_hz", "notes_to_roll"]

OUTPUTS = ("onset", "frame", "offset", "velocity")


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def hz_to_midi(f0_hz: np.ndarray | float) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(np.asarray(f0_hz, dtype=np.float64) / 440.0)


# ---------------------------------------------------------------------------------------------- targets


@dataclass
class Roll:
    """Piano-roll targets of one part, float32 ``[T, K]`` each (``K`` pitches from ``min_midi``)."""

    onset: np.ndarray
    frame: np.ndarray
    offset: np.ndarray
    velocity: np.ndarray  # velocity in [0, 1] at the onset steps, 0 elsewhere

    def stack(self) -> np.ndarray:
        """``[4, T, K]`` in the order of :data:`OUTPUTS`."""
        return np.stack([self.onset, self.frame, self.offset, self.velocity])


def notes_to_roll(
    notes: np.ndarray,
    num_steps: int,
    rate_hz: float,
    *,
    min_midi: int = 21,
    num_pitches: int = 88,
    velocities: np.ndarray | None = None,
    carried_over: bool = False,
) -> Roll:
    """Onset / frame / offset / velocity targets of one part at ``rate_hz`` steps per second.

    Args:
        notes: ``[N, 3]`` (onset_s, f0_hz, duration_s), times relative to step 0; notes outside
            ``[min_midi, min_midi + num_pitches)`` or starting after the last step are dropped.
        num_steps: ``T``.
        rate_hz: steps per second (the encoder's embedding rate).
        min_midi, num_pitches: pitch axis (default: the 88 piano keys, MIDI 21-108).
        velocities: ``[N]`` in [0, 1]; default 0.8 (URMP annotations carry none).
        carried_over: notes at time 0 started before step 0 (a clip cut from a longer piece): they sound
            from step 0 but get no onset target (no attack is visible there).

    Returns:
        :class:`Roll` with ``[T, K]`` arrays.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    vel = np.full(len(notes), 0.8) if velocities is None else np.asarray(velocities, dtype=np.float64)
    shape = (int(num_steps), int(num_pitches))
    onset, frame, offset, velocity = (np.zeros(shape, np.float32) for _ in range(4))
    for (on_s, f0_hz, dur_s), v in zip(notes, vel):
        if not (f0_hz > 0 and dur_s >= 0):
            continue
        k = int(np.round(hz_to_midi(f0_hz))) - min_midi
        start = int(np.ceil(on_s * rate_hz - 1e-6))
        if not 0 <= k < num_pitches or not 0 <= start < num_steps:
            continue
        stop = max(start + 1, int(np.ceil((on_s + dur_s) * rate_hz - 1e-6)))
        frame[start:stop, k] = 1.0
        if not (carried_over and on_s <= 1e-6):
            onset[start, k] = 1.0
            velocity[start, k] = float(v)
        if stop < num_steps:
            offset[stop, k] = 1.0
    return Roll(onset, frame, offset, velocity)


# ---------------------------------------------------------------------------------------------- decoding


def _peaks(prob: np.ndarray, threshold: float) -> np.ndarray:
    """bool ``[T, K]``: local maxima over time above ``threshold`` (the first step of a plateau)."""
    prev = np.concatenate([np.full((1, prob.shape[1]), -np.inf), prob[:-1]])
    nxt = np.concatenate([prob[1:], np.full((1, prob.shape[1]), -np.inf)])
    return (prob >= threshold) & (prob > prev) & (prob >= nxt)


def decode_notes(
    onset_prob: np.ndarray,
    frame_prob: np.ndarray,
    offset_prob: np.ndarray | None = None,
    *,
    rate_hz: float,
    min_midi: int = 21,
    onset_threshold: float = 0.5,
    frame_threshold: float = 0.5,
    offset_threshold: float = 0.5,
    velocity: np.ndarray | None = None,
    default_velocity: float = 0.8,
    t0_s: float = 0.0,
    frame_onsets: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Notes of one part from its probabilities: onset peak picking, frame continuation, offset.

    A note of pitch ``k`` starts at every onset peak (a local maximum over time of ``onset_prob[:, k]`` at or
    above ``onset_threshold``), and lasts while ``frame_prob`` stays at or above ``frame_threshold``; it
    ends earlier at an offset peak or at the next onset of the same pitch (a repeated note).

    Args:
        onset_prob, frame_prob, offset_prob: ``[T, K]`` probabilities (``offset_prob`` optional).
        rate_hz: steps per second; step ``i`` is at ``t0_s + i / rate_hz`` seconds, and a note whose onset
            (offset) step is ``a`` (``b``) is placed at ``t0_s + max(a - 0.5, 0) / rate_hz`` for ``(b - a) / rate_hz``
            seconds (see the module docstring).
        min_midi: MIDI pitch of column 0.
        velocity: ``[T, K]`` predicted velocity in [0, 1] (read at the onset step), or None for
            ``default_velocity``.
        frame_onsets: when > 0, a run of at least this many sounding steps that no onset peak started is a
            note too (for weak onset predictions: a change of pitch still shows in the frames; repeated
            notes still need onset peaks). 0: Onsets and Frames' rule, no note without an onset.

    Returns:
        ``(notes [N, 3] (onset_s, f0_hz, duration_s) sorted by onset then pitch, velocities [N] in [0, 1])``.
    """
    onset_prob = np.asarray(onset_prob, dtype=np.float64)
    frame_prob = np.asarray(frame_prob, dtype=np.float64)
    if onset_prob.ndim != 2 or onset_prob.shape != frame_prob.shape:
        raise ValueError(f"onset and frame probabilities must be equal [T, K], got {onset_prob.shape} and "
                         f"{frame_prob.shape}")
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    T, K = onset_prob.shape
    starts = _peaks(onset_prob, onset_threshold) if T else np.zeros((0, K), bool)
    ends = (_peaks(np.asarray(offset_prob, dtype=np.float64), offset_threshold) if offset_prob is not None and T
            else np.zeros((T, K), bool))
    sounding = frame_prob >= frame_threshold
    runs: list[tuple[int, int, int, bool]] = []  # (start step, stop step, pitch column, started by frames)
    for k in range(K):
        if not starts[:, k].any() and not (frame_onsets and sounding[:, k].any()):
            continue
        start, from_frames = -1, False
        for t in range(T):
            if starts[t, k]:
                if start >= 0:
                    runs.append((start, t, k, from_frames))
                start, from_frames = t, False
            elif start >= 0 and (not sounding[t, k] or ends[t, k]):
                runs.append((start, t, k, from_frames))
                start = -1
            elif start < 0 and frame_onsets and sounding[t, k] and (t == 0 or not sounding[t - 1, k]):
                start, from_frames = t, True
        if start >= 0:
            runs.append((start, T, k, from_frames))
    found = [(a, b, k) for a, b, k, by_frames in runs if not (by_frames and b - a < frame_onsets)]
    found.sort()
    notes = np.asarray([(t0_s + max(a - 0.5, 0.0) / rate_hz, float(midi_to_hz(min_midi + k)), (b - a) / rate_hz)
                        for a, b, k in found], dtype=np.float64).reshape(-1, 3)
    if velocity is None:
        vel = np.full(len(found), float(default_velocity))
    else:
        velocity = np.asarray(velocity, dtype=np.float64)
        vel = np.asarray([velocity[a, k] for a, _, k in found], dtype=np.float64)
    return notes, np.clip(vel, 0.0, 1.0)


def decode_parts(probs: dict[str, np.ndarray], mask: np.ndarray, *, rate_hz: float, min_midi: int,
                 **thresholds: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Notes of every part of one clip from ``[P, T, K]`` probabilities and the valid steps ``mask [P, T]``.

    Returns:
        per part ``(notes [N, 3], velocities [N])`` (see :func:`decode_notes`; ``thresholds`` go to it).
    """
    out = []
    for k in range(probs["onset"].shape[0]):
        n = int(np.asarray(mask[k]).sum())
        out.append(decode_notes(probs["onset"][k, :n], probs["frame"][k, :n], probs["offset"][k, :n],
                                rate_hz=rate_hz, min_midi=min_midi, **thresholds))
    return out
