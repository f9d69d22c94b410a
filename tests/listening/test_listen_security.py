"""vitmusic listen facing other machines: Host and Origin checks, security headers, bounded bodies, slow and
many clients, odd methods and malformed HTTP (issue 21). Raw sockets, so nothing is normalised on the way."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from listening_helpers import http_exchange

from vitmusic import cli
from vitmusic.errors import ConfigError
from vitmusic.listening.access import ServeOptions, public_origin, split_host
from vitmusic.listening.app import SECURITY_HEADERS
from vitmusic.listening.server import make_server
from vitmusic.listening.store import DB_NAME

TOKEN = "tokA1234567890abcdefgh"
GOOD = {"participant": TOKEN, "trial": 1, "values": {"110000000000": 50, "120000000000": 60}}


def small_test(root: Path, media_bytes: int = 300_000) -> Path:
    """One participant with one MUSHRA trial of two stimuli; one real media file of ``media_bytes``."""
    (root / "public" / "media").mkdir(parents=True)
    (root / "private").mkdir()
    rows = ["participant,trial,position,stimulus_id,file"]
    rows += [f"P01,1,{k},1{k}0000000000,media/1{k}0000000000.mp4" for k in (1, 2)]
    rows.append("P01,1,reference,130000000000,media/130000000000.mp4")
    (root / "public" / "manifest.csv").write_text("\n".join(rows) + "\n")
    (root / "public" / "test.json").write_text(json.dumps({"design": "mushra", "scale": [0, 100]}))
    (root / "private" / "participants.csv").write_text(f"participant,token,path\nP01,{TOKEN},/\n")
    (root / "private" / "answer_key.csv").write_text("stimulus_id,item,system\nSECRET,x,y\n")
    (root / "public" / "media" / "110000000000.mp4").write_bytes(os.urandom(media_bytes))
    # a file the manifest lists that points out of the media folder
    os.symlink(root / "private" / "answer_key.csv", root / "public" / "media" / "120000000000.mp4")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return small_test(tmp_path_factory.mktemp("sec") / "t")


@pytest.fixture(scope="module")
def server(folder):
    with make_server(folder, timeout_s=1.0, max_body_bytes=4096, public_url="https://listen.example.org",
                     allowed_hosts=("lab.example.net", "*.uni.example")) as srv:
        yield srv


def request(method: str, path: str = "/", body: bytes = b"", host: str | None = "127.0.0.1",
            headers: dict[str, str] | None = None, version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}"] + ([f"Host: {host}"] if host is not None else [])
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines + ["Connection: close", "", ""])).encode("latin-1") + body


def ask(server, data: bytes, timeout: float = 10.0) -> tuple[int | None, dict[str, str], bytes]:
    answer = http_exchange(server.address, data, timeout)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0][9:12]) if lines[0].startswith("HTTP/1.") else None
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def post(server, payload: object = GOOD, **headers: str) -> int | None:
    hdrs = {"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}}
    host = hdrs.pop("Host", "127.0.0.1")
    return ask(server, request("POST", "/api/submit", json.dumps(payload).encode(), host=host, headers=hdrs))[0]


def stored(folder: Path) -> int:
    return sqlite3.connect(folder / DB_NAME).execute("SELECT COUNT(*) FROM submissions").fetchone()[0]


# ------------------------------------------------------------------------------------------------ Host
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost:9", "LOCALHOST", "app.localhost",
                                  "10.1.2.3:8000", "[::1]:8000", "listen.example.org", "lab.example.net:8000",
                                  "a.uni.example", "localhost."])
def test_allowed_host_names(server, host):
    assert ask(server, request("GET", "/", host=host))[0] == 200, host


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "listen.example.org.evil.example",
                                  "uni.example", "example.net", "[nonsense]", "127.0.0.1:99999", "", None])
def test_foreign_host_refused_dns_rebinding(server, folder, host):
    """A rebinding attacker's name (or none at all) gets 400, for the page and the API alike."""
    for req in (request("GET", "/", host=host), request("GET", f"/api/session?participant={TOKEN}", host=host),
                request("GET", "/media/110000000000.mp4", host=host)):
        status, headers, body = ask(server, req)
        assert status == 400, (host, status, body[:80])
        assert TOKEN.encode() not in body and b"trials" not in body
    before = stored(folder)
    assert post(server, Host=host or "") == 400
    assert stored(folder) == before


def test_http10_without_host_refused(server):
    assert ask(server, request("GET", "/", host=None, version="HTTP/1.0"))[0] == 400


# ---------------------------------------------------------------------------------------------- Origin
@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_simple_cross_site_posts_refused(server, folder, content_type):
    """What a foreign page can send without a CORS preflight (a form, a no-cors fetch) is refused even when
    its body is a valid submission, with or without an Origin header."""
    before = stored(folder)
    for origin in ({}, {"Origin": "http://evil.example"}):
        hdrs = {**origin, **({"Content-Type": content_type} if content_type else {})}
        status = ask(server, request("POST", "/api/submit", json.dumps(GOOD).encode(), headers=hdrs))[0]
        assert status in (403, 415), (content_type, origin, status)
    assert stored(folder) == before


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://listen.example.org:8443",
                                    "http://listen.example.org.evil.example", "file://", "garbage", "http://[::1"])
