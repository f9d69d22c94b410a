"""The metric registry: a metric group added through one module + one registration appears everywhere
(summary.json with its definition, per_clip.csv, report.md, compare, ablation tables, --metrics help), and a
registered metric can never be dropped silently."""

import csv
import json
from functools import partial

import numpy as np
import pytest
import soundfile as sf
from metrics_signals import tone_sequence

from vitmusic import cli, plugins
from vitmusic.errors import ConfigError
from vitmusic.evaluation import registry

SR = 16000
tone_seq = partial(tone_sequence, sample_rate=SR)
MELODY = [262, 294, 330, 349, 392, 440, 494, 523]

TOY_PLUGIN = '''
"""A toy metric plug-in: the RMS of the generated audio over the reference's (one module, one registration)."""
import numpy as np

from vitmusic.evaluation import Metric, MetricGroup, register_metric_group


def score(clip, options, artifacts):
    ratio = float(np.sqrt(np.mean(clip.gen_audio ** 2)) / max(np.sqrt(np.mean(clip.ref_audio ** 2)), 1e-9))
    return {"loudness.rms_ratio": ratio}


register_metric_group(MetricGroup(
    "loudness",
    (Metric("loudness.rms_ratio", "RMS of the generated over the reference audio", bounds=(0.0, None),
            higher_is_better=None),),
    score=score, doc="toy loudness ratio"))
'''


@pytest.fixture
def clean_registry(monkeypatch, no_plugins_env):
    """Plug-ins register into the process-wide registry: restore it (and the plug-in bookkeeping) after."""
    registry.metric_groups()
    monkeypatch.setattr(registry, "_GROUPS", dict(registry._GROUPS))
    monkeypatch.setattr(plugins, "_LOADED", {})


@pytest.fixture
def pairs(tmp_path):
    y = tone_seq(MELODY)
    for side, gain in (("ref", 1.0), ("gen", 0.5)):
        (tmp_path / side).mkdir()
        for k in range(2):
            sf.write(tmp_path / side / f"c{k}.wav", gain * y, SR)
    return tmp_path


def evaluate(root, out, *extra, plugin=None):
    argv = (["--plugin", str(plugin)] if plugin else []) + [
        "evaluate", "--ref", str(root / "ref"), "--gen", str(root / "gen"), "--out", str(out), "--quiet",
        "--metrics", "chroma,loudness" if plugin else "chroma", *extra]
    return cli.main(argv)


def test_a_plugin_metric_appears_everywhere(pairs, tmp_path, clean_registry, capsys):
    plugin = tmp_path / "toy_loudness.py"
    plugin.write_text(TOY_PLUGIN)
    assert evaluate(pairs, tmp_path / "a", plugin=plugin) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    m = summary["metrics"]["loudness.rms_ratio"]
    assert m["mean"] == pytest.approx(0.5, rel=1e-3) and m["n"] == 2
    assert summary["definitions"]["loudness.rms_ratio"]["doc"].startswith("RMS of the generated")
    assert "loudness" in summary["config"]["metrics"]
    rows = list(csv.DictReader(open(tmp_path / "a" / "per_clip.csv")))
    assert float(rows[0]["loudness.rms_ratio"]) == pytest.approx(0.5, rel=1e-3)
    report = (tmp_path / "a" / "report.md").read_text()
    assert "| loudness.rms_ratio |" in report and "RMS of the generated over the reference audio" in report

    # a second system, then compare and the ablation tables, in a process where the plug-in is NOT loaded:
    # the folders carry the metric and its definition
    (pairs / "gen2").mkdir()
    for k in range(2):
        sf.write(pairs / "gen2" / f"c{k}.wav", 0.25 * tone_seq(MELODY), SR)
    argv = ["--plugin", str(plugin), "evaluate", "--ref", str(pairs / "ref"), "--gen", str(pairs / "gen2"),
            "--out", str(tmp_path / "b"), "--quiet", "--metrics", "loudness"]
    assert cli.main(argv) == 0
    registry.unregister_metric_group("loudness")
    capsys.readouterr()
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    table = capsys.readouterr().out
    line = next(r for r in table.splitlines() if r.startswith("| loudness.rms_ratio"))
    assert "-0.25" in line  # 0.25 - 0.5, paired over both clips

    from vitmusic.workflow.results import collect_results, results_markdown

    rows = collect_results({"a": tmp_path / "a", "b": tmp_path / "b"}, {"a": "model", "b": "model"}, "a")
    assert "loudness.rms_ratio" in results_markdown(rows, "a")


