"""The listening test as a web application (Starlette, ASGI): routes, request guards, security headers.

Routes (everything else is 404, a known route with another method 405):

* ``GET /`` — the test page; ``GET /static/<name>`` — the app's own files (a fixed list, from the package).
* ``GET /media/<id>.mp4`` — stimulus media: only files the public manifest lists, from ``OUT/public/media``
  (Range requests, as video elements seek with them). ``..`` segments (raw or percent-encoded), absolute paths,
  backslashes, NUL bytes and symlinks resolving outside the media folder get 403; the answer key, the manifest
  and the database are never served. No ``Last-Modified``: file times could tell stimuli apart.
* ``GET /api/session?participant=TOKEN`` — the participant's trials in their order, answers given so far and
  the first unanswered trial (so a returning participant resumes there).
* ``POST /api/submit`` — JSON ``{"participant", "trial", "values": {stimulus_id: value}}`` (see
  :meth:`vitmusic.listening.api.ListeningTest.submit`), stored before the answer is sent.

Every request first passes the Host / Origin / Content-Type checks of
:meth:`vitmusic.listening.access.ServeOptions.refusal`. Bodies over ``max_body_bytes`` get 413 (declared or
streamed), bodies slower than ``timeout_s`` 408. Every answer carries a strict Content-Security-Policy
(same-origin scripts, styles and media only; no framing), ``nosniff``, ``Referrer-Policy: no-referrer`` (the
page URL holds the login token), same-origin resource and opener policies and ``Cache-Control: no-store``.
Errors are JSON ``{"error": message}`` with fixed messages that never echo the request; an unexpected failure
is answered 500 and logged in one line, never as a traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vitmusic.listening.access import ServeOptions
from vitmusic.listening.api import (
    MEDIA_TYPES,
    STATIC_TYPES,
    ListeningTest,
    RequestError,
    parse_body,
    static_files,
)

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; "
                           "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cache-control": "no-store",
}
MAX_HEAD_BYTES = 16 * 1024  # request line + headers (h11 enforces it only on heads arriving in pieces)
_FIXED_DATE = "Thu, 01 Jan 1970 00:00:00 GMT"  # Last-Modified of every media file (If-Range needs one)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error answer that closes the connection (a refused request may leave an unread body)."""
    return JSONResponse({"error": message}, status_code=status, headers={"connection": "close", **(headers or {})})


async def read_body(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    """The request body, at most ``max_bytes`` (413 beyond, declared or streamed) within ``timeout_s`` (408).

    Raises:
        RequestError: too large or too slow.
        ClientDisconnect: the client went away.
    """
    declared = request.headers.get("content-length", "")  # h11 has checked it is digits, if present
    if declared.isdigit() and int(declared) > max_bytes:  # refused before a byte of it is read
        raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
    chunks, size = [], 0
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
                chunks.append(chunk)
    except TimeoutError as e:
        raise RequestError(HTTPStatus.REQUEST_TIMEOUT, "request body not received in time") from e
    return b"".join(chunks)


class SecurityGuard:
    """ASGI middleware around the whole app: refuses heads over :data:`MAX_HEAD_BYTES` (431), requests
    framed by both Content-Length and Transfer-Encoding (400) and what :meth:`ServeOptions.refusal` refuses, adds
    :data:`SECURITY_HEADERS` to every answer, and turns an unexpected exception into 500 + one log line."""

    def __init__(self, app: ASGIApp, options: ServeOptions):
        self.app = app
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        head_bytes = (len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
                      + sum(len(k) + len(v) + 4 for k, v in scope["headers"]))
        try:
            headers = Headers(scope=scope)
            if head_bytes > MAX_HEAD_BYTES:
                refusal = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large"
            elif "content-length" in headers and "transfer-encoding" in headers:  # framing two ways: smuggling
                refusal = HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding"
            else:
                refusal = self.options.refusal(scope["method"], headers)
            if refusal is not None:
                await error_response(*refusal)(scope, receive, secured)
                return
            await self.app(scope, receive, secured)
        except Exception as e:  # a bug must not answer with a traceback, nor print one
            log.warning("vitmusic listen: %s %s: internal error (%s: %s)", scope["method"], scope["path"][:200],
                        type(e).__name__, str(e)[:200])
            if not started:
                await error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")(scope, receive, secured)


def make_app(test: ListeningTest, options: ServeOptions) -> Starlette:
    """The ASGI application serving ``test`` under ``options`` (run it with :mod:`vitmusic.listening.server`)."""
    static = static_files()

    async def page(request: Request) -> Response:
        return Response(static["index.html"], media_type=STATIC_TYPES[".html"])

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            raise RequestError(HTTPStatus.NOT_FOUND, "not found")
        return Response(static[name], media_type=STATIC_TYPES["." + name.rpartition(".")[2]])

    async def media(request: Request) -> Response:
        path = await run_in_threadpool(test.media_file, request.path_params["name"])
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix.lower()],
                            headers={"last-modified": _FIXED_DATE, "etag": f'"{path.stem}"'})

    async def session(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(test.session, request.query_params.get("participant", "")))

    async def submit(request: Request) -> Response:
        try:
            body = await read_body(request, options.max_body_bytes, options.timeout_s)
        except ClientDisconnect:
            return Response(status_code=HTTPStatus.BAD_REQUEST)  # nobody is listening for the answer
        return JSONResponse(await run_in_threadpool(lambda: test.submit(parse_body(body))))

    async def on_request_error(request: Request, exc: RequestError) -> Response:  # registered for RequestError only
        return error_response(exc.status, str(exc))

    async def on_http_exception(request: Request, exc: HTTPException) -> Response:  # for HTTPException only
        return error_response(exc.status_code, HTTPStatus(exc.status_code).phrase.lower(), dict(exc.headers or {}))

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/index.html", page, methods=["GET"]),
        Route("/static/{name:path}", static_file, methods=["GET"]),
        Route("/media/{name:path}", media, methods=["GET"]),
        Route("/api/session", session, methods=["GET"]),
        Route("/api/submit", submit, methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityGuard, options=options)],
                    exception_handlers={RequestError: on_request_error, HTTPException: on_http_exception})
    app.router.redirect_slashes = False  # a redirect would build its Location from the request
    return app
