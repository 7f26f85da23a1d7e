"""The web console through Flask's test client: who gets in (login, sessions, CSRF, allow-list), the
command line, the config section and the mount on the receiver. The pages: test_console_pages.py."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from .consolekit import PASSWORD, console_app, csrf_of, log_in
from .consolekit import client, recorded  # noqa: F401  (fixtures shared by the console tests)


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
