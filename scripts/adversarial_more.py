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
    """Hostile HTTP against a listening test on 127.0.0.1 (a manifest-only test folder with tokens)."""
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
    os.symlink(root / "private" / "answer_key.csv", root / "public" / "media" / "escape.mp4")
    sys.path.insert(0, str(REPO / "tests"))
    from listening_helpers import http_exchange

    from vitmusic.listening.server import make_server

    state: dict = {}

    def start():
        srv = make_server(root, "127.0.0.1", 0)
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        state.update(srv=srv, thread=thread, addr=srv.server_address[:2])

    def raw(data: bytes, timeout: float = 15.0) -> bytes:
        return http_exchange(state["addr"], data, timeout)

    def post(body: bytes, headers: str = "") -> bytes:
        return (f"POST /api/submit HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}"
                "Connection: close\r\n\r\n").encode() + body

    def get(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()

    def expect_status(name: str, request: bytes, statuses: tuple[int, ...], forbid: bytes = b"SECRET") -> Case:
        def fn():
            answer = raw(request)
            status = int(answer[9:12]) if answer.startswith(b"HTTP/1.") else None
            if status not in statuses:
                raise AssertionError(f"status {status}, expected {statuses}: {answer[:80]!r}")
            if forbid in answer:
                raise AssertionError("the answer leaks the answer key")
            if not raw(get("/")).startswith(b"HTTP/1.1 200"):
                raise AssertionError("server no longer answers")
        return Case(f"listen: {name}", fn=fn, group="server", expect="ok", timeout_s=40)

    tok = b"tokA1234567890abcdefgh"
    good_values = b'{"110000000000":50,"120000000000":50}'
    cases = [Case("listen: start the server", fn=start, group="server", expect="ok")]
    bodies = [
        ("100k-deep JSON array", b"[" * 100_000 + b"]" * 100_000),
        ("50k-deep JSON object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
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
    ]
    for name, body in bodies:
        cases.append(expect_status(name, post(body), (400, 404)))
    cases.append(expect_status("body over 1 MiB", post(b" " * ((1 << 20) + 10)), (400,)))
    cases.append(expect_status("Content-Length -5", b"POST /api/submit HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n"
                               b"Connection: close\r\n\r\n", (400,)))
    cases.append(expect_status("Content-Length abc", b"POST /api/submit HTTP/1.1\r\nHost: x\r\nContent-Length: abc"
                               b"\r\nConnection: close\r\n\r\n", (400,)))
    cases.append(expect_status("no Content-Length", b"POST /api/submit HTTP/1.1\r\nHost: x\r\nConnection: close"
                               b"\r\n\r\n", (400,)))
    cases.append(expect_status("a good submission", post(b'{"participant":"' + tok + b'","trial":1,"values":'
                                                         + good_values + b"}"), (200,)))
    for path in ["/media/../private/answer_key.csv", "/media/%2e%2e/private/answer_key.csv",
                 "/media/..%2fprivate%2fanswer_key.csv", "/media/escape.mp4", "/media/%00.mp4",
                 "/media//etc/passwd", "/private/answer_key.csv", "/public/manifest.csv",
                 "/api/session?participant=P01", "/api/session?participant=p02",
                 "/api/session?participant=../private", "/api/session", "/static/../private/answer_key.csv",
                 "/api/session?participant=" + "A" * 5000]:
        cases.append(expect_status(f"GET {path[:60]}", get(path), (403, 404)))
    cases.append(expect_status("GET with a 70000-byte header line", b"GET / HTTP/1.1\r\nX: " + b"a" * 70000
                               + b"\r\n\r\n", (400, 431)))
    # stdlib answers a request line it cannot parse HTTP/0.9-style (an error page without a status line)
    cases.append(expect_status("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                               (400, None)))
    cases.append(expect_status("duplicate keys (the last wins, as in JSON parsers generally)",
                               post(b'{"participant":"x","participant":"' + tok + b'","trial":1,"values":'
                                    + good_values + b"}"), (200,)))
    cases.append(expect_status("Range 5-2", b"GET /media/110000000000.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=5-2"
                               b"\r\nConnection: close\r\n\r\n", (416,)))
    cases.append(expect_status("Range of 400 digits", b"GET /media/110000000000.mp4 HTTP/1.1\r\nHost: x\r\n"
                               b"Range: bytes=" + b"9" * 400 + b"-\r\nConnection: close\r\n\r\n", (416,)))

    def slow_loris():
        socks = []
        for _ in range(150):
            s = socket.create_connection(state["addr"], timeout=5)
            s.sendall(b"POST /api/submit HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            socks.append(s)
        time.sleep(0.5)
        held = threading.active_count()
        if held > 140:
            raise AssertionError(f"{held} threads for 150 silent clients")
        t = time.perf_counter()
        ok = False
        while time.perf_counter() - t < 30 and not ok:  # the timeout frees the slots
            try:
                ok = raw(get("/"), timeout=3).startswith(b"HTTP/1.1 200")
            except OSError:
                time.sleep(0.5)
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        if not ok:
            raise AssertionError("server did not recover from the silent clients")

    cases.append(Case("listen: 150 clients promise a body and never send it", fn=slow_loris, group="server",
                      expect="ok", timeout_s=60))

    def dropped_downloads():
        for _ in range(20):
            s = socket.create_connection(state["addr"], timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            s.sendall(get("/media/110000000000.mp4"))
            s.recv(10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        time.sleep(0.5)
        if not raw(get("/")).startswith(b"HTTP/1.1 200"):
            raise AssertionError("server no longer answers")

    cases.append(Case("listen: 20 media downloads dropped halfway (BrokenPipe)", fn=dropped_downloads,
                      group="server", expect="ok", timeout_s=60))

    def stop():
        state["srv"].shutdown()
        state["srv"].server_close()
        state["thread"].join(timeout=10)

    cases.append(Case("listen: stop the server", fn=stop, group="server", expect="ok"))
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
