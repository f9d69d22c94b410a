"""End to end in headless Chromium: a scripted participant completes the listening test in the real page.

Needs Debian's ``chromium`` + ``chromium-driver`` (scripts/setup.sh installs them) and selenium (dev extras).
"""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from listening_helpers import SR, make_inputs, tokens

from vitmusic import cli
from vitmusic.listening.server import make_server
from vitmusic.listening.store import DB_NAME

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver; "
                              "scripts/setup.sh does it)"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--mute-audio",
         # names that lead to this machine, as DNS would: one the server is told to accept, one it is not
         "--host-resolver-rules=MAP listen.test 127.0.0.1, MAP rebind.test 127.0.0.1",
         "--ignore-certificate-errors")  # the TLS proxy test uses a self-signed certificate


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to see Content-Security-Policy reports
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def build(tmp_path, design: str, **options) -> tuple:
    systems = ("sysA",) if design == "mushra" else ("sysA", "sysB")
    inputs = make_inputs(tmp_path / "in", items=("piece1", "piece2"), systems=systems)
    out = tmp_path / "out"
    argv = ["stimuli", "--videos", str(inputs["videos"]), "--ref", str(inputs["ref"]), "--out", str(out),
            "--design", design, "--participants", "2", "--excerpt-seconds", "2", "--sample-rate", str(SR),
            "--quiet"]
    for name, folder in inputs["systems"].items():
        argv += ["--system", f"{name}={folder}"]
    assert cli.main(argv) == 0
    server = make_server(out, "127.0.0.1", 0, **options).start()
    return out, server, server.url


