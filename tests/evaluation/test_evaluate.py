import csv
import json
import math
from functools import partial

import numpy as np
import pytest
import soundfile as sf
from metrics_signals import tone_sequence

from vitmusic import __version__, cli
from vitmusic.evaluation import runner
from vitmusic.evaluation.compare import compare_runs
from vitmusic.evaluation.registry import Metric, per_clip_metrics, referee_metrics, summary_metrics
from vitmusic.evaluation.runner import MetricGroup

SR = 16000
tone_seq = partial(tone_sequence, sample_rate=SR)  # this file's clips are 16 kHz


MELODY = [262, 294, 330, 349, 392, 440, 494, 523] * 2


def fake_spectral(clip, opts, art):
    """Stand-in metric: cosine of magnitude spectra; undefined (NaN) when either side is silent."""
    a, b = (np.abs(np.fft.rfft(x)) for x in (clip.ref_audio, clip.gen_audio))
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    cos = float(a @ b / denom) if denom > 0 else math.nan
    if art is not None:
        art["ref_notes"] = np.array([[0.0, 440.0, 0.5]])
        art["gen_notes"] = np.array([[0.1, 466.0, 0.4]])
        art["ref_f0"] = (np.arange(10) * 0.01, np.full(10, 440.0))
        art["gen_f0"] = (np.arange(10) * 0.01, np.r_[np.zeros(3), np.full(7, 450.0)])
        art["ref_beats_s"], art["gen_beats_s"] = np.array([0.5, 1.0, 1.5]), np.array([0.55, 1.1])
    return {"chroma.cosine": cos, "key.weighted_score": 1.0 if cos > 0.99 else 0.0}


