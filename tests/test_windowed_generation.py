"""Windowed generation with continuation (tiny MusicGen, CPU)."""

from __future__ import annotations

import pytest
import torch

from vitmusic.generators.musicgen import load_generator
from vitmusic.generators.presets import materialize_tiny_generator
from vitmusic.generators.windowed import Window, generate_long_codes, plan_windows


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return load_generator(materialize_tiny_generator("tiny-musicgen", root=tmp_path_factory.mktemp("presets")))


def test_plan_windows_known_answer():
    # 7.3 s at 50 fps = 365 frames, window 4 s = 200, context 1 s = 50 -> 200 + 150 + 15
    assert plan_windows(365, 200, 50) == [Window(0, 0, 200, 0), Window(1, 200, 150, 50), Window(2, 350, 15, 50)]
    assert plan_windows(120, 200, 50) == [Window(0, 0, 120, 0)]
    with pytest.raises(ValueError):
        plan_windows(100, 50, 50)


@pytest.mark.parametrize("duration_s", [7.3, 3.01])
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
    S = 15  # one token every 0.5 s
    times = torch.arange(S) * 0.5
    cond = torch.randn(1, S, gen.cond_dim)
    codes, windows = generate_long_codes(gen, cond, None, times, duration_s=7.3, window_s=4.0, context_s=1.0,
                                         seed=1, progress=False, do_sample=False)
    assert [w.num_frames for w in windows] == [200, 150, 15] and len(calls) == 3
    assert codes.shape == (1, 4, 365)
    assert calls[0]["prompt"] is None
    # the second window is prompted with exactly the last second (50 frames) of the first window's codes
    assert torch.equal(calls[1]["prompt"], calls[0]["out"][:, :, -50:])
    assert torch.equal(calls[2]["prompt"], codes[:, :, 300:350])
    # the output is the contiguous concatenation of the windows' new codes
    assert torch.equal(codes, torch.cat([c["out"] for c in calls], dim=-1))
    # window 1 spans frames [150, 350) = [3.0 s, 7.0 s): tokens 6..13
    assert torch.equal(calls[1]["cond"], cond[:, 6:14])
    assert torch.equal(calls[0]["cond"], cond[:, 0:8])