def csp_violations(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def wait(driver, condition, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def login(driver, url: str, participant: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    box = wait(driver, lambda d: d.find_element(By.ID, "participant"))
    box.clear()
    box.send_keys(participant)
    driver.find_element(By.ID, "start").click()
    wait(driver, lambda d: d.find_element(By.ID, "trial").is_displayed() or d.find_element(By.ID, "done").is_displayed())


def current_trial(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "trial-title").get_attribute("data-trial")


def answer_trials(driver, design: str, expected_trials: int) -> dict[tuple[int, str], float]:
    """Answer every trial in the page; returns what was set: (trial, stimulus_id) -> value."""
    from selenium.webdriver.common.by import By

    given: dict[tuple[int, str], float] = {}
    for k in range(expected_trials):
        trial = int(current_trial(driver))
        cards = driver.find_elements(By.CSS_SELECTOR, "#stimuli .stimulus")
        submit = driver.find_element(By.ID, "submit")
        assert not submit.is_enabled()  # nothing answered yet
        for j, card in enumerate(cards):
            sid = card.get_attribute("data-stimulus-id")
            assert card.find_element(By.TAG_NAME, "video").get_attribute("src").endswith(f"/media/{sid}.mp4")
            if design == "mushra":
                value = (17 * (k + 1) + 23 * j) % 101
                slider = card.find_element(By.CSS_SELECTOR, "input.rating")
                # what a drag does: set the value, fire the input event the page listens to
                driver.execute_script(
                    "arguments[0].value = arguments[1];"
                    "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", slider, value)
                given[(trial, sid)] = float(value)
            else:
                given[(trial, sid)] = 1.0 if j == k % 2 else 0.0
                if j == k % 2:
                    card.find_element(By.CSS_SELECTOR, "input.choice").click()
        assert submit.is_enabled()
        submit.click()
        if k + 1 < expected_trials:
            wait(driver, lambda d, t=trial: current_trial(d) != str(t))
    wait(driver, lambda d: d.find_element(By.ID, "done").is_displayed())
    return given


def stored(out, participant: str) -> dict[tuple[int, str], float]:
    con = sqlite3.connect(out / DB_NAME)
    rows = con.execute("SELECT trial, stimulus_id, value FROM responses WHERE participant = ?", (participant,))
    return {(int(t), sid): float(v) for t, sid, v in rows.fetchall()}


@pytest.mark.parametrize("design", ["mushra", "ab"])
def test_scripted_participant_completes_the_test(browser, tmp_path, design):
    from selenium.webdriver.common.by import By

    out, server, url = build(tmp_path, design)
    try:
        n_trials = 2  # 2 items x (one MUSHRA trial, or one A/B pair)
        login(browser, url, tokens(out)["P01"])
        assert browser.find_element(By.ID, "trial").is_displayed()
        if design == "mushra":
            ref = browser.find_element(By.ID, "reference")
            assert ref.is_displayed() and "/media/" in ref.get_attribute("src")
            assert len(browser.find_elements(By.CSS_SELECTOR, "#stimuli .stimulus")) == 3  # sysA + hidden ref + anchor
        # the served mp4s really load in the browser (H.264/AAC over Range requests): metadata, 2 s, no error
        state = "return [...document.querySelectorAll('#stimuli video, video#reference[src]')].map(v => [v.readyState, v.error, v.duration])"
        wait(browser, lambda d: all(r >= 1 for r, _, _ in d.execute_script(state)))
        assert all(e is None and abs(dur - 2.0) < 0.05 for _, e, dur in browser.execute_script(state))
        given = answer_trials(browser, design, n_trials)
        assert stored(out, "P01") == given
        # a returning participant who has finished lands on the thank-you page
        login(browser, url, tokens(out)["P01"])
        assert browser.find_element(By.ID, "done").is_displayed()
        # an unknown id is refused on the page
        browser.get(url)
        box = wait(browser, lambda d: d.find_element(By.ID, "participant"))
        box.send_keys("P03")  # an id is not a login: only the tokens are
        browser.find_element(By.ID, "start").click()
        msg = browser.find_element(By.ID, "message")
        wait(browser, lambda d: msg.is_displayed())
        assert "unknown participant" in msg.text
        assert csp_violations(browser) == []  # the page works under its Content-Security-Policy
    finally:
        server.stop()


def test_participant_resumes_at_first_unanswered_trial(browser, tmp_path):
    from selenium.webdriver.common.by import By

    out, server, url = build(tmp_path, "mushra")
    try:
        login(browser, url, tokens(out)["P02"])
        first = current_trial(browser)
        for card in browser.find_elements(By.CSS_SELECTOR, "#stimuli .stimulus"):
            slider = card.find_element(By.CSS_SELECTOR, "input.rating")
            browser.execute_script("arguments[0].value = 64;"
                                   "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", slider)
        browser.find_element(By.ID, "submit").click()
        wait(browser, lambda d: current_trial(d) != first)
        second = current_trial(browser)
        # the participant closes the page and comes back later
        browser.get("about:blank")
        login(browser, url, tokens(out)["P02"])
        assert current_trial(browser) == second
        assert set(stored(out, "P02").values()) == {64.0}
    finally:
        server.stop()


def test_named_host_works_and_a_rebound_name_is_refused(browser, tmp_path):
    """A participant at http://listen.test:PORT/ (allowed with --allowed-host) completes the test: Chromium's
    own Origin header passes the check. The same server reached as rebind.test (a DNS-rebinding attacker's
    name resolving here) answers nothing but an error: neither the page nor a session."""
    from selenium.webdriver.common.by import By

    out, server, url = build(tmp_path, "mushra", allowed_hosts=("listen.test",))
    port = server.address[1]
    tok = tokens(out)["P01"]
    try:
        login(browser, f"http://listen.test:{port}/", tok)
        given = answer_trials(browser, "mushra", 2)
        assert stored(out, "P01") == given
        for path in ("/", f"/api/session?participant={tok}", "/static/app.js"):
            browser.get(f"http://rebind.test:{port}{path}")
            page = browser.find_element(By.TAG_NAME, "body").text
            assert "does not answer for that host name" in page and "trials" not in page, (path, page)
        assert browser.find_elements(By.ID, "participant") == []
        assert csp_violations(browser) == []
    finally:
        server.stop()


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "checks-off"])
def test_foreign_page_cannot_submit_ratings(browser, tmp_path, monkeypatch, guarded):
    """The attack of issue 21: a page on another origin that a participant visits POSTs a valid submission in
    their name (a text/plain form shaped into JSON, an urlencoded form, a no-cors fetch, a JSON fetch). With the
    checks every one is refused and nothing is stored; with the Host/Origin/Content-Type checks switched off
    (the control) the same page does store ratings, so the probe is a real attack."""
    import http.server
    import json
    import logging
    import threading
    import time

    from vitmusic.listening.access import ServeOptions
    from vitmusic.listening.api import ListeningTest

    if not guarded:
        monkeypatch.setattr(ServeOptions, "refusal", lambda self, method, headers: None)
    out, server, url = build(tmp_path, "mushra", verbose=True)  # verbose: the access log shows the answers
    tok = tokens(out)["P01"]
    target = f"{url}api/submit"
    first = ListeningTest(out).session(tok)["trials"][0]
    payload = json.dumps({"participant": tok, "trial": first["trial"],
                          "values": {s["stimulus_id"]: 50 for s in first["stimuli"]}})
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "index.html").write_text(f"""<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="plain" method="POST" action="{target}" enctype="text/plain" target="sink1">
  <input name='{payload[:-1]}, "x": "' value='"}}'></form>
<form id="urlenc" method="POST" action="{target}" target="sink2"><input name="participant" value="{tok}"></form>
<script>
  document.getElementById("plain").submit();
  document.getElementById("urlenc").submit();
  fetch("{target}", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
                      body: '{payload}'}}).catch(() => {{}});
  fetch("{target}", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                      body: '{payload}'}}).catch(() => {{}});
</script></body></html>""")
    handler = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    evil_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(evil)))
    threading.Thread(target=evil_server.serve_forever, daemon=True).start()
    try:
        seen: list[str] = []
        recorder = logging.Handler()
        recorder.emit = lambda record: seen.append(record.getMessage()) if "/api/submit" in record.getMessage() else None
        access = logging.getLogger("vitmusic.listening.server")
        access.addHandler(recorder)
        try:
            browser.get(f"http://localhost:{evil_server.server_address[1]}/index.html")
            deadline = time.monotonic() + 20
            while len([m for m in seen if '"POST' in m]) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # anything more that would arrive
        finally:
            access.removeHandler(recorder)
        post_statuses = sorted(m.rsplit(" ", 1)[-1] for m in seen if '"POST' in m)
        # the JSON fetch dies at its CORS preflight (OPTIONS: 405, no CORS grant), so its POST is never sent
        assert any('"OPTIONS /api/submit' in m and m.endswith(" 405") for m in seen), seen
        if guarded:  # both forms and the no-cors fetch arrive and are refused as cross-site
            assert post_statuses == ["403", "403", "403"], seen
            assert stored(out, "P01") == {}
        else:  # the JSON-shaped text/plain form and the no-cors fetch are stored, the urlencoded form is not JSON
            assert post_statuses == ["200", "200", "400"], seen
            assert set(stored(out, "P01").values()) == {50.0}
    finally:
        evil_server.shutdown()
        evil_server.server_close()
        server.stop()


