"""Part slots: equal slots vs performers located from the pixels, on the synthetic benchmark's unequal layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitmusic.config import load_config
from vitmusic.data.synth.nuisance import draw_nuisance
from vitmusic.data.synth.performer import player_state
from vitmusic.data.synth.scene import Scene, part_box
from vitmusic.data.synth.scores import make_performance
from vitmusic.data.urmp import INSTRUMENTS
from vitmusic.errors import VitmusicError
from vitmusic.generators.midi.slots import (
    SLOT_LAYOUTS,
    PartSlotEncoder,
    crop_resize,
    cut_parts,
    equal_boxes,
    locate_parts,
    split_slots,
)


class Echo:  # a per-frame "encoder": the mean colour of each frame
    frames_per_step, embed_dim = 1, 1

    def sample_fps(self, rate_hz=None):
        return 30.0

    def fingerprint(self):
        return {"kind": "echo"}

    def encode_frames(self, f, mask=None):
        f = torch.as_tensor(np.asarray(f), dtype=torch.float32)
        return f.mean(dim=(2, 3, 4))[..., None], torch.ones(f.shape[:2], dtype=torch.bool)


def test_part_slots_split_left_to_right():
    frames = np.zeros((4, 6, 9, 3), np.uint8)
    for k in range(3):
        frames[:, :, 3 * k:3 * (k + 1)] = 10 * (k + 1)
    slots = split_slots(frames, 3)
    assert slots.shape == (3, 4, 6, 3, 3)
    assert [int(s.mean()) for s in slots] == [10, 20, 30]
    enc = PartSlotEncoder(Echo(), 3)
    e, m = enc.encode_frames(frames[None])
    assert e.shape == (1, 4, 3) and m.shape == (1, 4)
    assert e[0, 0].tolist() == [10.0, 20.0, 30.0]


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def _column_iou(a, b) -> float:
    """IoU of the horizontal extents: what a slot is about (which columns belong to which performer)."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    return inter / (max(a[2], b[2]) - min(a[0], b[0]))


def _clip(number: int, level: str, nuisance: tuple[str, ...], seconds: float = 4.0, w: int = 112, h: int = 168):
    """Frames ``[T, H, W, 3]`` of a 4-part piece and its performers' boxes ``[T, P, 4]`` (no video encoding)."""
    rng = np.random.default_rng([9, number])
    perf = make_performance(rng, "melodies", seconds, (90.0, 112.0), 0.04, chorale=(9, number))
    times = np.arange(int(seconds * 30)) / 30.0
    infos = [INSTRUMENTS[c] for c in perf.instruments]
    states = [player_state(p.notes, p.midi, p.velocities, i.low_midi, i.high_midi, times)
              for p, i in zip(perf.parts, infos)]
    draws = draw_nuisance(9, number, nuisance, len(perf.parts), w, h, times, part_box(level, perf.instruments))
    scene = Scene(level, perf.instruments, [i.family for i in infos], [p.midi for p in perf.parts], states, draws,
                  w, h, 30.0, (9, number))
    frames = np.stack([scene.frame(i) for i in range(len(times))])
    boxes = np.stack([scene.boxes(i) for i in range(len(times))])
    return frames, boxes


@pytest.mark.parametrize("level, nuisance", [("painted", ("layout",)),
                                             ("fingering", ("layout", "camera", "lighting", "noise")),
                                             ("hidden", ("layout", "background", "camera"))])
