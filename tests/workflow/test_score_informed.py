"""The score-informed kind through the command line: train, generate (score next to the video or --score), ablate
with its systems; bad scores are refused clip by clip and reported, never rendered deadpan."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from vitmusic import cli
from vitmusic.workflow.kinds.score_informed import SYSTEMS, deadpan_parts

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "experiments" / "score_tiny.yaml"
PRESET = ROOT / "configs" / "tiny-score.yaml"


def test_the_kind_is_registered_with_stable_system_names():
    from vitmusic.workflow.kinds import get_kind

    kind = get_kind("score-informed")
    assert tuple(kind.systems) == SYSTEMS == ("model", "shuffled", "deadpan", "oracle", "transcription")
    assert {s: kind.systems[s].uses for s in SYSTEMS} == {"model": "own", "shuffled": "model", "deadpan": "none",
                                                          "oracle": "none", "transcription": "model"}


def test_deadpan_reads_the_score_at_its_tempo_from_the_clip_start():
    parts = [np.array([[3.5, 440.0, 0.5], [4.0, 440.0, 0.5], [7.9, 440.0, 0.5], [8.0, 440.0, 0.5]])]
    np.testing.assert_allclose(deadpan_parts(parts, 4.0, 8.0)[0], [[0.0, 440.0, 0.5], [3.9, 440.0, 0.1]])


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """6 synthetic pieces of 3 s, one clip each: 3 train, 1 val, 2 test pieces; the second test piece's score
    is corrupt."""
    from bench_helpers import tiny_prepared

    from vitmusic.data.manifest import read_manifest

    root = tmp_path_factory.mktemp("score")
    test = read_manifest(tiny_prepared(root, seed=4, duration_s=3.0), split="test")
    bad = Path(test[1]["score"])
    shutil.copy(bad, root / "good_score.mid")
    bad.write_bytes(b"MThd broken")
    return root, test


TRAIN = ["train.max_steps=4", "train.eval_every=2", "train.save_every=4", "train.log_with=none",
         "transcription.hidden_dim=16", "transcription.sample_rate=16000", "kind_options.min_peak=0.01"]


@pytest.mark.slow
def test_train_and_generate_through_the_cli(bench, tmp_path, capsys):
    root, test = bench
    run = tmp_path / "run"
    assert cli.main(["train", "--config", str(PRESET), f"data.manifest={root / 'prepared'}", *TRAIN,
                     f"train.output_dir={run}", f"extract.cache_dir={tmp_path / 'cache'}", "--no-progress"]) == 0
    assert json.loads((run / "final" / "config.json").read_text())["extra"]["config"]["task"] == "score-informed"
    good = test[0]
    out = tmp_path / "a.wav"
    assert cli.main(["generate", "--video", good["video"], "--checkpoint", str(run), "--out", str(out),
                     "--no-progress"]) == 0
    pm = pretty_midi.PrettyMIDI(str(out.with_suffix(".mid")))
    assert len(pm.instruments) >= 1 and out.stat().st_size > 1000
    # the score's pitches, not the head's: every played pitch is in the score
    score = pretty_midi.PrettyMIDI(good["score"])
    assert {n.pitch for i in pm.instruments for n in i.notes} <= {n.pitch for i in score.instruments for n in i.notes}
    # the corrupt score next to the second test video: one line, exit code 2, nothing written
    capsys.readouterr()
    bad_out = tmp_path / "b.wav"
    assert cli.main(["generate", "--video", test[1]["video"], "--checkpoint", str(run), "--out", str(bad_out),
                     "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreadable MIDI" in err[0] and not bad_out.exists()
    # a score with another number of parts than the performers
    wrong = tmp_path / "wrong.mid"
    pm_wrong = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=0.0, end=1.0))
    pm_wrong.instruments.append(inst)
    pm_wrong.write(str(wrong))
    assert cli.main(["generate", "--video", good["video"], "--checkpoint", str(run), "--out", str(bad_out),
                     "--score", str(wrong), "--no-progress"]) == 2
    assert "1 part(s), but the piece has" in capsys.readouterr().err
    # the systems from a script (a table script's entry point): one folder per system, the bad clip refused
    from vitmusic.workflow.kinds.score_informed import run_systems

    got = run_systems(root / "prepared", run, tmp_path / "systems", systems=("deadpan", "model"))
    for folder in got.values():
        assert (folder / f"{good['clip_id']}.wav").is_file() and not (folder / f"{test[1]['clip_id']}.wav").exists()
        assert json.loads((folder / "failures.json").read_text())[0]["clip_id"] == test[1]["clip_id"]


@pytest.mark.slow
def test_ablation_runs_every_system_and_reports_refused_clips(bench, tmp_path):
    root, test = bench
    out = tmp_path / "abl"
    assert cli.main(["ablate", str(TINY), f"data.manifest={root / 'prepared'}", "--out", str(out),
                     "--no-progress"]) == 0
    good, bad = (str(c["clip_id"]) for c in test)
    for v in SYSTEMS:
        gen = out / v / "seed0" / "generated"
        assert (gen / f"{good}.wav").is_file() and (gen / f"{good}.mid").is_file(), v
        if v in ("model", "shuffled", "deadpan"):  # the systems that read the score refuse the corrupt one
            assert not (gen / f"{bad}.wav").exists()
            failures = json.loads((gen / "failures.json").read_text())
            assert [f["clip_id"] for f in failures] == [bad] and "unreadable MIDI" in failures[0]["reason"]
        else:
            assert (gen / f"{bad}.wav").is_file()
    with open(out / "results.csv", newline="") as f:
        rows = {(r["variant"], r["metric"]): r for r in csv.DictReader(f) if r["seed"] == "0"}
    assert float(rows[("oracle", "transcription.notes.f1_no_offset")]["mean"]) > 0.99
    # the deadpan score holds the performed notes: from the piece start its pitches and onsets are close
    assert float(rows[("deadpan", "transcription.notes.f1_no_offset")]["mean"]) > 0.3
    assert rows[("model", "transcription.notes.f1")]["n"] == "1"
    # the aligner's options chosen on the validation clip; refusing every clip scores 0 and loses ties
    train = json.loads((out / "model" / "seed0" / "train.json").read_text())
    aligner = train["tune_scores"]["aligner"]
    assert len(aligner["scores"]) == 4 and aligner["clips"] == 1
    assert aligner["scores"]["kind_options.min_peak=0.999, kind_options.prior_weight=0.0"] == 0.0
    assert aligner["refused"]["kind_options.min_peak=0.999, kind_options.prior_weight=0.0"] == 1
    assert set(train["tuned"]) == {"kind_options.min_peak", "kind_options.prior_weight"}
    assert train["tuned"]["kind_options.min_peak"] == 0.01
    assert aligner["scores"][", ".join(f"{k}={v}" for k, v in train["tuned"].items())] == max(
        aligner["scores"].values())
    for v in ("model", "shuffled"):  # the systems that align generate with the choice
        assert json.loads((out / v / "seed0" / "systems.json").read_text())["tuned"] == train["tuned"]


def test_tuning_refuses_a_key_the_aligner_does_not_have():
    from vitmusic.config import load_config
    from vitmusic.errors import ConfigError
    from vitmusic.workflow.kinds import get_kind

    with pytest.raises(ConfigError, match="not an option of the score-informed kind"):
        get_kind("score-informed").tune(load_config(PRESET), None, {"kind_options.prior_wieght": [0.0, 1.0]})
