"""The console's Flask app: its state (store reader, password hash, login limiter), security headers.

One app for both ways of serving it: `imhook console` (server.py) and mounted at /console on the
receiver (web.py), where it stays a separate WSGI app so the callback path gains nothing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from ..config import Config, load_config
from ..recording.locations import store_url
from . import auth
from .queries import Reader

log = logging.getLogger("imhook.console")
HERE = Path(__file__).resolve().parent
# Scripts and styles from this site only (htmx is served from static/); inline styles for the replay
# report, whose page arrives whole in a sandboxed iframe; no framing of the console itself.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


@dataclass
class ConsoleState:
    config: Config
    settings: dict[str, Any]
    recording: dict[str, Any]
    reader: Reader
    password_hash: str
    limiter: auth.LoginLimiter
    allow_ips: tuple[str, ...]
    trusted_proxies: int
    session_seconds: float
    user_salt: bytes | None
    config_text: str


def build_state(config: Config, env: dict[str, str] | None = None) -> tuple[ConsoleState, bytes, bool]:
    """Everything the console needs from a validated config; ConfigError (one line) if it cannot run."""
    env = dict(os.environ if env is None else env)
    settings, recording, server = config.console, config.recording, config.server
    allow = settings["allow_ips"] if settings["allow_ips"] is not None else server["allow_ips"]
    salt_env = recording["user_id_salt_env"]
    salt = env.get(salt_env, "").encode() if recording["hash_user_ids"] and env.get(salt_env) else None
    try:
        config_text = Path(config.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        config_text = ""
    secret, configured = auth.session_secret(settings, env)
    state = ConsoleState(
        config=config, settings=settings, recording=recording,
        reader=Reader(store_url(recording, env), recording["path"]),
        password_hash=auth.password_hash(settings, env), limiter=auth.LoginLimiter(settings["login_attempts"]),
        allow_ips=tuple(allow), trusted_proxies=server["trusted_proxies"],
        session_seconds=settings["session_hours"] * 3600, user_salt=salt, config_text=config_text)
    return state, secret, configured


def create_console_app(config: Config | str | Path | None = None, *, env: dict[str, str] | None = None) -> Flask:
    """The console app for a config (a Config, a file, or $IMHOOK_CONFIG)."""
    if not isinstance(config, Config):
        config = load_config(config, env, require_app_id=False)
    state, secret, configured = build_state(config, env)
    if not configured:
        log.warning("console: no session secret configured (console.session_secret_file or $%s): logins last "
                    "until this process restarts", config.console["session_secret_env"])
    app = Flask("imhook.console", root_path=str(HERE), template_folder="templates", static_folder="static")
    app.secret_key = secret
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024  # a pasted callback and rules, with room
    app.extensions["imhook.console"] = state
    app.jinja_env.autoescape = True
    auth.install(app, state)
    from . import views

    app.register_blueprint(views.blueprint)

    @app.context_processor
    def common():
        return {"csrf_token": auth.csrf_token, "csrf_field": auth.CSRF_FIELD}

    @app.after_request
    def headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"  # pages may hold message texts
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return render_template("error.html", code=exc.code, message=exc.description or exc.name), exc.code or 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("console: unexpected error")
        return render_template("error.html", code=500, message="internal error (see the console's log)"), 500

    return app
