"""The browser listening test: a small stdlib HTTP server over a stimuli folder made by ``vitmusic stimuli``.

Routes (everything else is 404):

* ``GET /`` — the test page; ``GET /static/<name>`` — the app's own files (a fixed list, from the package).
* ``GET /media/<id>.mp4`` — stimulus media, only from ``OUT/public/media`` (Range requests supported, as video
  elements seek with them). ``..`` segments (raw or percent-encoded), absolute paths, backslashes, NUL bytes
  and symlinks resolving outside the media folder are refused with 403; the answer key, the manifest and the
  database are never served.
* ``GET /api/session?participant=ID`` — the participant's trials in their order, answers given so far and
  the first unanswered trial (so a returning participant resumes there).
* ``POST /api/submit`` — JSON ``{"participant", "trial", "values": {stimulus_id: value}}``: MUSHRA values in
  0..100 for every rated stimulus of the trial; A/B values 1 for the chosen stimulus, 0 for the other. Stored at
  once (see :mod:`vitmusic.listening.store`).

Participants log in with the unguessable token ``vitmusic stimuli`` wrote for them
(``OUT/private/participants.csv``); their ids (``P01``...) are not accepted, so nobody can open another
participant's session by counting. (A folder made before the tokens existed falls back to the ids.)

Robustness: every connection has a socket timeout (:data:`REQUEST_TIMEOUT_S`, so a client that promises a body
and never sends it releases its thread), at most :data:`MAX_CONNECTIONS` are served at once (more get 503),
request bodies are parsed without recursion or integer overflow, and clients that disconnect are dropped
quietly; any other failure of a request is answered 500 and logged in one line.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from vitmusic.errors import DataError
from vitmusic.listening.design import REFERENCE_POSITION
from vitmusic.listening.stimuli import MEDIA, PUBLIC
from vitmusic.listening.store import DB_NAME, RatingStore, file_sha256

MEDIA_TYPES = {".mp4": "video/mp4"}
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8"}
MAX_BODY_BYTES = 1 << 20
REQUEST_TIMEOUT_S = 10.0  # per socket operation: a silent client is dropped after this
MAX_CONNECTIONS = 128  # connections served at once; the accept queue holds more, beyond that: 503
MAX_JSON_DEPTH = 8  # a submission is 3 levels deep
TOKENS_FILE = "participants.csv"  # in OUT/private: participant, token, path
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_CHUNK = 1 << 16
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RequestError(Exception):
    """An HTTP error answer: status and a one-line message (sent as JSON)."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class ListeningTest:
    """A stimuli folder being served: its public manifest, media folder and ratings database.

    Args:
        root: the ``OUT`` folder of ``vitmusic stimuli``.

    Raises:
        DataError: not a stimuli folder, or a malformed manifest / test.json.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        public = self.root / PUBLIC
        manifest = public / "manifest.csv"
        if not manifest.is_file() or not (public / "test.json").is_file():
            raise DataError(f"{self.root} is not a stimuli folder (no {PUBLIC}/manifest.csv or {PUBLIC}/test.json;"
                            " make one with 'vitmusic stimuli')")
        self.media_dir = (public / MEDIA).resolve()
        try:
            self.info = json.loads((public / "test.json").read_text(encoding="utf-8"))
            self.design = str(self.info["design"])
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{public / 'test.json'}: malformed ({e})") from e
        # participant -> trial -> [(position, stimulus_id, file)]
        self.trials: dict[str, dict[int, list[tuple[str, str, str]]]] = {}
        with manifest.open(newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                try:
                    trial = int(row["trial"])
                    entry = (row["position"], row["stimulus_id"], row["file"])
                    self.trials.setdefault(row["participant"], {}).setdefault(trial, []).append(entry)
                except (KeyError, TypeError, ValueError) as e:
                    raise DataError(f"{manifest}:{line}: malformed manifest row ({e})") from e
        self._by_folded = {p.casefold(): p for p in self.trials}
        self.token_of = read_tokens(self.root / "private" / TOKENS_FILE, set(self.trials))
        self._by_token = {t: p for p, t in self.token_of.items()}
        self.store = RatingStore(self.root / DB_NAME, file_sha256(manifest))

    # ------------------------------------------------------------------------------------------ API
    def participant(self, raw: object) -> str:
        """The participant id a login value names: their token (ids only in folders without tokens)."""
        key = raw.strip() if isinstance(raw, str) else ""
        pid = self._by_token.get(key) if self.token_of else self._by_folded.get(key.casefold())
        if pid is None:
            raise RequestError(HTTPStatus.NOT_FOUND, "unknown participant id")
        return pid

    def session(self, raw_participant: object) -> dict:
        """The participant's trials (in their order), stored answers and first unanswered trial (None: done)."""
        pid = self.participant(raw_participant)
        answers = self.store.answers(pid)
        trials = []
        for number in sorted(self.trials[pid]):
            entries = self.trials[pid][number]
            ref = [f"/{file}" for pos, _, file in entries if pos == REFERENCE_POSITION]
            trials.append({
                "trial": number,
                "reference": ref[0] if ref else None,
                "stimuli": [{"position": pos, "stimulus_id": sid, "url": f"/{file}"}
                            for pos, sid, file in entries if pos != REFERENCE_POSITION],
            })
        pending = [t["trial"] for t in trials if t["trial"] not in answers]
        return {"participant": self.token_of.get(pid, pid), "design": self.design, "scale": self.info.get("scale"), "trials": trials,
                "answers": {str(k): v for k, v in answers.items()}, "next_trial": pending[0] if pending else None}

    def submit(self, payload: object) -> dict:
        """Validate and store one trial's answers; returns ``{"ok": True, "next_trial": n | None}``."""
        if not isinstance(payload, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "expected a JSON object")
        pid = self.participant(payload.get("participant"))
        trial = payload.get("trial")
        if isinstance(trial, bool) or not isinstance(trial, int) or trial not in self.trials[pid]:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"no trial {trial!r} for this participant")
        rated = {sid: pos for pos, sid, _ in self.trials[pid][trial] if pos != REFERENCE_POSITION}
        values = payload.get("values")
        if not isinstance(values, dict) or set(values) != set(rated):
            raise RequestError(HTTPStatus.BAD_REQUEST, "values must give one answer per stimulus of the trial")
        clean: dict[str, tuple[str, float]] = {}
        for sid, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"answer for {sid} is not a number")
            clean[sid] = (rated[sid], float(v))
        if self.design == "ab":
            if sorted(v for _, v in clean.values()) != [0.0, 1.0]:
                raise RequestError(HTTPStatus.BAD_REQUEST, "an A/B answer chooses exactly one stimulus (1 and 0)")
        elif any(not 0.0 <= v <= 100.0 for _, v in clean.values()):
            raise RequestError(HTTPStatus.BAD_REQUEST, "ratings must lie in 0..100")
        self.store.submit(pid, trial, clean)
        done = self.store.answers(pid)
        pending = [t for t in sorted(self.trials[pid]) if t not in done]
        return {"ok": True, "next_trial": pending[0] if pending else None}

    # ---------------------------------------------------------------------------------------- files
    def media_file(self, raw_rel: str) -> Path:
        """The media file a request names, or RequestError (403 outside the folder, 404 missing)."""
        rel = unquote(raw_rel)
        parts = rel.split("/")
        if (not rel or "\x00" in rel or "\\" in rel or rel.startswith("/")
                or any(p in ("", ".", "..") for p in parts)):
            raise RequestError(HTTPStatus.FORBIDDEN, "forbidden path")
        path = (self.media_dir / rel).resolve()
        if not path.is_relative_to(self.media_dir):  # symlinks pointing out of the folder land here
            raise RequestError(HTTPStatus.FORBIDDEN, "forbidden path")
        if not path.is_file() or path.suffix.lower() not in MEDIA_TYPES:
            raise RequestError(HTTPStatus.NOT_FOUND, "not found")
        return path


