"""``vitmusic listen``: serve a listening test in the browser (see eval/listening/README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("serve a listening test (made by 'vitmusic stimuli'), on localhost or behind a TLS reverse proxy; "
        "ratings go to OUT/ratings.sqlite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="the stimuli folder (OUT of 'vitmusic stimuli')")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only, e.g. behind a reverse proxy; "
                             "0.0.0.0 for every interface)")
    parser.add_argument("--public-url", default=None, metavar="URL",
                        help="the address participants open, e.g. https://listen.example.org (a reverse proxy "
                             "in front): its host and origin are allowed")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="another host name participants may use (repeatable; *.example.org for subdomains); "
                             "localhost and IP addresses are always allowed")
    parser.add_argument("--max-body", type=int, default=64 * 1024, metavar="BYTES",
                        help="largest request body accepted (default 65536; a submission is well under 2 KB)")
    parser.add_argument("--max-connections", type=int, default=512, metavar="N",
                        help="connections served at once; requests beyond get 503 (default 512; a browser keeps "
                             "up to 6 open per page)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="a request must arrive within this time; a stalled download is dropped after it "
                             "(default 10)")
    parser.add_argument("--forwarded-allow-ips", default="127.0.0.1", metavar="IPS",
                        help="proxies whose X-Forwarded-For/-Proto headers are trusted (default 127.0.0.1)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")


def run(args: argparse.Namespace) -> int:
    from vitmusic.errors import ConfigError
    from vitmusic.listening.access import ServeOptions
    from vitmusic.listening.server import serve

    options = ServeOptions(host=args.host, port=args.port, public_url=args.public_url,
                           allowed_hosts=tuple(args.allowed_host), max_body_bytes=args.max_body,
                           max_connections=args.max_connections, timeout_s=args.timeout,
                           forwarded_allow_ips=args.forwarded_allow_ips, verbose=args.verbose)
    try:
        serve(args.out, options)
    except OSError as e:
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})") from e
    except KeyboardInterrupt:  # Ctrl-C is how a test session ends: not an error
        print("vitmusic listen: stopped", file=sys.stderr)
    return 0
