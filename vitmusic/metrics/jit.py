"""Parallel-safe, self-healing numba caches for librosa's compiled functions.

librosa's beat tracker, onset peak picker, local maxima, zero crossings and pitch interpolation are numba
functions with ``cache=True``; the ``guvectorize`` ones compile every declared signature when their module is
imported, the others at their first call. Compiling them costs 20-60 s, so the cache is worth keeping, but
numba's on-disk cache is not safe when processes write it at once: a ``guvectorize`` function is stored as two
files (the kernel and its ``guf-`` wrapper), and two processes compiling at the same time can leave a kernel
from one and a wrapper from the other. The names inside them differ (numba issue 10128, open in 0.68), so every
later call jumps through a null pointer and the process dies with a segmentation fault, until someone deletes
the cache files.

What this module does, before any vitmusic code touches librosa (:func:`ensure_jit_cache`):

1. The cache lives in a folder vitmusic owns, one per environment and CPU (:func:`default_cache_dir`, under
   ``$VITMUSIC_CACHE`` or ``~/.cache/vitmusic``), set as ``NUMBA_CACHE_DIR`` when ``import vitmusic`` runs,
   i.e. before numba is imported. A ``NUMBA_CACHE_DIR`` set by the user is kept.
2. A stamp file next to the cache records the environment (Python, numba, llvmlite, librosa's sources) and
   the size and time of every cache file at the moment a separate process last loaded them and ran
   librosa's compiled paths without crashing. When the stamp matches, the check costs a few milliseconds and
   nothing else happens.
3. Otherwise (empty cache, an upgrade, files changed since), the process takes an exclusive file lock and
   runs the warm-up in a child process: import every librosa module that holds a cached function (all the
   ``guvectorize`` signatures), then the metric paths vitmusic takes (tempo, beats, onsets, pyin, chroma,
   emotion, notes, FAD features, Griffin-Lim). The child runs again until one run loads everything without
   compiling, which proves the files load. If a child dies (a signal: the corrupt cache) or fails, the
   librosa cache folders are deleted and rebuilt. Processes that start meanwhile wait for the lock, then
   find the stamp and load the cache: only one of them compiles.

Only the lock holder's child writes librosa's cache, so processes cannot interleave their writes; and a cache
corrupted by anything else (a crash mid-write, a truncated file, a process that used librosa without this
check) is noticed by its changed files and repaired before the next vitmusic process loads it. This module
imports nothing from vitmusic, so ``metrics`` stays free of project imports; the generators call it too.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX; elsewhere the cache folder is still ours, but runs are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

CACHE_ENV = "NUMBA_CACHE_DIR"
#: set in the warm-up child: its metric calls must not wait for the lock its parent holds
CHILD_ENV = "VITMUSIC_JIT_CHILD"
STAMP_NAME = ".vitmusic-jit.json"
LOCK_NAME = ".vitmusic-jit.lock"
STAMP_FORMAT = 1
#: warm-up children per validation: compile, load (proof), and one rebuild after a crash
MAX_CHILD_RUNS = 4
#: a child that takes longer is killed and counted as failed (a compile takes ~1 min on 2 busy cores)
CHILD_TIMEOUT_S = 1800.0

_process_lock = threading.Lock()  # fcntl locks belong to the process: threads take this one first
_validated: set[str] = set()  # cache folders this process checked (the check is once per process)


def default_cache_dir() -> Path:
    """vitmusic's numba cache folder for this environment: ``$VITMUSIC_CACHE/numba/<key>`` (default root
    ``~/.cache/vitmusic``); ``<key>`` names the Python version and hashes the environment's prefix and the CPU
    model, so that two virtualenvs, or two kinds of machine sharing a home folder, never share one."""
    root = Path(os.environ.get("VITMUSIC_CACHE") or Path.home() / ".cache" / "vitmusic")
    ident = "\n".join((os.path.realpath(sys.prefix), platform.machine(), _cpu_model()))
    digest = hashlib.sha1(ident.encode()).hexdigest()[:12]
    return root / "numba" / f"py{sys.version_info[0]}{sys.version_info[1]}-{digest}"


def _cpu_model() -> str:
    """The CPU's model line and feature flags (what numba compiles for), or the platform's description."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            head = f.read(16384)
    except OSError:
        return platform.processor()
    keys = ("model name", "flags", "Features", "CPU part")
    lines = [ln for ln in head.split("\n\n")[0].splitlines() if ln.split(":")[0].strip() in keys]
    return "\n".join(lines) or platform.processor()