def read_tokens(path: Path, participants: set[str]) -> dict[str, str]:
    """``{participant id: login token}`` from ``OUT/private/participants.csv`` (empty when there is none).

    Raises:
        DataError: a malformed file, or one that does not cover the manifest's participants.
    """
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            tokens = {row["participant"]: row["token"] for row in csv.DictReader(f)}
    except (KeyError, TypeError, ValueError, csv.Error) as e:
        raise DataError(f"{path}: malformed participant tokens ({e})") from e
    if set(tokens) != participants or len(set(tokens.values())) != len(tokens) or not all(tokens.values()):
        raise DataError(f"{path}: the tokens do not match the manifest's participants (one distinct token each)")
    return tokens


def _json_depth_ok(body: bytes, limit: int) -> bool:
    """Whether brackets nest at most ``limit`` deep (strings skipped), checked before ``json.loads``
    recurses into them: a 100k-deep body would otherwise raise RecursionError inside the handler."""
    depth, in_str, escape = 0, False, False
    for b in body:
        if in_str:
            if escape:
                escape = False
            elif b == 0x5C:  # backslash
                escape = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return False
        elif b in (0x5D, 0x7D):
            depth -= 1
    return True


def _number(text: str) -> float | int:
    """JSON integers of any length: small ones stay ints (trial numbers), long ones become floats (a
    400-digit rating turns into inf and is refused as not finite, instead of overflowing later)."""
    return int(text) if len(text) <= 18 else float(text)


