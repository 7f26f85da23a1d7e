"""Who may use the console: the IP allow-list, one password, a signed session cookie, CSRF tokens.

- The password is checked against a werkzeug hash (scrypt; `imhook console hash-password`) read from
  the environment or a secret file; the password itself is never stored or logged.
- The session is Flask's signed cookie (HTTP-only, SameSite=Lax, Secure unless a loopback client
  over plain HTTP, see `cookie_is_secure`), holding the login time and a CSRF token. Its secret
  comes from the environment or a file; without one it is random per start.
- Every POST (forms and htmx) must carry the session's CSRF token; a request without it is 400.
- Wrong passwords from one address make the next try wait: after `login_attempts` failures, 1 s,
  doubling with each further failure up to LOCKOUT_MAX_SECONDS. Kept in memory (one process).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, Request, abort, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.security import check_password_hash, generate_password_hash

from ..edge import loggable
from ..errors import ImhookError
from ..ops import ipallow

log = logging.getLogger("imhook.console")

HASH_METHOD = "scrypt"
LOCKOUT_MAX_SECONDS = 15 * 60
TRACKED_CLIENTS = 10_000  # the limiter forgets the oldest beyond this: bounded memory whatever the traffic
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Set by receiver/console/hooks.py in the gunicorn master when no secret is configured, so the
# receiver's workers (forked from it) sign sessions alike: a login holds whichever worker answers.
START_SECRET_ENV = "IMHOOK_CONSOLE_START_SECRET"
OPEN_ENDPOINTS = ("login", "static")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


def _from_env_or_file(env: Mapping[str, str], variable: str, file: str | None, what: str) -> str:
    value = env.get(variable, "").strip()
    if not value and file:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:  # name the file, never its content
            raise ImhookError(f"cannot read the console {what} file {file}: "
                              f"{getattr(exc, 'strerror', None) or 'not UTF-8 text'}") from None
    return value


def password_hash(settings: Mapping, env: Mapping[str, str]) -> str:
    """The configured hash, or ConfigError saying how to make one."""
    value = _from_env_or_file(env, settings["password_hash_env"], settings["password_hash_file"], "password hash")
    if not value:
        raise ImhookError(f"the console needs a password: set ${settings['password_hash_env']} (or "
                          "console.password_hash_file) to the output of `imhook console hash-password`")
    if not value.startswith(("scrypt:", "pbkdf2:")) or value.count("$") != 2:
        raise ImhookError(f"${settings['password_hash_env']} / console.password_hash_file does not hold a password "
                          "hash; make one with `imhook console hash-password`")
    return value


def session_secret(settings: Mapping, env: Mapping[str, str]) -> tuple[bytes, bool]:
    """(secret, configured): the configured secret, else the master's per-start one, else a random one."""
    value = _from_env_or_file(env, settings["session_secret_env"], settings["session_secret_file"],
                              "session secret")
    if value:
        if len(value) < 16:
            raise ImhookError(f"${settings['session_secret_env']} / console.session_secret_file: a session secret "
                              "needs at least 16 characters (e.g. `python -c 'import secrets; "
                              "print(secrets.token_hex(32))'`)")
        return value.encode(), True
    if env.get(START_SECRET_ENV):
        return env[START_SECRET_ENV].encode(), False
    return secrets.token_bytes(32), False


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def cookie_is_secure(setting, req: Request) -> bool:
    """`auto`: Secure, except for a client on this machine over plain HTTP (`imhook console` on
    127.0.0.1 opened in a local browser), where a Secure cookie would never come back."""
    if setting is True or setting is False:
        return setting
    return not (req.scheme == "http" and is_loopback(req.remote_addr or ""))


class ConsoleSessionInterface(SecureCookieSessionInterface):
    salt = "imhook-console-session"

    def __init__(self, secure_setting):
        self.secure_setting = secure_setting

    def get_cookie_secure(self, app: Flask) -> bool:  # called while saving, inside the request
        return cookie_is_secure(self.secure_setting, request)


class LoginLimiter:
    """Failed logins per client address; how long the next try must wait."""

    def __init__(self, free_attempts: int, *, clock=time.monotonic):
        self.free_attempts, self.clock = free_attempts, clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address -> (count, last)
        self._lock = threading.Lock()

    def wait_seconds(self, address: str) -> float:
        with self._lock:
            count, last = self._failures.get(address, (0, 0.0))
        if count < self.free_attempts:
            return 0.0
        delay = min(LOCKOUT_MAX_SECONDS, 2.0 ** (count - self.free_attempts))
        return max(0.0, last + delay - self.clock())

    def failed(self, address: str) -> None:
        with self._lock:
            count, _ = self._failures.pop(address, (0, 0.0))
            self._failures[address] = (count + 1, self.clock())
            while len(self._failures) > TRACKED_CLIENTS:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "the form is stale or not from this console (CSRF token missing or wrong): reload the page")


def client_of(state) -> str:
    return ipallow.client_address(request.remote_addr or "", request.headers.get("X-Forwarded-For"),
                                  state.trusted_proxies)


def install(app: Flask, state) -> None:
    """The guard before every request, and the login and logout views."""
    from flask import render_template

    app.session_interface = ConsoleSessionInterface(state.settings["secure_cookie"])
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_NAME="imhook_console", PERMANENT_SESSION_LIFETIME=state.session_seconds)

    @app.before_request
    def guard():
        refused = ipallow.check(request.remote_addr or "", request.headers.get("X-Forwarded-For"),
                                allow=state.allow_ips, trusted_proxies=state.trusted_proxies)
        if refused is not None:
            log.warning("console refused by the allow-list", extra={"client": loggable(refused)})
            abort(403, "your address is not in the console's allow-list (console.allow_ips)")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            check_csrf()
        if request.endpoint in OPEN_ENDPOINTS:
            return None
        logged_in = session.get("login_at")
        if not logged_in or time.time() - logged_in > state.session_seconds:
            session.pop("login_at", None)
            if request.headers.get("HX-Request"):  # an htmx fragment: send the whole page to the login
                return "", 401, {"HX-Redirect": url_for("login")}
            return redirect(url_for("login", next=request.script_root + request.full_path if request.method == "GET" else None))
        return None

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error, status = "", 200
        if request.method == "POST":
            client = client_of(state)
            wait = state.limiter.wait_seconds(client)
            if wait > 0:
                error, status = f"Too many wrong passwords: try again in {wait:.0f} s.", 429
            elif check_password_hash(state.password_hash, request.form.get("password", "")):
                state.limiter.succeeded(client)
                session.clear()  # a fresh session (and CSRF token) at login: no fixation
                session.permanent = True
                session["login_at"] = time.time()
                csrf_token()
                return redirect(_safe_next(request.args.get("next")) or url_for("views.live"))
            else:
                state.limiter.failed(client)
                log.warning("console login failed", extra={"client": loggable(client)})
                error, status = "Wrong password.", 401
        return render_template("login.html", error=error), status

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("login"))


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site: `//evil.example` or a full URL is no redirect target."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target
