"""Serving the listening test: the Starlette app (:mod:`vitmusic.listening.app`) on uvicorn (h11).

uvicorn bounds what it can: at most ``max_connections`` connections are served at once (a request beyond
gets 503), request heads are limited to 16 KiB (400, or 431 from the app), idle keep-alive connections close after 5 s.
What it lacks (uvicorn issue #157: no timeout while a request is still arriving) is added by
:class:`TimedH11Protocol`: a request's head and body must arrive within ``timeout_s`` of the connection
opening (or of the previous answer), and an answer the client stops reading for ``timeout_s`` is dropped, so
slow or silent clients cannot hold connections. Anything uvicorn or asyncio would log goes out as one line
(``vitmusic listen: ...``), without tracebacks.

Use :func:`serve` (the CLI, foreground) or :func:`make_server` (``start()`` / ``stop()`` in a thread, or a
``with`` block). Running it for remote participants, behind a TLS reverse proxy: ``eval/listening/README.md``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from vitmusic.listening.access import ServeOptions, split_host
from vitmusic.listening.api import TOKENS_FILE, ListeningTest
from vitmusic.listening.app import MAX_HEAD_BYTES, make_app

log = logging.getLogger(__name__)

KEEP_ALIVE_S = 5.0
GRACEFUL_SHUTDOWN_S = 5


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the two timeouts a server facing the internet needs (the subclass sets
    ``timeout_s``): a request must be received in full within ``timeout_s`` of the connection becoming ready
    for it (opened, or the previous answer sent), and a response whose client stops draining it for
    ``timeout_s`` is dropped. Both end the connection with an abort (nothing more can usefully be sent)."""

    timeout_s: float = 10.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self._request_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._expect_request()

    def on_response_complete(self) -> None:
        self._expect_request()  # before uvicorn starts on a pipelined request, which may already be complete
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._request_timer, self._stall_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(self.timeout_s, self.transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _expect_request(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
        self._request_timer = self.loop.call_later(self.timeout_s, self._request_due)

    def _request_due(self) -> None:
        self._request_timer = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):  # no request yet, or its body still coming
            self.transport.abort()


class _OneLine(logging.Handler):
    """Forwards uvicorn's records to this module's logger as one line each (no tracebacks)."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip()
        if text.startswith("No supported WebSocket library"):  # advice to install one: no WebSockets on purpose
            return
        log.log(record.levelno, "vitmusic listen: %s", text.splitlines()[0][:300] if text else record.levelname)


def _route_uvicorn_logs(verbose: bool) -> None:
    logger = logging.getLogger("uvicorn")
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False
    if not any(isinstance(h, _OneLine) for h in logger.handlers):
        logger.addHandler(_OneLine())
    logging.getLogger("uvicorn.access").propagate = verbose  # uvicorn turns it off for quiet servers only


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """asyncio's own errors (e.g. accept() out of file descriptors) in one line instead of a traceback."""
    err = context.get("exception")
    log.warning("vitmusic listen: %s%s", context.get("message", "event loop error"),
                f" ({type(err).__name__}: {err})" if err is not None else "")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when the host has a colon).

    Raises:
        OSError: the address cannot be bound (in use, not this machine's, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


class ListeningServer:
    """A listening test bound to its address, served by uvicorn.

    Args:
        root: the stimuli folder (``OUT`` of ``vitmusic stimuli``).
        options: how to serve it.

    Raises:
        DataError: not a stimuli folder (see :class:`~vitmusic.listening.api.ListeningTest`).
        OSError: the address cannot be bound.
    """

    def __init__(self, root: str | os.PathLike, options: ServeOptions):
        self.options = options
        self.test = ListeningTest(root)
        protocol = type("ListeningProtocol", (TimedH11Protocol,), {"timeout_s": options.timeout_s})
        config = uvicorn.Config(
            make_app(self.test, options), http=protocol, ws="none", lifespan="off", log_config=None,
            access_log=options.verbose, server_header=False, proxy_headers=True,
            forwarded_allow_ips=options.forwarded_allow_ips, limit_concurrency=options.max_connections,
            timeout_keep_alive=min(KEEP_ALIVE_S, options.timeout_s), timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES)
        _route_uvicorn_logs(options.verbose)
        self.socket = bind(options.host, options.port)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (the port is chosen by the system for ``port=0``)."""
        host, port = self.socket.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        """``http://host:port/`` to open on this machine (a wildcard bind shows as the loopback address)."""
        host, port = self.address
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (or, in the main thread, Ctrl-C / SIGTERM)."""
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        asyncio.get_running_loop().set_exception_handler(_loop_error)
        await self._server.serve(sockets=[self.socket])

    def start(self, timeout_s: float = 30.0) -> ListeningServer:
        """Serve in a background thread; returns once requests are answered."""
        self._thread = threading.Thread(target=self.serve_forever, name="vitmusic-listen", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the listening server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (open requests get up to 5 s to finish) and release the address."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=GRACEFUL_SHUTDOWN_S + 10)
            self._thread = None
        self.socket.close()

    def __enter__(self) -> ListeningServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def make_server(root: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, **options) -> ListeningServer:
    """Open the test folder and bind (``port=0`` picks a free port: see ``address``); ``options``: the other
    :class:`ServeOptions` fields. Not serving yet: ``start()`` (or ``with``) or ``serve_forever()``."""
    return ListeningServer(root, ServeOptions(host=host, port=port, **options))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(root: str | os.PathLike, options: ServeOptions) -> None:
    """Serve until interrupted (Ctrl-C), printing where and how."""
    server = ListeningServer(root, options)
    say = lambda text: print(f"vitmusic listen: {text}", file=sys.stderr)  # noqa: E731
    everywhere = " (and this machine's other addresses)" if options.host in ("0.0.0.0", "::", "") else ""
    say(f"serving {Path(root)} at {server.url}{everywhere} (Ctrl-C to stop)")
    if options.public_url:
        say(f"participants open {options.origin}/?participant=TOKEN (tokens: private/{TOKENS_FILE})")
    elif not _is_loopback(options.host):
        say("warning: plain HTTP on a network address: login tokens and ratings travel unencrypted; put a TLS "
            "reverse proxy in front and pass --public-url (eval/listening/README.md)")
    public_host = [split_host(urlsplit(options.public_url).netloc)[0]] if options.public_url else []
    say(f"host names accepted: {', '.join(['localhost', 'IP addresses', *public_host, *options.allowed_hosts])}")
    if not server.test.token_of:
        say(f"warning: no private/{TOKENS_FILE} (a folder from an older 'vitmusic stimuli'): participants log in "
            "with their ids, which others can guess")
    server.serve_forever()