def parse_body(body: bytes) -> object:
    """A request body as JSON, or RequestError 400 (not JSON, too deep, NaN/Infinity literals)."""
    if not _json_depth_ok(body, MAX_JSON_DEPTH):
        raise RequestError(HTTPStatus.BAD_REQUEST, "body nests too deeply")

    def constant(name: str):
        raise ValueError(f"{name} is not allowed")

    try:
        return json.loads(body or b"null", parse_int=_number, parse_constant=constant)
    except (ValueError, RecursionError) as e:
        raise RequestError(HTTPStatus.BAD_REQUEST, "body is not JSON") from e


def static_files() -> dict[str, bytes]:
    """The app's own files (name -> bytes), read once from the package."""
    root = resources.files("vitmusic.listening") / "static"
    return {p.name: p.read_bytes() for p in root.iterdir()
            if p.is_file() and Path(p.name).suffix in STATIC_TYPES}


class _Handler(BaseHTTPRequestHandler):
    server_version = "vitmusic-listen"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    test: ListeningTest
    static: dict[str, bytes]
    verbose = False
    timeout = REQUEST_TIMEOUT_S  # socket timeout of every read and write (StreamRequestHandler.setup)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        if self.verbose:
            super().log_message(format, *args)

    # -------------------------------------------------------------------------------- responses
    def _send(self, status: HTTPStatus, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: object, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        # a refused request may leave an unread body on the socket: never parse it as the next request
        self.close_connection = True
        self._send(status, json.dumps({"error": message}).encode("utf-8"), "application/json",
                   {"Connection": "close"})

    def _media(self, path: Path) -> None:
        size = path.stat().st_size
        start, end, status = 0, size - 1, HTTPStatus.OK
        header = self.headers.get("Range")
        if header:
            m = _RANGE.match(header.strip())
            if not m or (not m.group(1) and not m.group(2)):
                raise RequestError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "bad range")
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # suffix range: the last n bytes
                start = max(size - int(m.group(2)), 0)
            if start >= size or start > end:
                raise RequestError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "range outside the file")
            status = HTTPStatus.PARTIAL_CONTENT
        self.send_response(status)
        self.send_header("Content-Type", MEDIA_TYPES[path.suffix.lower()])
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-store")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with path.open("rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)

    # ---------------------------------------------------------------------------------- routes
    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        try:
            if self.command == "POST":
                if path != "/api/submit":
                    raise RequestError(HTTPStatus.NOT_FOUND, "not found")
                try:
                    length = int(self.headers.get("Content-Length") or -1)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY_BYTES:
                    raise RequestError(HTTPStatus.BAD_REQUEST, "missing or oversized body")
                body = self.rfile.read(length)
                if len(body) < length:  # the client closed before sending what it promised
                    self.close_connection = True
                    return
                self._json(self.test.submit(parse_body(body)))
            elif path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, self.static["index.html"], STATIC_TYPES[".html"])
            elif path.startswith("/static/"):
                name = unquote(path[len("/static/"):])
                if name not in self.static:
                    raise RequestError(HTTPStatus.NOT_FOUND, "not found")
                self._send(HTTPStatus.OK, self.static[name], STATIC_TYPES[Path(name).suffix])
            elif path.startswith("/media/"):
                self._media(self.test.media_file(path[len("/media/"):]))
            elif path == "/api/session":
                query = parse_qs(url.query)
                self._json(self.test.session((query.get("participant") or [""])[0]))
            else:
                raise RequestError(HTTPStatus.NOT_FOUND, "not found")
        except RequestError as e:
            self._answer_error(e.status, str(e))
        except _DISCONNECTS:  # the browser dropped a media request (seek, page change), or a client went silent
            self.close_connection = True
        except Exception as e:  # a bug must not kill the connection without an answer, nor print a traceback
            print(f"vitmusic listen: {self.command} {url.path}: internal error ({type(e).__name__}: {e})",
                  file=sys.stderr)
            self._answer_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

    def _answer_error(self, status: HTTPStatus, message: str) -> None:
        try:
            self._error(status, message)
        except _DISCONNECTS:
            self.close_connection = True

    do_GET = do_HEAD = do_POST = _dispatch


