"""librosa's numba cache: vitmusic's own folder, the stamp, the locked warm-up, the repair of a corrupt cache.

The fast tests drive the validation with a stand-in for the warm-up child; the slow ones compile for real:
four ``vitmusic evaluate`` at once on an empty cache, and caches corrupted as numba issue 10128 corrupts them
(a ``guf-`` wrapper from another process's compilation: a segmentation fault at the first beat-tracker call)
and by garbage / truncated files.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vitmusic.metrics import jit

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ the folder


def test_cache_subdirs_are_numbas_own(tmp_path):
    """Our names for librosa's cache folders are the ones numba computes (else the stamp would watch
    folders numba never writes)."""
    from numba.core.caching import _CacheLocator

    subdirs = {p.name for p in jit.cache_subdirs(tmp_path)}
    modules = jit.librosa_cached_modules()
    assert "librosa.beat" in modules and "librosa.util.utils" in modules
    for name in modules:
        import importlib.util

        origin = importlib.util.find_spec(name).origin
        assert _CacheLocator.get_suitable_cache_subpath(origin) in subdirs, name


def test_configure_sets_a_default_and_keeps_the_users(monkeypatch, tmp_path):
    config = sys.modules.get("numba.core.config")
    if config is not None:  # configure updates numba's config when numba is loaded: restore it afterwards
        monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)
    monkeypatch.setenv("VITMUSIC_CACHE", str(tmp_path / "root"))
    monkeypatch.delenv(jit.CACHE_ENV, raising=False)
    chosen = jit.configure()
    assert chosen == jit.default_cache_dir() and os.environ[jit.CACHE_ENV] == str(chosen)
    assert chosen.parent == tmp_path / "root" / "numba"
    assert chosen.name.startswith(f"py{sys.version_info[0]}{sys.version_info[1]}-")
    if config is not None:
        assert config.CACHE_DIR == str(chosen)
    monkeypatch.setenv(jit.CACHE_ENV, str(tmp_path / "mine"))
    assert jit.configure() == tmp_path / "mine"


def test_default_dir_differs_between_environments(monkeypatch, tmp_path):
    monkeypatch.setenv("VITMUSIC_CACHE", str(tmp_path))
    here = jit.default_cache_dir()
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "other-venv"))
    assert jit.default_cache_dir() != here and jit.default_cache_dir().parent == here.parent


def test_import_vitmusic_sets_the_folder_before_numba(tmp_path):
    """A notebook's ``import vitmusic.metrics.tempo`` points numba at vitmusic's folder, without importing numba
    (numba binds librosa's functions to a folder when librosa defines them)."""
    env = {k: v for k, v in os.environ.items() if k != jit.CACHE_ENV}
    env.update(VITMUSIC_CACHE=str(tmp_path), PYTHONPATH=str(ROOT))
    code = "import os, sys, vitmusic.metrics.tempo; print(os.environ['NUMBA_CACHE_DIR']); print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    assert Path(out[0]).parent == tmp_path / "numba" and out[1] == "False"


def test_every_librosa_use_is_guarded():
    """Every function in vitmusic that imports librosa (or basic-pitch, which uses it) calls
    ``ensure_jit_cache()`` first, and no module imports librosa at import time."""
    offenders = []
    for path in sorted((ROOT / "vitmusic").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if not isinstance(body, list) or not isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            guarded_from = min((n.lineno for n in ast.walk(node) if isinstance(n, ast.Call)
                                and getattr(n.func, "id", None) == "ensure_jit_cache"), default=None)
            for n in ast.walk(node) if not isinstance(node, ast.Module) else body:
                names = ([a.name for a in n.names] if isinstance(n, ast.Import)
                         else [n.module or ""] if isinstance(n, ast.ImportFrom) else [])
                if any(m.split(".")[0] in ("librosa", "basic_pitch") for m in names):
                    if isinstance(node, ast.Module) or guarded_from is None or guarded_from > n.lineno:
                        offenders.append(f"{path.relative_to(ROOT)}:{n.lineno}")
    assert not offenders, f"librosa imported without ensure_jit_cache() before it: {offenders}"


# ------------------------------------------------------------------------------------------ the stamp


def _fake_cache(cache: Path) -> Path:
    """A librosa cache folder with an index and a data file, as numba lays them out."""
    sub = jit.cache_subdirs(cache)[0]
    sub.mkdir(parents=True)
    (sub / "beat.f-1.py311.nbi").write_bytes(b"index")
    (sub / "beat.f-1.py311.1.nbc").write_bytes(b"data" * 100)
    return sub


def test_stamp_matches_only_the_files_it_validated(tmp_path):
    sub = _fake_cache(tmp_path)
    assert not jit._stamp_matches(tmp_path)  # no stamp yet
    jit._write_stamp(tmp_path, jit.fingerprint(tmp_path))
    assert jit._stamp_matches(tmp_path)
    data = sub / "beat.f-1.py311.1.nbc"
    with open(data, "r+b") as f:  # truncated
        f.truncate(10)
    assert not jit._stamp_matches(tmp_path)
    jit._write_stamp(tmp_path, jit.fingerprint(tmp_path))
    (sub / "guf-beat.f-1.py311.1.nbc").write_bytes(b"x")  # a file another process added
    assert not jit._stamp_matches(tmp_path)
    jit._write_stamp(tmp_path, jit.fingerprint(tmp_path))
    st = data.stat()
    data.write_bytes(b"garbage!" + data.read_bytes()[8:])  # same size, rewritten
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert not jit._stamp_matches(tmp_path)


def test_stamp_is_tied_to_the_environment(tmp_path, monkeypatch):
    _fake_cache(tmp_path)
    jit._write_stamp(tmp_path, jit.fingerprint(tmp_path))
    env = jit.environment()
    assert env["numba"] and env["librosa"] and env["librosa_sources"]
    monkeypatch.setattr(jit, "environment", lambda: {**env, "numba": "0.0.1"})  # numba upgraded
    assert not jit._stamp_matches(tmp_path)


def test_empty_cache_never_counts_as_validated(tmp_path):
    jit._write_stamp(tmp_path, {})
    assert not jit._stamp_matches(tmp_path)


# ------------------------------------------------------------------------------------------ validation


class FakeChild:
    """Stands in for the warm-up child: each run returns the next exit code; a run that 'compiles' (exit 0 on
    a cache without this run's file) writes a file, as numba does when it compiles."""

    def __init__(self, codes: list[int]) -> None:
        self.codes, self.runs = list(codes), 0

    def __call__(self, cache: Path) -> tuple[int, str]:
        self.runs += 1
        code = self.codes.pop(0)
        sub = jit.cache_subdirs(cache)[0]
        if code == 0 and not (sub / "beat.f-1.py311.1.nbc").exists():
            sub.mkdir(parents=True, exist_ok=True)
            (sub / "beat.f-1.py311.nbi").write_bytes(b"index")
            (sub / "beat.f-1.py311.1.nbc").write_bytes(b"fresh")
        return code, "child output"


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """A fresh cache folder for ensure_jit_cache, as if this were a new process."""
    cache = tmp_path / "numba"
    monkeypatch.setenv(jit.CACHE_ENV, str(cache))
    monkeypatch.setattr(jit, "_validated", set())
    return cache


def test_empty_cache_compiles_then_proves_the_load(isolated, monkeypatch):
    child = FakeChild([0, 0])
    monkeypatch.setattr(jit, "_run_child", child)
    assert jit.ensure_jit_cache() == isolated
    assert child.runs == 2 and jit._stamp_matches(isolated)
    assert jit.ensure_jit_cache() == isolated and child.runs == 2  # once per process


def test_valid_stamp_runs_no_child(isolated, monkeypatch):
    _fake_cache(isolated)
    jit._write_stamp(isolated, jit.fingerprint(isolated))
    monkeypatch.setattr(jit, "_run_child", FakeChild([]))  # any run would fail: no exit codes left
    assert jit.ensure_jit_cache() == isolated


def test_crashing_child_gets_the_cache_rebuilt(isolated, monkeypatch, caplog):
    sub = _fake_cache(isolated)
    (sub / "beat.f-1.py311.1.nbc").write_bytes(b"corrupt")
    jit._write_stamp(isolated, {"other": [["stale", 1, 1]]})
    child = FakeChild([-11, 0, 0])  # segfault on the corrupt cache, then compile, then load
    monkeypatch.setattr(jit, "_run_child", child)
    with caplog.at_level("WARNING", logger=jit.__name__):
        assert jit.ensure_jit_cache() == isolated
    assert child.runs == 3 and jit._stamp_matches(isolated)
    assert (sub / "beat.f-1.py311.1.nbc").read_bytes() == b"fresh"
    assert "SIGSEGV" in caplog.text and "rebuilding" in caplog.text


def test_child_failing_on_a_fresh_cache_falls_back_to_a_private_folder(isolated, monkeypatch, caplog):
    if jit._librosa_loaded():  # the fallback needs librosa's functions undefined: pretend they are
        monkeypatch.setattr(jit, "_librosa_loaded", lambda: False)
    config = sys.modules.get("numba.core.config")
    if config is not None:
        monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)
    _fake_cache(isolated)
    monkeypatch.setattr(jit, "_run_child", FakeChild([1, 1]))
    with caplog.at_level("WARNING", logger=jit.__name__):
        used = jit.ensure_jit_cache()
    assert used != isolated and used.name.startswith("vitmusic-numba-") and used.is_dir()
    assert os.environ[jit.CACHE_ENV] == str(used) and not jit._stamp_matches(isolated)
    assert "fails on a fresh numba cache too" in caplog.text


def test_second_process_waits_for_the_lock_and_uses_the_stamp(isolated, monkeypatch):
    """While one process holds the lock (compiling), another waits, then finds the stamp and runs nothing."""
    isolated.mkdir(parents=True)
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; "
            "from vitmusic.metrics import jit; c = Path(sys.argv[1])\n"
            "with jit._locked(c):\n"
            "    print('locked', flush=True); time.sleep(1.5)\n"
            "    sub = jit.cache_subdirs(c)[0]; sub.mkdir(parents=True)\n"
            "    (sub / 'x.nbi').write_bytes(b'i'); jit._write_stamp(c, jit.fingerprint(c))\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(isolated)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(jit, "_run_child", FakeChild([]))  # a warm-up run here would raise IndexError
        assert jit.ensure_jit_cache() == isolated and jit._stamp_matches(isolated)
    finally:
        holder.wait(timeout=60)


# ------------------------------------------------------------------------------------------ for real

BEAT_SCRIPT = """
import sys, numpy as np, librosa
sr = 22050
y = np.zeros(sr * 4, np.float32); y[:: sr // 2] = 1.0
env = librosa.onset.onset_strength(y=y, sr=sr)
print(librosa.beat.beat_track(onset_envelope=env, sr=sr, units="time")[1][:3])
"""


def _env(cache: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, jit.CACHE_ENV: str(cache), "PYTHONPATH": str(ROOT), **extra}


def _raw_librosa_beats(cache: Path) -> int:
    """Beat tracking with librosa alone (no vitmusic, no check) on ``cache``: its exit code."""
    proc = subprocess.run([sys.executable, "-c", "import resource; resource.setrlimit(resource.RLIMIT_CORE, "
                           "(0, 0))\n" + BEAT_SCRIPT], env=_env(cache), capture_output=True, timeout=900)
    return proc.returncode


def _clips(root: Path) -> tuple[Path, Path]:
    sr = 22050
    t = np.arange(4 * sr) / sr
    y = (0.3 * np.sin(2 * np.pi * 330 * t) * np.exp(-(t * 2 % 1) * 4)).astype(np.float32)
    for side in ("ref", "gen"):
        (root / side).mkdir(parents=True, exist_ok=True)
        sf.write(root / side / "clip.wav", y, sr)
    return root / "ref", root / "gen"


def _start_evaluate(cache: Path, data: Path, out: Path, metrics: str) -> tuple[subprocess.Popen, Path]:
    """``vitmusic evaluate`` in a child process, its output going to ``out.log`` (no pipe to fill)."""
    cmd = [sys.executable, "-m", "vitmusic.cli", "evaluate", "--ref", str(data / "ref"), "--gen", str(data / "gen"),
           "--out", str(out), "--metrics", metrics, "--quiet", "--plot-clips", "0"]
    log = out.with_suffix(".log")
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, env=_env(cache), stdout=f, stderr=subprocess.STDOUT), log


