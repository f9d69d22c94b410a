"""``vitmusic generate`` and the generation pipeline, on a tiny run trained in the module fixture (CPU)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from media_helpers import moving_square_video

from vitmusic import cli
from vitmusic.config import config_from_dict, config_to_dict, load_config
from vitmusic.errors import ConfigError, DataError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A tiny run (tiny-vit -> MLP projection -> tiny-musicgen) trained for 3 steps, plus test videos."""
    root = tmp_path_factory.mktemp("generate")
    from vitmusic.data.audio import write_audio
    from vitmusic.inference.musicgen import MusicGenPipeline
    from vitmusic.training.features import extract_features
    from vitmusic.training.tasks.musicgen import VideoMusicGenTask, load_frozen_models, run_training

    config = load_config(CONFIGS / "tiny.yaml", [
        f"train.output_dir={root / 'run'}", "train.log_with=none", "train.batch_size=2", "train.max_steps=3",
        "train.warmup_steps=0", "train.eval_every=3", "train.save_every=2",
    ])
    encoder, generator = load_frozen_models(config)
    rng = np.random.default_rng(0)
    clips = []
    for v in range(2):
        video = moving_square_video(root / f"train{v}.mp4", 60, 30, seed=v)
        mix = root / f"train{v}.wav"
        write_audio(mix, (0.1 * rng.standard_normal(2 * generator.sample_rate)).astype(np.float32),
                    generator.sample_rate)
        for i in range(3):
            clips.append({"clip_id": f"t{v}_{i}", "piece": f"t{v}", "split": ["train", "train", "val"][i],
                          "start_s": 0.5 * i, "end_s": 0.5 * i + 1.0, "video": str(video), "mix": str(mix)})
    cache = extract_features(clips, encoder, generator, root / "cache", rate_hz=config.encoder.rate_hz,
                             progress=False)
    task = VideoMusicGenTask(config, generator, cache, encoder.fingerprint())
    final = run_training(config, task, progress=False)
    # 29.97 fps, 95 frames: 3.17 s, an odd length that needs two generation windows (2 s, context 1 s)
    video = moving_square_video(root / "in.mp4", 95, "29.97", seed=5)
    yield {
        "root": root, "config": config, "run": root / "run", "final": final, "video": video,
        "memory": MusicGenPipeline(config, encoder, task.projection, generator),
    }


@pytest.fixture(scope="module")
def loaded(env):
    from vitmusic.inference.musicgen import load_pipeline

    return load_pipeline(env["run"])


def video_duration(path) -> float:
    from vitmusic.data.video import probe_video

    return probe_video(path).duration_s


def run_cli(*argv) -> int:
    return cli.main(["generate", *map(str, argv), "--no-progress"])


def stderr_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# ---------------------------------------------------------------------------- loading
def test_config_round_trips_through_a_dict():
    config = load_config(CONFIGS / "tiny.yaml", ["train.lr=0.5", "generate.seed=7"])
    assert config_from_dict(config_to_dict(config)) == config
    bad = config_to_dict(config)
    bad["generate"]["guidance"] = 2.0
    with pytest.raises(ConfigError, match="unknown config key 'generate.guidance' \\(in run.json\\)"):
        config_from_dict(bad, where="run.json")


def test_checkpoint_folders_resolve(env, tmp_path):
    from vitmusic.runs import read_run, resolve_checkpoint

    assert resolve_checkpoint(env["run"]) == env["final"]
    step = env["run"] / "checkpoints" / "step_2"
    assert resolve_checkpoint(step) == step
    folder, config, frozen = read_run(env["run"])
    assert config == env["config"] and frozen["encoder"]["kind"] == "vit"
    with pytest.raises(ConfigError, match="checkpoint not found"):
        resolve_checkpoint(tmp_path / "nope")
    # a run whose training was interrupted: no final/, the message points at the latest checkpoint
    partial = tmp_path / "partial"
    shutil.copytree(step, partial / "checkpoints" / "step_2")
    with pytest.raises(ConfigError, match="no trained model in .*latest checkpoint is .*step_2"):
        resolve_checkpoint(partial)


