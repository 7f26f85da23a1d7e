"""Mount the console at /console on the receiver when `console.enabled` (receiver/parts.py)."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("imhook.console")
MOUNT = "/console"


def check_at_start(config) -> None:
    """Master side (receiver/reload.py check_start_up): an enabled console without a password is a
    config error now, not a worker that fails to boot."""
    settings = (config.sections.get("console") or {})
    if settings.get("enabled"):
        from .auth import password_hash, session_secret

        password_hash(settings, os.environ)
        session_secret(settings, os.environ)


def install(app, receiver) -> None:
    settings = receiver.config.sections.get("console") or {}
    if not settings.get("enabled"):
        return
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from .app import create_console_app

    # A WSGI app of its own beside the receiver's: its sessions, error pages and headers stay out of
    # the callback path, which gains one prefix test per request.
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {MOUNT: create_console_app(receiver.config)})
    log.info("console mounted at %s", MOUNT)
