"""Adversarial inputs, the rest: hostile HTTP against the listening server, and generation on a tiny run.

Not a command of its own: ``scripts/adversarial_inputs.py`` runs these groups (``server``, and ``generate``
unless ``--quick``) with its data and CLI cases and counts them the same way.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
from adversarial_common import (
    CONFIGS,
    REPO,
    Case,
    absent,
    make_piece,
    png_bytes,
    tone,
    write_video,
    write_wav,
)


# ------------------------------------------------------------------------------------ the server
def server_cases(tmp: Path) -> list[Case]:
    """Hostile HTTP against a listening test on 127.0.0.1 (a manifest-only test folder with tokens, one 32 MB
    media file): malformed bodies, foreign Origin / Host (CSRF, DNS rebinding), oversized and chunked bodies,
    long names, traversal, odd methods, malformed framing, slow, silent and many clients."""
    root = tmp / "listen"
    (root / "public" / "media").mkdir(parents=True)
    (root / "private").mkdir()
    rows = ["participant,trial,position,stimulus_id,file"]
    for p in (1, 2):
        for k in (1, 2):
            rows.append(f"P0{p},1,{k},{p}{k}0000000000,media/{p}{k}0000000000.mp4")
    (root / "public" / "manifest.csv").write_text("\n".join(rows) + "\n")
    (root / "public" / "test.json").write_text(json.dumps({"design": "mushra", "scale": [0, 100]}))
    (root / "private" / "participants.csv").write_text("participant,token,path\nP01,tokA1234567890abcdefgh,/\n"
                                                       "P02,tokB1234567890abcdefgh,/\n")
    (root / "private" / "answer_key.csv").write_text("stimulus_id,item,system\nSECRET,x,y\n")
    (root / "public" / "media" / "110000000000.mp4").write_bytes(b"\x00" * 100_000)
    big_bytes = 32 << 20  # more than the kernel's socket buffers: a client that stops reading stalls the server
    (root / "public" / "media" / "210000000000.mp4").write_bytes(b"\x01" * big_bytes)
    os.symlink(root / "private" / "answer_key.csv", root / "public" / "media" / "escape.mp4")
    os.symlink(root / "private" / "answer_key.csv", root / "public" / "media" / "120000000000.mp4")  # listed
    sys.path.insert(0, str(REPO / "tests"))
    from listening_helpers import http_exchange

    from vitmusic.listening.server import make_server

    state: dict = {}

    def start():
        state["srv"] = make_server(root, "127.0.0.1", 0).start()
        state["addr"] = state["srv"].address

    def raw(data: bytes, timeout: float = 15.0) -> bytes:
        return http_exchange(state["addr"], data, timeout)

    def post(body: bytes, headers: str = "Content-Type: application/json\r\n", host: str = "127.0.0.1") -> bytes:
        return (f"POST /api/submit HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n{headers}"
                "Connection: close\r\n\r\n").encode() + body

    def get(path: str, host: str = "127.0.0.1", headers: str = "") -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n".encode()

    def p02_rows() -> int:
        import sqlite3

        con = sqlite3.connect(root / "ratings.sqlite")
        try:
            return con.execute("SELECT COUNT(*) FROM submissions WHERE participant = 'P02'").fetchone()[0]
        finally:
            con.close()

    def expect_status(name: str, request: bytes, statuses: tuple[int | None, ...], forbid: tuple[bytes, ...] = (),
                      nothing_stored: bool = False) -> Case:
        def fn():
            answer = raw(request)
            status = int(answer[9:12]) if answer.startswith(b"HTTP/1.") else None
            if status not in statuses:
                raise AssertionError(f"status {status}, expected {statuses}: {answer[:80]!r}")
            for secret in (b"SECRET", *forbid):
                if secret in answer:
                    raise AssertionError(f"the answer contains {secret[:20]!r}")
            if nothing_stored and p02_rows():
                raise AssertionError("a refused submission was stored")
            if not raw(get("/")).startswith(b"HTTP/1.1 200"):
                raise AssertionError("server no longer answers")
        return Case(f"listen: {name}", fn=fn, group="server", expect="ok", timeout_s=40)

    tok = b"tokA1234567890abcdefgh"
    good_values = b'{"110000000000":50,"120000000000":50}'
    cases = [Case("listen: start the server", fn=start, group="server", expect="ok")]
    bodies = [
        ("100k-deep JSON array", b"[" * 100_000 + b"]" * 100_000),
        ("50k-deep JSON object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        ("5k-deep JSON array (within the size limit)", b"[" * 5_000 + b"]" * 5_000),
        ("400-digit rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":' + b"9" * 400
         + b',"120000000000":1}}'),
        ("5000-digit trial", b'{"participant":"' + tok + b'","trial":' + b"1" * 5000 + b',"values":{}}'),
        ("-400-digit rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":-' + b"9" * 400
         + b',"120000000000":1}}'),
        ("1e400 rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":1e400,'
         b'"120000000000":1}}'),
        ("NaN rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":NaN,"120000000000":1}}'),
        ("Infinity rating", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":Infinity,'
         b'"120000000000":1}}'),
        ("rating as string", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":"50",'
         b'"120000000000":1}}'),
        ("rating true", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":true,'
         b'"120000000000":1}}'),
        ("rating 101", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":101,"120000000000":1}}'),
        ("rating -0.001", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":-0.001,'
         b'"120000000000":1}}'),
        ("participant a list", b'{"participant":["' + tok + b'"],"trial":1,"values":' + good_values + b"}"),
        ("participant an object", b'{"participant":{"a":1},"trial":1,"values":' + good_values + b"}"),
        ("participant null", b'{"participant":null,"trial":1,"values":' + good_values + b"}"),
        ("sequential id P01 instead of token", b'{"participant":"P01","trial":1,"values":' + good_values + b"}"),
        ("lower-case token", b'{"participant":"' + tok.lower() + b'","trial":1,"values":' + good_values + b"}"),
        ("trial 1.0", b'{"participant":"' + tok + b'","trial":1.0,"values":' + good_values + b"}"),
        ("trial true", b'{"participant":"' + tok + b'","trial":true,"values":' + good_values + b"}"),
        ("trial -1", b'{"participant":"' + tok + b'","trial":-1,"values":' + good_values + b"}"),
        ("values a list", b'{"participant":"' + tok + b'","trial":1,"values":[50,50]}'),
        ("values missing a stimulus", b'{"participant":"' + tok + b'","trial":1,"values":{"110000000000":5}}'),
        ("values of another participant", b'{"participant":"' + tok + b'","trial":1,"values":'
         b'{"210000000000":5,"220000000000":5}}'),
        ("body a JSON string", b'"hello"'), ("body a number", b"12"), ("body null", b"null"),
        ("body invalid UTF-8", b"\xff\xfe\xfd"), ("body truncated JSON", b'{"participant":'),
        ("body with a NUL", b'{"participant":"\x00"}'),
        ("10k keys object", b"{" + b",".join(b'"k%d":1' % i for i in range(10_000)) + b"}"),
        ("empty body", b""),
    ]
    for name, body in bodies:
        cases.append(expect_status(name, post(body), (400, 404, 413)))
    cases.append(expect_status("body over 1 MiB", post(b" " * ((1 << 20) + 10)), (413,)))
    cases.append(expect_status("Content-Length 100 MiB declared, nothing sent",
                               b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 104857600\r\n\r\n", (413,)))
    chunk = b"x" * 4096
    cases.append(expect_status("chunked body of 2 MiB", b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close"
                               b"\r\n\r\n" + (b"1000\r\n" + chunk + b"\r\n") * 512
                               + b"0\r\n\r\n", (413,)))
    cases.append(expect_status("chunk size not hex", b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close"
                               b"\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", (400,)))
    cases.append(expect_status("Content-Length and Transfer-Encoding both (smuggling)",
                               b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                               b"0\r\n\r\n", (400,)))
    cases.append(expect_status("two different Content-Lengths", b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Content-Length: 2\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{}", (400,)))
    cases.append(expect_status("Content-Length -5", b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Content-Length: -5\r\nConnection: close\r\n\r\n", (400,)))
    cases.append(expect_status("Content-Length abc", b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Content-Length: abc\r\nConnection: close\r\n\r\n", (400,)))
    cases.append(expect_status("a good submission", post(b'{"participant":"' + tok + b'","trial":1,"values":'
                                                         + good_values + b"}"), (200,)))
    # --- cross-site request forgery: P02's valid submission, as a foreign page could send it; none may be stored
    p02 = b'{"participant":"tokB1234567890abcdefgh","trial":1,"values":{"210000000000":5,"220000000000":5}}'
    text_json = b'{"participant":"tokB1234567890abcdefgh","trial":1,"values":{"210000000000":5,"220000000000":5},"x":"="}'
    for name, body, headers, statuses in [
        ("text/plain form shaped into JSON, no Origin", text_json, "Content-Type: text/plain\r\n", (415,)),
        ("text/plain form, foreign Origin", text_json, "Content-Type: text/plain\r\nOrigin: http://evil.example\r\n",
         (403,)),
        ("urlencoded form, foreign Origin", b"participant=tokB", "Content-Type: application/x-www-form-urlencoded\r\n"
         "Origin: http://evil.example\r\n", (403,)),
        ("multipart form, foreign Origin", b"--x\r\n\r\n" + p02 + b"\r\n--x--",
         "Content-Type: multipart/form-data; boundary=x\r\nOrigin: http://evil.example\r\n", (403,)),
        ("no-cors fetch (text/plain, Sec-Fetch-Site cross-site)", p02, "Content-Type: text/plain;charset=UTF-8\r\n"
         "Sec-Fetch-Site: cross-site\r\nOrigin: http://evil.example\r\n", (403,)),
        ("JSON with a foreign Origin", p02, "Content-Type: application/json\r\nOrigin: http://evil.example\r\n", (403,)),
        ("JSON with Origin null (sandboxed frame)", p02, "Content-Type: application/json\r\nOrigin: null\r\n", (403,)),
        ("JSON with a look-alike Origin", p02, "Content-Type: application/json\r\n"
         "Origin: http://127.0.0.1.evil.example\r\n", (403,)),
        ("JSON from another port of this host", p02, "Content-Type: application/json\r\n"
         "Origin: http://127.0.0.1:1\r\n", (403,)),
        ("JSON marked Sec-Fetch-Site same-site", p02, "Content-Type: application/json\r\nSec-Fetch-Site: same-site\r\n",
         (403,)),
        ("no Content-Type", p02, "", (415,)),
    ]:
        cases.append(expect_status(f"CSRF: {name}", post(body, headers), statuses, nothing_stored=True))
    # --- DNS rebinding: a foreign Host name must get nothing
    for name, request in [
        ("page", get("/", host="evil.example")),
        ("session", get("/api/session?participant=tokB1234567890abcdefgh", host="evil.example:8000")),
        ("media", get("/media/110000000000.mp4", host="rebind.evil.example")),
        ("submission", post(p02, host="evil.example")),
        ("look-alike localhost.evil.example", get("/", host="localhost.evil.example")),
        ("port out of range", get("/", host="127.0.0.1:99999")),
        ("no Host (HTTP/1.0)", b"GET / HTTP/1.0\r\n\r\n"),
    ]:
        cases.append(expect_status(f"foreign Host: {name}", request, (400,), forbid=(b"tokB", b"trials", b"<html"),
                                   nothing_stored=True))
    # --- names and paths
    for path in ["/media/../private/answer_key.csv", "/media/%2e%2e/private/answer_key.csv",
                 "/media/..%2fprivate%2fanswer_key.csv", "/media/escape.mp4", "/media/120000000000.mp4",
                 "/media/%00.mp4", "/media//etc/passwd", "/private/answer_key.csv", "/public/manifest.csv",
                 "/media/%c0%ae%c0%ae/private/answer_key.csv", "/media/..;/private/answer_key.csv",
                 "/media/" + "%2e%2e%2f" * 50 + "etc/passwd", "/ratings.sqlite",
                 "/api/session?participant=P01", "/api/session?participant=p02",
                 "/api/session?participant=../private", "/api/session", "/static/../private/answer_key.csv",
                 "/api/session?participant=" + "A" * 5000, "/media/" + "a" * 4000 + ".mp4",
                 "/media/" + "a/" * 2000 + "x.mp4", "/static/" + "b" * 4000, "/media/" + "%e2%82%ac" * 300 + ".mp4"]:
        cases.append(expect_status(f"GET {path[:60]}", get(path), (403, 404)))
    for path in ["/<script>alert(1)</script>", "/api/session?participant=%3Cimg%20src=x%20onerror=alert(1)%3E"]:
        cases.append(expect_status(f"GET {path[:60]} (not echoed)", get(path), (404,), forbid=(b"<script", b"<img",
                                                                                                 b"alert")))
    cases.append(expect_status("GET with a 70000-byte header line", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: "
                               + b"a" * 70000 + b"\r\n\r\n", (400, 431)))
    cases.append(expect_status("garbage request line (a TLS hello)", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                               b"\r\n\r\n", (400,)))
    cases.append(expect_status("header without a colon", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
                               (400,)))
    cases.append(expect_status("duplicate keys (the last wins, as in JSON parsers generally)",
                               post(b'{"participant":"x","participant":"' + tok + b'","trial":1,"values":'
                                    + good_values + b"}"), (200,)))
    cases.append(expect_status("Range 5-2", get("/media/110000000000.mp4", headers="Range: bytes=5-2\r\n"), (400, 416)))
    cases.append(expect_status("Range of 400 digits", get("/media/110000000000.mp4", headers="Range: bytes="
                                                          + "9" * 400 + "-\r\n"), (416,)))
    cases.append(expect_status("Range of 200 parts", get("/media/110000000000.mp4", headers="Range: bytes="
                                                         + ",".join(["0-0"] * 200) + "\r\n"), (200, 400, 416)))  # ignored (the whole file) or refused
    # --- methods
    for method, path, statuses in [("PUT", "/api/submit", (405,)), ("DELETE", "/api/submit", (405,)),
                                   ("PATCH", "/api/submit", (405,)), ("OPTIONS", "/api/submit", (405,)),
                                   ("TRACE", "/", (405,)), ("FOO", "/", (405,)), ("GET", "/api/submit", (405,)),
                                   ("CONNECT", "evil.example:443", (400, 404)), ("GET", "http://evil.example/", (404,))]:
        cases.append(expect_status(f"{method} {path}", f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                                   .encode(), statuses, forbid=(b"access-control-allow",)))

    def headers_on_every_answer():
        for request in (get("/"), get("/nope"), get("/", host="evil.example"), post(b"{}", "Content-Type: text/plain\r\n")):
            head = raw(request).split(b"\r\n\r\n")[0].lower()
            for needed in (b"content-security-policy: default-src 'none'", b"frame-ancestors 'none'",
                           b"x-content-type-options: nosniff", b"referrer-policy: no-referrer"):
                if needed not in head:
                    raise AssertionError(f"{request[:20]!r}: no {needed!r}")

    cases.append(Case("listen: CSP, nosniff, frame-ancestors, no-referrer on every answer", fn=headers_on_every_answer,
                      group="server", expect="ok"))

    def pipelined():
        answer = raw(get("/").replace(b"Connection: close\r\n", b"") * 2 + get("/static/app.js"))
        if answer.count(b"HTTP/1.1 200") != 3:
            raise AssertionError(f"{answer.count(b'HTTP/1.1 200')} of 3 pipelined requests answered")

    cases.append(Case("listen: 3 pipelined requests", fn=pipelined, group="server", expect="ok"))

    # --- slow, silent and many clients
    def recovers(within_s: float = 30.0) -> None:
        t = time.perf_counter()
        while time.perf_counter() - t < within_s:
            try:
                if raw(get("/"), timeout=3).startswith(b"HTTP/1.1 200"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("server did not recover")

    def reset(socks) -> None:
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()

    def slow_loris():
        socks = []
        for _ in range(150):
            s = socket.create_connection(state["addr"], timeout=5)
            s.sendall(b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{")
            socks.append(s)
        time.sleep(0.5)
        if threading.active_count() > 60:
            raise AssertionError(f"{threading.active_count()} threads for 150 silent clients")
        try:
            recovers()
        finally:
            reset(socks)

    cases.append(Case("listen: 150 clients promise a body and never send it", fn=slow_loris, group="server",
                      expect="ok", timeout_s=60))

    def silent_connections():
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # both ends live in this process: 2000+ files
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
        socks = [socket.create_connection(state["addr"], timeout=5) for _ in range(1000)]
        try:
            recovers()
            time.sleep(11)  # the request timeout (10 s) has closed every one of them
            closed = 0
            for s in socks:
                s.settimeout(0.2)
                try:
                    closed += s.recv(10) == b""
                except ConnectionResetError:
                    closed += 1
                except OSError:
                    pass
            if closed < len(socks):
                raise AssertionError(f"{len(socks) - closed} of {len(socks)} silent connections still open")
        finally:
            reset(socks)

    cases.append(Case("listen: 1000 connections that send nothing", fn=silent_connections, group="server",
                      expect="ok", timeout_s=90))

    def trickled_head():
        s = socket.create_connection(state["addr"], timeout=5)
        t = time.perf_counter()
        try:
            for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000:
                s.sendall(bytes([byte]))
                time.sleep(0.1)
                if time.perf_counter() - t > 30:
                    raise AssertionError("a head trickled a byte per 0.1 s still held the connection after 30 s")
        except OSError:
            pass  # dropped by the request timeout
        finally:
            s.close()
        recovers()

    cases.append(Case("listen: request head trickled one byte per 0.1 s", fn=trickled_head, group="server",
                      expect="ok", timeout_s=60))

    def stalled_download():
        s = socket.create_connection(state["addr"], timeout=5)
        s.sendall(get("/media/210000000000.mp4"))
        time.sleep(13)  # reads nothing: the server drops the stalled answer after the timeout
        got = 0
        s.settimeout(5)
        try:
            while data := s.recv(1 << 20):
                got += len(data)
        except (ConnectionResetError, TimeoutError):
            pass
        s.close()
        if got >= big_bytes:
            raise AssertionError("the stalled download was kept open to its end")
        recovers()

    cases.append(Case("listen: a 32 MB download the client stops reading", fn=stalled_download, group="server",
                      expect="ok", timeout_s=60))

    def many_connections():
        from concurrent.futures import ThreadPoolExecutor

        def one(_):
            answer = raw(get("/static/app.js"), timeout=30)
            return answer[9:12]

        with ThreadPoolExecutor(max_workers=200) as pool:
            statuses = list(pool.map(one, range(1000)))
        odd = [st for st in statuses if st not in (b"200", b"503")]
        if odd:
            raise AssertionError(f"{len(odd)} of 1000 got neither 200 nor 503: {odd[:5]}")
        recovers()

    cases.append(Case("listen: 1000 requests, 200 at a time", fn=many_connections, group="server", expect="ok",
                      timeout_s=120))

    def dropped_downloads():
        for _ in range(20):
            s = socket.create_connection(state["addr"], timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            s.sendall(get("/media/110000000000.mp4"))
            s.recv(10)
            reset([s])
        time.sleep(0.5)
        if not raw(get("/")).startswith(b"HTTP/1.1 200"):
            raise AssertionError("server no longer answers")

    cases.append(Case("listen: 20 media downloads dropped halfway (BrokenPipe)", fn=dropped_downloads,
                      group="server", expect="ok", timeout_s=60))
    cases.append(Case("listen: stop the server", fn=lambda: state["srv"].stop(), group="server", expect="ok"))
    return cases


# ------------------------------------------------------------------------------------ generation
def generate_cases(tmp: Path) -> list[Case]:
    """Needs a tiny trained run (built here, ~30-60 s on 2 cores)."""
    os.environ.setdefault("VITMUSIC_CACHE", str(tmp / "presets"))
    from vitmusic import cli

    media = tmp / "gen_media"
    good = write_video(media / "good.mp4", 20, fps=10, size=(48, 64))
    urmp, prep = tmp / "gen_urmp", tmp / "gen_prep"
    make_piece(urmp, 1, "Jupiter", ["vn"], 6.0, video=write_video(media / "p1.mp4", 60, 10, (48, 64)).read_bytes())
    make_piece(urmp, 2, "Sonata", ["vc"], 6.0, video=write_video(media / "p2.mp4", 60, 10, (48, 64)).read_bytes())
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["prepare", "--urmp", str(urmp), "--out", str(prep), "--clip-seconds", "1.5", "--no-plot",
                         "--ratios", "0.5,0.5,0"]) == 0
        run = tmp / "gen_run"
        assert cli.main(["train", "--config", str(CONFIGS / "tiny.yaml"), f"data.manifest={prep}",
                         f"extract.cache_dir={tmp / 'gen_cache'}", f"train.output_dir={run}", "train.max_steps=2",
                         "train.batch_size=2", "train.log_with=none", "--no-progress"]) == 0
    files = {
        "empty.mp4": b"", "png.mp4": png_bytes(), "random.mp4": np.random.default_rng(3).bytes(100_000),
        "text.mp4": b"not a video\n", "truncated.mp4": good.read_bytes()[:2000],
    }
    for name, data in files.items():
        (media / name).write_bytes(data)
    write_video(media / "one_frame.mp4", 1)
    write_video(media / "tenth.mp4", 3, fps=30)
    write_wav(media / "audio_only.wav", tone(2.0))
    (media / "audio_only.wav").rename(media / "audio_only.mp4")  # a WAV named .mp4: no video stream
    (tmp / "afile.txt").write_text("x") if not (tmp / "afile.txt").exists() else None
    base = ["generate", "--checkpoint", str(run), "--no-progress"]
    cases = []
    k = 0

    def case(name, *extra, expect="error", max_lines=1, out=True):
        nonlocal k
        k += 1
        o = tmp / f"gen_out{k}.wav"
        argv = base + (["--out", str(o)] if out else []) + list(extra)
        cases.append(Case(f"generate: {name}", argv, expect=expect, max_lines=max_lines, group="generate",
                          check=absent(o) if expect == "error" and out else None, timeout_s=120))

    case("a good video", "--video", str(good), expect="ok")
    for name in ["empty.mp4", "png.mp4", "random.mp4", "text.mp4", "truncated.mp4", "one_frame.mp4", "tenth.mp4",
                 "audio_only.mp4"]:
        case(f"--video {name}", "--video", str(media / name))
    case("--video missing", "--video", str(media / "nope.mp4"))
    case("--video a folder", "--video", str(media))
    case("--out under a file", "--video", str(good), "--out", str(tmp / "afile.txt" / "o.wav"), out=False)
    case("--out a folder", "--video", str(good), "--out", str(media), out=False)
    case("--mux under a file", "--video", str(good), "--mux", str(tmp / "afile.txt" / "o.mp4"))
    case("--midi with the musicgen path", "--video", str(good), "--midi", str(tmp / "o.mid"))
    for g in ("0.5", "nan", "-inf"):
        case(f"--guidance {g}", "--video", str(good), "--guidance", g)
    case("--seed 2**80", "--video", str(good), "--seed", str(2**80))
    case("--seed -1", "--video", str(good), "--seed", "-1")
    case("--device nonsense", "--video", str(good), "--device", "quantum")
    case("--checkpoint missing", "--video", str(good), "--checkpoint", str(tmp / "nope"))
    empty_ckpt = tmp / "empty_ckpt"
    empty_ckpt.mkdir()
    case("--checkpoint an empty folder", "--video", str(good), "--checkpoint", str(empty_ckpt))
    for name, edit in [
        ("hidden_dim 'sixty-four'", lambda c: c["hparams"].__setitem__("hidden_dim", "sixty-four")),
        ("hidden_dim -5", lambda c: c["hparams"].__setitem__("hidden_dim", -5)),
        ("hparams a list", lambda c: c.__setitem__("hparams", [1, 2])),
        ("in_dim a string", lambda c: c.__setitem__("in_dim", "wide")),
        ("kind unknown", lambda c: c.__setitem__("kind", "quantum")),
        ("run config removed", lambda c: c.get("extra", {}).pop("config", None)),
        ("format version 99", lambda c: c.__setitem__("format_version", 99)),
    ]:
        bad = tmp / f"ckpt_{k}"
        shutil.copytree(run / "final", bad)
        cfg = json.loads((bad / "config.json").read_text())
        edit(cfg)
        (bad / "config.json").write_text(json.dumps(cfg))
        case(f"checkpoint config.json {name}", "--video", str(good), "--checkpoint", str(bad))
    for name, action in [("config.json not JSON", lambda b: (b / "config.json").write_text("{")),
                         ("weights truncated", lambda b: (b / "model.safetensors").write_bytes(
                             (b / "model.safetensors").read_bytes()[:50])),
                         ("weights missing", lambda b: (b / "model.safetensors").unlink())]:
        bad = tmp / f"ckpt_{k}_x"
        shutil.copytree(run / "final", bad)
        action(bad)
        case(f"checkpoint {name}", "--video", str(good), "--checkpoint", str(bad))
    batch = tmp / "batch"
    batch.mkdir()
    shutil.copy(good, batch / "good.mp4")
    (batch / "dangling.mp4").symlink_to(tmp / "gone.mp4")
    shutil.copy(media / "png.mp4", batch / "png.mp4")
    cases.append(Case("generate: batch with a dangling symlink and a PNG", base + ["--videos", str(batch), "--out-dir",
                                                                                 str(tmp / "batch_out")],
                      expect="ok", group="generate", timeout_s=120, check=lambda: None if len(json.loads(
                          (tmp / "batch_out" / "failures.json").read_text())) == 2 else "failures.json lacks an item"))
    bad_only = tmp / "batch_bad"
    bad_only.mkdir()
    (bad_only / "dangling.mp4").symlink_to(tmp / "gone.mp4")
    cases.append(Case("generate: batch of only a dangling symlink", base + ["--videos", str(bad_only), "--out-dir",
                                                                          str(tmp / "batch_bad_out")],
                      group="generate", max_lines=2, timeout_s=120))
    return cases