def test_loaded_run_generates_exactly_what_the_trained_modules_do(env, loaded):
    """save -> load round trip: the same samples from the in-memory run and from RUN/final."""
    mem = env["memory"]
    for k, v in mem.projection.state_dict().items():
        assert torch.equal(loaded.projection.state_dict()[k].cpu(), v.cpu()), k
    assert not loaded.projection.training and not loaded.encoder.training
    a = mem.generate_video(env["video"], seed=3)
    b = loaded.generate_video(env["video"], seed=3)
    assert a.dtype == np.float32 and np.array_equal(a, b)


def test_step_checkpoint_loads_its_own_weights(env, loaded):
    from safetensors.torch import load_file

    from vitmusic.inference.musicgen import load_pipeline

    step = env["run"] / "checkpoints" / "step_2"
    pipe = load_pipeline(step)
    saved = load_file(str(step / "model.safetensors"))
    state = pipe.projection.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())
    assert any(not torch.equal(state[k], v) for k, v in loaded.projection.state_dict().items())
    assert pipe.describe()["checkpoint"] == str(step)


def test_mismatched_frozen_model_is_refused(env, tmp_path, caplog):
    from vitmusic.inference.musicgen import load_pipeline

    folder = tmp_path / "final"
    shutil.copytree(env["final"], folder)
    meta = json.loads((folder / "config.json").read_text())
    meta["extra"]["frozen_models"]["encoder"]["weights_sha256"] = "0" * 64
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="frozen models differ.*encoder weights_sha256"):
        load_pipeline(folder)
    assert load_pipeline(folder, strict=False).projection is not None
    assert "frozen models differ" in caplog.text


# ---------------------------------------------------------------------------- embedding and conditioning
def test_streamed_embeddings_equal_one_piece_encoding(env, monkeypatch):
    """Windowed decoding gives the embeddings of decoding the whole span at once; times are frame pts."""
    import vitmusic.encoders.video as pl
    from vitmusic.data.video import VideoReader

    pipe = env["memory"]
    monkeypatch.setattr(pl, "ENCODE_WINDOW_S", 0.6)  # several windows for a 3.17 s video
    fps = pipe.encoder.sample_fps(pipe.rate_hz)
    for t0, t1 in [(0.0, None), (0.9, 2.4)]:
        emb = pipe.embed_video(env["video"], t0_s=t0, t1_s=t1)
        with VideoReader(env["video"]) as reader:
            frames = reader.read(t0, t1, fps=fps)
        whole, mask = pipe.encoder.encode_frames(frames.data[None])
        assert torch.allclose(emb.embeds, whole, atol=1e-5) and torch.equal(emb.mask, mask.cpu())
        np.testing.assert_allclose(emb.times_s, frames.times_s - t0)
        expected = video_duration(env["video"]) if t1 is None else t1 - t0
        assert emb.duration_s == pytest.approx(expected)
    # 4 embeddings per second over 3.17 s of video
    assert pipe.embed_video(env["video"]).embeds.shape[1] == 13


def test_projection_chunks_and_token_times(env):
    from vitmusic.inference.musicgen import MusicGenPipeline
    from vitmusic.projection import build_projection

    mem = env["memory"]
    T, D = 21, mem.encoder.embed_dim
    embeds, mask = torch.randn(1, T, D), torch.ones(1, T, dtype=torch.bool)
    mask[0, 5] = False
    times = np.arange(T) * 0.25
    # per-token MLP: chunking (8 steps = generate.window_s 2 s at 4 Hz) changes nothing
    tokens, tmask, ttimes = mem.project(embeds, mask, times)
    whole, wmask = mem.projection(embeds, mask)
    assert torch.allclose(tokens, whole, atol=1e-6) and torch.equal(tmask, wmask)
    np.testing.assert_allclose(ttimes, times)
    # stride 2: a token's time is the mean time of the valid steps it pools, chunks hold whole groups
    torch.manual_seed(0)
    proj = build_projection("linear", D, mem.generator.cond_dim, stride=2)
    pipe = MusicGenPipeline(env["config"], mem.encoder, proj, mem.generator)
    tokens, tmask, ttimes = pipe.project(embeds, mask, times)
    assert tokens.shape == (1, 11, mem.generator.cond_dim) and tmask.all()
    assert ttimes[:4].tolist() == [0.125, 0.625, 1.0, 1.625] and ttimes[-1] == 5.0
    whole, _ = proj(embeds, mask)
    assert torch.allclose(tokens, whole, atol=1e-6)