def test_foreign_origin_json_post_refused(server, folder, origin):
    before = stored(folder)
    assert post(server, Origin=origin) == 403
    assert stored(folder) == before


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_sec_fetch_site_cross_refused(server, site):
    assert post(server, Sec_Fetch_Site=site) == 403


def test_same_origin_posts_accepted(server, folder):
    port = server.address[1]
    assert post(server) == 200  # no Origin (not a browser): JSON needed, which no cross-site page can send
    assert post(server, Origin=f"http://127.0.0.1:{port}", Host=f"127.0.0.1:{port}", Sec_Fetch_Site="same-origin") == 200
    # behind a TLS proxy: the browser's origin is the public URL, whether or not the proxy passes the Host on
    assert post(server, Origin="https://listen.example.org", Host="listen.example.org") == 200
    assert post(server, Origin="https://listen.example.org", Host=f"127.0.0.1:{port}") == 200
    assert post(server, Origin="http://lab.example.net:8000", Host="lab.example.net:8000") == 200
    assert stored(folder) == 1  # one trial, re-submitted (upsert)


# ----------------------------------------------------------------------------------- headers and errors
@pytest.mark.parametrize("req", [request("GET", "/"), request("GET", "/static/app.js"), request("GET", "/nope"),
                                 request("GET", "/media/110000000000.mp4"), request("GET", "/", host="evil"),
                                 request("POST", "/api/submit", b"{}", headers={"Content-Type": "text/plain"}),
                                 request("DELETE", "/api/submit")])
def test_security_headers_on_every_answer(server, req):
    status, headers, _ = ask(server, req)
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (req[:30], status, name)
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "server" not in headers


def test_media_headers_reveal_no_file_times(server, folder):
    status, headers, body = ask(server, request("GET", "/media/110000000000.mp4", headers={"Range": "bytes=0-99"}))
    assert status == 206 and body == (folder / "public/media/110000000000.mp4").read_bytes()[:100]
    assert headers["last-modified"] == "Thu, 01 Jan 1970 00:00:00 GMT" and headers["etag"] == '"110000000000"'
    status, _, body = ask(server, request("GET", "/media/110000000000.mp4", headers={
        "Range": "bytes=0-9", "If-Range": '"110000000000"'}))
    assert status == 206 and len(body) == 10


@pytest.mark.parametrize("path", ["/<script>alert(1)</script>", "/api/session?participant=<img src=x onerror=alert(1)>",
                                  "/static/<svg onload=alert(1)>.js", "/media/%3Cscript%3E.mp4"])
def test_errors_never_echo_the_request(server, path):
    status, headers, body = ask(server, request("GET", path.replace(" ", "%20")))
    assert status in (403, 404) and headers["content-type"] == "application/json"
    assert b"<" not in body and b"alert" not in body


@pytest.mark.parametrize("path", ["/media/" + "a" * 4000 + ".mp4", "/media/" + "a/" * 2000 + "x.mp4",
                                  "/static/" + "b" * 4000, "/api/session?participant=" + "c" * 8000,
                                  "/media/" + "%e2%82%ac" * 300 + ".mp4"])
def test_long_names_are_404_not_500(server, path, capfd):
    status, _, body = ask(server, request("GET", path))
    assert status == 404, (status, body[:100])
    assert "internal error" not in capfd.readouterr().err


def test_listed_media_symlink_out_of_the_folder_is_403(server):
    status, _, body = ask(server, request("GET", "/media/120000000000.mp4"))
    assert status == 403 and b"SECRET" not in body


# ------------------------------------------------------------------------------------------------ bodies
def test_declared_oversized_body_refused_before_it_is_sent(server):
    with socket.create_connection(server.address, timeout=5) as s:
        s.sendall(b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 104857600\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize("size", [4097, 1 << 20])
def test_oversized_bodies_413(server, size):
    body = b'{"participant": "' + b"x" * size + b'"}'
    assert ask(server, request("POST", "/api/submit", body, headers={"Content-Type": "application/json"}))[0] == 413
    chunked = (b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000]) for i in range(0, len(body), 1000))
               + b"0\r\n\r\n")
    assert ask(server, chunked)[0] == 413


def test_chunked_submission_within_the_limit_is_stored(server, folder):
    body = json.dumps(GOOD).encode()
    chunked = (b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert ask(server, chunked)[0] == 200


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
    b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}",
    b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
])
def test_malformed_http_answered_400(server, raw):
    status, _, body = ask(server, raw)
    assert status in (400, 431), (raw[:40], status, body[:80])
    assert ask(server, request("GET", "/"))[0] == 200


