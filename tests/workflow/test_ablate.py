"""Experiment files, baseline systems and `vitmusic ablate` (train -> generate -> evaluate, resumable)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vitmusic import cli
from vitmusic.errors import ConfigError
from vitmusic.workflow.experiments import load_experiment, parse_experiment, select_variants
from vitmusic.workflow.kinds import SystemContext
from vitmusic.workflow.kinds import musicgen as musicgen_kind
from vitmusic.workflow.results import RESULT_COLUMNS, TRAIN_METRICS
from vitmusic.workflow.retrieval import mean_pool, nearest_by_cosine, retrieval_sources

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "experiments" / "tiny_projection.yaml"


# ------------------------------------------------------------------------------------------ baselines
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

    def generate_from_embeddings(self, embeds, mask, times_s, duration_s, *, seed, unconditional):
        self.calls.append({"embeds": embeds.clone(), "unconditional": unconditional, "seed": seed,
                           "times_s": times_s, "duration_s": duration_s})
        return np.zeros(int(round(duration_s * self.sample_rate)), np.float32)


def _clips(n, dim=3, seconds=1.0, pieces=None):
    pieces = pieces or [f"p{i}" for i in range(n)]
    return [{"clip_id": f"c{i}", "piece": pieces[i], "start_s": 2.0, "end_s": 2.0 + seconds,
             "embeds": np.full((4, dim), float(i), np.float32), "mask": np.ones(4, bool)} for i in range(n)]


def test_musicgen_systems_route_the_right_conditioning(tmp_path, monkeypatch):
    """The MusicGen kind's systems on cached embeddings: own video, another piece's video, the null condition."""
    from vitmusic.config import load_config

    test = _clips(6, pieces=["a", "a", "b", "b", "c", "c"])
    pipe = FakePipe()
    monkeypatch.setattr(musicgen_kind, "_cached_test", lambda ctx: (pipe, test))
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["generate.seed=5"])
    piece = {c["clip_id"]: c["piece"] for c in test}
    for system in ("model", "shuffled", "unconditional"):
        pipe.calls.clear()
        ctx = SystemContext(cfg, tmp_path / "run", tmp_path / system, progress=False)
        rec = musicgen_kind.KIND.system(system).generate(ctx)
        used = [f"c{int(c['embeds'][0, 0, 0])}" for c in pipe.calls]
        assert [c["unconditional"] for c in pipe.calls] == [system == "unconditional"] * 6
        if system == "shuffled":  # every clip gets the video of a clip of another piece
            assert all(piece[u] != piece[f"c{i}"] for i, u in enumerate(used))
            assert [r["source"] for r in rec] == used
        else:
            assert used == [f"c{i}" for i in range(6)]
        assert all(c["duration_s"] == pytest.approx(1.0) for c in pipe.calls)
        np.testing.assert_allclose(pipe.calls[0]["times_s"], [0, 0.25, 0.5, 0.75])
        assert sorted(p.name for p in (tmp_path / system).iterdir()) == [f"c{i}.wav" for i in range(6)]
    # an existing output is kept: generation resumes clip by clip
    pipe.calls.clear()
    musicgen_kind.KIND.system("model").generate(SystemContext(cfg, tmp_path / "run", tmp_path / "model",
                                                              progress=False))
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
    from vitmusic.training.tasks.musicgen import codebook_cross_entropy

    with torch.no_grad():
        la, lb = (codebook_cross_entropy(*gen.teacher_forced(*proj(x), codes)).mean() for x in (a, b))
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
    ("base: ../configs/tiny.yaml\nbaseline: a\nvariants: {a: {system: magic}}\n", "has no system 'magic'"),
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
    """6 synthetic pieces of 2 s, one 2 s clip each: 3 train pieces, 1 val, 2 test (2 test clips of 2 pieces,
    so the shuffled control has another piece to take a video from)."""
    from bench_helpers import tiny_prepared

    root = tmp_path_factory.mktemp("ablate_data")
    tiny_prepared(root, seed=1, duration_s=2.0)
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
        assert (out / v / "seed0" / "DONE").is_file()
        assert sorted(p.name for p in (out / v / "seed0" / "generated").glob("*.wav")) == test_ids
        assert (out / v / "seed0" / "eval" / "per_clip.csv").is_file()
    assert not (out / "shuffled" / "seed0" / "run").exists()  # the shuffled control reuses mlp's trained model
    assert not (out / "pca").exists() and not (out / "linear").exists()
    record = json.loads((out / "shuffled" / "seed0" / "systems.json").read_text())
    pieces = {c["clip_id"]: c["piece"] for c in read_manifest(prepared / "prepared")}
    assert all(pieces[c["source"]] != pieces[c["clip_id"]] for c in record["clips"])  # another piece's video
    train = json.loads((out / "mlp" / "seed0" / "train.json").read_text())
    assert {"train.ce_true_video", "train.ce_shuffled_video", "val_loss"} <= set(train)
    history = json.loads((out / "mlp" / "seed0" / "run" / "history.json").read_text())
    logged = next(h for h in history if "loss" in h)
    assert {f"ce_codebook_{k}" for k in range(4)} <= set(logged)  # the per-codebook CE is logged
    assert logged["loss"] == pytest.approx(np.mean([logged[f"ce_codebook_{k}"] for k in range(4)]), rel=1e-5)

    done = {v: _mtime(out / v / "seed0" / "DONE") for v in ("mlp", "shuffled")}
    summary = _mtime(out / "mlp" / "seed0" / "eval" / "summary.json")
    assert cli.main([*args, "--only", "mlp,shuffled,pca"]) == 0  # mlp, shuffled skipped; pca added
    assert {v: _mtime(out / v / "seed0" / "DONE") for v in ("mlp", "shuffled")} == done
    assert _mtime(out / "mlp" / "seed0" / "eval" / "summary.json") == summary
    assert (out / "pca" / "seed0" / "DONE").is_file() and not (out / "pca" / "seed0" / "run" / "checkpoints").exists()

    # a changed config does not pass for a finished variant
    assert cli.main([*args[:3], "train.max_steps=3", *args[4:], "--only", "mlp"]) == 2
    assert "was run with a different config" in capsys.readouterr().err
    assert _mtime(out / "mlp" / "seed0" / "DONE") == done["mlp"]

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == RESULT_COLUMNS
    from vitmusic.evaluation.registry import summary_metrics

    SUMMARY_METRICS = summary_metrics()

    metric_rows = [r for r in rows if r["metric"] in SUMMARY_METRICS and r["seed"] == "0"]
    assert [r["variant"] for r in metric_rows[:: len(SUMMARY_METRICS)]] == ["mlp", "pca", "shuffled"]
    assert len(metric_rows) == 3 * len(SUMMARY_METRICS)
    cos = {r["variant"]: r for r in metric_rows if r["metric"] == "chroma.cosine"}
    assert all(0 <= float(cos[v]["mean"]) <= 1 and cos[v]["n"] == "2" for v in cos)
    assert cos["mlp"]["diff"] == "nan" and cos["shuffled"]["n_paired"] == "2"
    # intervals over pieces, the method named per row; the difference's test is the sign-flip test over pieces
    assert cos["mlp"]["interval"].endswith("(piece)") and cos["mlp"]["n_pieces"] == "2"
    assert cos["shuffled"]["test"] == "sign-flip(piece)" and 0 < float(cos["shuffled"]["p"]) <= 1
    assert float(cos["shuffled"]["diff"]) == pytest.approx(float(cos["shuffled"]["mean"]) - float(cos["mlp"]["mean"]))
    assert {r["metric"] for r in rows if r["metric"] in TRAIN_METRICS and r["variant"] == "mlp"} >= {
        "train.val_loss", "train.ce_true_video"}
    md = (out / "results.md").read_text()
    assert "**mlp** (baseline)" in md and "| shuffled | shuffled |" in md and "chroma.cosine" in md
    assert "| linear | model | linear |" in md and "not run" in md and "another piece" in md
    assert (out / "results.png").stat().st_size > 0


@pytest.mark.slow
def test_ablate_seeds_are_a_factor(prepared, tmp_path, capsys):
    """--seeds 0,1: every variant per seed into <variant>/seed<k>/, results aggregated across the seeds."""
    out = tmp_path / "seeds"
    assert cli.main(["ablate", str(TINY), f"data.manifest={prepared / 'prepared'}", "train.max_steps=2",
                     "train.warmup_steps=0", "evaluate.metrics=chroma", "evaluate.n_boot=20", "--out", str(out),
                     "--only", "mlp,shuffled", "--seeds", "3,4", "--no-progress"]) == 0
    for v in ("mlp", "shuffled"):
        for k in (3, 4):
            cfg = (out / v / f"seed{k}" / "config.yaml").read_text()
            assert (out / v / f"seed{k}" / "DONE").is_file() and f"seed: {k}" in cfg
    # the two seeds trained two models (different init): their weights differ
    from safetensors.torch import load_file

    w3, w4 = (load_file(out / "mlp" / f"seed{k}" / "run" / "final" / "model.safetensors") for k in (3, 4))
    assert any(not torch.equal(w3[n], w4[n]) for n in w3)
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cos = {(r["variant"], r["seed"]): r for r in rows if r["metric"] == "chroma.cosine"}
    assert set(cos) == {(v, s) for v in ("mlp", "shuffled") for s in ("3", "4", "all")}
    agg, per = cos[("mlp", "all")], [float(cos[("mlp", s)]["mean"]) for s in ("3", "4")]
    assert agg["interval"] == "t(seed)" and agg["n"] == "2"
    assert float(agg["mean"]) == pytest.approx(np.mean(per)) and float(agg["sd"]) == pytest.approx(np.std(per, ddof=1))
    d = [float(cos[("shuffled", s)]["mean"]) - float(cos[("mlp", s)]["mean"]) for s in ("3", "4")]
    assert float(cos[("shuffled", "all")]["diff"]) == pytest.approx(np.mean(d))
    md = (out / "results.md").read_text()
    assert "Means across 2 training seeds" in md and "Per-seed means" in md
    assert cli.main(["ablate", str(TINY), "--seeds", "1,1", "--out", str(tmp_path / "x")]) == 2
    assert "distinct" in capsys.readouterr().err