@pytest.fixture
def generate_calls(monkeypatch):
    """Spy on every window's MusicGenGenerator.generate call (the tiny random model barely reacts to its
    condition, so what reaches the generator is checked, not only the audio)."""
    from vitmusic.generators.musicgen.model import MusicGenGenerator

    calls, original = [], MusicGenGenerator.generate

    def spy(self, cond, cond_mask, **kw):
        hidden, mask = self.condition(cond, cond_mask)
        calls.append({"cond": cond, "hidden": hidden, "mask": mask, **kw})
        return original(self, cond, cond_mask, **kw)

    monkeypatch.setattr(MusicGenGenerator, "generate", spy)
    return calls


def test_generate_from_embeddings_and_unconditional(env, generate_calls):
    pipe = env["memory"]
    emb = pipe.embed_video(env["video"], t1_s=1.5)
    a = pipe.generate_from_embeddings(emb.embeds, emb.mask, emb.times_s, 1.5, seed=4)
    assert a.shape == (48000,) and np.array_equal(a, pipe.generate_video(env["video"], t1_s=1.5, seed=4))
    tokens, _, _ = pipe.project(emb.embeds, emb.mask, emb.times_s)
    assert len(generate_calls) == 2 and torch.equal(generate_calls[0]["cond"], tokens)
    assert generate_calls[0]["guidance_scale"] == 3.0 and generate_calls[0]["top_k"] == 50
    # precomputed (here: time-reversed) embeddings are what conditions the generator
    pipe.generate_from_embeddings(emb.embeds.flip(1), emb.mask, emb.times_s, 1.5, seed=4)
    flipped, _, _ = pipe.project(emb.embeds.flip(1), emb.mask, emb.times_s)
    assert torch.equal(generate_calls[2]["cond"], flipped) and not torch.equal(flipped, tokens)
    # the null condition: the embeddings no longer matter, no guidance (both halves would be equal)
    u1 = pipe.generate_from_embeddings(emb.embeds, emb.mask, emb.times_s, 1.5, seed=4, unconditional=True)
    u2 = pipe.generate_from_embeddings(torch.randn_like(emb.embeds), None, emb.times_s, 1.5, seed=4,
                                       unconditional=True)
    assert np.array_equal(u1, u2) and u1.shape == (48000,)
    assert all(c["unconditional"] and c["guidance_scale"] == 1.0 for c in generate_calls[4:])


# ---------------------------------------------------------------------------- the command
def test_cli_single_video_exact_length_and_mux(env, tmp_path):
    from vitmusic.data.audio import audio_duration
    from vitmusic.data.video import probe_video

    out, mux = tmp_path / "out.wav", tmp_path / "out.mp4"
    assert run_cli("--video", env["video"], "--checkpoint", env["run"], "--out", out, "--mux", mux) == 0
    duration_s = video_duration(env["video"])
    info = sf.info(str(out))
    assert info.samplerate == 32000 and info.frames == round(duration_s * 32000) == 101435
    muxed = probe_video(mux)
    assert muxed.has_audio and muxed.num_frames == 95
    assert muxed.duration_s == pytest.approx(duration_s, abs=1e-3)
    assert audio_duration(mux) == pytest.approx(duration_s, abs=0.03)
    assert {p.name for p in tmp_path.iterdir()} == {"out.wav", "out.mp4"}  # nothing temporary left


def test_cli_seeds(env, tmp_path, loaded, generate_calls):
    def gen(name, *extra):
        path = tmp_path / name
        assert run_cli("--video", env["video"], "--checkpoint", env["run"], "--out", path, *extra) == 0
        return sf.read(str(path), dtype="float32")[0]

    a, b, c = gen("a.wav", "--seed", "11"), gen("b.wav", "--seed", "11"), gen("c.wav", "--seed", "12")
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # the file is the API's audio (16-bit PCM)
    api = np.clip(loaded.generate_video(env["video"], seed=11), -1, 1)
    assert np.abs(api - a).max() <= 1 / 32767
    # default guidance = generate.guidance_scale of the run (3.0 in the tiny preset)
    assert np.array_equal(gen("d.wav", "--seed", "11", "--guidance", "3.0"), a)
    generate_calls.clear()
    gen("e.wav", "--seed", "11", "--guidance", "1.5")
    assert [c["guidance_scale"] for c in generate_calls] == [1.5, 1.5, 1.5]  # 3 windows


