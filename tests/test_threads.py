"""The CPU thread policy: CPUs from the affinity mask and the cgroup quota, the user's choices first, idle
OpenMP threads asleep, and the CLI applying it before a command imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vitmusic import cli, threads

ROOT = Path(__file__).resolve().parents[1]
ALL_VARS = (threads.ENV, *threads.COUNT_VARS, *threads.BLAS_VARS, *threads.WAIT_VARS)


@pytest.fixture
def clean_env(monkeypatch):
    """No thread variable set, as in a fresh shell (monkeypatch restores them afterwards)."""
    for var in ALL_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_the_smallest_on_the_path(tmp_path):
    root, proc = tmp_path / "cg", tmp_path / "self_cgroup"
    _write(proc, "0::/user.slice/job\n")
    _write(root / "cgroup.controllers", "cpu memory\n")
    _write(root / "cpu.max", "max 100000\n")
    _write(root / "user.slice" / "cpu.max", "300000 100000\n")
    _write(root / "user.slice" / "job" / "cpu.max", "150000 100000\n")
    assert threads.cgroup_quota_cpus(root, proc) == 1.5
    _write(root / "user.slice" / "cpu.max", "50000 100000\n")  # a tighter parent wins
    assert threads.cgroup_quota_cpus(root, proc) == 0.5
    for f in (root / "user.slice" / "cpu.max", root / "user.slice" / "job" / "cpu.max"):
        _write(f, "max 100000\n")
    assert threads.cgroup_quota_cpus(root, proc) is None


def test_cgroup_v1_quota(tmp_path):
    root, proc = tmp_path / "cg", tmp_path / "self_cgroup"
    _write(proc, "5:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n")
    _write(root / "cpu,cpuacct" / "docker" / "x" / "cpu.cfs_quota_us", "250000\n")
    _write(root / "cpu,cpuacct" / "docker" / "x" / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_quota_cpus(root, proc) == 2.5
    _write(root / "cpu,cpuacct" / "docker" / "x" / "cpu.cfs_quota_us", "-1\n")
    assert threads.cgroup_quota_cpus(root, proc) is None


def test_hybrid_and_unreadable_cgroups(tmp_path):
    root, proc = tmp_path / "cg", tmp_path / "self_cgroup"
    _write(proc, "1:cpu:/\n0::/\n")  # v1 cpu controller without a quota, v2 under unified/
    _write(root / "cpu" / "cpu.cfs_quota_us", "-1\n")
    _write(root / "cpu" / "cpu.cfs_period_us", "100000\n")
    _write(root / "unified" / "cpu.max", "100000 100000\n")
    assert threads.cgroup_quota_cpus(root, proc) == 1.0
    assert threads.cgroup_quota_cpus(root, tmp_path / "missing") is None


def test_available_cpus_caps_the_affinity_by_the_quota(monkeypatch):
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 8)
    for quota, expected in ((None, 8), (2.0, 2), (1.5, 2), (0.5, 1), (16.0, 8)):
        monkeypatch.setattr(threads, "cgroup_quota_cpus", lambda q=quota: q)
        assert threads.available_cpus() == expected


def test_choice_order(clean_env, monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 6)
    assert threads.choose_threads() == (6, "available CPUs")
    clean_env.setenv("OMP_NUM_THREADS", "3,1")  # nested OpenMP list: the outer level counts
    assert threads.choose_threads() == (3, "OMP_NUM_THREADS")
    clean_env.setenv(threads.ENV, "2")
    assert threads.choose_threads() == (2, threads.ENV)
    assert threads.choose_threads(5) == (5, "--threads")
    clean_env.setenv(threads.ENV, "auto")
    assert threads.choose_threads() == (3, "OMP_NUM_THREADS")
    for bad in ("0", "two", "-1"):
        clean_env.setenv(threads.ENV, bad)
        with pytest.raises(ValueError, match=threads.ENV):
            threads.choose_threads()
    with pytest.raises(ValueError, match="--threads"):
        threads.choose_threads(-2)


def test_policy_sets_counts_and_passive_waiting(clean_env, monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    policy = threads.apply_thread_policy()
    assert (policy.threads, policy.source) == (4, "available CPUs")
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "4"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and os.environ["KMP_BLOCKTIME"] == "0"


def test_policy_keeps_what_the_user_set(clean_env, monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    for var, value in (("OMP_NUM_THREADS", "1"), ("OPENBLAS_NUM_THREADS", "2"), ("OMP_WAIT_POLICY", "ACTIVE")):
        clean_env.setenv(var, value)
    assert threads.apply_thread_policy().threads == 1
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2" and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_explicit_count_sets_every_library(clean_env, monkeypatch):
    """``--threads N`` also resizes libraries this process loaded already (torch, numpy's BLAS)."""
    import threadpoolctl
    import torch

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(("torch", n)))
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda n: calls.append(("blas", n)))
    clean_env.setenv("OPENBLAS_NUM_THREADS", "4")
    policy = threads.apply_thread_policy(3)
    assert (policy.threads, policy.source) == (3, "--threads")
    assert all(os.environ[v] == "3" for v in (*threads.COUNT_VARS, *threads.BLAS_VARS))
    assert calls == [("torch", 3), ("blas", 3)]
    calls.clear()
    threads.apply_thread_policy()  # automatic: a host process's own torch count is left alone
    assert calls == []


