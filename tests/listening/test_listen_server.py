"""vitmusic listen: only media and app files are reachable, ratings land in SQLite (WAL), resume, concurrency."""

from __future__ import annotations

import csv
import http.client
import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from listening_helpers import SR, http_exchange, make_inputs, tokens

from vitmusic import cli
from vitmusic.errors import DataError
from vitmusic.listening.api import ListeningTest
from vitmusic.listening.server import make_server
from vitmusic.listening.store import DB_NAME


class Client:
    """Raw HTTP against the running server (http.client sends the path exactly as given, no normalising)."""

    def __init__(self, address):
        self.host, self.port = address[:2]

    def request(self, method: str, path: str, body: object = None, headers: dict | None = None):
        con = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            data = None if body is None else json.dumps(body).encode()
            hdrs = dict(headers or {})
            if data is not None:
                hdrs["Content-Type"] = "application/json"
            con.request(method, path, body=data, headers=hdrs)
            res = con.getresponse()
            headers = {k.lower(): v for k, v in res.getheaders()}
            try:
                body_read = res.read()
            except ConnectionResetError:
                # a server that refuses a request closes the connection with the request body unread: the
                # kernel may then reset it before the client has read the response body (status and headers
                # have arrived); only a response that says it closes may end that way
                if headers.get("connection") != "close":
                    raise
                body_read = b""
            return res.status, body_read, headers
        finally:
            con.close()

    def json(self, method: str, path: str, body: object = None):
        status, data, _ = self.request(method, path, body)
        return status, json.loads(data)