def test_cli_batch_folder_skips_bad_files(env, tmp_path, capsys):
    from vitmusic.inference.base import item_seed

    videos = tmp_path / "videos"
    videos.mkdir()
    moving_square_video(videos / "good1.mp4", 31, 30, seed=1)
    moving_square_video(videos / "good2.mov", 25, "25", seed=2)
    (videos / "empty.mp4").write_bytes(b"")
    (videos / "text.mp4").write_text("not a video\n")
    (videos / "notes.txt").write_text("ignored: not a video suffix\n")
    out = tmp_path / "out"
    assert run_cli("--videos", videos, "--checkpoint", env["run"], "--out-dir", out) == 0
    for name, n in [("good1", round(31 / 30 * 32000)), ("good2", 32000)]:
        assert sf.info(str(out / f"{name}.wav")).frames == n
    failures = json.loads((out / "failures.json").read_text())
    assert [f["name"] for f in failures] == ["empty", "text"]
    assert "empty file" in failures[0]["error"] and failures[1]["input"] == str(videos / "text.mp4")
    err = stderr_lines(capsys)
    assert [line.split(":")[1] for line in err] == [" skipped empty", " skipped text"]
    summary = json.loads((out / "generate.json").read_text())
    assert [(i["name"], i["seed"]) for i in summary["items"]] == [
        ("good1", item_seed(0, "good1")), ("good2", item_seed(0, "good2"))]
    assert summary["failed"] == ["empty", "text"] and summary["generator"]["path"] == "musicgen"
    assert sorted(p.name for p in out.iterdir()) == ["failures.json", "generate.json", "good1.wav", "good2.wav"]
    # an item's audio depends on its name and the seed, not on what else is in the batch
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(videos / "good2.mov", alone)
    assert run_cli("--videos", alone, "--checkpoint", env["run"], "--out-dir", tmp_path / "out2") == 0
    assert np.array_equal(sf.read(str(out / "good2.wav"))[0], sf.read(str(tmp_path / "out2" / "good2.wav"))[0])


