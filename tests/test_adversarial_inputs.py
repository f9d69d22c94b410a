"""scripts/adversarial_inputs.py: malformed and odd inputs over every command each behave as promised
(one clear line and exit 2, or success where legitimate; no traceback, no complete-looking leftover)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "adversarial_inputs.py"


def _script():
    spec = importlib.util.spec_from_file_location("adversarial_inputs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


INPUT_GROUPS = "argparse,prepare,evaluate,train,checkpoint,stimuli,server"
FAULT_GROUPS = "settings,retyped,cache,training,leftovers,diskfull"


@pytest.mark.slow
def test_every_quick_adversarial_input_behaves(tmp_path, capsys):
    """~260 inputs without a trained model (argparse, prepare, evaluate, train, checkpoints, stimuli, server);
    about 30 s on 2 cores. The full set (with generation on a tiny trained run) is the script without --quick."""
    rc = _script().main(["--quick", "--only", INPUT_GROUPS, "--json", str(tmp_path / "o.json")])
    results = json.loads((tmp_path / "o.json").read_text())
    bad = [r for r in results if r["outcome"] != "pass"]
    assert rc == 0 and not bad, bad
    assert len(results) > 200


@pytest.mark.slow
def test_every_quick_adversarial_fault_behaves(tmp_path, capsys):
    """~170 faults (scripts/adversarial_faults.py): impossible settings, retyped dotlist strings, damaged caches
    and checkpoints, diverging and racing trainings, leftovers of a kill, a full disk (a tmpfs, as root; one
    placeholder case otherwise); about 5 min on 2 cores."""
    rc = _script().main(["--quick", "--only", FAULT_GROUPS, "--json", str(tmp_path / "o.json")])
    results = json.loads((tmp_path / "o.json").read_text())
    bad = [r for r in results if r["outcome"] != "pass"]
    assert rc == 0 and not bad, bad
    assert {r["group"] for r in results} == set(FAULT_GROUPS.split(",")) and len(results) > 150


def test_a_classifier_sample(tmp_path):
    """The classification itself: a clean error, a traceback, a silent success and noise are told apart."""
    m = _script()
    from vitmusic.errors import VitmusicError

    def boom():
        raise RuntimeError("bug")

    def user():
        raise VitmusicError("bad input")

    assert m.run_case(m.Case("clean", ["prepare"])).outcome == "pass"
    assert m.run_case(m.Case("user", fn=user)).outcome == "pass"
    assert m.run_case(m.Case("bug", fn=boom)).outcome == "traceback"
    assert m.run_case(m.Case("silent", fn=lambda: None)).outcome == "silent"
    assert m.run_case(m.Case("ok", ["--version"], expect="ok")).outcome == "pass"
