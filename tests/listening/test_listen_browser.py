"""End to end in headless Chromium: a scripted participant completes the listening test in the real page.

Needs Debian's ``chromium`` + ``chromium-driver`` (scripts/setup.sh installs them) and selenium (dev extras).
"""

from __future__ import annotations

import shutil
import sqlite3
import threading

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
         "--disable-dev-shm-usage", "--mute-audio")


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def build(tmp_path, design: str) -> tuple:
    systems = ("sysA",) if design == "mushra" else ("sysA", "sysB")
    inputs = make_inputs(tmp_path / "in", items=("piece1", "piece2"), systems=systems)
    out = tmp_path / "out"
    argv = ["stimuli", "--videos", str(inputs["videos"]), "--ref", str(inputs["ref"]), "--out", str(out),
            "--design", design, "--participants", "2", "--excerpt-seconds", "2", "--sample-rate", str(SR),
            "--quiet"]
    for name, folder in inputs["systems"].items():
        argv += ["--system", f"{name}={folder}"]
    assert cli.main(argv) == 0
    server = make_server(out, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    return out, server, thread, f"http://{host}:{port}/"


def stop(server, thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


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

    out, server, thread, url = build(tmp_path, design)
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
    finally:
        stop(server, thread)


def test_participant_resumes_at_first_unanswered_trial(browser, tmp_path):
    from selenium.webdriver.common.by import By

    out, server, thread, url = build(tmp_path, "mushra")
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
        stop(server, thread)
