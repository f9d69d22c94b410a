"""`vitmusic demo`: the whole offline pipeline produces the report, the results table and mp4s with audio."""

import csv
import json
import re
from pathlib import Path

import pytest
from demo_run import SMALL, demo_output, run_small_demo

from vitmusic import cli
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
    assert args.out == "demo_out" and args.config is None


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
    assert "piano rolls" in text and (out / "midi" / "piano_rolls.png").is_file()
    assert "Teacher-forced cross-entropy" in text and "**total**" in text
    # every image and link the report names exists
    for link in re.findall(r"\]\(([^)]+)\)", text):
        assert (out / link).is_file(), link
    assert (out / "results.png").stat().st_size > 0 and (out / "runs" / "model" / "run" / "loss.png").is_file()

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["variant"] for r in rows} == {"model", "shuffled"}
    cos = {r["variant"]: r for r in rows if r["metric"] == "chroma.cosine"}
    assert int(cos["model"]["n_paired"]) >= 2 and cos["shuffled"]["diff"] == "nan"  # shuffled is the baseline
    ce = {r["metric"]: float(r["mean"]) for r in rows if r["variant"] == "model" and r["metric"].startswith("train.")}
    assert set(ce) == {"train.val_loss", "train.ce_true_video", "train.ce_shuffled_video"}

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
    done = {v: (out / "runs" / v / "DONE").stat().st_mtime_ns for v in ("model", "shuffled")}
    final = (out / "runs" / "model" / "run" / "final" / "model.safetensors").stat().st_mtime_ns
    assert cli.main(["demo", "--out", str(out), "--no-progress"]) == 0
    assert {v: (out / "runs" / v / "DONE").stat().st_mtime_ns for v in done} == done
    assert (out / "runs" / "model" / "run" / "final" / "model.safetensors").stat().st_mtime_ns == final
    assert Path(capsys.readouterr().out.strip().split("report: ")[1]) == out / "report.md"


@pytest.mark.slow
def test_demo_json_results_use_summary_names(demo):
    out, _ = demo
    doc = json.loads((out / "demo.json").read_text())
    res = doc["results"]
    assert set(res) == {"midi", "musicgen"} and all(set(res[p]) == {"model", "shuffled"} for p in res)
    summary = json.loads((out / "midi" / "model" / "eval" / "summary.json").read_text())["metrics"]
    midi = res["midi"]["model"]
    assert "transcription.notes.f1_no_offset" in midi
    assert {m for m in midi if not m.startswith("transcription.")} <= set(summary)
    mg = json.loads((out / "runs" / "model" / "eval" / "summary.json").read_text())["metrics"]
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
    for name in ("transcription.csv",):
        for v in ("model", "shuffled"):
            assert (out / "midi" / v / name).read_bytes() == (again / "midi" / v / name).read_bytes()
    assert SMALL.pieces == 10