def test_cli_batch_broken_symlink_is_a_failed_item(env, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    moving_square_video(videos / "good.mp4", 31, 30, seed=1)
    (videos / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    out = tmp_path / "out"
    assert run_cli("--videos", videos, "--checkpoint", env["run"], "--out-dir", out) == 0
    failures = json.loads((out / "failures.json").read_text())
    assert [f["name"] for f in failures] == ["dangling"] and "no such file" in failures[0]["error"]
    assert len(stderr_lines(capsys)) == 1


def test_cli_batch_all_bad_is_exit_2(env, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"")
    (videos / "b.mp4").write_bytes(b"\x00garbage" * 10)
    assert run_cli("--videos", videos, "--checkpoint", env["run"], "--out-dir", tmp_path / "out") == 2
    err = stderr_lines(capsys)
    assert len(err) == 3 and err[-1].startswith("vitmusic generate: error: all 2 inputs failed")
    assert len(json.loads((tmp_path / "out" / "failures.json").read_text())) == 2


def test_cli_manifest_clips(env, tmp_path, capsys):
    good = moving_square_video(tmp_path / "piece.mp4", 90, 30, seed=3)
    rows = [
        {"clip_id": "p_0000", "piece": "p", "split": "test", "start_s": 0.5, "end_s": 1.75, "video": str(good)},
        {"clip_id": "p_0001", "piece": "p", "split": "test", "start_s": 0.0, "end_s": 1.0,
         "video": str(tmp_path / "missing.mp4")},
        {"clip_id": "p_0002", "piece": "p", "split": "train", "start_s": 0.0, "end_s": 1.0, "video": str(good)},
    ]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert run_cli("--manifest", manifest, "--split", "test", "--checkpoint", env["run"], "--out-dir", out) == 0
    assert sf.info(str(out / "p_0000.wav")).frames == 40000  # 1.25 s of the clip's window
    assert not (out / "p_0002.wav").exists()  # other split
    failures = json.loads((out / "failures.json").read_text())
    assert [f["name"] for f in failures] == ["p_0001"] and "no such file" in failures[0]["error"]
    assert len(stderr_lines(capsys)) == 1
    # the clip's audio is generated from the clip's frames only
    from vitmusic.inference.base import item_seed

    expected = env["memory"].generate_video(good, t0_s=0.5, t1_s=1.75, seed=item_seed(0, "p_0000"))
    assert np.abs(np.clip(expected, -1, 1) - sf.read(str(out / "p_0000.wav"), dtype="float32")[0]).max() <= 1 / 32767


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "{tmp}/nope", "--video", "{video}", "--out", "{tmp}/o.wav"], "checkpoint not found"),
    (["--checkpoint", "{tmp}", "--video", "{video}", "--out", "{tmp}/o.wav"], "no trained model in"),
    (["--checkpoint", "{run}", "--video", "{video}"], "--video needs --out"),
    (["--checkpoint", "{run}", "--videos", "{tmp}", "--out", "{tmp}/o.wav"], "need --out-dir"),
    (["--checkpoint", "{run}", "--video", "{tmp}/missing.mp4", "--out", "{tmp}/o.wav"], "no such file"),
    (["--checkpoint", "{run}", "--video", "{video}", "--out", "{tmp}/o.wav", "--guidance", "0.5"],
     "--guidance must be >= 1"),
    (["--checkpoint", "{run}", "--videos", "{tmp}/none", "--out-dir", "{tmp}/o"], "not a folder"),
    (["--checkpoint", "{run}", "--manifest", "{tmp}/m.jsonl", "--out-dir", "{tmp}/o"], "manifest not found"),
    # outputs are checked before a model is loaded or a second generated
    (["--checkpoint", "{run}", "--video", "{video}", "--out", "{tmp}/afile/o.wav"], "is a file, not a folder"),
    (["--checkpoint", "{run}", "--video", "{video}", "--out", "{tmp}/o.wav", "--mux", "{tmp}/afile/o.mp4"],
     "is a file, not a folder"),
    (["--checkpoint", "{run}", "--video", "{video}", "--out", "{tmp}"], "is a folder, expected a file"),
    (["--checkpoint", "{run}", "--videos", "{tmp}", "--out-dir", "{tmp}/afile"], "exists and is not a folder"),
    # inputs that used to "succeed" with a few hundredths of a second of audio
    (["--checkpoint", "{run}", "--video", "{tmp}/png.mp4", "--out", "{tmp}/o.wav"], "a still image (png)"),
    (["--checkpoint", "{run}", "--video", "{tmp}/one_frame.mp4", "--out", "{tmp}/o.wav"],
     "shorter than one encoder window"),
])
def test_cli_user_errors_are_one_line(env, tmp_path, capsys, argv, message):
    from PIL import Image

    (tmp_path / "afile").write_text("x")
    Image.new("RGB", (32, 32)).save(tmp_path / "png.mp4", format="PNG")
    moving_square_video(tmp_path / "one_frame.mp4", 1, 30)
    fill = {"tmp": tmp_path, "run": env["run"], "video": env["video"]}
    assert run_cli(*[a.format(**fill) for a in argv]) == 2
    err = stderr_lines(capsys)
    assert len(err) == 1 and err[0].startswith("vitmusic generate: error: ") and message in err[0]
    assert not (tmp_path / "o.wav").exists()


def test_embed_video_bad_range(env):
    with pytest.raises(DataError):
        env["memory"].embed_video(env["video"], t0_s=2.0, t1_s=1.0)


def test_altered_weights_are_refused_in_one_line_unless_accepted(env, tmp_path, capsys):
    """A model.safetensors whose values changed after training (same shapes) is not used silently."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "final"
    shutil.copytree(env["final"], folder)
    state = load_file(str(folder / "model.safetensors"))
    save_file({k: v * 1.01 for k, v in state.items()}, str(folder / "model.safetensors"))
    args = ["--checkpoint", folder, "--video", env["video"], "--out", tmp_path / "o.wav"]
    assert run_cli(*args) == 2
    err = stderr_lines(capsys)
    assert len(err) == 1 and "model.safetensors: its content differs from the sha256 recorded" in err[0], err
    assert "--accept-changed-weights" in err[0] and not (tmp_path / "o.wav").exists()
    assert run_cli(*args, "--accept-changed-weights") == 0
    assert (tmp_path / "o.wav").is_file()
    assert any("used anyway" in line for line in stderr_lines(capsys))