def fake_fad_embed(clip, opts):
    frames = lambda y: np.abs(np.fft.rfft(y[: len(y) // 400 * 400].reshape(-1, 400), axis=1))[:, :4]  # noqa: E731
    return frames(clip.ref_audio), frames(clip.gen_audio)


def fake_fad_aggregate(ref, gen):
    return float(np.sum((np.concatenate(ref).mean(0) - np.concatenate(gen).mean(0)) ** 2))


def no_values(clip, opts, art):
    return {}


def use_registry(monkeypatch, groups: dict) -> None:
    """Replace the metric registry for one test (the built-in groups are registered first, so a later
    first import of vitmusic.evaluation.groups cannot add them to the replacement)."""
    from vitmusic.evaluation import registry

    registry.metric_groups()
    monkeypatch.setattr(registry, "_GROUPS", dict(groups))


@pytest.fixture
def fake_metrics(monkeypatch):
    fakes = {
        "tempo": MetricGroup("tempo", ("tempo.p_score",), score=no_values),
        "chroma": MetricGroup("chroma", ("chroma.cosine", "key.weighted_score"), score=fake_spectral),
        "fad": MetricGroup("fad", (Metric("fad", "fake", set_level=True),), embed=fake_fad_embed,
                           aggregate=fake_fad_aggregate),
    }
    use_registry(monkeypatch, fakes)
    return fakes


def write(path, y, sr=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr)
    return path


@pytest.fixture
def dirs(tmp_path):
    ref, gen = tmp_path / "ref", tmp_path / "gen"
    y = tone_seq(MELODY)
    write(ref / "same.wav", y)
    write(gen / "same.wav", y)
    write(ref / "shifted.wav", y)
    write(gen / "shifted.flac", tone_seq([f * 2 ** (3 / 12) for f in MELODY]))
    write(ref / "silent.wav", y)
    write(gen / "silent.wav", np.zeros_like(y))
    write(ref / "only_ref.wav", y)
    write(gen / "only_gen.wav", y)
    return tmp_path


def evaluate(tmp_path, *extra):
    out = tmp_path / "out"
    argv = ["evaluate", "--ref", str(tmp_path / "ref"), "--gen", str(tmp_path / "gen"), "--out", str(out),
            "--quiet", "--sample-rate", str(SR), "--n-boot", "200", *extra]
    return cli.main(argv), out


def test_plumbing_outputs_shape_and_values(dirs, fake_metrics, capsys):
    rc, out = evaluate(dirs, "--metrics", "chroma,fad")
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"metrics", "definitions", "config", "version"}
    assert summary["version"] == __version__
    assert list(summary["metrics"]) == list(summary_metrics()) == list(summary["definitions"])
    for m in summary["metrics"].values():
        assert {"mean", "ci95", "n", "small_n"} <= set(m) and len(m["ci95"]) == 2 and isinstance(m["n"], int)
        assert m["small_n"] is (m["n"] < 10)
    # only the silent clip is undefined: n counts defined clips, never a 0 stand-in
    cos = summary["metrics"]["chroma.cosine"]
    assert cos["n"] == 2
    assert summary["metrics"]["fad"]["n"] == 3
    assert {k: summary["metrics"]["tempo.p_score"][k] for k in ("mean", "ci95", "n", "small_n")} == {
        "mean": None, "ci95": [None, None], "n": 0, "small_n": True}
    assert summary["metrics"]["tempo.p_score"]["method"]  # every summary names its interval
    assert summary["metrics"]["fad"]["ci95"] == [None, None] and "no CI" in summary["metrics"]["fad"]["ci_note"]
    cfg = summary["config"]
    assert cfg["missing_gen"] == ["only_ref"] and cfg["missing_ref"] == ["only_gen"]
    assert cfg["n_evaluated"] == 3 and cfg["failures"] == []

    with open(out / "per_clip.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(runner.CLIP_COLUMNS) + list(per_clip_metrics()) + list(referee_metrics())
    by_id = {r["clip_id"]: r for r in rows}
    assert set(by_id) == {"same", "shifted", "silent"}
    assert float(by_id["same"]["chroma.cosine"]) == pytest.approx(1.0)
    assert float(by_id["shifted"]["chroma.cosine"]) < 0.9
    assert by_id["silent"]["chroma.cosine"] == "nan"
    assert np.mean([1.0, float(by_id["shifted"]["chroma.cosine"])]) == pytest.approx(cos["mean"])

    report = (out / "report.md").read_text()
    images = [line.split("(")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    assert "metrics.png" in images and any(i.startswith("f0_") for i in images)
    assert any(i.startswith("pianoroll_") for i in images) and any(i.startswith("beats_") for i in images)
    for name in images:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "only_gen" in report and "only_ref" in report
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp leftovers
    assert "evaluated 3 clip(s)" in capsys.readouterr().out


def test_fad_is_deterministic_and_has_no_biased_ci(dirs, fake_metrics):
    _, out = evaluate(dirs)
    fad = json.loads((out / "summary.json").read_text())["metrics"]["fad"]
    _, out2 = evaluate(dirs, "--out", str(dirs / "out2"))
    assert json.loads((dirs / "out2" / "summary.json").read_text())["metrics"]["fad"] == fad
    assert fad["mean"] is not None and fad["ci95"] == [None, None]


def test_corrupt_empty_and_nan_files_are_skipped_and_listed(dirs, fake_metrics, capsys):
    (dirs / "ref" / "broken.wav").write_bytes(b"RIFF not really a wav")
    (dirs / "gen" / "broken.wav").write_bytes(b"RIFF not really a wav")
    (dirs / "ref" / "empty.wav").write_bytes(b"")
    (dirs / "gen" / "empty.wav").write_bytes(b"")
    write(dirs / "ref" / "nan.wav", tone_seq(MELODY[:4]))
    sf.write(dirs / "gen" / "nan.wav", np.full(SR, np.nan, np.float32), SR, subtype="FLOAT")
    rc, out = evaluate(dirs)
    assert rc == 0
    failures = json.loads((out / "summary.json").read_text())["config"]["failures"]
    assert sorted(f["clip_id"] for f in failures) == ["broken", "empty", "nan"]
    assert any("NaN" in f["reason"] for f in failures)
    assert "## Failures" in (out / "report.md").read_text()
    assert "skipped broken" in capsys.readouterr().err


def test_length_mismatch_trimmed_and_warned(tmp_path, fake_metrics):
    y = tone_seq(MELODY)
    write(tmp_path / "ref" / "a.wav", y)
    write(tmp_path / "gen" / "a.wav", y[: len(y) // 2])
    rc, out = evaluate(tmp_path)
    assert rc == 0
    row = next(csv.DictReader(open(out / "per_clip.csv")))
    assert float(row["duration_s"]) == pytest.approx(len(y) / 2 / SR)
    assert float(row["ref_duration_s"]) == pytest.approx(len(y) / SR)
    assert float(row["chroma.cosine"]) == pytest.approx(1.0)
    assert any("50%" in w for w in json.loads((out / "summary.json").read_text())["config"]["warnings"])


def test_resample_and_stereo_to_common_rate(tmp_path, fake_metrics):
    y = tone_seq(MELODY[:6])
    write(tmp_path / "ref" / "a.wav", y)
    y44 = tone_seq(MELODY[:6], sample_rate=44100)
    write(tmp_path / "gen" / "a.wav", np.stack([y44, y44], 1), sr=44100)
    rc, out = evaluate(tmp_path)
    assert rc == 0
    row = next(csv.DictReader(open(out / "per_clip.csv")))
    assert float(row["chroma.cosine"]) > 0.99
    assert float(row["gen_duration_s"]) == pytest.approx(len(y) / SR, abs=2e-3)


def test_metric_failure_is_recorded_not_fatal(dirs, monkeypatch):
    def boom(clip, opts, art):
        raise ValueError("audio too short")

    use_registry(monkeypatch, {"chroma": MetricGroup("chroma", ("chroma.cosine",), score=boom)})
    rc, out = evaluate(dirs)
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["metrics"]["chroma.cosine"]["n"] == 0
    assert any("audio too short" in w for w in s["config"]["warnings"])
    with pytest.raises(ValueError, match="too short"):
        evaluate(dirs, "--strict")


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        ("missing_ref", [], "reference folder does not exist"),
        ("empty_gen", [], "no audio files"),
        ("no_pairs", [], "no file pairs"),
        ("all_broken", [], "nothing could be evaluated"),
        ("ok", ["--metrics", "tempo,bogus"], "unknown metric 'bogus'"),
        ("ok", ["--metrics", ","], "--metrics is empty"),
        ("ok", ["--videos", "/nonexistent/videos"], "videos folder does not exist"),
        ("ok", ["--sample-rate", "100"], "--sample-rate"),
        ("ok", ["--metrics", "pitch", "--pitch-backend", "nope"], "unknown pitch backend 'nope'"),
        ("ok", ["--metrics", "kid", "--fad-embedding", "/nonexistent/model"], "cannot load --fad-embedding"),
    ],
)
def test_bad_inputs_are_one_line_exit_2(tmp_path, capsys, setup, extra, message):
    y = tone_seq(MELODY[:4])
    (tmp_path / "gen").mkdir()
    if setup != "missing_ref":
        (tmp_path / "ref").mkdir()
    if setup in ("ok", "no_pairs", "empty_gen"):
        write(tmp_path / "ref" / "a.wav", y)
    if setup in ("ok",):
        write(tmp_path / "gen" / "a.wav", y)
    if setup == "no_pairs":
        write(tmp_path / "gen" / "b.wav", y)
    if setup == "all_broken":
        (tmp_path / "ref" / "a.wav").write_bytes(b"junk")
        (tmp_path / "gen" / "a.wav").write_bytes(b"junk")
    if setup == "missing_ref":
        write(tmp_path / "gen" / "a.wav", y)
    rc, out = evaluate(tmp_path, *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("vitmusic evaluate: error:") and message in err[0]
    assert not (out / "summary.json").exists()


def test_resolve_metrics_accepts_groups_and_names():
    assert runner.resolve_metrics("notes.f1, tempo,notes") == ("notes", "tempo")
    assert runner.resolve_metrics(None) == tuple(runner.metric_groups())


def test_groups_collect_the_names_their_modules_return():
    import importlib

    from vitmusic.metrics import ensemble

    # a renamed metric in a module would otherwise leave its per_clip.csv column silently all nan
    shared = dict.fromkeys(("onsets", "tempo_curve", "dynamics", "instrumentation"), "performance")
    for name, group in runner.metric_groups().items():
        if name != "fad":  # set-level: aggregate() returns the one value itself
            module = importlib.import_module(f"vitmusic.metrics.{shared.get(name, name)}")
            extra = ensemble.NOTE_METRIC_NAMES if name == "notes" else ()  # per voice, from the ensemble scorer
            assert set(group.names) <= set(module.METRIC_NAMES) | set(extra), name


def test_skyline_and_trim_rules():
    t = np.arange(5) * 0.01
    grid, f0 = runner.skyline_f0([(t, np.array([0, 200, 200, 0, 0.0])), (t, np.array([100, 100, 300, 0, 0.0]))])
    assert np.allclose(grid, t) and np.allclose(f0, [100, 200, 300, 0, 0])
    f0t, notes = runner.trim_annotations((t, f0), np.array([[0.0, 440, 1.0], [0.5, 440, 1.0], [2.0, 440, 1.0]]), 1.0)
    assert len(f0t[0]) == 5
    assert notes.tolist() == [[0.0, 440, 1.0], [0.5, 440, 0.5]]


def test_real_metrics_identical_is_perfect_and_shift_is_worse(dirs):
    rc, out = evaluate(dirs, "--metrics", "pitch,notes,chroma", "--plot-clips", "1")
    assert rc == 0
    rows = {r["clip_id"]: r for r in csv.DictReader(open(out / "per_clip.csv"))}
    same, shifted, silent = rows["same"], rows["shifted"], rows["silent"]
    for m in ("pitch.raw_pitch_accuracy", "notes.f1_no_offset", "chroma.cosine"):
        assert float(same[m]) > 0.9, m
        assert float(shifted[m]) < float(same[m]) - 0.2, m
    # the reference is voiced and the silent estimate is not: a defined failure, not an undefined value
    assert silent["pitch.raw_pitch_accuracy"] == "0.0" and silent["notes.recall"] == "0.0"
    assert silent["notes.precision"] == "nan"  # no estimated note to be right or wrong
    assert silent["chroma.cosine"] == "0.0"  # one side silent: every frame where the reference sounds is a miss


# --------------------------------------------------------------------- end to end on synth-data pieces
@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    """Two synthetic URMP ensembles plus a solo piece cut from one of their stems."""
    import shutil

    from vitmusic.data import urmp
    from vitmusic.data.synth import generate_benchmark

    root = tmp_path_factory.mktemp("urmp")
    generate_benchmark(root, 2, 0, duration_s=6.0, source="melodies", sample_rate=22050,
                       width_per_player=64, height=96, progress=False, plot=False)
    src = urmp.discover_pieces(root)[1]
    solo = root / urmp.piece_folder_name(3, "Solo", [src.stems[0].instrument])
    solo.mkdir()
    inst = src.stems[0].instrument
    shutil.copy(src.stems[0].audio, solo / urmp.mix_file_name(solo))
    shutil.copy(src.stems[0].audio, solo / urmp.stem_file_name("AuSep", 1, inst, 3, "Solo"))
    shutil.copy(src.stems[0].f0, solo / urmp.stem_file_name("F0s", 1, inst, 3, "Solo"))
    shutil.copy(src.stems[0].notes, solo / urmp.stem_file_name("Notes", 1, inst, 3, "Solo"))
    shutil.copy(src.video, solo / urmp.video_file_name(solo))
    shutil.copy(src.score, solo / urmp.score_file_name(solo))
    return root


def test_end_to_end_urmp_ground_truth_vs_pitch_shifted(synth_root, tmp_path):
    import librosa

    from vitmusic.data import urmp

    pieces = urmp.discover_pieces(synth_root)
    assert len(pieces) == 3
    for p in pieces:
        y, sr = sf.read(p.mix, dtype="float32")
        write(tmp_path / "gt" / f"{p.id}.wav", y, sr)
        write(tmp_path / "shifted" / f"{p.id}.wav", librosa.effects.pitch_shift(y, sr=sr, n_steps=2), sr)
    outs = {}
    for name in ("gt", "shifted"):
        out = tmp_path / f"out_{name}"
        argv = ["evaluate", "--urmp", str(synth_root), "--gen", str(tmp_path / name), "--out", str(out),
                "--metrics", "pitch,notes,chroma,sync", "--quiet", "--n-boot", "100", "--plot-clips", "1"]
        assert cli.main(argv) == 0
        outs[name] = {r["clip_id"]: r for r in csv.DictReader(open(out / "per_clip.csv"))}
        summary = json.loads((out / "summary.json").read_text())
        assert summary["metrics"]["sync.correlation"]["n"] == 3  # piece videos found through URMP
    gt, sh = outs["gt"], outs["shifted"]
    solo = pieces[2].id
    # solo piece: generated f0 is scored against the annotation, so the ground truth is near perfect
    assert float(gt[solo]["pitch.raw_pitch_accuracy"]) > 0.9
    defined = 0
    for p in pieces:
        g, s = gt[p.id], sh[p.id]
        rpa = float(g["pitch.raw_pitch_accuracy"])
        if p.id != solo:
            # ensembles: single-voice pitch is undefined without the melody annotation (--annotations solo);
            # a monophonic tracker on a mix follows whichever voice dominates
            assert math.isnan(rpa)
            # notes: every stem's Notes vs basic-pitch on the mix; a copy of the mix scores the referee ceiling
            assert float(g["notes.f1"]) == pytest.approx(float(g["referee.notes.f1"]))
            assert float(s["notes.f1_no_offset"]) < float(g["notes.f1_no_offset"]) - 0.2
        if not math.isnan(rpa):
            defined += 1
            assert float(s["pitch.raw_pitch_accuracy"]) < rpa - 0.5
        assert float(s["chroma.cosine"]) < float(g["chroma.cosine"]) - 0.2
    assert defined == 1
    rows = compare_runs(
        [tmp_path / "out_gt", tmp_path / "out_shifted"], metrics=["pitch.raw_pitch_accuracy"])
    assert rows[1]["diff"] < -0.5 and rows[1]["n_paired"] == defined


def test_end_to_end_manifest_clips(synth_root, tmp_path):
    from vitmusic.data.manifest import read_manifest

    assert cli.main(["prepare", "--urmp", str(synth_root), "--out", str(tmp_path / "prep"),
                     "--clip-seconds", "3", "--no-plot"]) == 0
    clips = read_manifest(tmp_path / "prep")
    for c in clips:
        y, sr = sf.read(c["mix"], dtype="float32")
        write(tmp_path / "gen" / f"{c['clip_id']}.wav", y[int(c["start_s"] * sr): int(c["end_s"] * sr)], sr)
    out = tmp_path / "out"
    assert cli.main(["evaluate", "--manifest", str(tmp_path / "prep"), "--gen", str(tmp_path / "gen"),
                     "--out", str(out), "--metrics", "chroma", "--quiet", "--plot-clips", "0"]) == 0
    rows = list(csv.DictReader(open(out / "per_clip.csv")))
    assert len(rows) == len(clips) >= 4
    # every clip (also those starting at 3 s) is compared with the matching cut of the mix
    assert all(float(r["chroma.cosine"]) > 0.99 for r in rows)
    assert all(float(r["duration_s"]) == pytest.approx(3.0, abs=0.01) for r in rows)


def test_unannotated_piece_is_scored_against_its_reference_audio(synth_root, tmp_path):
    """A piece whose stems lack F0s/Notes (reported by prepare) is scored through the manifest as --ref would
    score it: the referee on the reference audio; summary.json says which reference each metric used."""
    import shutil

    from vitmusic.data import urmp
    from vitmusic.data.manifest import read_manifest

    root = tmp_path / "urmp"
    piece = next(p for p in urmp.discover_pieces(synth_root) if len(p.stems) > 1)
    shutil.copytree(piece.folder, root / piece.folder.name)
    for f in (root / piece.folder.name).iterdir():
        if f.name.startswith(("F0s_", "Notes_")):
            f.unlink()
    assert cli.main(["prepare", "--urmp", str(root), "--out", str(tmp_path / "prep"), "--clip-seconds", "3",
                     "--no-plot"]) == 0
    for c in read_manifest(tmp_path / "prep"):
        y, sr = sf.read(c["mix"], dtype="float32")
        write(tmp_path / "gen" / f"{c['clip_id']}.wav", y[int(c["start_s"] * sr): int(c["end_s"] * sr)], sr)
    out = tmp_path / "out"
    assert cli.main(["evaluate", "--manifest", str(tmp_path / "prep"), "--gen", str(tmp_path / "gen"),
                     "--out", str(out), "--metrics", "pitch,notes,multipitch", "--quiet", "--plot-clips", "0"]) == 0
    m = json.loads((out / "summary.json").read_text())["metrics"]
    # a copy of the reference scores perfectly against the referee's reading of the reference
    assert m["notes.f1_no_offset"]["mean"] == pytest.approx(1.0)
    assert m["multipitch.accuracy"]["mean"] == pytest.approx(1.0)
    assert list(m["notes.f1"]["reference"]) == ["reference audio (no Notes annotations)"]
    assert list(m["multipitch.recall"]["reference"]) == ["reference audio (no F0s annotations)"]
    assert "referee_ceiling" not in m["notes.f1"]  # no annotation, so no ceiling is claimed
    # single-voice pitch on an ensemble mix: undefined with the reason, not a crash
    assert m["pitch.raw_pitch_accuracy"]["mean"] is None
    assert any("ensemble" in r for r in m["pitch.raw_pitch_accuracy"]["undefined_reasons"])


def test_very_short_and_silent_files_with_real_metrics(tmp_path):
    y = tone_seq(MELODY[:6])
    write(tmp_path / "ref" / "short.wav", y)
    write(tmp_path / "gen" / "short.wav", y[: int(0.3 * SR)])
    write(tmp_path / "ref" / "quiet.wav", y)
    write(tmp_path / "gen" / "quiet.wav", np.zeros_like(y))
    rc, out = evaluate(tmp_path, "--metrics", "tempo,chroma,emotion,fad", "--plot-clips", "2")
    assert rc == 0
    rows = {r["clip_id"]: r for r in csv.DictReader(open(out / "per_clip.csv"))}
    # 0.3 s is below the metrics' minimum length: undefined everywhere, reported, not a crash or a 0
    assert all(rows["short"][m] == "nan" for m in per_clip_metrics())
    assert rows["quiet"]["chroma.cosine"] == "0.0"  # a silent output against a sounding reference: misses
    s = json.loads((out / "summary.json").read_text())
    assert any(w.startswith("short: tempo failed") for w in s["config"]["warnings"])
    cos = s["metrics"]["chroma.cosine"]
    assert (cos["mean"], cos["n"]) == (0.0, 1)
    assert any("at least 1 s is needed" in r for r in cos["undefined_reasons"]), cos
    assert s["metrics"]["fad"]["n"] == 2  # set-level: n counts the clips pooled
    assert (out / "report.md").exists()


def test_outputs_are_atomic_on_failure(dirs, fake_metrics, monkeypatch):
    from vitmusic.evaluation import report

    rc, out = evaluate(dirs)
    assert rc == 0
    before = (out / "per_clip.csv").read_text()
    calls = {"n": 0}
    real_fmt = report._fmt

    def flaky(v):  # dies halfway through writing the CSV
        calls["n"] += 1
        if calls["n"] > 15:
            raise RuntimeError("disk on fire")
        return real_fmt(v)

    monkeypatch.setattr(report, "_fmt", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        evaluate(dirs)
    assert (out / "per_clip.csv").read_text() == before  # the previous complete file is untouched
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_sync_uses_videos_named_like_clips(tmp_path):
    from vitmusic.data.videowriter import write_video

    durations_s = [0.32, 0.72, 0.4, 0.88, 0.52, 0.6, 0.36, 0.8, 0.44, 0.96]
    y = np.concatenate([tone_seq([f], note_s=d) for f, d in zip(MELODY, durations_s)])
    write(tmp_path / "ref" / "clip.wav", y)
    write(tmp_path / "gen" / "clip.wav", y)
    write(tmp_path / "ref" / "novideo.wav", y)
    write(tmp_path / "gen" / "novideo.wav", y)
    fps, n = 25, int(len(y) / SR * 25)
    # a brightness flash at every (irregular, so the lag is unambiguous) note onset
    onsets = np.round(np.cumsum([0.0] + durations_s[:-1]) * fps).astype(int)
    level = np.full(n, 10, np.uint8)
    for k in onsets:
        level[k: k + 2] = 250
    write_video(tmp_path / "videos" / "clip.mp4", np.broadcast_to(level[:, None, None, None], (n, 32, 32, 3)), fps)
    rc, out = evaluate(tmp_path, "--metrics", "sync", "--videos", str(tmp_path / "videos"))
    assert rc == 0
    rows = {r["clip_id"]: r for r in csv.DictReader(open(out / "per_clip.csv"))}
    assert rows["novideo"]["sync.correlation"] == "nan"
    assert float(rows["clip"]["sync.correlation"]) > 0.3
    assert abs(float(rows["clip"]["sync.offset_s"])) < 0.1
    assert json.loads((out / "summary.json").read_text())["metrics"]["sync.correlation"]["n"] == 1


def test_runner_tracks_f0_once_per_signal_and_equals_the_modules(tmp_path, monkeypatch):
    import librosa

    from vitmusic.metrics import chroma, emotion, notes, pitch, tempo

    y = tone_seq(MELODY[:8])
    write(tmp_path / "ref" / "a.wav", y)
    write(tmp_path / "gen" / "a.wav", tone_seq([f * 2 ** (1 / 12) for f in MELODY[:4]] + MELODY[4:8]))
    real_pyin, calls = librosa.pyin, []
    monkeypatch.setattr(librosa, "pyin", lambda y, **kw: calls.append(y.size) or real_pyin(y, **kw))
    cfg = runner.EvalConfig(gen_dir=tmp_path / "gen", ref_dir=tmp_path / "ref", sample_rate=SR,
                            metrics=("tempo", "pitch", "notes", "chroma", "emotion"), n_plot_clips=1,
                            pitch_backend="pyin")
    res = runner.evaluate_dirs(cfg, progress=False)
    # pitch metrics, both transcriptions and the f0/piano-roll plots share one pYIN pass per signal
    assert len(calls) == 2
    ref, gen = (runner.load_mono(tmp_path / side / "a.wav", SR) for side in ("ref", "gen"))
    ref_f0, gen_f0 = pitch.track_f0(ref, SR), pitch.track_f0(gen, SR)
    direct = {**tempo.evaluate(ref, gen, SR), **pitch.evaluate(ref, gen, SR),
              **notes.evaluate(notes.transcribe(ref, SR), notes.transcribe(gen, SR)),
              **chroma.evaluate(ref, gen, SR), **emotion.evaluate(ref, gen, SR)}
    row = res.rows[0]
    compared = [m for m in per_clip_metrics() if m in direct]
    assert len(compared) == 24
    np.testing.assert_array_equal([row[m] for m in compared], [direct[m] for m in compared])  # nan == nan
    assert 0.2 < row["pitch.raw_pitch_accuracy"] < 0.8  # half the notes shifted: a real, non-trivial value
    art = res.artifacts["a"]
    for got, want in ((art["ref_f0"], ref_f0), (art["gen_f0"], gen_f0)):
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert np.array_equal(art["gen_notes"], notes.transcribe(gen, SR, f0=gen_f0))
    assert np.array_equal(art["ref_beats_s"], tempo.beat_times(ref, SR))
    assert np.array_equal(art["gen_beats_s"], tempo.beat_times(gen, SR))


def test_one_sample_file_and_all_null_metrics_are_not_success(tmp_path, capsys):
    """A 1-sample generated file is a listed clip failure (alone: the command fails in one line instead of
    exiting 0 with every metric null); an existing file as --out fails before any scoring."""
    y = tone_seq(MELODY[:4])
    write(tmp_path / "ref" / "a.wav", y)
    write(tmp_path / "gen" / "a.wav", y[:1])
    rc, out = evaluate(tmp_path, "--metrics", "chroma")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "nothing could be evaluated" in err[0] and "1 sample(s)" in err[0]
    write(tmp_path / "ref" / "b.wav", y)
    write(tmp_path / "gen" / "b.wav", y)
    rc, out = evaluate(tmp_path, "--metrics", "chroma")
    assert rc == 0
    failures = json.loads((out / "summary.json").read_text())["config"]["failures"]
    assert [f["clip_id"] for f in failures] == ["a"] and "too short" in failures[0]["reason"]
    assert json.loads((out / "failures.json").read_text()) == failures
    capsys.readouterr()
    (tmp_path / "afile").write_text("x")
    assert cli.main(["evaluate", "--ref", str(tmp_path / "ref"), "--gen", str(tmp_path / "gen"), "--out",
                 str(tmp_path / "afile"), "--metrics", "chroma"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "exists and is not a folder" in err
