"""Experiment files, baseline systems and `vitmusic ablate` (train -> generate -> evaluate, resumable)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vitmusic import cli
from vitmusic.errors import ConfigError
from vitmusic.workflow.baselines import (
    derangement,
    generate_system,
    mean_pool,
    nearest_by_cosine,
    retrieval_sources,
)
from vitmusic.workflow.experiments import load_experiment, parse_experiment, select_variants
from vitmusic.workflow.results import RESULT_COLUMNS, TRAIN_METRICS

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "experiments" / "tiny_projection.yaml"


# ------------------------------------------------------------------------------------------ baselines
@pytest.mark.parametrize("n", [2, 3, 5, 17])
def test_derangement_has_no_fixed_point(n):
    for seed in range(20):
        perm = derangement(n, seed)
        assert sorted(perm.tolist()) == list(range(n))  # a permutation
        assert not np.any(perm == np.arange(n))  # nobody keeps their own video
    assert derangement(n, 3).tolist() == derangement(n, 3).tolist()  # seeded
    assert len({tuple(derangement(5, s).tolist()) for s in range(20)}) > 1


def test_derangement_needs_two_items():
    with pytest.raises(ValueError):
        derangement(1)


def test_retrieval_picks_the_nearest_training_clip():
    rng = np.random.default_rng(0)
    dirs = np.eye(4)  # four training clips pointing in four directions
    train = []
    for k in range(4):
        emb = dirs[k] + 0.05 * rng.standard_normal((6, 4))
        mask = np.ones(6, bool)
        if k == 1:  # padded steps must not count: garbage behind the mask
            emb = np.concatenate([emb, 100 * np.ones((3, 4))])
            mask = np.concatenate([mask, np.zeros(3, bool)])
        train.append({"clip_id": f"train_{k}", "embeds": emb.astype(np.float32), "mask": mask})
    # test clips: scaled copies (cosine ignores the norm) of directions 2, 1 and 3
    test = [{"clip_id": f"test_{i}", "embeds": (s * dirs[k] + 0.05 * rng.standard_normal((5, 4))).astype(np.float32),
             "mask": np.ones(5, bool)} for i, (k, s) in enumerate([(2, 7.0), (1, 0.3), (3, 2.0)])]
    assert retrieval_sources(test, train) == [2, 1, 3]
    np.testing.assert_allclose(mean_pool(train[1]["embeds"], train[1]["mask"]), train[1]["embeds"][:6].mean(0),
                               rtol=1e-6)
    assert nearest_by_cosine(np.array([[1.0, 0.1]]), np.array([[10.0, 0.0], [0.0, 1.0]])).tolist() == [0]


class FakePipe:
    """Records what each system asks the pipeline for (embeddings, unconditional flag, seed)."""

    sample_rate = 8000
    rate_hz = 4.0

    def __init__(self):
        self.calls = []

    def generate_from_embeddings(self, embeds, mask, times_s, duration_s, *, guidance_scale, seed, unconditional):
        self.calls.append({"embeds": embeds.clone(), "unconditional": unconditional, "seed": seed,
                           "times_s": times_s, "duration_s": duration_s})
        return np.zeros(int(round(duration_s * self.sample_rate)), np.float32)


def _clips(n, dim=3, seconds=1.0):
    return [{"clip_id": f"c{i}", "piece": f"p{i}", "start_s": 2.0, "end_s": 2.0 + seconds,
             "embeds": np.full((4, dim), float(i), np.float32), "mask": np.ones(4, bool)} for i in range(n)]


def test_systems_route_the_right_conditioning(tmp_path):
    test = _clips(4)
    for system in ("model", "shuffled", "unconditional"):
        pipe = FakePipe()
        rec = generate_system(system, tmp_path / system, test, pipe=pipe, seed=5, progress=False)
        used = [int(c["embeds"][0, 0, 0]) for c in pipe.calls]
        assert [c["unconditional"] for c in pipe.calls] == [system == "unconditional"] * 4
        if system == "shuffled":
            assert all(u != i for i, u in enumerate(used))  # every clip gets another clip's video
            assert [int(r["source"][1:]) for r in rec["clips"]] == used
        else:
            assert used == [0, 1, 2, 3]
        assert all(c["duration_s"] == pytest.approx(1.0) for c in pipe.calls)
        np.testing.assert_allclose(pipe.calls[0]["times_s"], [0, 0.25, 0.5, 0.75])
        assert sorted(p.name for p in (tmp_path / system).iterdir()) == [f"c{i}.wav" for i in range(4)]
    # an existing output is kept: generation resumes clip by clip
    pipe = FakePipe()
    generate_system("model", tmp_path / "model", test, pipe=pipe, progress=False)
    assert pipe.calls == []


def test_unconditional_ignores_the_video(tmp_path, monkeypatch):
    """With the real tiny MusicGen: the null condition gives the same audio whatever the video."""
    from vitmusic.config import load_config
    from vitmusic.generators.musicgen.model import load_generator
    from vitmusic.inference.musicgen import MusicGenPipeline
    from vitmusic.projection import build_projection

    class Enc:  # the pipeline only checks the width when generating from embeddings
        embed_dim = 8

    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["generate.window_s=1.0", "generate.context_s=0.5"])
    gen = load_generator("tiny-musicgen")
    torch.manual_seed(0)
    proj = build_projection("linear", 8, gen.cond_dim)
    pipe = MusicGenPipeline(cfg, Enc(), proj, gen)
    a = torch.randn(1, 4, 8)
    b = 5 * torch.randn(1, 4, 8)
    t = np.arange(4) / 4.0
    kw = dict(guidance_scale=1.0, seed=3)
    ua = pipe.generate_from_embeddings(a, None, t, 0.5, unconditional=True, **kw)
    ub = pipe.generate_from_embeddings(b, None, t, 0.5, unconditional=True, **kw)
    np.testing.assert_array_equal(ua, ub)
    # the conditioned model does listen to the video: its teacher-forced loss on the same codes depends on it
    # (sampled codes of the tiny random decoder can coincide for two random conditions, so compare the loss)
    codes = torch.randint(0, 64, (1, gen.num_codebooks, 25), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        la, lb = (gen.loss(*proj(x), codes) for x in (a, b))
    assert abs(float(la) - float(lb)) > 1e-4
    # and the null condition is zeros with mask 0 -- what condition dropout trains
    h, m = gen.null_condition(torch.ones(1, 2, 3), torch.ones(1, 2, dtype=torch.long))
    assert not h.any() and not m.any()


# ------------------------------------------------------------------------------------ experiment files
def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_experiment_files_parse():
    files = sorted((ROOT / "experiments").glob("*.yaml"))
    assert TINY in files and len(files) >= 7
    for f in files:
        exp = load_experiment(f)
        assert exp.baseline in exp.variants and exp.name == f.stem
        assert exp.order()[0] == exp.baseline


def test_experiment_variants_and_systems():
    exp = load_experiment(TINY)
    assert exp.variants["shuffled"].system == "shuffled" and exp.model_of("shuffled") == "mlp"
    assert exp.config("pca").projection.kind == "pca"
    assert exp.config("linear").projection.kind == "linear"
    assert exp.config("mlp", ["train.lr=0.5"]).train.lr == 0.5
    assert select_variants(exp, "pca,mlp") == ["mlp", "pca"]  # baseline first
    exp2 = load_experiment(TINY, ["evaluate.metrics=chroma", "evaluate.n_boot=7"])
    assert exp2.evaluate.metrics == "chroma" and exp2.evaluate.n_boot == 7


@pytest.mark.parametrize("text, message", [
    ("base: ../configs/tiny.yaml\nbaseline: a\nvariants: {a: []}\nbogus: 1\n", "unknown key 'bogus'"),
    ("baseline: a\nvariants: {a: []}\n", "missing 'base'"),
    ("base: nowhere.yaml\nbaseline: a\nvariants: {a: []}\n", "base config not found: nowhere.yaml"),
    ("base: ../configs/tiny.yaml\nbaseline: z\nvariants: {a: []}\n", "baseline 'z' is not one of the variants"),
    ("base: ../configs/tiny.yaml\nbaseline: a\nvariants: {a: [train.lrr=1]}\n", "unknown config key 'train.lrr'"),
    ("base: ../configs/tiny.yaml\nbaseline: a\nvariants: {a: {system: magic}}\n", "system must be one of"),
    ("base: ../configs/tiny.yaml\nbaseline: a\nvariants: {a: {system: shuffled}}\n", "needs a trained variant"),
    ("base: ../configs/tiny.yaml\nbaseline: a\nvariants: {a: []}\nevaluate: {metrics: nope}\n", "unknown metric"),
])
def test_bad_experiment_file_is_one_line_exit_2(tmp_path, capsys, text, message):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.yaml").write_text((ROOT / "configs" / "tiny.yaml").read_text())
    (tmp_path / "experiments").mkdir()
    f = _write(tmp_path / "experiments" / "bad.yaml", text)
    assert cli.main(["ablate", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vitmusic ablate: error:") and message in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_unknown_only_and_missing_file(tmp_path, capsys):
    assert cli.main(["ablate", str(TINY), "--only", "mlp,nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown variant 'nope'" in capsys.readouterr().err
    assert cli.main(["ablate", str(tmp_path / "missing.yaml")]) == 2
    assert "experiment file not found" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_experiment(["a"], name="x")


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """4 synthetic pieces of 4 s cut into 2 s clips: 2 train pieces, 1 val, 1 test (2 test clips)."""
    from vitmusic.data.manifest import prepare_manifest
    from vitmusic.data.synth import generate_benchmark

    root = tmp_path_factory.mktemp("ablate_data")
    folders = generate_benchmark(root / "urmp", 4, seed=1, duration_s=4.0, source="melodies", progress=False,
                                 plot=False, width_per_player=64, height=96)
    split = root / "split.csv"
    split.write_text("piece,split\n" + "".join(f"{f.name},{s}\n" for f, s in
                                               zip(folders, ["train", "train", "val", "test"])))
    prepare_manifest(root / "urmp", root / "prepared", 2.0, split_file=split, plot=False, progress=False)
    return root


def _mtime(p):
    return p.stat().st_mtime_ns


@pytest.mark.slow
def test_ablate_end_to_end_resume_and_only(prepared, tmp_path, monkeypatch, capsys):
    out = tmp_path / "abl"
    args = ["ablate", str(TINY), f"data.manifest={prepared / 'prepared'}", "train.max_steps=2",
            "train.warmup_steps=0", "evaluate.metrics=chroma", "evaluate.n_boot=50", "--out", str(out),
            "--no-progress"]
    assert cli.main([*args, "--only", "mlp,shuffled"]) == 0
    assert capsys.readouterr().out.strip().endswith("results.md")
    from vitmusic.data.manifest import read_manifest

    test_ids = sorted(f"{c['clip_id']}.wav" for c in read_manifest(prepared / "prepared", split="test"))
    assert len(test_ids) == 2
    for v in ("mlp", "shuffled"):
        assert (out / v / "DONE").is_file()
        assert sorted(p.name for p in (out / v / "generated").glob("*.wav")) == test_ids
        assert (out / v / "eval" / "per_clip.csv").is_file()
    assert not (out / "shuffled" / "run").exists()  # the shuffled baseline reuses mlp's trained model
    assert not (out / "pca").exists() and not (out / "linear").exists()
    sources = json.loads((out / "shuffled" / "systems.json").read_text())["clips"]
    assert all(c["source"] != c["clip_id"] for c in sources)

    done = {v: _mtime(out / v / "DONE") for v in ("mlp", "shuffled")}
    summary = _mtime(out / "mlp" / "eval" / "summary.json")
    assert cli.main([*args, "--only", "mlp,shuffled,pca"]) == 0  # mlp, shuffled skipped; pca added
    assert {v: _mtime(out / v / "DONE") for v in ("mlp", "shuffled")} == done
    assert _mtime(out / "mlp" / "eval" / "summary.json") == summary
    assert (out / "pca" / "DONE").is_file() and not (out / "pca" / "run" / "checkpoints").exists()

    # a changed config does not pass for a finished variant
    assert cli.main([*args[:3], "train.max_steps=3", *args[4:], "--only", "mlp"]) == 2
    assert "was run with a different config" in capsys.readouterr().err
    assert _mtime(out / "mlp" / "DONE") == done["mlp"]

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == RESULT_COLUMNS
    from vitmusic.evaluation.runner import SUMMARY_METRICS

    metric_rows = [r for r in rows if r["metric"] in SUMMARY_METRICS]
    assert [r["variant"] for r in metric_rows[:: len(SUMMARY_METRICS)]] == ["mlp", "pca", "shuffled"]
    assert len(metric_rows) == 3 * len(SUMMARY_METRICS)
    cos = {r["variant"]: r for r in metric_rows if r["metric"] == "chroma.cosine"}
    assert all(0 <= float(cos[v]["mean"]) <= 1 and cos[v]["n"] == "2" for v in cos)
    assert cos["mlp"]["diff"] == "nan" and cos["shuffled"]["n_paired"] == "2"
    assert float(cos["shuffled"]["diff"]) == pytest.approx(float(cos["shuffled"]["mean"]) - float(cos["mlp"]["mean"]))
    assert {r["metric"] for r in rows if r["metric"] in TRAIN_METRICS and r["variant"] == "mlp"} >= {
        "train.val_loss"}
    md = (out / "results.md").read_text()
    assert "**mlp** (baseline)" in md and "| shuffled | shuffled |" in md and "chroma.cosine" in md
    assert "| linear | model | linear |" in md and "not run" in md
    assert (out / "results.png").stat().st_size > 0