class ListeningServer(ThreadingHTTPServer):
    """Threaded HTTP server for one :class:`ListeningTest`; a deep accept queue for bursts of submissions,
    at most :data:`MAX_CONNECTIONS` handler threads (one more connection gets a 503 and is closed)."""

    daemon_threads = True
    request_queue_size = 256
    max_connections = MAX_CONNECTIONS

    def server_activate(self) -> None:
        super().server_activate()
        import threading

        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\nRetry-After: 1\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        """Disconnects and timeouts are routine; anything else gets one line, not a traceback."""
        err = sys.exc_info()[1]
        if isinstance(err, _DISCONNECTS) or err is None:
            return
        print(f"vitmusic listen: request from {client_address[0]} failed ({type(err).__name__}: {err})",
              file=sys.stderr)


def make_server(root: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, *,
                verbose: bool = False) -> ListeningServer:
    """Open the test folder and bind the server (``port=0`` picks a free port: see ``server_address``)."""
    handler = type("Handler", (_Handler,), {"test": ListeningTest(root), "static": static_files(),
                                            "verbose": verbose})
    return ListeningServer((host, port), handler)


def serve(root: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, *, verbose: bool = False) -> None:
    """Serve until interrupted (Ctrl-C)."""
    server = make_server(root, host, port, verbose=verbose)
    h, p = server.server_address[:2]
    print(f"vitmusic listen: serving {Path(root)} at http://{h}:{p}/ (Ctrl-C to stop)", file=sys.stderr)
    if not server.RequestHandlerClass.test.token_of:
        print(f"vitmusic listen: warning: no private/{TOKENS_FILE} (a folder from an older 'vitmusic stimuli'): "
              "participants log in with their ids, which others can guess", file=sys.stderr)
    try:
        server.serve_forever()
    finally:
        server.server_close()
