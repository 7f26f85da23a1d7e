"""The web console through Flask's test client: login, sessions, CSRF, allow-list, secrets, privacy,
search filters, the playground. (The real browser drives it in test_console_browser.py.)"""

from __future__ import annotations

import sqlite3
import time

import pytest
from click.testing import CliRunner

from .consolekit import PASSWORD, SIGN, console_app, csrf_of, log_in, message, record_callbacks


@pytest.fixture
def recorded(tmp_path):
    now = time.time()
    record_callbacks(tmp_path / "rec.sqlite", [message("hello there", user="alice"),
                                               message("you badword", user="mallory"),
                                               message("lunch at noon", user="bob")], keep_sign=True, when=now - 30)
    return tmp_path


@pytest.fixture
def client(recorded):
    client = console_app(recorded).test_client()
    assert log_in(client).status_code == 302
    return client


# --- login and sessions --------------------------------------------------------------------------------


def test_every_page_needs_a_login_and_an_htmx_fragment_is_sent_to_the_login_page(recorded):
    client = console_app(recorded).test_client()
    for path in ("/live", "/live/feed", "/search", "/record/1", "/playground"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    fragment = client.get("/live/feed", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"].endswith("/login")


def test_a_wrong_password_is_refused_and_the_right_one_opens_a_session(recorded):
    client = console_app(recorded).test_client()
    wrong = log_in(client, "not the password")
    assert wrong.status_code == 401 and "Wrong password" in wrong.text
    assert client.get("/live").status_code == 302
    right = log_in(client)
    assert right.status_code == 302 and right.headers["Location"].endswith("/live")
    assert client.get("/live").status_code == 200


def test_the_session_cookie_is_http_only_samesite_and_secure_unless_loopback_over_http(recorded):
    app = console_app(recorded)
    local = log_in(app.test_client()).headers["Set-Cookie"]
    assert "HttpOnly" in local and "SameSite=Lax" in local and "Secure" not in local
    remote = log_in(app.test_client(), environ_base={"REMOTE_ADDR": "10.1.2.3"}).headers["Set-Cookie"]
    assert "Secure" in remote
    https = log_in(app.test_client(), base_url="https://localhost").headers["Set-Cookie"]
    assert "Secure" in https
    forced = console_app(recorded, console="secure_cookie: true")
    assert "Secure" in log_in(forced.test_client()).headers["Set-Cookie"]


def test_a_session_expires_after_session_hours(recorded, monkeypatch):
    client = console_app(recorded, console="session_hours: 1").test_client()
    log_in(client)
    assert client.get("/live").status_code == 200
    later = time.time() + 3601
    monkeypatch.setattr("receiver.console.auth.time.time", lambda: later)
    assert client.get("/live").status_code == 302


def test_logging_out_ends_the_session(client):
    token = csrf_of(client.get("/live").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/live").status_code == 302


def test_wrong_passwords_make_the_next_tries_wait_even_with_the_right_password(recorded):
    client = console_app(recorded, console="login_attempts: 2").test_client()
    assert [log_in(client, "x").status_code for _ in range(2)] == [401, 401]
    blocked = log_in(client)
    assert blocked.status_code == 429 and "try again in" in blocked.text
    other = console_app(recorded, console="login_attempts: 2")  # another client address is not held up
    assert log_in(other.test_client(), environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 302


def test_the_login_backoff_doubles_and_a_success_forgets_it():
    from receiver.console.auth import LOCKOUT_MAX_SECONDS, LoginLimiter

    now = [1000.0]
    limiter = LoginLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.wait_seconds("a") == 0
        limiter.failed("a")
    assert limiter.wait_seconds("a") == 1.0
    limiter.failed("a")
    assert limiter.wait_seconds("a") == 2.0
    now[0] += 2.0
    assert limiter.wait_seconds("a") == 0
    for _ in range(40):
        limiter.failed("a")
    assert limiter.wait_seconds("a") == LOCKOUT_MAX_SECONDS
    limiter.succeeded("a")
    assert limiter.wait_seconds("a") == 0


def test_next_after_login_stays_on_this_site(recorded):
    client = console_app(recorded).test_client()
    token = csrf_of(client.get("/login").text)
    response = client.post("/login?next=//evil.example/x", data={"password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/live"


# --- CSRF ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/logout", "/playground/try", "/playground/replay"])
def test_a_post_without_the_sessions_csrf_token_is_refused(client, path):
    assert client.post(path, data={"password": PASSWORD, "rules": "rules: []"}).status_code == 400
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert client.post(path, headers={"X-CSRF-Token": "forged"}).status_code == 400


def test_htmx_posts_carry_the_token_in_a_header(client):
    token = csrf_of(client.get("/playground").text)
    response = client.post("/playground/try", data={"rules": "rules: []", "body": "{}"},
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 200


# --- the IP allow-list ---------------------------------------------------------------------------------


def test_the_console_allow_list_refuses_other_addresses(recorded):
    app = console_app(recorded, console="allow_ips: [10.0.0.0/8]")
    assert app.test_client().get("/login").status_code == 403
    inside = app.test_client().get("/login", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert inside.status_code == 200


def test_without_its_own_list_the_console_uses_server_allow_ips_and_trusted_proxies(recorded):
    from receiver.config import parse_config
    from receiver.console.app import create_console_app
    from receiver.console.auth import hash_password

    from .consolekit import config_text

    text = config_text(recorded).replace("recording:", "server: {allow_ips: [203.0.113.0/24], trusted_proxies: 1}\n"
                                                     "recording:", 1)
    env = {"IMHOOK_APP_ID": "1400000000", "IMHOOK_CONSOLE_PASSWORD_HASH": hash_password(PASSWORD)}
    app = create_console_app(parse_config(text, "imhook.yaml", env, base_dir=recorded), env=env)
    assert app.test_client().get("/login").status_code == 403
    proxied = app.test_client().get("/login", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 200
    forged = app.test_client().get("/login", headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.1"})
    assert forged.status_code == 403


# --- secrets and privacy -------------------------------------------------------------------------------


def test_no_page_shows_the_sign_even_when_the_recording_kept_it(client, recorded):
    stored = sqlite3.connect(recorded / "rec.sqlite").execute("SELECT query FROM recordings").fetchall()
    assert all(SIGN in row[0] for row in stored)  # keep_sign: true kept it
    for path in ("/live", "/live/feed", "/search", "/search?text=badword", "/record/1", "/record/2",
                 "/playground?record=2"):
        page = client.get(path).text
        assert SIGN not in page and "Sign" not in page, path


def test_texts_are_shown_only_when_the_recording_kept_them(tmp_path):
    record_callbacks(tmp_path / "rec.sqlite", [message("secret plan at dawn")], store_text=False)
    client = console_app(tmp_path, recording="store_text: false").test_client()
    log_in(client)
    for path in ("/live", "/search", "/record/1", "/playground?record=1"):
        assert "secret plan" not in client.get(path).text, path
    assert "(text not kept)" in client.get("/search").text
    assert "were not kept" in client.get("/record/1").text


def test_texts_kept_by_older_records_are_hidden_once_store_text_is_off(recorded):
    client = console_app(recorded, recording="store_text: false").test_client()
    log_in(client)
    for path in ("/live", "/search", "/record/2", "/playground?record=2"):
        assert "you badword" not in client.get(path).text, path
    assert "sha256:" in client.get("/record/2").text


def test_a_hashed_text_is_still_found_by_searching_for_the_whole_text(tmp_path):
    record_callbacks(tmp_path / "rec.sqlite", [message("meet me at noon"), message("other")], store_text=False)
    client = console_app(tmp_path, recording="store_text: false").test_client()
    log_in(client)
    page = client.get("/search?text=meet me at noon").text
    assert page.count('href="/record/') == 1 and 'href="/record/1"' in page


# --- search --------------------------------------------------------------------------------------------


def _found(client, query: str) -> set[int]:
    import re

    return {int(n) for n in re.findall(r'href="/record/(\d+)"', client.get("/search?" + query).text)}


def test_search_filters_select_what_they_name(client):
    assert _found(client, "") == {1, 2, 3}
    assert _found(client, "outcome=refuse") == {2}
    assert _found(client, "outcome=allow") == {1, 3}
    assert _found(client, "rule=bad_words") == {2}
    assert _found(client, "user=bob") == {3}
    assert _found(client, "command=C2C.CallbackBeforeSendMsg") == {1, 2, 3}
    assert _found(client, "command=Group.CallbackBeforeSendMsg") == set()
    assert _found(client, "text=lunch") == {3}
    assert _found(client, "text=lunch&user=alice") == set()
    assert _found(client, "since=1h") == {1, 2, 3}
    assert _found(client, "until=1h") == set()


def test_a_time_that_cannot_be_read_is_said_not_searched(client):
    page = client.get("/search?since=yesterday-ish").text
    assert "cannot read the time" in page and "/record/" not in page


def test_the_older_link_pages_back_in_time(tmp_path):
    from receiver.console import views

    record_callbacks(tmp_path / "rec.sqlite", [message(f"m{i}") for i in range(5)], when=time.time() - 100)
    client = console_app(tmp_path).test_client()
    log_in(client)
    views.PAGE_SIZE, saved = 2, views.PAGE_SIZE
    try:
        first = client.get("/search").text
        assert _found(client, "") == {5, 4}
        import html
        import re

        older = html.unescape(re.search(r'href="([^"]+)">Older', first).group(1))
        assert {int(n) for n in re.findall(r'href="/record/(\d+)"', client.get(older).text)} == {3, 2}
    finally:
        views.PAGE_SIZE = saved


def test_the_live_feed_shows_refusals_with_their_rule_and_a_chart(client):
    feed = client.get("/live/feed?outcome=refuse").text
    assert "you badword" in feed and "bad_words" in feed and "hello there" not in feed
    assert "<svg class='chart'" in feed and "1 refuse" in feed


def test_the_record_page_shows_trace_reply_reason_and_the_rewrite_as_a_diff(tmp_path):
    from .consolekit import console_app as make

    record_callbacks(tmp_path / "rec.sqlite", [message("you badword")])
    text_rules = "{use: sensitive_words, name: masker, config: {words: [badword], action: mask}}"
    import receiver.console  # noqa: F401
    from .consolekit import RULES  # the refusal rule; rewrite with a masking rule instead
    from . import consolekit

    consolekit.RULES, saved = text_rules, RULES
    try:
        record_callbacks(tmp_path / "rec.sqlite", [message("you badword")])
    finally:
        consolekit.RULES = saved
    client = make(tmp_path).test_client()
    log_in(client)
    refused = client.get("/record/1").text
    assert "bad_words" in refused and "Trace" in refused and "Callback as sent" in refused and "Reply" in refused
    rewritten = client.get("/record/2").text
    assert "Rewritten message" in rewritten
    assert 'class="del">-' in rewritten and "you badword" in rewritten and "you *******" in rewritten


def test_an_unknown_record_is_404(client):
    assert client.get("/record/999").status_code == 404


def test_no_recording_yet_is_said_on_the_page(tmp_path):
    client = console_app(tmp_path).test_client()
    log_in(client)
    assert "nothing recorded yet" in client.get("/live").text
    assert "nothing recorded yet" in client.get("/search").text


@pytest.mark.parametrize("query, index", [
    ("", "recordings_time"), ("outcome=refuse", "recordings_outcome_time"), ("rule=r", "recordings_rule_time"),
    ("user=u", "recordings_user_time"), ("command=c", "recordings_command"),
    ("user=u&outcome=refuse&rule=r", "recordings_user_time"), ("rule=r&outcome=shed", "recordings_rule_time"),
    ("text=t&outcome=refuse", "recordings_outcome_time"),
])
def test_every_search_is_served_by_an_index_without_sorting(recorded, query, index):
    from urllib.parse import parse_qsl

    from receiver.console.queries import SQLITE, Search, search_query

    search = Search(**dict(parse_qsl(query)))
    q = search_query(search, SQLITE, limit=51, scan_rows=1000)
    plan = " | ".join(row[3] for row in sqlite3.connect(recorded / "rec.sqlite").execute(
        "EXPLAIN QUERY PLAN " + q.sql, q.args))
    assert f"INDEX {index}" in plan and "TEMP B-TREE" not in plan, plan


# --- playground ----------------------------------------------------------------------------------------


def _try(client, rules: str, body: str, record: str = ""):
    token = csrf_of(client.get("/playground").text)
    return client.post("/playground/try", data={"rules": rules, "body": body, "csrf_token": token,
                                                "record": record}).text


def test_the_playground_starts_from_the_running_rules_and_a_picked_record(client):
    page = client.get("/playground?record=2").text
    assert "bad_words" in page and "you badword" in page and "Record" in page


def test_an_edited_rule_changes_the_decision_and_shows_the_trace(client):
    import json

    from .consolekit import message as make

    body = json.dumps(make("hello there"))
    before = _try(client, "rules:\n  - {use: sensitive_words, name: bad_words, config: {words: [badword]}}\n", body)
    assert 'id="tried-outcome">allow' in before
    after = _try(client, "rules:\n  - {use: sensitive_words, name: strict, config: {words: [hello], action: refuse}}\n",
                 body, record="1")
    assert 'id="tried-outcome">refuse' in after and "strict" in after and "changed" in after


@pytest.mark.parametrize("rules, expected", [
    ("rules:\n  - use: sensitive_words\n    config:\n      wordz: [x]\n",
     "playground.yaml:4: rules[0].config.wordz"),
    ("rules:\n  - use: no_such_rule\n", "playground.yaml:2: rules[0].use"),
    ("rules: [\n", "playground.yaml:2: not valid YAML"),
    ("app_id: 1\nrules: []\n", "playground.yaml:1: app_id: the playground takes rules: and chain: only"),
    ("chain: {deadline_ms: 5000}\nrules: []\n", "playground.yaml:1: chain.deadline_ms"),
])
def test_rule_mistakes_read_as_imhook_check_reports_them(client, rules, expected):
    page = _try(client, rules, "{}")
    assert 'id="tried-error"' in page and expected in page, page


def test_the_same_mistake_gives_imhook_check_the_same_message(tmp_path):
    from receiver.cli import main

    file = tmp_path / "playground.yaml"
    file.write_text("app_id: 1400000000\nrules:\n  - use: sensitive_words\n    config:\n      wordz: [x]\n")
    result = CliRunner().invoke(main, ["check", "--skip-paths", str(file)])
    assert result.exit_code == 2 and "playground.yaml:5: rules[0].config.wordz" in result.output


def test_a_shared_rate_limit_counts_in_memory_in_the_playground(client):
    import json

    rules = ("rules:\n  - {use: rate_limit, name: rl, config: {backend: redis, redis_url: 'redis://127.0.0.1:1/0', "
             "limits: [{key: sender, max: 1, per_seconds: 60}]}}\n")
    page = _try(client, rules, json.dumps(message("hi")))
    assert "counts in memory here" in page and 'id="tried-outcome">allow' in page


def test_replay_in_the_page_reports_what_the_edited_rules_change(client):
    token = csrf_of(client.get("/playground").text)
    rules = "rules:\n  - {use: sensitive_words, name: strict, config: {words: [lunch], action: refuse}}\n"
    page = client.post("/playground/replay", data={"rules": rules, "hours": "1", "csrf_token": token}).text
    assert "<b>3</b> replayed" in page and 'id="replay-changed">2<' in page
    assert "<iframe" in page and "sandbox" in page and "imhook replay report" in page
    too_far = client.post("/playground/replay", data={"rules": rules, "hours": "100000", "csrf_token": token}).text
    assert "console.replay_max_hours" in too_far


def test_the_replay_is_bounded_by_replay_max_records(recorded):
    client = console_app(recorded, console="replay_max_records: 2").test_client()
    log_in(client)
    token = csrf_of(client.get("/playground").text)
    page = client.post("/playground/replay", data={"rules": "rules: []", "hours": "1", "csrf_token": token}).text
    assert "<b>2</b> replayed" in page and "replay_max_records" in page


def test_the_playground_leaves_the_running_rules_alone(recorded):
    app = console_app(recorded)
    client = app.test_client()
    log_in(client)
    before = app.extensions["imhook.console"].config.rules
    _try(client, "rules: []\n", "{}")
    assert app.extensions["imhook.console"].config.rules == before


# --- command line, config, mounting ------------------------------------------------------------------


def test_hash_password_reads_stdin_and_prints_a_hash_that_verifies():
    from werkzeug.security import check_password_hash

    from receiver.cli import main

    result = CliRunner().invoke(main, ["console", "hash-password"], input="s3cret pass\n")
    assert result.exit_code == 0
    hashed = result.output.strip()
    assert hashed.startswith("scrypt:") and check_password_hash(hashed, "s3cret pass")
    assert "s3cret" not in result.output
    assert CliRunner().invoke(main, ["console", "hash-password"], input="\n").exit_code == 2


def test_imhook_console_without_a_password_hash_ends_in_one_line(tmp_path, monkeypatch):
    from receiver.cli import main

    monkeypatch.delenv("IMHOOK_CONSOLE_PASSWORD_HASH", raising=False)
    file = tmp_path / "imhook.yaml"
    file.write_text("app_id: 1400000000\n")
    result = CliRunner().invoke(main, ["console", "--config", str(file), "--bind", "127.0.0.1:0"])
    assert result.exit_code == 2 and "imhook console hash-password" in result.output
    assert "Traceback" not in result.output
    bad = CliRunner().invoke(main, ["console", "--config", str(file), "--bind", "nowhere"])
    assert bad.exit_code == 2 and "HOST:PORT" in bad.output


@pytest.mark.parametrize("section, expected", [
    ("console: {secure_cookie: sometimes}", "console.secure_cookie"),
    ("console: {allow_ips: [not-an-ip]}", "console.allow_ips"),
    ("console: {replay_max_records: 0}", "console.replay_max_records"),
    ("console: {enable: true}", "console.enable"),
])
def test_bad_console_settings_name_file_line_and_field(section, expected):
    from receiver.config import parse_config
    from receiver.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(f"app_id: 1400000000\n{section}\n", "imhook.yaml", {})
    assert f"imhook.yaml:2: {expected}" in str(caught.value)


def test_mounted_on_the_receiver_at_console_beside_the_callbacks(tmp_path, monkeypatch):
    from receiver.app import create_app
    from receiver.console.auth import hash_password

    from .consolekit import config_text

    monkeypatch.setenv("IMHOOK_CONSOLE_PASSWORD_HASH", hash_password(PASSWORD))
    monkeypatch.setenv("IMHOOK_APP_ID", "1400000000")
    file = tmp_path / "imhook.yaml"
    file.write_text(config_text(tmp_path, console="enabled: true"))
    client = create_app(file).test_client()
    assert client.get("/console/live").headers["Location"].startswith("/console/login")
    assert client.get("/login").status_code == 404  # the console's paths are under /console only
    token = csrf_of(client.get("/console/login").text)
    assert client.post("/console/login", data={"password": PASSWORD, "csrf_token": token}).status_code == 302
    assert "Live decisions" in client.get("/console/live").text
    assert client.get("/healthz").status_code == 200


def test_an_enabled_console_without_a_password_stops_the_receiver_at_start(tmp_path, monkeypatch):
    from receiver.errors import ImhookError
    from receiver.reload import check_start_up

    from .consolekit import config_text

    monkeypatch.delenv("IMHOOK_CONSOLE_PASSWORD_HASH", raising=False)
    monkeypatch.setenv("IMHOOK_APP_ID", "1400000000")
    file = tmp_path / "imhook.yaml"
    file.write_text(config_text(tmp_path, console="enabled: true"))
    with pytest.raises(ImhookError, match="console needs a password"):
        check_start_up(file)
