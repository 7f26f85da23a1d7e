"""The console in a real browser: Debian's Chromium driven by Selenium against a real `imhook console`,
over a recording made by real signed callbacks sent to a real gunicorn-served imhook.

Skips with the reason when Chromium, its driver or Selenium is missing, but fails under CI=true
(.ci/run installs `chromium` and `chromium-driver`). Selenium is pointed at Debian's binaries, so
Selenium Manager downloads nothing. With IMHOOK_CONSOLE_SCREENSHOTS=DIR the screenshots of the
main pages (laptop and phone widths) are also written there: that is how docs/console/*.png are
made (`IMHOOK_CONSOLE_SCREENSHOTS=docs/console pytest tests/test_console_browser.py`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .consolekit import PASSWORD
from .helpers import APP_ID, ROOT, TOKEN, free_port

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
LAPTOP, PHONE = (1280, 860), (390, 844)
WAIT = 20  # seconds for anything the page should come to show

pytestmark = pytest.mark.integration


def _browser_problem() -> str | None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return f"no {CHROMIUM} / {CHROMEDRIVER}: apt-get install chromium chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    return None


@pytest.fixture
def browser(tmp_path):
    problem = _browser_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires a browser: {problem}")
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(*LAPTOP)
    yield driver
    driver.quit()


RULES = """
  - {use: sensitive_words, name: bad_words, config: {words: [badword], action: refuse}}
  - {use: sensitive_words, name: soften, config: {words: [darn], action: mask}}
"""


def _config(tmp_path: Path) -> str:
    return (f"app_id: {APP_ID}\n"
            f"recording: {{path: {tmp_path / 'rec.sqlite'}, journal: false, flush_interval_seconds: 0.1}}\n"
            f"rules:{RULES}")


def _send(server, text: str, user: str) -> None:
    from receiver.client import callback_query, post_callback

    body = {"CallbackCommand": "C2C.CallbackBeforeSendMsg", "From_Account": user, "To_Account": "support",
            "MsgRandom": 1, "MsgSeq": 1, "MsgTime": int(time.time()),
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]}
    result = post_callback(server.callback_url, body, app_id=APP_ID,
                           query=callback_query("C2C.CallbackBeforeSendMsg", APP_ID, token=TOKEN))
    assert result.status == 200, result


@pytest.fixture
def console_process(tmp_path):
    """Start a real `imhook console` on a loopback port over a config file (the receiver's)."""
    from receiver.console.auth import hash_password

    started = []

    def start(config: Path) -> str:
        port = free_port()
        env = {**os.environ, "IMHOOK_CONFIG": str(config), "IMHOOK_APP_ID": APP_ID,
               "IMHOOK_CONSOLE_PASSWORD_HASH": hash_password(PASSWORD),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        log_path = tmp_path / "console.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "receiver.cli", "console", "--bind",
                                        f"127.0.0.1:{port}"], cwd=tmp_path, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            try:
                if requests.get(url + "/login", timeout=1).status_code == 200:
                    return url
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"imhook console did not answer in 30 s:\n{log_path.read_text()}")

    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition, message=f"the page did not show {what} in {WAIT} s")