def _finish(proc: subprocess.Popen, log: Path) -> tuple[int, str]:
    return proc.wait(timeout=1800), log.read_text(encoding="utf-8", errors="replace")


def _evaluate(cache: Path, data: Path, out: Path, metrics: str = "tempo,notes,chroma") -> tuple[int, str]:
    return _finish(*_start_evaluate(cache, data, out, metrics))


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory):
    """Four ``vitmusic evaluate`` started at once on an empty cache folder: (cache, data, [(code, output)])."""
    root = tmp_path_factory.mktemp("jit")
    cache, data = root / "numba", root / "data"
    _clips(data)
    started = [_start_evaluate(cache, data, root / f"out{i}", "tempo,notes,chroma") for i in range(4)]
    return cache, data, [_finish(*s) for s in started]


@pytest.mark.slow
def test_four_concurrent_evaluates_on_an_empty_cache(built_cache):
    cache, data, results = built_cache
    for code, output in results:
        assert code == 0, output[-3000:]
        assert "evaluated 1 clip(s)" in output
    outputs = "".join(output for _, output in results)
    assert outputs.count("compiling librosa's numba functions once") == 1  # one compiled, three waited
    assert jit._stamp_matches(cache)
    stamp = json.loads((cache / jit.STAMP_NAME).read_text())
    assert any(name.startswith("guf-beat.") for files in stamp["files"].values() for name, *_ in files)
    # the compiled cache is kept: a fifth run loads it, compiles nothing, and runs no warm-up
    before = jit.fingerprint(cache)
    code, output = _evaluate(cache, data, cache.parent / "out5")
    assert code == 0, output[-3000:]
    assert "compiling" not in output and "waiting" not in output and jit.fingerprint(cache) == before


