"""`vitmusic demo`: the whole offline pipeline produces the report, the results table and mp4s with audio."""

import csv
import json
import math
import re
from pathlib import Path

import pytest
from demo_run import SMALL, demo_output, run_small_demo

from vitmusic import cli
from vitmusic.data.manifest import read_manifest
from vitmusic.workflow.demo import DemoSettings, default_config


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    return demo_output(tmp_path_factory)


def test_demo_defaults_need_no_arguments():
    assert default_config().name == "tiny.yaml" and default_config().is_file()
    s = DemoSettings()
    assert s.splits.count("test") >= 2  # held-out pieces, at least 2 so the shuffled control is defined
    test_pieces = sum(s.splits[i % len(s.splits)] == "test" for i in range(s.pieces))
    assert test_pieces * int(s.duration_s // s.clip_s) >= 16  # the MIDI path's CIs are over >= 16 test clips
    assert s.midi.encoder == "small-vit"  # real resolution: 96x96 pixels per performer
    args = cli.build_parser().parse_args(["demo"])
    assert args.out == "demo_out" and args.config is None and args.seeds is None


def test_demo_seeds_reach_both_paths(tmp_path, monkeypatch, capsys):
    """`vitmusic demo --seeds 0,1` runs both paths' experiments once per training seed."""
    from vitmusic.workflow import demo

    seen = {}

    def fake_run_demo(out, *, config=None, settings=None, progress=True):
        seen["settings"] = settings
        return Path(out) / "report.md"

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    assert cli.main(["demo", "--out", str(tmp_path / "d"), "--seeds", "0,1", "--no-progress"]) == 0
    assert seen["settings"].seeds == (0, 1) and seen["settings"].pieces == demo.DEFAULT_SETTINGS.pieces
    exp = demo.midi_experiment(tmp_path / "m.jsonl", seen["settings"], "builtin", "")
    assert exp.tune == {"transcription.onset_threshold": list(demo.ONSET_THRESHOLDS)}
    assert cli.main(["demo", "--out", str(tmp_path / "d"), "--seeds", "x"]) == 2
    assert "seeds must be distinct integers" in capsys.readouterr().err


def test_headline_across_seeds_and_over_pieces():
    """The demo's headline: with one seed the clip mean with its interval over pieces (method named) and the
    sign-flip test; with several, mean ± sd [t interval] across the seeds with each seed's mean."""
    import numpy as np

    from vitmusic.workflow.demo import headline_lines
    from vitmusic.workflow.results import aggregate_seeds, clip_rows

    m = "transcription.notes.f1_no_offset"
    clips = [f"c{i}" for i in range(8)]
    pieces = {c: f"p{i // 2}" for i, c in enumerate(clips)}

    def seed_rows(k: int, shift: float) -> list[dict]:
        rng = np.random.default_rng(k)
        per = {"model": {c: {m: float(v)} for c, v in zip(clips, rng.uniform(0.4, 0.9, 8) - shift)},
               "shuffled": {c: {m: float(v)} for c, v in zip(clips, rng.uniform(0.0, 0.2, 8))}}
        return clip_rows(per, {"model": "model", "shuffled": "shuffled"}, "shuffled", str(k), pieces=pieces,
                         bounds={m: (0.0, 1.0)}, n_boot=100)

    midi = {"synth": "builtin", "soundfont": None, "test_clips": 8, "seeds": [0]}
    one = "\n".join(headline_lines({**midi, "rows": seed_rows(0, 0.0)}, []))
    assert "wilson-boot-t(piece)" in one and "sign-flip(piece) p =" in one and "Wilcoxon" not in one
    rows = seed_rows(0, 0.0) + seed_rows(1, 0.05) + seed_rows(2, 0.1)
    rows += aggregate_seeds(rows, "shuffled")
    three = "\n".join(headline_lines({**midi, "rows": rows, "seeds": [0, 1, 2]}, []))
    per_seed = [next(r["mean"] for r in rows if r["seed"] == str(k) and r["variant"] == "model") for k in range(3)]
    agg = next(r for r in rows if r["seed"] == "all" and r["variant"] == "model")
    assert "across 3 training seeds" in three and f"{agg['mean']:.3f} ± {agg['sd']:.3f}" in three
    assert "seeds: " + ", ".join(f"{v:.3f}" for v in per_seed) in three and "n = 3 seeds" in three


def test_demo_out_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "x"
    f.write_text("")
    assert cli.main(["demo", "--out", str(f), "--no-progress"]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_end_to_end(demo):
    out, stdout = demo
    report = out / "report.md"
    assert str(report) in stdout and "demo finished" in stdout  # it says where the report is
    text = report.read_text()
    for section in ("## MIDI path", "## MusicGen path: what the trained model achieved", "## Stages",
                    "## Results (MusicGen path)", "## Videos"):
        assert section in text
    # the first lines state the headline figures, the MIDI path first
    head = text.split("Offline, on one synthetic")[0]
    assert head.index("**MIDI path**") < head.index("**MusicGen path**")
    assert "`transcription.notes.f1_no_offset`" in head and "shuffled" in head
    assert "(piece)" in head and "Wilcoxon" not in text  # intervals over pieces, the method and test named
    assert "piano rolls" in text and (out / "midi" / "piano_rolls.png").is_file()
    assert "Teacher-forced cross-entropy" in text and "**total**" in text
    # every image and link the report names exists
    for link in re.findall(r"\]\(([^)]+)\)", text):
        assert (out / link).is_file(), link
    runs = out / "runs"
    assert (out / "results.png").stat().st_size > 0 and (runs / "model" / "seed0" / "run" / "loss.png").is_file()

    with open(out / "results.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["seed"] == "0"]
    assert {r["variant"] for r in rows} == {"model", "shuffled"}
    cos = {r["variant"]: r for r in rows if r["metric"] == "chroma.cosine"}
    assert int(cos["model"]["n_paired"]) >= 2 and cos["shuffled"]["diff"] == "nan"  # shuffled is the baseline
    ce = {r["metric"]: float(r["mean"]) for r in rows if r["variant"] == "model" and r["metric"].startswith("train.")}
    assert set(ce) == {"train.val_loss", "train.ce_true_video", "train.ce_shuffled_video"}
    # the MIDI path ran as an experiment of the transcription kind: decoded notes scored, threshold tuned on val
    with open(out / "midi" / "results.csv", newline="") as f:
        midi = {(r["variant"], r["metric"]): r for r in csv.DictReader(f) if r["seed"] == "0"}
    assert ("model", "transcription.notes.f1_no_offset") in midi and ("shuffled", "notes.f1_no_offset") in midi
    train = json.loads((out / "midi" / "model" / "seed0" / "train.json").read_text())
    assert set(train["tuned"]) == {"transcription.onset_threshold"} and len(train["tune_scores"]["scores"]) == 5
    donors = json.loads((out / "midi" / "shuffled" / "seed0" / "systems.json").read_text())["clips"]
    pieces = {c["clip_id"]: c["piece"] for c in read_manifest(out / "data" / "prepared")}
    assert all(pieces[c["source"]] != pieces[c["clip_id"]] for c in donors)  # another piece's video

    # the score-informed path beside the transcription path: every system named, with its notes' score or why
    # it has none (the short smoke training may leave the aligner without onsets: then the clips are refused)
    score = text.split("## Score-informed")[1].split("\n## ")[0]
    for system in ("score-informed", "deadpan", "transcription", "shuffled"):
        assert f"| {system} |" in score
    doc = json.loads((out / "demo.json").read_text())
    assert math.isfinite(doc["score_informed"]["deadpan"]["transcription.notes.f1_no_offset"])
    assert "score-informed" in doc["score_informed"] or "all: " in score
    # its aligner's settings chosen on the validation clips, and said
    from vitmusic.workflow.kinds.score_informed import ALIGNER_GRID

    tuned = json.loads((out / "midi" / "score" / "tuned.json").read_text())
    assert set(tuned["tuned"]) == set(ALIGNER_GRID) and "chosen on the validation clips" in score
    assert len(tuned["tune_scores"]["aligner"]["scores"]) == 20

    import av

    videos = sorted((out / "videos").glob("*.mp4"))
    assert len(videos) == 2 * 2 * 4  # (MIDI, MusicGen) x 4 test clips x (model, shuffled)
    assert len([v for v in videos if "_midi_" in v.name]) == 8
    with av.open(str(videos[0])) as c:
        kinds = {s.type for s in c.streams}
        assert kinds == {"video", "audio"}
        assert abs(float(c.duration) / 1e6 - DemoSettings().clip_s) < 0.2


@pytest.mark.slow
def test_demo_rerun_reuses_finished_stages(demo, capsys):
    out, _ = demo
    done = {(p, v): (out / p / v / "seed0" / "DONE").stat().st_mtime_ns for p in ("runs", "midi")
            for v in ("model", "shuffled")}
    final = (out / "runs" / "model" / "seed0" / "run" / "final" / "model.safetensors").stat().st_mtime_ns
    code, stdout = run_small_demo(out)  # the same settings as the first run (another config is refused)
    assert code == 0, stdout
    assert {k: (out / k[0] / k[1] / "seed0" / "DONE").stat().st_mtime_ns for k in done} == done
    assert (out / "runs" / "model" / "seed0" / "run" / "final" / "model.safetensors").stat().st_mtime_ns == final
    assert Path(stdout.strip().split("report: ")[1]) == out / "report.md"


@pytest.mark.slow
def test_demo_json_results_use_summary_names(demo):
    out, _ = demo
    doc = json.loads((out / "demo.json").read_text())
    res = doc["results"]
    assert set(res) == {"midi", "musicgen"} and all(set(res[p]) == {"model", "shuffled"} for p in res)
    summary = json.loads((out / "midi" / "model" / "seed0" / "eval" / "summary.json").read_text())["metrics"]
    midi = res["midi"]["model"]
    assert "transcription.notes.f1_no_offset" in midi
    assert {m for m in midi if not m.startswith("transcription.")} <= set(summary)
    mg = json.loads((out / "runs" / "model" / "seed0" / "eval" / "summary.json").read_text())["metrics"]
    assert set(res["musicgen"]["model"]) <= set(mg) and "chroma.cosine" in res["musicgen"]["model"]
    assert doc["midi"]["synth"] in ("fluidsynth", "builtin") and doc["midi"]["test_clips"] == 4
    assert all(v >= 0 for v in doc["stage_seconds"].values())


@pytest.mark.slow
def test_demo_twice_gives_identical_summaries(demo, tmp_path):
    """A fresh demo run (new folder, same settings) writes byte-identical summary.json files."""
    out, _ = demo
    again = tmp_path / "vitmusic_demo"
    code, stdout = run_small_demo(again)
    assert code == 0, stdout
    first = sorted(p.relative_to(out) for p in out.rglob("summary.json"))
    assert len(first) == 4  # (MIDI, MusicGen) x (model, shuffled)
    for rel in first:  # byte for byte, once the run folder named in its "config" is the same
        assert (out / rel).read_text().replace(str(out), str(again)) == (again / rel).read_text(), rel
    for v in ("model", "shuffled"):  # the decoded notes' scores
        rel = Path("midi") / v / "seed0" / "eval" / "kind_per_clip.csv"
        assert (out / rel).read_bytes() == (again / rel).read_bytes()
    assert SMALL.pieces == 10
