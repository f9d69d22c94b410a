import csv
import json
import math

import numpy as np
import pytest
from scipy.stats import wilcoxon

from vitmusic import cli
from vitmusic.evaluation.compare import compare_runs
from vitmusic.evaluation.registry import per_clip_metrics, summary_metrics
from vitmusic.evaluation.report import write_per_clip_csv
from vitmusic.metrics import stats


def make_run(path, values: dict[str, dict[str, float]], fad=None):
    rows = []
    for cid, vals in values.items():
        row = {"clip_id": cid, "ref": f"r/{cid}.wav", "gen": f"g/{cid}.wav", "duration_s": 2.0,
               "ref_duration_s": 2.0, "gen_duration_s": 2.0}
        row.update({m: vals.get(m, math.nan) for m in per_clip_metrics()})
        rows.append(row)
    path.mkdir(parents=True)
    write_per_clip_csv(path / "per_clip.csv", rows)
    metrics = {m: {"mean": None, "ci95": [None, None], "n": 0} for m in summary_metrics()}
    metrics["fad"] = {"mean": fad, "ci95": [None, None], "n": len(rows) if fad is not None else 0}
    (path / "summary.json").write_text(json.dumps({"metrics": metrics, "config": {}, "version": "0"}))
    return path


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.2, 0.8, 12)
    b = a + rng.normal(0.1, 0.05, 12)
    ids = [f"c{i:02d}" for i in range(12)]
    run_a = make_run(tmp_path / "sysA", {c: {"notes.f1": v} for c, v in zip(ids, a)}, fad=3.0)
    # system B: one clip missing, one clip undefined, one extra clip A does not have
    vals_b = {c: {"notes.f1": v} for c, v in zip(ids[1:], b[1:])}
    vals_b["c05"] = {"notes.f1": math.nan}
    vals_b["extra"] = {"notes.f1": 0.0}
    run_b = make_run(tmp_path / "sysB", vals_b, fad=2.0)
    keep = np.array([i not in (0, 5) for i in range(12)])
    return run_a, run_b, a[keep], b[keep], b, vals_b


def test_compare_values_against_scipy_and_numpy(runs):
    run_a, run_b, a, b, b_all, vals_b = runs
    rows = compare_runs([run_a, run_b], metrics=["notes.f1", "fad"], n_boot=400, seed=3)
    cell = {(r["system"], r["metric"]): r for r in rows}
    rb = cell[("sysB", "notes.f1")]
    assert rb["n_paired"] == 10
    assert rb["diff"] == pytest.approx(np.mean(b - a))
    assert rb["p_wilcoxon"] == pytest.approx(wilcoxon(b - a).pvalue)
    from scipy import stats as sst

    d = b - a
    ref = sst.t.interval(0.95, df=d.size - 1, loc=d.mean(), scale=sst.sem(d))  # t interval of the mean
    # the interval is stats.paired_difference's on the metric's range with pieces as units (here every clip is
    # its own piece: the files have no piece column), never narrower than Student-t's
    shared = [f"c{i:02d}" for i in range(12) if i not in (0, 5)]
    diff = stats.paired_difference(a, b, groups=shared, bounds=(0.0, 1.0), n_boot=400, seed=3)
    assert rb["p"] == pytest.approx(diff["p"]) and rb["test"] == diff["test"] == "sign-flip(piece)"
    assert [rb["ci95_lo"], rb["ci95_hi"]] == pytest.approx(diff["ci95"])
    assert rb["ci95_lo"] <= ref[0] + 1e-12 and rb["ci95_hi"] >= ref[1] - 1e-12
    # each system's mean is over its own defined clips (B: 10 shared-defined + 'extra')
    defined_b = [v["notes.f1"] for v in vals_b.values() if math.isfinite(v["notes.f1"])]
    assert rb["mean"] == pytest.approx(np.mean(defined_b)) and rb["n"] == 11
    ra = cell[("sysA", "notes.f1")]
    assert math.isnan(ra["diff"]) and ra["n"] == 12
    assert cell[("sysB", "fad")]["mean"] == 2.0 and math.isnan(cell[("sysB", "fad")]["diff"])


def test_compare_cli_writes_md_and_csv(runs, tmp_path, capsys):
    run_a, run_b, a, b, *_ = runs
    md, table = tmp_path / "cmp" / "table.md", tmp_path / "cmp" / "table.csv"
    png = tmp_path / "cmp" / "diffs.png"
    rc = cli.main(["compare", str(run_a), str(run_b), "--out", str(md), "--out", str(table), "--out", str(png),
                   "--metrics", "notes.f1,fad"])
    assert rc == 0
    out = capsys.readouterr().out
    assert out == md.read_text()
    assert "| notes.f1 ↑ |" in out and "| fad ↓ |" in out and "sysB − sysA" in out
    assert f"p={wilcoxon(b - a).pvalue:.4g}" in out
    rows = list(csv.DictReader(open(table)))
    assert [(r["system"], r["metric"]) for r in rows] == [
        ("sysA", "notes.f1"), ("sysA", "fad"), ("sysB", "notes.f1"), ("sysB", "fad")]
    assert float(rows[2]["diff"]) == pytest.approx(np.mean(b - a))
    assert rows[0]["diff"] == "nan"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_compare_three_systems_and_identical(runs, tmp_path, capsys):
    run_a, run_b, *_ = runs
    import shutil

    same = shutil.copytree(run_a, tmp_path / "sysA_copy")
    rows = compare_runs([run_a, run_b, same], metrics=["notes.f1"])
    r = next(r for r in rows if r["system"] == "sysA_copy")
    assert r["diff"] == 0.0 and r["p_wilcoxon"] == 1.0 and r["ci95_lo"] == r["ci95_hi"] == 0.0


@pytest.mark.parametrize(
    "argv_fn, message",
    [
        (lambda a, b, t: [str(a)], "at least two"),
        (lambda a, b, t: [str(a), str(t / "nope")], "does not exist"),
        (lambda a, b, t: [str(a), str(t)], "missing per_clip.csv"),
        (lambda a, b, t: [str(a), str(b), "--metrics", "bogus"], "unknown metric 'bogus'"),
        (lambda a, b, t: [str(a), str(b), "--out", str(t / "x.txt")], "--out must end in .md, .csv or .png"),
    ],
)
def test_compare_bad_inputs(runs, tmp_path, capsys, argv_fn, message):
    run_a, run_b, *_ = runs
    assert cli.main(["compare", *argv_fn(run_a, run_b, tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vitmusic compare: error:") and message in err[0]


def test_compare_malformed_csv_names_file_and_line(runs, tmp_path, capsys):
    run_a, run_b, *_ = runs
    p = run_b / "per_clip.csv"
    lines = p.read_text().splitlines()
    lines[2] = lines[2].replace("nan", "oops", 1)
    p.write_text("\n".join(lines) + "\n")
    assert cli.main(["compare", str(run_a), str(run_b)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:3:" in err and "oops" in err