def _copy(built: Path, dest: Path) -> Path:
    shutil.copytree(built, dest)
    return dest


@pytest.mark.slow
def test_issue_10128_mismatch_is_repaired(built_cache, tmp_path):
    """The corruption of the bug report: the beat tracker's ``guf-`` wrappers written by a process that
    compiled in another order. librosa alone then dies with SIGSEGV; vitmusic rebuilds the cache and runs."""
    built, data, _ = built_cache
    cache = _copy(built, tmp_path / "numba")
    beat_dir = next(p for p in jit.cache_subdirs(cache) if p.name.startswith("librosa_"))
    other = tmp_path / "other"  # the other process: everything but the beat tracker cached, so it compiles
    other.mkdir()  # the beat functions first and numbers them differently
    for sub in jit.cache_subdirs(cache):
        if sub.exists() and sub != beat_dir:
            shutil.copytree(sub, other / sub.name)
    assert _raw_librosa_beats(other) == 0
    for f in (other / beat_dir.name).glob("guf-*.nbc"):
        shutil.copy2(f, beat_dir / f.name)
    code = _raw_librosa_beats(cache)
    if code == 0:
        pytest.skip("this numba no longer crashes on mismatched gufunc cache files (issue 10128 fixed)")
    assert code == -11  # SIGSEGV, as in the report

    code, output = _evaluate(cache, data, tmp_path / "out", metrics="tempo")
    assert code == 0, output[-3000:]
    assert "died with SIGSEGV" in output and "rebuilding" in output
    assert jit._stamp_matches(cache) and _raw_librosa_beats(cache) == 0  # repaired, and kept compiled


@pytest.mark.slow
def test_garbage_and_truncated_cache_files_are_repaired_for_notebook_users(built_cache, tmp_path):
    """Garbage in an index, a truncated data file; the caller is a notebook (no CLI) calling the metric."""
    built, _, _ = built_cache
    cache = _copy(built, tmp_path / "numba")
    util_dir = next(p for p in jit.cache_subdirs(cache) if p.name.startswith("util_"))
    index = next(util_dir.glob("utils._localmax-*.nbi"))
    index.write_bytes(os.urandom(index.stat().st_size))
    data = next(util_dir.glob("guf-utils.__peak_pick-*.1.nbc"))
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    assert _raw_librosa_beats(cache) != 0  # librosa alone fails on it

    code = ("import logging, numpy as np; logging.basicConfig(level=logging.INFO)\n"
            "from vitmusic.metrics import tempo\n"
            "y = np.zeros(22050 * 4, np.float32); y[::11025] = 1.0\n"
            "print(len(tempo.beat_times(y, 22050)))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(cache), capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) >= 6
    assert "unusable" in proc.stderr and "rebuilding" in proc.stderr
    assert jit._stamp_matches(cache) and _raw_librosa_beats(cache) == 0
