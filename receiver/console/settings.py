"""The `console:` config section (validated with the rest of the file by receiver/config.py)."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate

from ..config import PATH, Section, _cidr

PASSWORD_HASH_ENV = "IMHOOK_CONSOLE_PASSWORD_HASH"
SESSION_SECRET_ENV = "IMHOOK_CONSOLE_SECRET"


def _secure_cookie(value) -> None:
    if value not in ("auto", True, False):
        raise ValidationError("must be auto (Secure unless a loopback client over plain HTTP), true or false")


class ConsoleSection(Section):
    # Mount the console at /console on the running receiver. Off: `imhook console` serves it alone.
    enabled = fields.Boolean(load_default=False)
    # The login password's hash (`imhook console hash-password`): from this variable, else this file.
    password_hash_env = fields.String(load_default=PASSWORD_HASH_ENV, validate=validate.Length(min=1))
    password_hash_file = fields.String(load_default=None, allow_none=True, metadata=PATH)
    # What signs the session cookies. None set: a random one per start (every login ends at a restart).
    session_secret_env = fields.String(load_default=SESSION_SECRET_ENV, validate=validate.Length(min=1))
    session_secret_file = fields.String(load_default=None, allow_none=True, metadata=PATH)
    session_hours = fields.Float(load_default=12.0, validate=validate.Range(min=0.05, max=24 * 30))
    secure_cookie = fields.Raw(load_default="auto", validate=_secure_cookie)
    # null: the callbacks' list, server.allow_ips (with server.trusted_proxies); [] lets any address in.
    allow_ips = fields.List(fields.String(validate=_cidr), load_default=None, allow_none=True)
    # Wrong passwords from one address before each further try must wait (1 s, doubling to 15 min).
    login_attempts = fields.Integer(load_default=5, validate=validate.Range(min=1, max=1000))
    # A search for a text reads at most this many of the newest records the other filters select.
    text_search_rows = fields.Integer(load_default=100_000, validate=validate.Range(min=100, max=10_000_000))
    # The playground's replay: the newest records of the last N hours, at most this many, this long.
    replay_max_records = fields.Integer(load_default=5_000, validate=validate.Range(min=1, max=1_000_000))
    replay_max_seconds = fields.Float(load_default=20.0, validate=validate.Range(min=1, max=600))
    replay_max_hours = fields.Float(load_default=168.0, validate=validate.Range(min=0.1, max=24 * 366))


SECTIONS = {"console": ConsoleSection}
