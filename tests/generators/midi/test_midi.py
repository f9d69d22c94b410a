"""Notes -> MIDI -> audio, and ``vitmusic generate`` of a MIDI run end to end on a tiny trained run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vitmusic.cli import main
from vitmusic.data.urmp import INSTRUMENTS
from vitmusic.errors import ConfigError
from vitmusic.generators.midi.export import (
    check_fluidsynth,
    midi_to_parts,
    notes_to_midi,
    read_midi,
    render_midi,
    write_midi,
)
from vitmusic.inference.midi import instruments_from_name

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[3]
A4, C4 = 440.0, 261.6255653005986


def _parts():
    return ([np.array([[0.0, A4, 0.5], [0.5, 2 * A4, 0.25]]), np.array([[0.25, C4 / 2, 0.5]]),
             np.array([[0.1, C4, 0.3]])], ["vn", "vc", "tpt"])


def test_notes_to_midi_one_track_per_part_with_its_program(tmp_path):
    parts, codes = _parts()
    pm = notes_to_midi(parts, codes, velocities=[np.array([1.0, 0.5]), None, None])
    assert [i.program for i in pm.instruments] == [INSTRUMENTS[c].gm_program for c in codes] == [40, 42, 56]
    assert [i.name for i in pm.instruments] == ["1 violin", "2 cello", "3 trumpet"]
    assert [n.pitch for n in pm.instruments[0].notes] == [69, 81]
    assert [n.velocity for n in pm.instruments[0].notes] == [127, 64]
    back, back_codes, vel = midi_to_parts(read_midi(write_midi(pm, tmp_path / "x.mid")))
    assert back_codes == codes
    for a, b in zip(parts, back):
        np.testing.assert_allclose(a, b, atol=2e-3)
    with pytest.raises(ConfigError, match="2 parts but 1"):
        notes_to_midi(parts[:2], ["vn"])
    with pytest.raises(ConfigError, match="unknown instrument code 'xx'"):
        notes_to_midi(parts[:1], ["xx"])


def test_builtin_rendering_exact_length_and_where_notes_sound():
    parts, codes = _parts()
    pm = notes_to_midi(parts, codes)
    sr = 16000
    y = render_midi(pm, sr, 1.7, synth="builtin")
    assert y.dtype == np.float32 and y.shape == (round(1.7 * sr),)
    assert np.max(np.abs(y)) == pytest.approx(0.89, abs=1e-3)
    rms = lambda a, b: float(np.sqrt(np.mean(y[int(a * sr): int(b * sr)] ** 2)))  # noqa: E731
    assert rms(0.1, 0.7) > 0.05 and rms(1.2, 1.7) < 1e-4  # sounding vs after the last release
    # explicit codes override the programs; silence stays silent
    assert render_midi(notes_to_midi([np.zeros((0, 3))], ["vn"]), sr, 0.5).max() == 0.0
    with pytest.raises(ConfigError, match="1 instrument codes for 3 MIDI tracks"):
        render_midi(pm, sr, 1.0, instruments=["vn"])
    with pytest.raises(ConfigError, match="unknown synth"):
        render_midi(pm, sr, 1.0, synth="piano")


def test_fluidsynth_rendering(tmp_path):
    try:
        check_fluidsynth()
    except ConfigError as e:
        pytest.skip(str(e))
    parts, codes = _parts()
    y = render_midi(notes_to_midi(parts, codes), 22050, 1.5, synth="fluidsynth")
    assert y.shape == (round(1.5 * 22050),) and np.max(np.abs(y)) > 0.5
    with pytest.raises(ConfigError, match="soundfont not found"):
        render_midi(notes_to_midi(parts, codes), 22050, 1.5, synth="fluidsynth", soundfont=tmp_path / "no.sf2")


def test_instruments_from_urmp_names():
    assert instruments_from_name("/x/Vid_01_Jupiter_vn_vc.mp4") == ["vn", "vc"]
    assert instruments_from_name("03_Melody_fl_cl.mp4") == ["fl", "cl"]
    assert instruments_from_name("holiday.mp4") is None


@pytest.fixture(scope="module")
def midi_run(tmp_path_factory):
    """A tiny transcription run trained for a few steps on two synthetic pieces (via the CLI)."""
    root = tmp_path_factory.mktemp("midi")
    synth, prepared = root / "synth", root / "prepared"
    assert main(["synth-data", "--out", str(synth), "--pieces", "2", "--duration", "2.5", "--source",
                 "melodies", "--sample-rate", "16000", "--width", "64", "--height", "96", "--no-plot",
                 "--no-progress"]) == 0
    assert main(["prepare", "--urmp", str(synth), "--out", str(prepared), "--clip-seconds", "1.0",
                 "--ratios", "1,0,0", "--no-plot"]) == 0
    run = root / "run"
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-midi.yaml"), f"data.manifest={prepared}",
                 f"extract.cache_dir={root / 'cache'}", f"train.output_dir={run}", "train.max_steps=3",
                 "train.eval_every=3", "train.save_every=3", "train.log_with=none", "transcription.hidden_dim=16",
                 "transcription.sample_rate=16000", "--no-progress"]) == 0
    videos = sorted(synth.glob("*/Vid_*.mp4"))
    return run, videos


def test_generate_midi_end_to_end(midi_run, tmp_path, capsys):
    from vitmusic.data.video import probe_video

    run, videos = midi_run
    out = tmp_path / "out.wav"
    assert main(["generate", "--path", "midi", "--video", str(videos[0]), "--checkpoint", str(run),
                 "--out", str(out), "--midi", str(tmp_path / "t.mid"), "--no-progress"]) == 0
    y, sr = sf.read(out)
    assert sr == 16000 and len(y) == round(probe_video(videos[0]).duration_s * 16000)
    pm = read_midi(tmp_path / "t.mid")
    programs = {INSTRUMENTS[c].gm_program for c in instruments_from_name(videos[0])}
    assert {i.program for i in pm.instruments} <= programs  # a part without notes has no track in the file
    assert str(tmp_path / "t.mid") in capsys.readouterr().out
    # batch mode over a folder: <name>.wav + <name>.mid each
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(videos[1], folder / videos[1].name)
    # the kind comes from the run folder: no --path needed
    assert main(["generate", "--videos", str(folder), "--checkpoint", str(run),
                 "--out-dir", str(tmp_path / "batch"), "--synth", "builtin", "--no-progress"]) == 0
    stem = videos[1].stem
    assert (tmp_path / "batch" / f"{stem}.wav").is_file() and (tmp_path / "batch" / f"{stem}.mid").is_file()
    assert json.loads((tmp_path / "batch" / "generate.json").read_text())["generator"]["path"] == "midi"


def test_pipeline_with_a_diffusion_synth_object(midi_run):
    from vitmusic.inference.midi import load_pipeline

    run, videos = midi_run

    class FakeDiffusion:
        sample_rate = 8000

        def synthesize(self, pm, duration_s, *, seed=0, instruments=None):
            self.instruments = instruments
            return np.ones(int(duration_s * self.sample_rate) - 7, np.float32)  # a little short

    pipe = load_pipeline(run, device="cpu")
    pipe.synth, pipe.diffusion = "diffusion", FakeDiffusion()
    wav = pipe.generate_video(videos[0], t0_s=0.5, t1_s=1.5)
    assert pipe.sample_rate == 8000 and wav.shape == (8000,)
    assert pipe.diffusion.instruments == instruments_from_name(videos[0])


def test_generate_midi_bad_inputs_exit_2_with_one_line(midi_run, tmp_path, capsys):
    run, videos = midi_run
    renamed = tmp_path / "holiday.mp4"
    shutil.copy(videos[0], renamed)
    musicgen_like = tmp_path / "other"
    shutil.copytree(run / "final", musicgen_like)
    meta = json.loads((musicgen_like / "config.json").read_text())
    meta["extra"]["config"]["task"] = "musicgen"
    (musicgen_like / "config.json").write_text(json.dumps(meta))
    base = ["generate", "--path", "midi", "--checkpoint", str(run), "--out", str(tmp_path / "o.wav"), "--no-progress"]
    cases = [
        (base + ["--video", str(tmp_path / "missing.mp4")], "missing.mp4"),
        (base + ["--video", str(renamed)], "--instruments"),
        (base + ["--video", str(videos[0]), "--instruments", "vn,xx"], "unknown instrument code 'xx'"),
        (base + ["--video", str(videos[0]), "--synth", "diffusion"], "--synth-checkpoint"),
        (base + ["--video", str(videos[0]), "--synth", "fluidsynth", "--soundfont", str(tmp_path / "no.sf2")],
         "soundfont not found"),
        (["generate", "--path", "midi", "--checkpoint", str(musicgen_like), "--video", str(videos[0]),
          "--out", str(tmp_path / "o.wav")], "disagrees with"),
        (["generate", "--video", str(videos[0]), "--checkpoint", str(musicgen_like), "--out", str(tmp_path / "o.wav"),
          "--midi", str(tmp_path / "o.mid")], "writes no notes"),
        (["generate", "--video", str(videos[0]), "--checkpoint", str(musicgen_like), "--out", str(tmp_path / "o.wav"),
          "--synth", "builtin"], "--synth is not an option"),
        (base + ["--video", str(videos[0]), "--checkpoint", str(tmp_path / "nope")], "checkpoint not found"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("vitmusic generate: error:") and needle in err[0], err
    assert not (tmp_path / "o.wav").exists()
