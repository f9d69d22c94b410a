"""The ``vitmusic`` command line: a thin dispatcher over ``vitmusic.commands.*``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``, and
imports its heavy dependencies inside ``run`` so that ``vitmusic --help`` stays fast. User errors
(:class:`vitmusic.errors.VitmusicError`) are reported as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vitmusic import __version__
from vitmusic.errors import VitmusicError

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


def _load(module: str):
    name = f"vitmusic.commands.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:  # a command not built yet: leave it out of the CLI
        if e.name == name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitmusic",
        description="Video-to-music research toolkit: generate music for performance videos and score it "
        "against the paired ground truth.",
    )
    parser.add_argument("--version", action="version", version=f"vitmusic {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        mod = _load(module)
        if mod is None:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vitmusic`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except VitmusicError as e:
        print(f"vitmusic {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vitmusic {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