def test_plugin_metrics_are_in_the_help_and_selectable(tmp_path, clean_registry, capsys):
    plugin = tmp_path / "toy_loudness.py"
    plugin.write_text(TOY_PLUGIN)
    with pytest.raises(SystemExit):
        cli.main(["--plugin", str(plugin), "evaluate", "--help"])
    assert "loudness (toy loudness ratio)" in " ".join(capsys.readouterr().out.split())
    from vitmusic.evaluation.runner import resolve_metrics

    assert resolve_metrics("loudness.rms_ratio,tempo") == ("loudness", "tempo")


def test_every_registered_metric_reaches_summary_and_per_clip(pairs, tmp_path, clean_registry):
    # any registered group, computed or not, has its metrics in both files: none can be dropped silently
    assert evaluate(pairs, tmp_path / "out") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    header = next(csv.reader(open(tmp_path / "out" / "per_clip.csv")))
    for group in registry.metric_groups().values():
        for metric in group.metrics:
            assert metric.name in summary["metrics"] and metric.name in summary["definitions"]
            assert (metric.name in header) != metric.set_level
            if metric.referee:
                assert "referee." + metric.name in header


def test_registration_errors_are_one_line(clean_registry):
    def score(clip, opts, art):
        return {}

    with pytest.raises(ConfigError, match="already declared by group 'notes'"):
        registry.register_metric_group(registry.MetricGroup("mine", ("notes.f1",), score=score))
    with pytest.raises(ConfigError, match="already registered"):
        registry.register_metric_group(registry.MetricGroup("notes", ("x.y",), score=score))
    with pytest.raises(ConfigError, match="either score or embed"):
        registry.MetricGroup("g", ("g.a",))
    with pytest.raises(ConfigError, match="low < high"):
        registry.Metric("g.a", "", bounds=(1.0, 0.0))
    with pytest.raises(ConfigError, match="set_level"):
        registry.MetricGroup("g", ("g.a",), embed=lambda c, o: (np.zeros(1), np.zeros(1)), aggregate=len)


def test_broken_plugins_are_one_line(tmp_path, clean_registry, capsys):
    assert cli.main(["--plugin", "no_such_module_xyz", "evaluate", "--help"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_module_xyz is not importable" in err[0]
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("raise RuntimeError('boom')\n")
    assert cli.main(["--plugin", str(bad), "evaluate", "--help"]) == 2
    assert "failed on import: RuntimeError: boom" in capsys.readouterr().err


def test_metric_bounds_clip_intervals_and_definitions_are_complete():
    for group in registry.metric_groups().values():
        assert group.doc, group.name
        for metric in group.metrics:
            assert metric.doc, metric.name
    m = registry.get_metric("notes.f1")
    assert m.clip(1.2) == 1.0 and m.clip(-0.1) == 0.0 and m.direction == "higher"
    assert registry.get_metric("referee.notes.f1") is m
    assert registry.get_metric("fad").direction == "lower" and registry.get_metric("sync.offset_s").direction == "none"


def test_n_boot_and_seed_reach_the_summary_intervals():
    """--n-boot / --seed of evaluate are the bootstrap of the summary's intervals (not accepted and unused)."""
    from vitmusic.evaluation.registry import get_metric
    from vitmusic.evaluation.report import _clip_summary

    metric = get_metric("notes.f1")
    rng = np.random.default_rng(3)
    values = list(rng.beta(2, 3, size=24))
    pieces = [f"p{i // 2}" for i in range(24)]
    a = _clip_summary(metric, values, pieces, n_boot=200, seed=0)
    b = _clip_summary(metric, values, pieces, n_boot=200, seed=1)
    c = _clip_summary(metric, values, pieces, n_boot=200, seed=0)
    assert a["mean"] == b["mean"] and a["ci95"] == c["ci95"]
    assert a["ci95"] != b["ci95"]
