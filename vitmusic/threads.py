"""The process's CPU thread policy: how many threads the numeric libraries use and how idle ones wait.

On a machine that other CPU-bound jobs share, the libraries' defaults are the worst case. torch runs every
operator on one OpenMP thread per core, and GNU OpenMP's threads busy-wait for ~300,000 spins at each barrier:
a thread that spins holds a core that the thread it waits for needs. Measured on 2 cores at load average 13-17
(other jobs), a small transformer training step took 3.2-3.5 s with torch's default against 0.31-0.34 s with
waiting threads asleep (``OMP_WAIT_POLICY=PASSIVE``) and 0.29-0.31 s on one thread; numpy's OpenBLAS, whose
calling thread spins on its workers whatever the settings, took 110-190 ms per 128x1025x300 product with 2
threads against 8-10 ms with one (``scripts/benchmarks/bench_under_load.py`` measures the demo and a
real-size generation).

:func:`apply_thread_policy` (the CLI calls it before any command imports torch) therefore:

- gives torch and OpenMP one thread per CPU *available to this process*: the affinity mask
  (``taskset``, ``docker --cpuset-cpus``) and the cgroup CPU quota (``docker --cpus``, Kubernetes limits), not
  the machine's core count;
- makes waiting OpenMP threads sleep at once (``OMP_WAIT_POLICY=PASSIVE``; ``KMP_BLOCKTIME=0`` for Intel's
  runtime), so that a busy machine costs roughly this process's share of the CPU, not a multiple of it;
- keeps numpy's BLAS on one thread (its calls here are small, and its calling thread spins);
- respects what the user chose: ``--threads N`` or ``VITMUSIC_THREADS=N`` set every library to ``N``; an
  ``OMP_NUM_THREADS`` (or any other variable below) already in the environment is left as it is.

OpenMP reads its variables when torch loads it: in a notebook, call :func:`apply_thread_policy` before
``import torch`` (afterwards only the thread count can still change, and only when asked for explicitly).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

ENV = "VITMUSIC_THREADS"
#: variables that size the numeric libraries' thread pools
COUNT_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: numpy's BLAS (OpenBLAS in the numpy wheels): one thread unless the user asks for more
BLAS_VARS = ("OPENBLAS_NUM_THREADS",)
#: how idle threads wait: asleep at once (GNU OpenMP, which torch's wheels use; Intel OpenMP)
WAIT_VARS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


@dataclasses.dataclass(frozen=True)
class ThreadPolicy:
    """What :func:`apply_thread_policy` decided.

    Attributes:
        threads: torch / OpenMP threads.
        source: where the number came from: ``"--threads"``, ``"VITMUSIC_THREADS"``, ``"OMP_NUM_THREADS"`` or
            ``"available CPUs"``.
        cpus: CPUs this process may run on (affinity mask).
        quota_cpus: the cgroup CPU quota in CPUs, None when unlimited or unknown.
    """

    threads: int
    source: str
    cpus: int
    quota_cpus: float | None


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (all of the machine's where the OS has no masks)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def cgroup_quota_cpus(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """This process's CPU quota in CPUs (e.g. 1.5 for ``docker --cpus 1.5``): the smallest over its cgroup
    and the cgroup's ancestors; None when no quota applies or cgroups are not readable.

    cgroup v2 keeps ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``) in the unified hierarchy;
    cgroup v1 keeps ``cpu.cfs_quota_us`` (-1: none) and ``cpu.cfs_period_us`` in the ``cpu`` controller's.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: the unified hierarchy (under unified/ on hybrid v1 + v2 systems)
            bases = [root if (root / "cgroup.controllers").is_file() else root / "unified"]
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's mount, whatever it is called
            bases = [root / name for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu") if (root / name).is_dir()]
        else:
            continue
        for base in bases:
            folder = base / path.lstrip("/")
            while True:
                quotas.append(_quota_in(folder, v2=controllers == ""))
                if folder == base or base not in folder.parents:
                    break
                folder = folder.parent
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


def _quota_in(folder: Path, v2: bool) -> float | None:
    try:
        if v2:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((folder / "cpu.cfs_quota_us").read_text())
        period_us = int((folder / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process can use: its affinity mask, capped by the cgroup quota (rounded up: a 1.5-CPU quota
    runs 2 threads, as the Go and .NET runtimes do)."""
    cpus = affinity_cpus()
    quota = cgroup_quota_cpus()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def _positive_int(value: str | None) -> int | None:
    """The first number of an ``OMP_NUM_THREADS``-style value (``"4"``, ``"4,2"``), None unless it is >= 1."""
    try:
        n = int(str(value).split(",")[0])
    except ValueError:
        return None
    return n if n >= 1 else None


def choose_threads(requested: int | None = None) -> tuple[int, str]:
    """The thread count and where it came from: ``requested`` (the ``--threads`` option; 0 or None means
    automatic), else ``$VITMUSIC_THREADS``, else the user's ``$OMP_NUM_THREADS``, else :func:`available_cpus`.

    Raises:
        ValueError: a negative ``requested`` or a malformed ``$VITMUSIC_THREADS``.
    """
    if requested is not None and requested < 0:
        raise ValueError(f"--threads must be >= 1 (or 0 for automatic), got {requested}")
    if requested:
        return requested, "--threads"
    env = os.environ.get(ENV, "").strip()
    if env and env.lower() != "auto":
        n = _positive_int(env)
        if n is None:
            raise ValueError(f"{ENV} must be a number >= 1 or 'auto', got {env!r}")
        return n, ENV
    user = _positive_int(os.environ.get("OMP_NUM_THREADS"))
    if user is not None:
        return user, "OMP_NUM_THREADS"
    return available_cpus(), "available CPUs"


def set_passive_waiting() -> None:
    """Make idle OpenMP threads sleep at once, unless the user chose otherwise: the part of the policy that must
    precede the first import of torch and does not depend on the thread count (the CLI calls it before it loads
    plug-ins, which may import torch)."""
    for var, value in WAIT_VARS.items():
        os.environ.setdefault(var, value)


def apply_thread_policy(requested: int | None = None) -> ThreadPolicy:
    """Set this process's thread policy (see the module docstring); returns what was decided.

    Environment variables are set for libraries not loaded yet and for child processes. A library already
    loaded keeps its waiting behaviour; its thread count changes only when the number was asked for
    (``requested`` or ``$VITMUSIC_THREADS``): a host process that imported torch (a notebook, a test) chose
    its own count.

    Raises:
        ValueError: see :func:`choose_threads`.
    """
    threads, source = choose_threads(requested)
    explicit = source in ("--threads", ENV)
    for var in COUNT_VARS:
        if explicit or var not in os.environ:
            os.environ[var] = str(threads)
    for var in BLAS_VARS:
        if explicit or var not in os.environ:
            os.environ[var] = str(threads if explicit else 1)
    set_passive_waiting()
    if explicit:
        _resize_loaded_libraries(threads)
    policy = ThreadPolicy(threads, source, affinity_cpus(), cgroup_quota_cpus())
    log.debug("threads: %d (%s; %d CPUs in the affinity mask, cgroup quota %s)", policy.threads, policy.source,
              policy.cpus, policy.quota_cpus)
    return policy


def _resize_loaded_libraries(threads: int) -> None:
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(threads)
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn / librosa
            return
        threadpool_limits(threads)
