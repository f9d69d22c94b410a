"""`vitmusic demo`: the whole offline pipeline produces the report, the results table and mp4s with audio."""

import csv
import re
from pathlib import Path

import pytest
from demo_run import demo_output

from vitmusic import cli
from vitmusic.workflow.demo import DemoSettings, default_config


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    return demo_output(tmp_path_factory)


def test_demo_defaults_need_no_arguments():
    assert default_config().name == "tiny.yaml" and default_config().is_file()
    s = DemoSettings()
    assert s.splits.count("test") >= 2  # held-out pieces, at least 2 so the shuffled control is defined
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
    for section in ("## What the trained model achieved", "## Stages", "## Results", "## Videos"):
        assert section in text
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
    assert len(videos) == 2 * 4  # 4 test clips x (model, shuffled)
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
