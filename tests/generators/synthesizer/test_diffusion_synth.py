"""The notes -> log-mel diffusion synthesizer: conditioning, DDPM loss, DDIM sampling, vocoders, checkpoints,
and training through the one accelerate loop on the synthetic benchmark."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vitmusic import cli
from vitmusic.config import DiffusionConfig, load_config
from vitmusic.errors import ConfigError
from vitmusic.generators.midi.export import notes_to_midi
from vitmusic.generators.midi.transcription import instrument_index
from vitmusic.generators.synthesizer.diffusion import (
    DiffusionSynth,
    GriffinLimVocoder,
    Vocoder,
    beta_schedule,
    ddim_timesteps,
    harmonic_templates,
    load_diffusion_synth,
    log_mel,
    mel_from_log,
    num_frames,
    piano_roll,
)

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
# small enough for a fast CPU test, same code paths as the presets
TINY = DiffusionConfig(hidden_dim=32, num_layers=3, dilation_cycle=2, train_timesteps=100, sample_steps=5,
                       griffin_lim_iters=4, num_pitches=60, min_midi=30)


def tiny_model(seed=0, **kw):
    torch.manual_seed(seed)
    return DiffusionSynth(TINY, **kw)


def roll_batch(cfg=TINY, frames=40):
    notes = [np.array([[0.0, 440.0, 0.3], [0.3, 220.0, 0.3]]), np.array([[0.1, 330.0, 0.4]])]
    rolls = torch.from_numpy(np.stack([piano_roll(n, frames, cfg) for n in notes]))
    return rolls, torch.tensor([instrument_index("vn"), instrument_index("vc")])


def test_piano_roll_shapes_and_positions():
    rate = TINY.sample_rate / TINY.hop_length  # 62.5 frames/s
    notes = np.array([[0.1, 440.0, 0.2], [0.2, 110.0, 0.1], [0.0, 20000.0, 1.0], [0.0, 220.0, 0.1]])
    roll = piano_roll(notes, 50, TINY)
    K = TINY.num_pitches
    assert roll.shape == (2 * K, 50) and roll.dtype == np.float32
    total = 0
    for midi, on_s, dur_s in ((69, 0.1, 0.2), (45, 0.2, 0.1), (57, 0.0, 0.1)):
        on = np.flatnonzero(roll[midi - TINY.min_midi])
        total += len(on)
        assert abs(on[0] - on_s * rate) <= 1 and abs(len(on) - dur_s * rate) <= 1
        assert np.array_equal(on, np.arange(on[0], on[-1] + 1))  # one contiguous run
        assert np.flatnonzero(roll[K + midi - TINY.min_midi]).tolist() == [on[0]]  # its onset
    assert roll[:K].sum() == total and roll[K:].sum() == 3  # the 20 kHz note is dropped
    # a note carried over from before the window sounds from frame 0 without an onset
    carried = piano_roll(notes, 50, TINY, carried_over=True)
    assert np.array_equal(carried[:K], roll[:K]) and carried[K + 57 - TINY.min_midi].sum() == 0
    assert num_frames(16000, 256) == log_mel(np.zeros(16000), TINY).shape[1] == 63


def test_log_mel_round_trip_and_harmonic_templates():
    sr = TINY.sample_rate
    t = np.arange(sr) / sr
    x = log_mel(0.5 * np.sin(2 * np.pi * 440 * t), TINY)
    assert x.shape == (TINY.n_mels, 63) and x.min() >= -1 and x.max() <= 1 and x.max() > 0
    mel = mel_from_log(x, TINY)
    assert np.allclose(log_mel(np.zeros(sr), TINY), -1) and not mel_from_log(-np.ones((4, 3)), TINY).any()
    assert np.allclose(20 * np.log10(mel[x > -0.99]), TINY.db_min + (x[x > -0.99] + 1) * 50, atol=1e-3)
    tpl = harmonic_templates(TINY)
    assert tpl.shape == (TINY.num_pitches, TINY.n_mels) and np.allclose(tpl.max(1), 1)
    # the fundamental of A4 is the strongest band of the template and of the real tone
    assert tpl[69 - TINY.min_midi].argmax() == x[:, 10:-10].mean(1).argmax()


def test_beta_schedules_and_ddim_timesteps():
    for kind in ("cosine", "linear"):
        b = beta_schedule(kind, 1000)
        assert b.shape == (1000,) and (b > 0).all() and (b < 1).all()
        ab = torch.cumprod(1 - b, 0)
        assert ab[0] > 0.99 and ab[-1] < 1e-3 and (ab[1:] < ab[:-1]).all()
    with pytest.raises(ConfigError):
        beta_schedule("quadratic", 10)
    assert ddim_timesteps(100, 5) == [99, 74, 50, 25, 0]
    assert ddim_timesteps(100, 1) == [99] and len(set(ddim_timesteps(1000, 1000))) == 1000
    with pytest.raises(ConfigError):
        ddim_timesteps(100, 0)


def test_ddpm_loss_finite_and_decreasing():
    model = tiny_model()
    rolls, inst = roll_batch()
    sr, n = TINY.sample_rate, 40 * TINY.hop_length - 1
    t = np.arange(n) / sr
    tones = [0.3 * np.sin(2 * np.pi * f * t) * (t < 0.4) for f in (440.0, 330.0)]
    mel = torch.from_numpy(np.stack([log_mel(y, TINY) for y in tones]))  # [2, M, 40]
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 30:] = False

    def fixed_loss():  # the same diffusion steps and noise every time
        with torch.no_grad():
            return np.mean([float(torch.manual_seed(s) and model(mel, rolls, inst, mask)) for s in range(8)])

    before = fixed_loss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(1)
    for _ in range(25):
        loss = model(mel, rolls, inst, mask)
        assert loss.ndim == 0 and torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        opt.step()
    assert np.isfinite(before) and fixed_loss() < 0.6 * before


def test_ddim_sampling_shape_determinism_and_steps():
    model = tiny_model()
    rolls, inst = roll_batch()
    calls = []
    orig = model.denoise
    model.denoise = lambda *a: calls.append(1) or orig(*a)
    a = model.sample(rolls, inst, steps=7, seed=3)
    assert a.shape == (2, TINY.n_mels, 40) and len(calls) == 7
    assert a.min() >= -1 and a.max() <= 1
    calls.clear()
    b = model.sample(rolls, inst, seed=3)  # config default: 5 steps
    assert len(calls) == 5
    assert torch.equal(a, model.sample(rolls, inst, steps=7, seed=3))
    assert not torch.equal(a, model.sample(rolls, inst, steps=7, seed=4))
    assert not torch.equal(a, b)
    # eta > 0 adds seeded noise: still reproducible with its seed
    c = model.sample(rolls, inst, steps=4, seed=1, eta=1.0)
    assert torch.equal(c, model.sample(rolls, inst, steps=4, seed=1, eta=1.0))
    assert not torch.equal(c, model.sample(rolls, inst, steps=4, seed=1, eta=0.0))


def test_griffin_lim_vocoder_length_and_pitch():
    sr = TINY.sample_rate
    t = np.arange(int(0.5 * sr)) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    voc = GriffinLimVocoder(TINY, n_iter=16)
    assert isinstance(voc, Vocoder)
    for n in (len(tone), len(tone) - 100, len(tone) + 300):
        y = voc(mel_from_log(log_mel(tone, TINY), TINY), n)
        assert y.shape == (n,) and y.dtype == np.float32 and np.isfinite(y).all()
    spec = np.abs(np.fft.rfft(y[: len(tone)]))
    assert abs(np.fft.rfftfreq(len(tone), 1 / sr)[spec.argmax()] - 440) < 20
    assert np.array_equal(y, voc(mel_from_log(log_mel(tone, TINY), TINY), len(tone) + 300))  # seeded phases
    assert not voc(np.zeros((TINY.n_mels, 10), np.float32), 2000).any()


def test_pluggable_vocoder_and_synthesize_midi():
    seen = []

    def vocoder(mel, num_samples):
        seen.append(mel.shape)
        return np.full(num_samples, 0.1, np.float32)

    model = tiny_model(vocoder=vocoder)
    pm = notes_to_midi([np.array([[0.1, 440.0, 0.5]]), np.array([[0.2, 220.0, 1.0], [5.0, 220.0, 1.0]]),
                        np.zeros((0, 3))], ["vn", "vc", "fl"])
    y = model.synthesize(pm, 1.3, steps=3)
    n = round(1.3 * TINY.sample_rate)
    assert y.shape == (n,) and len(seen) == 2  # the empty flute track is not rendered
    assert seen[0] == (TINY.n_mels, num_frames(n, TINY.hop_length))
    assert np.allclose(y, 0.89)  # two constant tracks summed, peak-normalised
    assert np.array_equal(model.synthesize(pm, 1.3, steps=3, normalize=False), np.full(n, 0.2, np.float32))
    with pytest.raises(ConfigError):
        model.synthesize(pm, 1.0, instruments=["vn"])
    with pytest.raises(ConfigError):
        model.synthesize(pm, [1.0])  # type: ignore[arg-type]


def test_synthesize_griffin_lim_deterministic():
    model = tiny_model()
    pm = notes_to_midi([np.array([[0.0, 440.0, 0.4]])], ["vn"])
    a = model.synthesize(pm, 0.5, steps=2, seed=5)
    assert a.shape == (8000,) and np.isfinite(a).all() and np.abs(a).max() == pytest.approx(0.89)
    assert np.array_equal(a, model.synthesize(pm, 0.5, steps=2, seed=5))


def test_save_load_round_trip_identical_samples(tmp_path):
    model = tiny_model(seed=2)
    rolls, inst = roll_batch()
    out = model.save_pretrained(tmp_path / "synth", extra={"note": "x"})
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((out / "config.json").read_text())
    assert meta["kind"] == "diffusion_synth" and meta["note"] == "x" and meta["model"]["hidden_dim"] == 32
    assert "alphas_cumprod" not in load_file(out / "model.safetensors")
    loaded = load_diffusion_synth(out)
    assert loaded.sample_rate == TINY.sample_rate and loaded.config == TINY
    assert torch.equal(model.sample(rolls, inst, steps=4, seed=0), loaded.sample(rolls, inst, steps=4, seed=0))


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_diffusion_synth(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no diffusion synthesizer"):
        load_diffusion_synth(tmp_path)
    out = tiny_model().save_pretrained(tmp_path / "m")
    meta = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**meta, "kind": "transcription"}))
    with pytest.raises(ConfigError, match="not a diffusion synthesizer"):
        load_diffusion_synth(out)
    meta["model"]["hidden_dim"] = 48
    (out / "config.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="cannot load the weights"):
        load_diffusion_synth(out)


def test_config_checks():
    assert load_config(CONFIGS / "tiny-diffusion.yaml").task == "diffusion"
    for bad in ("diffusion.schedule=quad", "diffusion.kernel_size=4", "diffusion.fmax_hz=9000",
                "diffusion.eta=2", "diffusion.sample_steps=0", "diffusion.db_min=30"):
        with pytest.raises(ConfigError):
            load_config(CONFIGS / "tiny-diffusion.yaml", [bad])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from vitmusic.data.manifest import prepare_manifest
    from vitmusic.data.synth.writer import generate_benchmark

    root = tmp_path_factory.mktemp("diffusion_data")
    generate_benchmark(root / "synth", 4, seed=1, duration_s=3.0, source="melodies", sample_rate=16000,
                       progress=False, plot=False)
    prepare_manifest(root / "synth", root / "prepared", clip_s=1.5, ratios=(0.5, 0.5, 0.0), plot=False,
                     progress=False)
    return root / "prepared"


def test_train_through_the_loop_writes_checkpoints(prepared, tmp_path, capsys):
    run = tmp_path / "run"
    overrides = [f"data.manifest={prepared}", f"train.output_dir={run}", "train.max_steps=4",
                 "train.save_every=2", "train.eval_every=2", "train.batch_size=4", "train.log_with=none",
                 "diffusion.hidden_dim=16", "diffusion.num_layers=2", "diffusion.segment_s=0.5",
                 "diffusion.sample_steps=2", "diffusion.griffin_lim_iters=2"]
    rc = cli.main(["train", "--config", str(CONFIGS / "tiny-diffusion.yaml"), "--no-progress", *overrides])
    assert rc == 0
    final = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert final == run / "final"
    for folder in (run / "checkpoints" / "step_2", run / "checkpoints" / "step_4", final):
        assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    meta = json.loads((final / "config.json").read_text())
    assert meta["config"]["task"] == "diffusion" and meta["step"] == 4
    history = json.loads((run / "history.json").read_text())
    assert any("val_loss" in h and np.isfinite(h["val_loss"]) for h in history)
    synth = load_diffusion_synth(run)  # the run folder resolves to final/
    step2 = load_diffusion_synth(run / "checkpoints" / "step_2")
    assert synth.config.hidden_dim == 16
    w_final, w_step2 = load_file(final / "model.safetensors"), load_file(run / "checkpoints/step_2/model.safetensors")
    assert any(not torch.equal(w_final[k], w_step2[k]) for k in w_final)  # it trained between the two
    pm = notes_to_midi([np.array([[0.0, 330.0, 0.5]])], ["fl"])
    y = synth.synthesize(pm, 0.75, steps=2)
    assert y.shape == (12000,) and np.isfinite(y).all() and step2.sample_rate == 16000


def test_task_examples_and_crops(prepared):
    from vitmusic.training.tasks.diffusion import build_task, collate_stems

    config = load_config(CONFIGS / "tiny-diffusion.yaml", [f"data.manifest={prepared}", "diffusion.segment_s=0.5"])
    task = build_task(config, progress=False)
    ds = task.train_dataset()
    assert len(ds) > 0 and len(task.val_dataset()) > 0
    item = ds[0]
    seg = round(0.5 * 16000 / 256)
    assert item["mel"].shape == (64, seg) and item["roll"].shape == (2 * 88, seg)
    whole = task.val_dataset()[0]
    assert whole["mel"].shape == (64, num_frames(round(1.5 * 16000), 256))
    batch = collate_stems([item, whole])
    assert batch["mel"].shape == (2, 64, whole["mel"].shape[1])
    assert batch["mask"][0].sum() == seg and batch["mask"][1].all()
    # a crop's roll is the roll of the whole clip at the crop's frames (notes shifted to the crop start)
    torch.manual_seed(0)
    ex = task._train[0]
    full = piano_roll(ex["notes"], ex["mel"].shape[1], config.diffusion)
    crop = ds[0]
    match = [s for s in range(ex["mel"].shape[1] - seg + 1)
             if np.array_equal(ex["mel"][:, s:s + seg].astype(np.float32), crop["mel"].numpy())]
    assert match
    s = match[0]
    K = config.diffusion.num_pitches
    assert np.array_equal(crop["roll"][:K].numpy(), full[:K, s:s + seg])


def test_resumed_training_matches_uninterrupted(prepared, tmp_path):
    from vitmusic.training.loop import train
    from vitmusic.training.tasks.diffusion import build_task

    def config(run):
        return load_config(CONFIGS / "tiny-diffusion.yaml", [
            f"data.manifest={prepared}", f"train.output_dir={run}", "train.max_steps=4", "train.save_every=2",
            "train.eval_every=2", "train.batch_size=4", "train.log_with=none", "diffusion.hidden_dim=16",
            "diffusion.num_layers=2", "diffusion.segment_s=0.5"])

    whole = train(config(tmp_path / "a"), build_task(config(tmp_path / "a"), progress=False), progress=False)
    cb = config(tmp_path / "b")
    train(cb, build_task(cb, progress=False), progress=False, stop_after=2)
    assert not (tmp_path / "b" / "final").exists()
    resumed = train(cb, build_task(cb, progress=False), progress=False, resume=True)
    wa, wb = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
