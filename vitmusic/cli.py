"""The ``vitmusic`` command line: a thin dispatcher over ``vitmusic.commands.*``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int`` (and
optionally ``LOG_LEVEL`` for the ``vitmusic`` loggers, default INFO), and imports its heavy dependencies inside ``run`` so that ``vitmusic --help`` stays fast. User errors
(:class:`vitmusic.errors.VitmusicError`) are reported as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vitmusic import __version__
from vitmusic.errors import VitmusicError
from vitmusic.hf_quiet import hf_progress

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    for name, module in COMMANDS.items():
        mod = _load(module)
        if mod is None:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run, _log_level=getattr(mod, "LOG_LEVEL", logging.INFO))
    return parser


def _check_seed(args: argparse.Namespace) -> None:
    """Every command's ``--seed`` feeds numpy / torch generators: 0 .. 2**32 - 1 (numpy refuses negative
    seeds, torch overflows past 64 bits; one range for all commands)."""
    seed = getattr(args, "seed", None)
    if isinstance(seed, int) and not 0 <= seed < 2**32:
        raise VitmusicError(f"--seed must be in 0..{2**32 - 1}, got {seed}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vitmusic`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    setup_logging(getattr(args, "_log_level", logging.INFO))
    try:
        _check_seed(args)
        # --no-progress also hides the libraries' bars (transformers' "Loading weights", ...)
        with hf_progress(not getattr(args, "no_progress", False)):
            code = int(args._run(args) or 0)
        if code == 0:
            from vitmusic.training.distributed import end_processes

            end_processes()
        return code
    except VitmusicError as e:
        print(f"vitmusic {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vitmusic {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
