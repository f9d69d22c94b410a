"""The ``vitmusic`` command line: a thin dispatcher over ``vitmusic.commands.*``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int`` (and
optionally ``LOG_LEVEL`` for the ``vitmusic`` loggers, default INFO), and imports its heavy dependencies inside ``run`` so that ``vitmusic --help`` stays fast. User errors
(:class:`vitmusic.errors.VitmusicError`) are reported as one line on stderr with exit code 2.

``--plugin MODULE_OR_FILE`` (repeatable; or ``$VITMUSIC_PLUGINS``, or the ``vitmusic.plugins`` entry points)
imports a plug-in that registers metrics or model kinds (:mod:`vitmusic.plugins`) before the command runs: given
before the command, before the parser is built (its metrics appear in ``--help``); after it, before it runs.

Every command takes ``--threads N``; before the command runs (and imports torch), :mod:`vitmusic.threads` sets
the process's thread policy: one thread per CPU available to the process, idle threads asleep rather than
spinning (which keeps a shared machine from slowing a run by many times), the user's choices respected.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading

from vitmusic import __version__
from vitmusic.errors import DiskFullError, VitmusicError
from vitmusic.hf_quiet import hf_progress
from vitmusic.threads import apply_thread_policy, set_passive_waiting

# command name -> module under vitmusic.commands (pipeline order)
COMMANDS: dict[str, str] = {
    "synth-data": "synth_data",
    "prepare": "prepare",
    "extract": "extract",
    "train": "train",
    "generate": "generate",
    "evaluate": "evaluate",
    "compare": "compare",
    "ablate": "ablate",
    "demo": "demo",
    "stimuli": "stimuli",
    "listen": "listen",
    "listen-results": "listen_results",
}


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is *now* (a handler bound to the stderr of its creation time breaks
    when that stream is replaced, e.g. by tqdm redirection or pytest's capture, and prints logging errors)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; ignored on purpose
        pass


def setup_logging(level: int = logging.INFO) -> None:
    """Send the ``vitmusic`` loggers' messages (plain text) to stderr at ``level``; idempotent.

    Only the package logger is configured, so other libraries keep their own levels.
    """
    pkg = logging.getLogger("vitmusic")
    pkg.setLevel(level)
    if not any(isinstance(h, _CurrentStderrHandler) for h in pkg.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        pkg.addHandler(handler)
    pkg.propagate = False


class _OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (``prog: error: message (see prog --help)``), exit 2,
    instead of the usage block followed by the message."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _load(module: str):
    name = f"vitmusic.commands.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:  # a command not built yet: leave it out of the CLI
        if e.name == name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="vitmusic",
        description="Video-to-music research toolkit: generate music for performance videos and score it "
        "against the paired ground truth.",
    )
    parser.add_argument("--version", action="version", version=f"vitmusic {__version__}")
    plugin_help = ("import a plug-in that registers metrics or model kinds (repeatable, before or after the "
                   "command; also read from VITMUSIC_PLUGINS and the 'vitmusic.plugins' entry points)")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE", help=plugin_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    for name, module in COMMANDS.items():
        mod = _load(module)
        if mod is None:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        p.add_argument("--plugin", action="append", default=[], dest="plugins", metavar="MODULE", help=plugin_help)
        mod.add_arguments(p)
        p.add_argument("--threads", type=int, default=0, metavar="N",
                       help="CPU threads for torch / OpenMP (default 0: one per CPU available to this process, "
                       "or $VITMUSIC_THREADS, or $OMP_NUM_THREADS)")
        p.set_defaults(_run=mod.run, _log_level=getattr(mod, "LOG_LEVEL", logging.INFO))
    return parser


def _check_seed(args: argparse.Namespace) -> None:
    """Every command's ``--seed`` feeds numpy / torch generators: 0 .. 2**32 - 1 (numpy refuses negative
    seeds, torch overflows past 64 bits; one range for all commands)."""
    seed = getattr(args, "seed", None)
    if isinstance(seed, int) and not 0 <= seed < 2**32:
        raise VitmusicError(f"--seed must be in 0..{2**32 - 1}, got {seed}")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so that the half-written temporaries are removed on the
    way out (:mod:`vitmusic.atomic`) instead of being left by an abrupt exit."""


@contextlib.contextmanager
def _sigterm_as_exception():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _written_path(exc: BaseException) -> str | None:
    """The file name an ``OSError`` in ``exc``'s chain names, if any."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.filename:
            return str(e.filename)
        e = e.__cause__ or e.__context__
    return None


def _plugins_first(argv: list[str]) -> None:
    """Load the plug-ins before the parser is built, so that their metrics appear in ``--help`` texts; the
    ``--plugin`` values also go to ``VITMUSIC_PLUGINS`` for the processes the command starts."""
    specs = []
    for i, a in enumerate(argv):
        if a in ("-h", "--help") or (not a.startswith("-") and a in COMMANDS):
            break  # only options before the command are the top-level --plugin
        if a == "--plugin" and i + 1 < len(argv):
            specs.append(argv[i + 1])
        elif a.startswith("--plugin="):
            specs.append(a.split("=", 1)[1])
    set_passive_waiting()  # a plug-in may import torch: its OpenMP must not busy-wait (the count comes later)
    _use_plugins(specs)


def _use_plugins(specs: list[str]) -> None:
    """Import the plug-ins ``specs`` (and those of the entry points and ``VITMUSIC_PLUGINS``); the processes this
    command starts get them through ``VITMUSIC_PLUGINS``."""
    import os

    from vitmusic.plugins import ENV_VAR, load_plugins

    load_plugins(specs)
    if specs:
        known = [s for s in os.environ.get(ENV_VAR, "").split(",") if s]
        os.environ[ENV_VAR] = ",".join(dict.fromkeys(known + specs))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vitmusic`` console script; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        _plugins_first(argv)
    except VitmusicError as e:
        print(f"vitmusic: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    setup_logging(getattr(args, "_log_level", logging.INFO))
    try:
        with _sigterm_as_exception():
            _use_plugins(getattr(args, "plugins", []))  # --plugin after the command (a model kind, say)
            _check_seed(args)
            try:  # before the command imports torch: OpenMP reads its settings when it loads
                apply_thread_policy(getattr(args, "threads", 0))
            except ValueError as e:
                raise VitmusicError(str(e)) from None
            # --no-progress also hides the libraries' bars (transformers' "Loading weights", ...)
            with hf_progress(not getattr(args, "no_progress", False)):
                code = int(args._run(args) or 0)
            if code == 0:
                from vitmusic.training.distributed import end_processes

                end_processes()
            return code
    except (VitmusicError, DiskFullError) as e:
        print(f"vitmusic {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"vitmusic {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except Exception as e:
        from vitmusic.atomic import is_disk_full

        if not is_disk_full(e):  # a bug: keep the traceback
            raise
        # a writer outside vitmusic.atomic (a library's own file): its temporaries are its own
        where = _written_path(e)
        print(f"vitmusic {args.command}: error: no space left on device" + (f" while writing {where}" if where else ""),
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