def test_located_slots_find_the_performers_on_unequal_layouts(level, nuisance):
    located, equal, located_2d, equal_2d = [], [], [], []
    for number in (1, 2, 3):
        frames, boxes = _clip(number, level, nuisance)
        truth = boxes.mean(axis=0)  # the clip's mean box per performer
        P = truth.shape[0]
        found = locate_parts(frames, P)
        assert found.shape == (P, 4)
        assert np.all(np.diff((found[:, 0] + found[:, 2]) / 2) > 0)  # left to right
        slots = equal_boxes(*frames.shape[1:3], P)
        for k in range(P):
            located.append(_column_iou(found[k], truth[k]))
            equal.append(_column_iou(slots[k], truth[k]))
            located_2d.append(_iou(found[k], truth[k]))
            equal_2d.append(_iou(slots[k], truth[k]))
            cx, cy = (found[k, 0] + found[k, 2]) / 2, (found[k, 1] + found[k, 3]) / 2
            assert truth[k, 0] <= cx <= truth[k, 2] and truth[k, 1] <= cy <= truth[k, 3], (k, found[k], truth[k])
    summary = {"located": np.round(located, 2), "equal": np.round(equal, 2)}
    assert np.mean(located) >= 0.65 and min(located) >= 0.4, summary
    assert np.mean(located) > np.mean(equal) + 0.15, summary
    assert np.mean(located_2d) > np.mean(equal_2d) + 0.1, (np.mean(located_2d), np.mean(equal_2d))


def test_no_motion_falls_back_to_equal_slots():
    still = np.full((10, 48, 90, 3), 80, np.uint8)
    np.testing.assert_array_equal(locate_parts(still, 3), equal_boxes(48, 90, 3))
    np.testing.assert_array_equal(locate_parts(still[:1], 2), equal_boxes(48, 90, 2))
    # padding frames (masked out) do not count as motion
    backdrop = np.random.default_rng(0).integers(0, 120, (48, 90, 3), dtype=np.uint8)  # still, textured
    moving = np.repeat(backdrop[None], 8, axis=0)
    for t in range(6):
        moving[t, 10:30, 60 + t:70 + t] = 255
    moving[6:] = 255  # padding: masked out, else it would be motion everywhere
    boxes = locate_parts(moving, 1, mask=np.arange(8) < 6)
    x0, y0, x1, y1 = boxes[0]
    assert x0 <= 61 and x1 >= 74 and y0 <= 11 and y1 >= 29, boxes  # the square's path ...
    assert x0 >= 30 and (x1 - x0) * (y1 - y0) < 0.4 * 48 * 90, boxes  # ... and not the whole frame


def test_cut_parts_shapes_and_crop_resize():
    frames = np.random.default_rng(0).integers(0, 255, (6, 40, 90, 3), dtype=np.uint8)
    eq = cut_parts(frames, 3, "equal")
    np.testing.assert_array_equal(eq, split_slots(frames, 3))
    loc = cut_parts(frames, 3, "located")
    assert loc.shape == eq.shape == (3, 6, 40, 30, 3) and loc.dtype == np.uint8
    # a crop of a whole slot at its own size is the slot itself
    np.testing.assert_array_equal(crop_resize(frames, np.array([30, 0, 60, 40]), 40, 30), eq[1])
    with pytest.raises(VitmusicError, match="unknown part slots"):
        cut_parts(frames, 3, "grid")


def test_located_encoder_fingerprint_and_frames():
    assert PartSlotEncoder(Echo()).fingerprint()["part_slots"] == SLOT_LAYOUTS["equal"]
    assert PartSlotEncoder(Echo(), slots="located").fingerprint()["part_slots"] == SLOT_LAYOUTS["located"]
    frames, _ = _clip(1, "painted", ("layout",), seconds=1.0, w=64, h=96)
    enc = PartSlotEncoder(Echo(), 4, slots="located")
    e, m = enc.encode_frames(frames[None], np.ones((1, len(frames)), bool))
    assert e.shape == (1, len(frames), 4) and m.shape == (1, len(frames))
    crops = cut_parts(frames, 4, "located")
    np.testing.assert_allclose(e[0, :, 2].numpy(), crops[2].astype(np.float32).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_slots_config_key():
    assert load_config(None, []).transcription.slots == "equal"
    assert load_config(None, ["transcription.slots=located"]).transcription.slots == "located"
    with pytest.raises(VitmusicError):
        load_config(None, ["transcription.slots=grid"])