def test_a_refusal_seen_live_searched_opened_and_tried_in_the_playground(serve, tmp_path, browser, console_process):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as seen

    server = serve(_config(tmp_path), workers=1)
    for i, (text, user) in enumerate([("good morning team", "alice"), ("lunch at noon?", "bob"),
                                      ("the darn printer again", "carol"), ("see you tomorrow", "alice"),
                                      ("thanks a lot", "dave"), ("meeting moved to 3pm", "bob")]):
        _send(server, text, user)
    url, shots = console_process(tmp_path / "imhook.yaml"), _Screenshots(browser, tmp_path)

    # Log in, and watch a refusal arrive on the live page.
    browser.get(url + "/live")
    _wait(browser, seen.presence_of_element_located((By.ID, "password")), "the login form")
    shots.take("login")
    browser.find_element(By.ID, "password").send_keys(PASSWORD, Keys.ENTER)
    _wait(browser, seen.title_contains("Live"), "the live page")
    _wait(browser, seen.text_to_be_present_in_element((By.ID, "feed"), "meeting moved"), "the recorded messages")
    _send(server, "buy cheap badword now", "mallory")
    _wait(browser, seen.text_to_be_present_in_element((By.ID, "feed"), "buy cheap badword"), "the refusal, live")
    row = browser.find_element(By.XPATH, "//tr[contains(., 'buy cheap badword')]")
    assert "refuse" in row.text and "bad_words" in row.text and "mallory" in row.text
    shots.take("live")

    # Search it by its text, and open it.
    browser.find_element(By.LINK_TEXT, "Recordings").click()
    text_box = _wait(browser, seen.presence_of_element_located((By.NAME, "text")), "the search form")
    text_box.send_keys("badword", Keys.ENTER)
    # The unfiltered list holds that row too: wait for the search's own page before reading rows.
    _wait(browser, seen.url_contains("text=badword"), "the search's page")
    _wait(browser, seen.presence_of_element_located((By.XPATH, "//tr[contains(., 'buy cheap badword')]")),
          "the search result")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.records tbody tr")) == 1
    shots.take("search")
    browser.find_element(By.CSS_SELECTOR, "table.records tbody tr a").click()
    _wait(browser, seen.title_contains("#"), "the record page")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "bad_words" in page and "Trace" in page and "buy cheap badword" in page and "Sign" not in page
    shots.take("record")

    # Edit the rule in the playground: the decision changes, the running rules do not.
    browser.find_element(By.LINK_TEXT, "Try in the playground").click()
    _wait(browser, seen.text_to_be_present_in_element((By.ID, "tried-outcome"), "refuse"), "the decision")
    rules = browser.find_element(By.ID, "rules")
    rules.clear()
    rules.send_keys("rules:\n- {use: sensitive_words, name: bad_words, config: {words: [spam], action: refuse}}\n")
    _wait(browser, seen.text_to_be_present_in_element((By.ID, "tried-outcome"), "allow"), "the new decision")
    assert "changed" in browser.find_element(By.ID, "tried").text
    shots.take("playground")
    browser.find_element(By.XPATH, "//button[.='Replay']").click()
    _wait(browser, seen.presence_of_element_located((By.ID, "replay-changed")), "the replay report")
    # Changed: the refusal (now allowed) and the masked "darn" (the edited rules have no `soften`).
    assert browser.find_element(By.ID, "replay-changed").text == "2"
    _send(server, "more badword", "mallory")  # the receiver still refuses it: its rules are untouched
    assert server.url  # (the reply's outcome is checked through the live page below)

    # Phone width: the same pages stack.
    browser.set_window_size(*PHONE)
    browser.get(url + "/live")
    _wait(browser, seen.text_to_be_present_in_element((By.ID, "feed"), "more badword"), "the new refusal")
    assert "refuse" in browser.find_element(By.XPATH, "//tr[contains(., 'more badword')]").text
    shots.take("live-phone")
    browser.get(browser.current_url.replace("/live", "/search?text=badword"))
    browser.find_element(By.CSS_SELECTOR, "table.records tbody tr a").click()
    _wait(browser, seen.title_contains("#"), "the record page")
    shots.take("record-phone")
    browser.set_window_size(*LAPTOP)

    # Log out; a wrong password does not get back in.
    browser.get(url + "/live")
    browser.find_element(By.XPATH, "//button[.='Log out']").click()
    _wait(browser, seen.presence_of_element_located((By.ID, "password")), "the login form")
    browser.find_element(By.ID, "password").send_keys("not the password", Keys.ENTER)
    _wait(browser, seen.text_to_be_present_in_element((By.CSS_SELECTOR, ".error"), "Wrong password"),
          "the refusal of a wrong password")
    browser.get(url + "/live")
    assert browser.find_elements(By.ID, "password"), "a wrong password must not open the console"
    shots.check()


class _Screenshots:
    """PNGs of the pages, in the test's folder and (IMHOOK_CONSOLE_SCREENSHOTS) the docs' folder."""

    def __init__(self, driver, tmp_path: Path):
        self.driver, self.folder = driver, tmp_path / "screenshots"
        self.folder.mkdir()
        self.extra = Path(os.environ["IMHOOK_CONSOLE_SCREENSHOTS"]) if os.environ.get("IMHOOK_CONSOLE_SCREENSHOTS") else None
        self.taken: list[Path] = []

    def take(self, name: str) -> None:
        path = self.folder / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.taken.append(path)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.extra / path.name)

    def check(self) -> None:
        for path in self.taken:
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