def configure() -> Path:
    """Point numba's cache at vitmusic's folder unless the user chose one; cheap, and imports nothing.

    It must run before librosa's compiled modules are imported (numba binds a function to its cache folder
    then): ``import vitmusic`` calls it. When numba itself is already imported, its config is updated too.

    Returns:
        The cache folder in effect.
    """
    current = os.environ.get(CACHE_ENV, "")
    if not current:
        current = str(default_cache_dir())
        os.environ[CACHE_ENV] = current
        _update_numba_config(current)
        if _librosa_loaded():
            log.warning("librosa was used before vitmusic was imported: its compiled functions keep numba's "
                        "cache inside librosa's folder, which parallel runs can corrupt (numba issue 10128); "
                        "import vitmusic first or set NUMBA_CACHE_DIR")
    return Path(current)


def _update_numba_config(path: str) -> None:
    config = sys.modules.get("numba.core.config")
    if config is not None and getattr(config, "CACHE_DIR", None) != path:
        config.CACHE_DIR = path


def _librosa_loaded() -> bool:
    """Whether librosa's compiled functions exist in this process (each is bound to a cache folder then):
    any use of librosa beyond ``import librosa`` imports ``librosa.util.utils``, which defines some."""
    return "librosa.util.utils" in sys.modules


def ensure_jit_cache() -> Path:
    """Make librosa's numba cache safe to load in this process; call it before using librosa.

    Cheap after the first call in a process (a set lookup) and when the stamp matches (a few ms); otherwise it
    waits for, or runs, the locked warm-up described in the module docstring. Never raises for cache trouble:
    when the shared cache cannot be validated, this process compiles into a private folder instead (and says
    so).

    Returns:
        The cache folder this process uses.
    """
    if os.environ.get(CHILD_ENV) or os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return Path(os.environ.get(CACHE_ENV, ""))
    with _process_lock:
        cache = configure()
        if str(cache) in _validated:
            return cache
        if fcntl is None:  # pragma: no cover
            _validated.add(str(cache))
            return cache
        try:
            cache.mkdir(parents=True, exist_ok=True)
            if not _stamp_matches(cache):
                with _locked(cache):
                    if not _stamp_matches(cache):  # another process may have validated it meanwhile
                        _validate(cache)
        except (OSError, RuntimeError) as e:
            cache = _use_private_cache(f"{e}")
        _validated.add(str(cache))
        return cache


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    with open(cache / LOCK_NAME, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process that is compiling librosa's numba functions (%s)", cache)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------ stamp


def _librosa_dir() -> Path | None:
    spec = importlib.util.find_spec("librosa")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def cache_subdirs(cache: Path) -> list[Path]:
    """The folders under ``cache`` where numba keeps librosa's functions: numba names the folder of a source
    file ``<folder name>_<sha1 of its absolute path>`` (``_CacheLocator.get_suitable_cache_subpath``)."""
    root = _librosa_dir()
    if root is None:
        return []
    out = []
    for folder, _, files in os.walk(root):
        if any(f.endswith(".py") for f in files):
            path = os.path.abspath(folder)
            out.append(cache / f"{os.path.basename(path)}_{hashlib.sha1(path.encode()).hexdigest()}")
    return sorted(out)


def environment() -> dict[str, object]:
    """What numba's cache entries depend on besides their own files: Python, numba and llvmlite versions,
    and the time and size of librosa's sources (numba drops an entry whose source changed)."""
    env: dict[str, object] = {"python": sys.version}
    for dist in ("numba", "llvmlite", "librosa"):
        try:
            env[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            env[dist] = None
    root = _librosa_dir()
    sources = []
    if root is not None:
        for folder, _, files in os.walk(root):
            for name in sorted(files):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(folder, name))
                    sources.append([os.path.relpath(os.path.join(folder, name), root), st.st_size, st.st_mtime_ns])
    env["librosa_sources"] = sorted(sources)
    return env


def fingerprint(cache: Path) -> dict[str, list[list[object]]]:
    """Name, size and modification time of every librosa cache file (index ``.nbi`` and data ``.nbc``)."""
    out: dict[str, list[list[object]]] = {}
    for sub in cache_subdirs(cache):
        try:
            entries = list(os.scandir(sub))
        except FileNotFoundError:
            continue
        files = [[e.name, e.stat().st_size, e.stat().st_mtime_ns] for e in entries
                 if e.name.endswith((".nbi", ".nbc")) and e.is_file()]
        if files:
            out[sub.name] = sorted(files)
    return out


def _stamp_matches(cache: Path) -> bool:
    try:
        stamp = json.loads((cache / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(stamp, dict) and stamp.get("format") == STAMP_FORMAT
            and stamp.get("environment") == environment() and stamp.get("files") == fingerprint(cache)
            and bool(stamp.get("files")))


def _write_stamp(cache: Path, files: dict[str, list[list[object]]]) -> None:
    stamp = {"format": STAMP_FORMAT, "validated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "environment": environment(), "files": files}
    tmp = cache / f"{STAMP_NAME}.tmp.{os.getpid()}"
    tmp.write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, cache / STAMP_NAME)


def wipe(cache: Path) -> None:
    """Delete librosa's cache folders (renamed aside first, so nobody reads a half-deleted folder); the
    stamp goes too."""
    with contextlib.suppress(FileNotFoundError):
        (cache / STAMP_NAME).unlink()
    for sub in cache_subdirs(cache):
        if sub.exists():
            trash = sub.with_name(f"{sub.name}.deleted-{os.getpid()}-{time.monotonic_ns()}")
            os.replace(sub, trash)
            shutil.rmtree(trash, ignore_errors=True)


# ------------------------------------------------------------------------------------------ validation


def _validate(cache: Path) -> None:
    """Under the lock: run the warm-up child until a run loads everything without compiling; rebuild after a
    crash. Raises RuntimeError when that does not happen within :data:`MAX_CHILD_RUNS` runs."""
    t0 = time.perf_counter()
    compiled = rebuilt = False
    for _ in range(MAX_CHILD_RUNS):
        before = fingerprint(cache)
        if not before and not compiled:
            log.info("compiling librosa's numba functions once for this environment (20-60 s; later runs "
                     "load them from %s)", cache)
        code, tail = _run_child(cache)
        after = fingerprint(cache)
        if code == 0 and after and after == before:
            _write_stamp(cache, after)
            log.info("librosa's numba cache is ready (%.0f s): %s", time.perf_counter() - t0, cache)
            return
        if code == 0:  # it compiled something: run again to prove that what it wrote loads
            compiled = True
            continue
        if rebuilt:
            raise RuntimeError(f"the librosa warm-up fails on a fresh numba cache too ({_describe(code)}): {tail}")
        what = _describe(code)
        log.warning("librosa's numba cache in %s was unusable (the warm-up %s); deleting and rebuilding it",
                    cache, what)
        wipe(cache)
        rebuilt = compiled = True
    raise RuntimeError(f"librosa's numba cache kept changing during {MAX_CHILD_RUNS} warm-up runs")


def _describe(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"died with {signal.Signals(-code).name}"
        except ValueError:
            return f"died with signal {-code}"
    return f"exited with {code}" if code != 124 else "timed out"


def _run_child(cache: Path) -> tuple[int, str]:
    """Run :func:`vitmusic.metrics.jit_warmup.warm_up` in a fresh interpreter on ``cache``; its exit code (negative: killed by that
    signal; 124: timed out) and the last lines of its output."""
    root = str(Path(__file__).resolve().parents[2])  # the folder holding this vitmusic package
    code = f"import sys; sys.path.insert(0, {root!r}); from vitmusic.metrics.jit_warmup import main; main()"
    env = dict(os.environ, **{CACHE_ENV: str(cache), CHILD_ENV: "1"})
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        return 124, (e.output or b"").decode(errors="replace")[-2000:]
    return proc.returncode, proc.stdout.decode(errors="replace")[-2000:].strip()


def _use_private_cache(reason: str) -> Path:
    """Fall back to a fresh per-process cache (compiled again, never shared) when the shared one cannot be
    validated; possible only while librosa's compiled modules are not imported yet."""
    if _librosa_loaded():
        log.warning("could not validate librosa's numba cache (%s); continuing with it", reason)
        return Path(os.environ.get(CACHE_ENV, ""))
    private = tempfile.mkdtemp(prefix="vitmusic-numba-")
    atexit.register(shutil.rmtree, private, True)
    os.environ[CACHE_ENV] = private
    _update_numba_config(private)
    log.warning("could not validate librosa's shared numba cache (%s); this process compiles into %s "
                "(slower start, nothing shared)", reason, private)
    return Path(private)


def librosa_cached_modules() -> list[str]:
    """librosa's modules that define numba functions with ``cache=True`` (found in their source)."""
    root = _librosa_dir()
    if root is None:
        return []
    names = []
    for path in sorted(root.rglob("*.py")):
        if "cache=True" in path.read_text(encoding="utf-8", errors="replace"):
            rel = path.relative_to(root.parent).with_suffix("")
            names.append(".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts))
    return names