NGINX = shutil.which("nginx")
OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(NGINX is None or OPENSSL is None,
                    reason="nginx and openssl are not installed (apt-get install nginx-light openssl)")
def test_participant_behind_nginx_with_tls(browser, tmp_path):
    """The deployment eval/listening/README.md describes: nginx terminates TLS for listen.test and proxies to
    ``vitmusic listen --public-url https://listen.test:PORT`` on 127.0.0.1. A participant completes the test
    over HTTPS (the media load through the proxy with Range requests; the Origin check passes), and a foreign
    name sent through the same proxy still gets nothing."""
    import os
    import socket
    import subprocess
    import time

    from selenium.webdriver.common.by import By

    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=listen.test", "-addext", "subjectAltName=DNS:listen.test"],
                   check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tls_port = s.getsockname()[1]
    out, server, url = build(tmp_path, "mushra", public_url=f"https://listen.test:{tls_port}")
    app_port = server.address[1]
    ngx = tmp_path / "nginx"
    ngx.mkdir()
    user = "user root;" if os.geteuid() == 0 else ""  # workers must read this test's private temp folder
    (ngx / "nginx.conf").write_text(f"""{user}
worker_processes 1;
pid {ngx}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {ngx}/body;
    proxy_temp_path {ngx}/proxy;
    fastcgi_temp_path {ngx}/fastcgi;
    uwsgi_temp_path {ngx}/uwsgi;
    scgi_temp_path {ngx}/scgi;
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        server_name listen.test;
        ssl_certificate     {crt};
        ssl_certificate_key {key};
        client_max_body_size 64k;
        client_header_timeout 10s;
        client_body_timeout 10s;
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
""")
    proxy = subprocess.Popen([NGINX, "-p", str(ngx), "-c", str(ngx / "nginx.conf"), "-e", str(ngx / "error.log"),
                              "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:  # until nginx listens
            try:
                socket.create_connection(("127.0.0.1", tls_port), timeout=1).close()
                break
            except OSError:
                assert proxy.poll() is None and time.monotonic() < deadline, proxy.stderr.read().decode()
                time.sleep(0.1)
        tok = tokens(out)["P01"]
        login(browser, f"https://listen.test:{tls_port}/", tok)
        state = "return [...document.querySelectorAll('#stimuli video, video#reference[src]')].map(v => [v.readyState, v.error])"
        wait(browser, lambda d: all(r >= 1 for r, _ in d.execute_script(state)))
        assert all(e is None for _, e in browser.execute_script(state))
        given = answer_trials(browser, "mushra", 2)
        assert stored(out, "P01") == given
        browser.get(f"https://rebind.test:{tls_port}/api/session?participant={tok}")
        page = browser.find_element(By.TAG_NAME, "body").text
        assert "does not answer for that host name" in page and "trials" not in page, page
        assert csp_violations(browser) == []
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        server.stop()
