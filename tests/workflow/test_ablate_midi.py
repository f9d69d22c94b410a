"""The MIDI path through the same ablation workflow: systems, tuning on validation, the decoded notes' scores."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from vitmusic import cli
from vitmusic.workflow.kinds.transcription import midi_parts, score_notes
from vitmusic.workflow.results import aggregate_seeds, clip_rows

ROOT = Path(__file__).resolve().parents[2]
TINY_MIDI = ROOT / "experiments" / "tiny_midi.yaml"


def test_midi_parts_keep_the_order_of_a_part_without_notes(tmp_path):
    from vitmusic.generators.midi.export import notes_to_midi, write_midi

    vc = np.array([[0.5, 130.81, 0.25]])
    write_midi(notes_to_midi([np.zeros((0, 3)), vc], ["vn", "vc"]), tmp_path / "x.mid")
    parts = midi_parts(tmp_path / "x.mid", 2)  # the file holds only the cello's track
    assert len(parts[0]) == 0 and np.allclose(parts[1], vc, atol=1e-2)


def test_score_notes_carried_over_rule():
    ref = [[[0.0, 440.0, 0.5], [1.0, 440.0, 0.5]], [[0.2, 220.0, 0.3]]]
    est = [np.array([[1.0, 440.0, 0.5]]), np.array([[0.2, 220.0, 0.3]])]
    clips = {"a": {"notes": ref, "start_s": 0.0}, "b": {"notes": ref, "start_s": 4.0}}
    s = score_notes(clips, {"a": est, "b": est})
    # from the piece's start the note at 0 s is missed (recall 1/2 on the first part); cut from later in the
    # piece it sounded before the cut and is left out on both sides
    assert s["a"]["transcription.notes.recall"] == pytest.approx(0.75)
    assert s["b"]["transcription.notes.recall"] == pytest.approx(1.0)
    assert s["b"]["transcription.notes.f1_no_offset"] == pytest.approx(1.0)


def test_seed_aggregation_and_clip_rows():
    per = {"model": {"c1": {"m": 0.5}, "c2": {"m": 0.7}}, "ctrl": {"c1": {"m": 0.1}, "c2": {"m": 0.2}}}
    rows = clip_rows(per, {"model": "model", "ctrl": "shuffled"}, "ctrl", "0")
    m = {r["variant"]: r for r in rows}
    assert m["model"]["mean"] == pytest.approx(0.6) and m["model"]["diff"] == pytest.approx(0.45)
    assert m["model"]["interval"] == "boot-t(clip)" and math.isnan(m["ctrl"]["diff"])  # no range, no pieces given
    assert m["model"]["test"] == "sign-flip(clip)" and m["model"]["p"] == pytest.approx(0.5)  # 2 clips: exact p
    rows += [{**r, "seed": "1", "mean": r["mean"] + 0.1} for r in rows]
    agg = {r["variant"]: r for r in aggregate_seeds(rows, "ctrl")}
    assert agg["model"]["mean"] == pytest.approx(0.65) and agg["model"]["sd"] == pytest.approx(np.std([0.6, 0.7],
                                                                                                        ddof=1))
    assert agg["model"]["n"] == 2 and agg["model"]["interval"] == "t(seed)" and agg["model"]["seed"] == "all"
    assert agg["model"]["diff"] == pytest.approx(0.45) and agg["model"]["n_paired"] == 2
    lo, hi = agg["model"]["ci95_lo"], agg["model"]["ci95_hi"]
    assert lo < 0.65 < hi  # the t interval over two seeds is wide (t_1 = 12.7)


def test_clip_rows_pieces_and_bounds():
    """The kind's scores get the runner's statistics: the interval over pieces by the method the range calls for
    (the same numbers as vitmusic.metrics.stats), the sign-flip test over pieces, the methods named in the table."""
    from vitmusic.metrics.stats import paired_difference, summarize
    from vitmusic.workflow.results import results_markdown

    rng = np.random.default_rng(0)
    clips = [f"c{i}" for i in range(12)]
    pieces = {c: f"p{i // 2}" for i, c in enumerate(clips)}  # 6 pieces of 2 clips
    a, b = rng.uniform(0, 0.4, 12), rng.uniform(0.3, 1.0, 12)
    per = {"ctrl": {c: {"f1": a[i]} for i, c in enumerate(clips)}, "model": {c: {"f1": b[i]} for i, c in enumerate(clips)}}
    rows = clip_rows(per, {"model": "model", "ctrl": "shuffled"}, "ctrl", "0", pieces=pieces,
                     bounds={"f1": (0.0, 1.0)}, n_boot=200)
    m = {r["variant"]: r for r in rows}["model"]
    groups = [pieces[c] for c in clips]
    s = summarize(b, groups=groups, bounds=(0.0, 1.0), n_boot=200)
    d = paired_difference(a, b, groups=groups, bounds=(0.0, 1.0), n_boot=200)
    assert m["interval"] == s["method"] == "wilson-boot-t(piece)" and m["n_pieces"] == 6 and m["n"] == 12
    assert (m["ci95_lo"], m["ci95_hi"]) == pytest.approx(tuple(s["ci95"]))
    assert m["p"] == pytest.approx(d["p"]) and m["test"] == "sign-flip(piece)" and m["diff_interval"] == d["method"]
    md = results_markdown(rows, "ctrl")
    assert "wilson-boot-t(piece)" in md and "sign-flip(piece)" in md and "Wilcoxon" not in md
    assert "12 / 6 pieces (n<10)" in md


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """6 synthetic pieces of 2 s, one clip each: 3 train, 1 val, 2 test pieces."""
    from bench_helpers import tiny_prepared

    return tiny_prepared(tmp_path_factory.mktemp("midi_ablate"), seed=4, duration_s=2.0)


@pytest.mark.slow
def test_midi_ablation_end_to_end(prepared, tmp_path):
    from vitmusic.data.manifest import read_manifest

    out = tmp_path / "midi"
    assert cli.main(["ablate", str(TINY_MIDI), f"data.manifest={prepared}", "--out", str(out), "--no-progress"]) == 0
    variants = ("model", "onset0.9", "shuffled", "retrieval", "oracle")
    test = read_manifest(prepared, split="test")
    for v in variants:
        gen = out / v / "seed0" / "generated"
        assert (out / v / "seed0" / "DONE").is_file()
        assert sorted(p.name for p in gen.glob("*.mid")) == sorted(f"{c['clip_id']}.mid" for c in test)
        assert (out / v / "seed0" / "eval" / "kind_per_clip.csv").is_file()
    # a decoding setting shares the trained head; the threshold was chosen on the validation pieces
    assert not (out / "onset0.9" / "seed0" / "run").exists()
    train = json.loads((out / "model" / "seed0" / "train.json").read_text())
    assert train["tuned"]["transcription.onset_threshold"] in (0.3, 0.7)
    assert {"train.loss_true_video", "train.loss_shuffled_video", "val_loss"} <= set(train)
    assert json.loads((out / "onset0.9" / "seed0" / "systems.json").read_text())["tuned"] == {}
    pieces = {c["clip_id"]: c["piece"] for c in read_manifest(prepared)}
    for c in json.loads((out / "shuffled" / "seed0" / "systems.json").read_text())["clips"]:
        assert pieces[c["source"]] != pieces[c["clip_id"]]
    for c in json.loads((out / "retrieval" / "seed0" / "systems.json").read_text())["clips"]:
        assert c["source"] in {r["clip_id"] for r in read_manifest(prepared, split="train")}
    with open(out / "results.csv", newline="") as f:
        rows = {(r["variant"], r["metric"]): r for r in csv.DictReader(f) if r["seed"] == "0"}
    # the oracle plays the annotated notes: its written MIDI scores (close to) perfectly against them
    assert float(rows[("oracle", "transcription.notes.f1_no_offset")]["mean"]) > 0.99
    assert float(rows[("model", "transcription.notes.f1")]["n"]) == 2
    assert ("model", "notes.f1_no_offset") in rows and ("model", "chroma.cosine") in rows
    md = (out / "results.md").read_text()
    assert "transcription.notes.f1_no_offset" in md and "another piece" in md and "tune" not in md.split("|")[0]