def _child(code: str, env: dict[str, str]) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ALL_VARS}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, "PYTHONPATH": str(ROOT), **env},
                         capture_output=True, text=True, timeout=300, check=True)
    return out.stdout.split()


POLICY_THEN_TORCH = (
    "import os, sys\n"
    "if len(sys.argv) > 1: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # like taskset -c 0\n"
    "from vitmusic.threads import apply_thread_policy; p = apply_thread_policy()\n"
    "import torch; print(p.threads, torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])\n"
)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs affinity masks")
def test_torch_follows_the_affinity_mask():
    """In a fresh process: torch gets one thread per CPU of the mask (torch alone counts the machine's cores)."""
    cpus = len(os.sched_getaffinity(0))
    code = POLICY_THEN_TORCH.replace("if len(sys.argv) > 1: ", "if True: ")
    assert _child(code, {}) == ["1", "1", "PASSIVE"]
    full = _child(POLICY_THEN_TORCH, {})
    assert full[0] == full[1] == str(threads.available_cpus()) and int(full[0]) <= cpus
    assert _child(POLICY_THEN_TORCH, {"OMP_NUM_THREADS": "1"})[:2] == ["1", "1"]


def test_cli_applies_the_option_before_the_command(monkeypatch):
    seen = []

    def record(args):
        seen.append(os.environ.get("OMP_NUM_THREADS"))
        return 0

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    p = sub.add_parser("probe")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(_run=record)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    applied = []
    monkeypatch.setattr(cli, "apply_thread_policy", lambda n: applied.append(n))
    assert cli.main(["probe", "--threads", "1"]) == 0 and applied == [1]
    monkeypatch.undo()
    commands = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    assert set(commands) == set(cli.COMMANDS)
    for name, command in commands.items():  # every command takes the option
        assert any("--threads" in a.option_strings for a in command._actions), name


def test_cli_rejects_a_negative_count(capsys):
    assert cli.main(["synth-data", "--out", "unused", "--threads", "-1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "vitmusic synth-data: error: --threads must be >= 1 (or 0 for automatic), got -1")


def test_cli_makes_waiting_passive_before_loading_plugins(clean_env, tmp_path):
    """A plug-in may import torch: OMP_WAIT_POLICY must already be set when it is imported."""
    plugin = tmp_path / "probe_plugin.py"
    seen = tmp_path / "seen.txt"
    plugin.write_text(f"import os\nopen({str(seen)!r}, 'w').write(os.environ.get('OMP_WAIT_POLICY', 'unset'))\n")
    clean_env.setenv("VITMUSIC_PLUGINS", "")
    assert cli.main(["--plugin", str(plugin), "synth-data", "--out", str(tmp_path / "x"), "--threads", "-1"]) == 2
    assert seen.read_text() == "PASSIVE"
