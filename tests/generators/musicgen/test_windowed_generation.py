"""Windowed generation with continuation (tiny MusicGen, CPU)."""

from __future__ import annotations

import pytest
import torch

from vitmusic.generators.musicgen.model import load_generator
from vitmusic.generators.musicgen.presets import materialize_tiny_generator
from vitmusic.generators.musicgen.windowed import Window, generate_long_codes, plan_windows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return load_generator(materialize_tiny_generator("tiny-musicgen", root=tmp_path_factory.mktemp("presets")))


def test_plan_windows_known_answer():
    # 7.3 s at 50 fps = 365 frames, window 4 s = 200, context 1 s = 50 -> 200 + 150 + 15
    assert plan_windows(365, 200, 50) == [Window(0, 0, 200, 0), Window(1, 200, 150, 50), Window(2, 350, 15, 50)]
    assert plan_windows(120, 200, 50) == [Window(0, 0, 120, 0)]
    with pytest.raises(ValueError):
        plan_windows(100, 50, 50)


@pytest.mark.parametrize("duration_s", [7.3, 0.77])
def test_generate_long_exact_length(gen, duration_s):
    S = 30
    cond = torch.randn(1, S, gen.cond_dim)
    times = torch.linspace(0, duration_s, S)
    wav = gen.generate_long(cond, None, times, duration_s=duration_s, window_s=4.0, context_s=1.0, seed=0,
                            progress=False, top_k=20)
    assert wav.ndim == 1 and wav.shape[0] == round(duration_s * gen.sample_rate)
    assert torch.isfinite(wav).all()


def test_windows_continue_from_previous_tail_and_see_their_tokens(gen, monkeypatch):
    calls = []
    original = gen.generate

    def spy(cond, cond_mask, **kw):
        out = original(cond, cond_mask, **kw)
        calls.append({"cond": cond, "prompt": kw.get("prompt_codes"), "out": out})
        return out

    monkeypatch.setattr(gen, "generate", spy)
    S = 14  # one token every 0.25 s
    times = torch.arange(S) * 0.25
    cond = torch.randn(1, S, gen.cond_dim)
    codes, windows = generate_long_codes(gen, cond, None, times, duration_s=3.3, window_s=1.6, context_s=0.4,
                                         seed=1, progress=False, do_sample=False)
    assert [w.num_frames for w in windows] == [80, 60, 25] and len(calls) == 3
    assert codes.shape == (1, 4, 165)
    assert calls[0]["prompt"] is None
    # the second window is prompted with exactly the last 0.4 s (20 frames) of the first window's codes
    assert torch.equal(calls[1]["prompt"], calls[0]["out"][:, :, -20:])
    assert torch.equal(calls[2]["prompt"], codes[:, :, 120:140])
    # the output is the contiguous concatenation of the windows' new codes
    assert torch.equal(codes, torch.cat([c["out"] for c in calls], dim=-1))
    # window 1 spans frames [60, 140) = [1.2 s, 2.8 s): tokens 5..11; window 0 spans [0, 1.6 s): tokens 0..6
    assert torch.equal(calls[1]["cond"], cond[:, 5:12])
    assert torch.equal(calls[0]["cond"], cond[:, 0:7])


def test_generate_long_melody_exact_length(tmp_path):
    melody = load_generator(materialize_tiny_generator("tiny-musicgen-melody", root=tmp_path))
    cond = torch.randn(1, 10, melody.cond_dim)
    wav = melody.generate_long(cond, None, torch.linspace(0, 1.3, 10), duration_s=1.3, window_s=0.8, context_s=0.2,
                               guidance_scale=3.0, seed=0, progress=False)
    assert wav.shape == (round(1.3 * melody.sample_rate),) and torch.isfinite(wav).all()