def running(root: Path, **options):
    return make_server(root, "127.0.0.1", 0, **options).start()


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    root = tmp_path_factory.mktemp("listen")
    inputs = make_inputs(root / "in", items=("piece1", "piece2"), systems=("sysA",))
    out = root / "out"
    assert cli.main(["stimuli", "--videos", str(inputs["videos"]), "--ref", str(inputs["ref"]),
                     "--system", f"sysA={inputs['systems']['sysA']}", "--out", str(out), "--participants", "3",
                     "--excerpt-seconds", "2", "--sample-rate", str(SR), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def server(stimuli):
    with make_server(stimuli, "127.0.0.1", 0) as srv:
        yield Client(srv.address)


def manifest_rows(out: Path) -> list[dict]:
    with (out / "public" / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_page_static_and_media_served(server, stimuli):
    status, body, headers = server.request("GET", "/")
    assert status == 200 and b"Listening test" in body and headers["content-type"].startswith("text/html")
    status, body, _ = server.request("GET", "/static/app.js")
    assert status == 200 and b"/api/submit" in body
    media = sorted((stimuli / "public" / "media").iterdir())[0]
    status, body, headers = server.request("GET", f"/media/{media.name}")
    assert status == 200 and body == media.read_bytes() and headers["content-type"] == "video/mp4"
    status, body, headers = server.request("GET", f"/media/{media.name}", headers={"Range": "bytes=10-19"})
    assert status == 206 and body == media.read_bytes()[10:20]
    assert headers["content-range"] == f"bytes 10-19/{media.stat().st_size}"
    status, body, _ = server.request("GET", f"/media/{media.name}", headers={"Range": "bytes=-5"})
    assert status == 206 and body == media.read_bytes()[-5:]
    status, _, _ = server.request("GET", f"/media/{media.name}", headers={"Range": "bytes=999999999-"})
    assert status == 416


@pytest.mark.parametrize("path", [
    "/media/../private/answer_key.csv",
    "/media/../../private/answer_key.csv",
    "/media/%2e%2e/private/answer_key.csv",
    "/media/%2E%2E%2Fprivate%2Fanswer_key.csv",
    "/media/..%2f..%2fprivate%2fanswer_key.csv",
    "/media/%2e%2e%2f%2e%2e%2fprivate/answer_key.csv",
    "/media/..%5c..%5cprivate%5canswer_key.csv",
    "/media//etc/passwd",
    "/media/%2Fetc%2Fpasswd",
    "/media/%00.mp4",
    "/media/./x.mp4",
])
def test_traversal_refused_with_403(server, stimuli, path):
    status, body, _ = server.request("GET", path)
    assert status == 403, (path, status)
    assert b"stimulus_id" not in body and b"root:" not in body


@pytest.mark.parametrize("path", ["/media/escape_file.mp4", "/media/escape_dir/answer_key.csv",
                                  "/media/escape_dir/stimuli.json"])
def test_files_the_manifest_does_not_list_are_not_served(server, stimuli, path):
    """Symlinks planted in the media folder lead nowhere: only files the manifest lists are served (a listed
    file that is a symlink out of the folder gets 403: tests/listening/test_listen_security.py)."""
    media = stimuli / "public" / "media"
    if not (media / "escape_file.mp4").is_symlink():
        os.symlink(stimuli / "private" / "answer_key.csv", media / "escape_file.mp4")
        os.symlink(stimuli / "private", media / "escape_dir", target_is_directory=True)
    status, body, _ = server.request("GET", path)
    assert status == 404, (path, status)
    assert b"stimulus_id" not in body


@pytest.mark.parametrize("path", [
    "/private/answer_key.csv", "/answer_key.csv", "/public/manifest.csv", "/manifest.csv", "/test.json",
    f"/{DB_NAME}", "/static/../private/answer_key.csv", "/static/%2e%2e/private/answer_key.csv",
    "/etc/passwd", "/media/", "/media/nonexistent.mp4", "/media/manifest.csv", "/static/nope.js",
])
def test_everything_else_is_404(server, path):
    status, body, _ = server.request("GET", path)
    assert status in (403, 404), (path, status)
    assert b"stimulus_id" not in body


def test_answer_key_unreachable_anywhere(server, stimuli):
    secret = (stimuli / "private" / "answer_key.csv").read_bytes()
    for path in ["/", "/static/app.js", f"/api/session?participant={tokens(stimuli)['P01']}",
                 "/api/session?participant=../private"]:
        _, body, _ = server.request("GET", path)
        assert secret not in body
        assert b"sysA" not in body and b"piece1" not in body  # no system or item name leaks via the API


def test_wal_mode_and_resume(server, stimuli):
    assert sqlite3.connect(stimuli / DB_NAME).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tok = tokens(stimuli)["P02"]
    assert server.json("GET", "/api/session?participant=P02")[0] == 404  # ids are no logins: tokens are
    status, session = server.json("GET", f"/api/session?participant={tok}")
    assert status == 200 and session["participant"] == tok and session["next_trial"] == 1
    first = session["trials"][0]
    assert first["reference"].startswith("/media/") and len(first["stimuli"]) == 3
    values = {s["stimulus_id"]: 10.0 * (k + 1) for k, s in enumerate(first["stimuli"])}
    status, res = server.json("POST", "/api/submit", {"participant": tok, "trial": 1, "values": values})
    assert status == 200 and res == {"ok": True, "next_trial": 2}
    # a returning participant (another page load, or a restarted server) continues at the first unanswered trial
    _, again = server.json("GET", f"/api/session?participant={tok}")
    assert again["next_trial"] == 2 and again["answers"] == {"1": values}
    assert ListeningTest(stimuli).session(tok)["next_trial"] == 2
    # a re-submission replaces the earlier answers (upsert), not duplicates them
    values2 = {k: 100.0 - v for k, v in values.items()}
    assert server.json("POST", "/api/submit", {"participant": tok, "trial": 1, "values": values2})[0] == 200
    rows = sqlite3.connect(stimuli / DB_NAME).execute(
        "SELECT stimulus_id, value FROM responses WHERE participant='P02'").fetchall()
    assert dict(rows) == values2
    _, res = server.json("POST", "/api/submit", {"participant": tok, "trial": 2, "values": {
        s["stimulus_id"]: 50 for s in session["trials"][1]["stimuli"]}})
    assert res["next_trial"] is None


def test_bad_submissions_rejected(server, stimuli):
    p03 = tokens(stimuli)["P03"]
    _, session = server.json("GET", f"/api/session?participant={p03}")
    trial = session["trials"][0]
    ids = [s["stimulus_id"] for s in trial["stimuli"]]
    good = dict.fromkeys(ids, 50)
    cases = [
        ({"participant": "nobody", "trial": 1, "values": good}, 404),
        ({"participant": p03, "trial": 99, "values": good}, 400),
        ({"participant": p03, "trial": 1, "values": {**good, ids[0]: 101}}, 400),
        ({"participant": p03, "trial": 1, "values": {**good, ids[0]: "50"}}, 400),
        ({"participant": p03, "trial": 1, "values": {k: 50 for k in ids[:-1]}}, 400),
        ({"participant": p03, "trial": 1, "values": {**good, "deadbeef0000": 50}}, 400),
        ([1, 2], 400),
    ]
    for body, expected in cases:
        assert server.json("POST", "/api/submit", body)[0] == expected, body
    assert server.json("GET", "/api/session?participant=nobody")[0] == 404
    status, _, _ = server.request("POST", "/api/other", {"a": 1})
    assert status == 404
    status, _, headers = server.request("POST", "/api/submit", {"a": 1}, headers={"Content-Length": "abc"})
    assert status == 400 and headers["connection"] == "close"
    status, _, _ = server.request("POST", "/api/submit", None, headers={"Content-Type": "application/json"})
    assert status == 400  # no body at all
    assert server.request("POST", "/api/submit", None)[0] == 415  # nor a Content-Type
    assert server.json("GET", f"/api/session?participant={p03}")[1]["answers"] == {}


def test_ratings_of_another_stimulus_set_refused(stimuli, tmp_path):
    copy = tmp_path / "copy"
    (copy / "public").mkdir(parents=True)
    text = (stimuli / "public" / "manifest.csv").read_text()
    (copy / "public" / "manifest.csv").write_text(text)
    (copy / "public" / "test.json").write_text((stimuli / "public" / "test.json").read_text())
    ListeningTest(copy)
    (copy / "public" / "manifest.csv").write_text(text.replace("P01", "P99"))
    with pytest.raises(DataError, match="different stimulus set"):
        ListeningTest(copy)


def fake_test(root: Path, participants: int, trials: int, positions: int) -> Path:
    """A test folder with a manifest only (no media): enough for the API."""
    (root / "public").mkdir(parents=True)
    rows = ["participant,trial,position,stimulus_id,file"]
    for p in range(participants):
        for t in range(1, trials + 1):
            for k in range(1, positions + 1):
                sid = f"{p:04d}{t:04d}{k:04d}"
                rows.append(f"P{p:03d},{t},{k},{sid},media/{sid}.mp4")
    (root / "public" / "manifest.csv").write_text("\n".join(rows) + "\n")
    (root / "public" / "test.json").write_text(json.dumps({"design": "mushra", "scale": [0, 100]}))
    return root


def test_200_concurrent_submissions_lose_nothing(tmp_path):
    root = fake_test(tmp_path / "t", participants=100, trials=2, positions=3)
    jobs = [(f"P{p:03d}", t) for p in range(100) for t in (1, 2)]

    with running(root) as srv:
        client = Client(srv.address)

        def submit(job):
            pid, t = job
            p = int(pid[1:])
            values = {f"{p:04d}{t:04d}{k:04d}": float((p + t + k) % 101) for k in (1, 2, 3)}
            return client.json("POST", "/api/submit", {"participant": pid, "trial": t, "values": values})[0]

        with ThreadPoolExecutor(max_workers=64) as pool:
            statuses = list(pool.map(submit, jobs, timeout=120))
    assert statuses == [200] * 200
    con = sqlite3.connect(root / DB_NAME)
    assert con.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 200
    rows = con.execute("SELECT stimulus_id, value FROM responses").fetchall()
    assert len(rows) == 600
    for sid, value in rows:
        p, t, k = int(sid[:4]), int(sid[4:8]), int(sid[8:])
        assert value == float((p + t + k) % 101)


def test_listen_cli_reports_bad_folder(tmp_path, capsys):
    assert cli.main(["listen", str(tmp_path / "nope"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vitmusic listen: error:") and "stimuli folder" in err


def _post(body: bytes) -> bytes:
    return (b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body


def test_hostile_bodies_get_400_not_a_crash(stimuli, capfd):
    tok = tokens(stimuli)["P01"].encode()
    bodies = [
        b"[" * 20_000 + b"]" * 20_000,  # RecursionError in json.loads before
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"participant":"' + tok + b'","trial":1,"values":{"x":' + b"9" * 400 + b"}}",  # OverflowError before
        b'{"participant":"' + tok + b'","trial":' + b"1" * 5000 + b',"values":{}}',  # int digit limit
        b'{"participant":"' + tok + b'","trial":1,"values":{"x":NaN}}',
        b'{"participant":["' + tok + b'"],"trial":1,"values":{}}',
        b"\xff\xfe garbage",
        b"[" * 100_000 + b"]" * 100_000,  # over the body limit: 413
    ]
    with running(stimuli) as srv:
        for body in bodies:
            answer = http_exchange(srv.address, _post(body))
            assert answer.startswith(b"HTTP/1.1 4"), (body[:40], answer[:80])
            assert b"application/json" in answer.split(b"\r\n\r\n")[0]
        assert Client(srv.address).request("GET", "/")[0] == 200  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err


def test_silent_clients_time_out_and_are_bounded(stimuli, capfd):
    """Clients that promise a body and never send it are dropped after the timeout; beyond the connection
    bound new ones get 503 at once; nothing prints a traceback (BrokenPipe included)."""
    import socket
    import time

    with running(stimuli, timeout_s=1.0, max_connections=8) as srv:
        socks = []
        for _ in range(20):
            s = socket.create_connection(srv.address, timeout=5)
            s.sendall(b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{")
            socks.append(s)
        time.sleep(2.5)  # the timeout frees the connections held by silent clients
        answers = []
        for s in socks:  # each got a 503 at once, or was dropped after the timeout (408, or an abort): no hang
            s.settimeout(0.5)
            try:
                answers.append(s.recv(100)[:12])
            except ConnectionResetError:
                answers.append(b"")
        assert set(answers) <= {b"HTTP/1.1 503", b"HTTP/1.1 408", b""}, answers
        assert answers.count(b"HTTP/1.1 503") >= 12  # at most 8 were served
        assert Client(srv.address).request("GET", "/")[0] == 200
        for s in socks:  # abrupt disconnects: no BrokenPipe chains in the log
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        big = sorted((stimuli / "public" / "media").glob("*.mp4"))[0].name
        for _ in range(5):  # a media download dropped halfway
            s = socket.create_connection(srv.address, timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            s.sendall(f"GET /media/{big} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            s.recv(10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        time.sleep(0.5)
        assert Client(srv.address).request("GET", "/")[0] == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_stimuli_differ_in_bytes_and_logins_are_tokens(stimuli):
    """The hidden and the open reference sound the same but differ in size and hash; tokens are long, random."""
    import hashlib

    from vitmusic.data.video import probe_video

    key = {r["stimulus_id"]: r for r in csv.DictReader((stimuli / "private" / "answer_key.csv").open())}
    media = stimuli / "public" / "media"
    for item in {r["item"] for r in key.values()}:
        ref = [sid for sid, r in key.items() if r["item"] == item and r["system"] in ("open_reference", "hidden_reference")]
        assert len(ref) == 2, key
        a, b = (media / f"{sid}.mp4" for sid in ref)
        assert a.stat().st_size != b.stat().st_size or a.read_bytes() != b.read_bytes()
        assert hashlib.sha256(a.read_bytes()).digest() != hashlib.sha256(b.read_bytes()).digest()
        assert abs(probe_video(a).duration_s - probe_video(b).duration_s) < 1e-6
    toks = tokens(stimuli)
    assert sorted(toks) == ["P01", "P02", "P03"] and len(set(toks.values())) == 3
    assert all(len(t) >= 20 for t in toks.values())


@pytest.mark.slow
def test_kill_9_keeps_every_acknowledged_rating(tmp_path):
    """``vitmusic listen`` in its own process, 100 submissions at once, ``kill -9`` as soon as 50 are
    acknowledged: every acknowledged one is in the database with its values (a commit precedes each answer)."""
    import re
    import signal
    import subprocess
    import sys
    import threading

    import vitmusic

    root = fake_test(tmp_path / "t", participants=100, trials=1, positions=3)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(vitmusic.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "vitmusic.cli", "listen", str(root), "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        port = None
        for line in proc.stderr:
            if m := re.search(r"at http://127\.0\.0\.1:(\d+)/", line):
                port = int(m.group(1))
                break
        assert port is not None, "the server did not start"
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep its stderr drained
        client = Client(("127.0.0.1", port))
        acked: dict[str, dict[str, float]] = {}
        lock, half, start = threading.Lock(), threading.Event(), threading.Barrier(100)

        def submit(p: int) -> None:
            values = {f"{p:04d}{1:04d}{k:04d}": float((7 * p + k) % 101) for k in (1, 2, 3)}
            start.wait()
            try:
                status = client.json("POST", "/api/submit", {"participant": f"P{p:03d}", "trial": 1,
                                                             "values": values})[0]
            except (OSError, http.client.HTTPException, ValueError):
                return  # cut off by the kill: not acknowledged
            if status == 200:
                with lock:
                    acked[f"P{p:03d}"] = values
                    if len(acked) >= 50:
                        half.set()

        threads = [threading.Thread(target=submit, args=(p,)) for p in range(100)]
        for t in threads:
            t.start()
        assert half.wait(timeout=120), f"only {len(acked)} acknowledged"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        for t in threads:
            t.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    with lock:
        acknowledged = dict(acked)
    assert len(acknowledged) >= 50
    con = sqlite3.connect(root / DB_NAME)
    rows = con.execute("SELECT participant, stimulus_id, value FROM responses").fetchall()
    in_db: dict[str, dict[str, float]] = {}
    for pid, sid, value in rows:
        in_db.setdefault(pid, {})[sid] = value
    missing = [pid for pid, values in acknowledged.items() if in_db.get(pid) != values]
    assert missing == [], f"{len(missing)} acknowledged submissions lost: {missing[:5]}"
