"""gunicorn hooks (receiver/gunicorn_conf.py): one session secret for all the receiver's workers."""

from __future__ import annotations

import os
import secrets

from .auth import START_SECRET_ENV


def when_ready(server) -> None:
    """Master, before the first fork: with the console mounted and no session secret configured,
    every worker must still sign sessions alike, or a login would hold on one worker only. Set
    whatever the config says; unused when a secret is configured or the console is off."""
    os.environ.setdefault(START_SECRET_ENV, secrets.token_hex(32))
