"""``vitmusic listen``: serve a listening test in the browser (see eval/listening/README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "serve a listening test (made by 'vitmusic stimuli') on localhost; ratings go to OUT/ratings.sqlite"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="the stimuli folder (OUT of 'vitmusic stimuli')")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")


def run(args: argparse.Namespace) -> int:
    from vitmusic.errors import ConfigError
    from vitmusic.listening.server import serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    try:
        serve(args.out, args.host, args.port, verbose=args.verbose)
    except OSError as e:
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})") from e
    except KeyboardInterrupt:  # Ctrl-C is how a test session ends: not an error
        print("vitmusic listen: stopped", file=sys.stderr)
    return 0