@pytest.mark.parametrize("method, path, expected", [
    ("PUT", "/api/submit", 405), ("DELETE", "/api/submit", 405), ("PATCH", "/api/submit", 405),
    ("OPTIONS", "/api/submit", 405), ("TRACE", "/", 405), ("FOO", "/", 405), ("GET", "/api/submit", 405),
    ("POST", "/", 405), ("PUT", "/nope", 404), ("HEAD", "/", 200), ("CONNECT", "evil.example:443", 404),
    ("GET", "http://evil.example/", 404),
])
def test_odd_methods(server, method, path, expected):
    hdrs = {"Content-Type": "application/json"} if method not in ("GET", "HEAD", "OPTIONS", "TRACE") else {}
    status, headers, body = ask(server, request(method, path, b"{}" if hdrs else b"", headers=hdrs))
    assert status == expected, (method, path, status, body[:80])
    assert "access-control-allow-origin" not in headers  # no CORS grant, ever


# ----------------------------------------------------------------------------------- slow and many clients
def test_slow_and_silent_clients_are_dropped(tmp_path, capfd):
    """Head trickled a byte at a time, a body promised and never sent, a connection that says nothing, and a
    download the client stops reading: all dropped after the 1 s timeout; the server answers throughout."""
    size = 32 << 20  # more than the kernel's socket buffers hold, so the server has to wait for the reader
    with make_server(small_test(tmp_path / "t", media_bytes=size), timeout_s=1.0) as srv:
        silent = socket.create_connection(srv.address, timeout=5)
        no_body = socket.create_connection(srv.address, timeout=5)
        no_body.sendall(b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{")
        stall = socket.create_connection(srv.address, timeout=5)  # asks for 32 MB, reads nothing for a while
        stall.sendall(b"GET /media/110000000000.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        trickle = socket.create_connection(srv.address, timeout=5)
        t0 = time.monotonic()
        closed_after = None
        for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200:
            try:
                trickle.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - t0
                break
            time.sleep(0.05)
            assert ask(srv, request("GET", "/"))[0] == 200 if byte == ord("X") else True
        assert closed_after is not None and closed_after < 5, closed_after
        for s in (silent, no_body):
            s.settimeout(3)
            try:
                data = s.recv(200)
            except ConnectionResetError:
                data = b""
            assert data == b"" or data.startswith(b"HTTP/1.1 408"), data
        time.sleep(0.5)
        got = 0
        stall.settimeout(3)
        try:
            while chunk := stall.recv(65536):
                got += len(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        assert got < size  # the stalled download was cut off, not finished
        assert ask(srv, request("GET", "/"))[0] == 200
        for s in (silent, no_body, stall, trickle):
            s.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err, err


def test_many_concurrent_connections_bounded(folder):
    """300 clients, 100 at a time, against 32 allowed connections: each gets 200 or 503 (none hangs or is
    dropped unanswered), then the server serves normally."""
    with make_server(folder, max_connections=32) as srv:
        def one(_):
            return ask(srv, request("GET", "/static/app.js"), timeout=30)[0]

        with ThreadPoolExecutor(max_workers=100) as pool:
            statuses = list(pool.map(one, range(300), timeout=120))
        assert set(statuses) <= {200, 503}, statuses  # None would be a connection dropped unanswered or a hang
        assert ask(srv, request("GET", "/"))[0] == 200


# ------------------------------------------------------------------------------------------------ options
@pytest.mark.parametrize("value, expected", [
    ("Example.ORG:8080", ("example.org", 8080)), ("[::1]:80", ("::1", 80)), ("[::1]", ("::1", None)),
    ("host.", ("host", None)), ("a:b", ("", None)), ("[x]:1", ("", None)), ("h:123456", ("", None)),
    ("[::1]x", ("", None)),
])
def test_split_host(value, expected):
    assert split_host(value) == expected


def test_public_origin_normalised_and_checked():
    assert public_origin("HTTPS://Listen.Example.org:443/") == "https://listen.example.org"
    assert public_origin("http://10.0.0.2:8080") == "http://10.0.0.2:8080"
    for bad in ("ftp://x", "https://x/listen", "https://u:p@x", "listen.example.org", "https://", "https://x:99999"):
        with pytest.raises(ConfigError):
            public_origin(bad)


@pytest.mark.parametrize("flags", [["--public-url", "ftp://x"], ["--allowed-host", "a/b"], ["--allowed-host", ""],
                                   ["--max-body", "10"], ["--timeout", "0"], ["--timeout", "nan"],
                                   ["--max-connections", "0"], ["--port", "70000"], ["--host", "no.such.host.invalid"]])
def test_listen_cli_refuses_bad_options_in_one_line(folder, flags, capsys):
    assert cli.main(["listen", str(folder), "--port", "0", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vitmusic listen: error:"), err


def test_options_defaults_are_safe():
    opts = ServeOptions()
    assert opts.host == "127.0.0.1" and opts.max_body_bytes == 65536 and opts.timeout_s == 10.0
    assert not opts.host_allowed("evil.example") and opts.host_allowed("127.0.0.1")
