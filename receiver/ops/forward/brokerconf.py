"""Pure pieces of broker targets: names from templates, safe tokens, where the URL comes from.

A stream or subject name may hold the command, the conversation and the app id of an event. The
conversation comes from account and group ids the IM's users choose, so it is encoded before it
goes into a name: NATS splits subjects on `.` and gives `*` and `>` a meaning (and forbids white
space), Redis keys take anything but a readable, bounded name is kinder to operators. No I/O here
except reading the URL file once at start-up.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...jsonout import storable_bytes

HTTP, REDIS_STREAM, NATS = "http", "redis_stream", "nats"
KINDS = (HTTP, REDIS_STREAM, NATS)
URL_SCHEMES = {HTTP: ("http", "https"), REDIS_STREAM: ("redis", "rediss", "unix"),
               NATS: ("nats", "tls", "ws", "wss")}
PLACEHOLDERS = ("command", "conversation", "app_id")
# An encoded token longer than this is replaced by a digest: a 10^6-character group id must not
# make a 3 MB subject (NATS counts it against max_payload) or a 3 MB Redis key.
TOKEN_MAX_CHARS = 64
_SAFE = frozenset(string.ascii_letters + string.digits + "-")
# Literal text of a template: what NATS subjects and JetStream stream names take without surprise.
_LITERAL = re.compile(r"^[A-Za-z0-9_.:-]*$")


def encode_token(value: str) -> str:
    """One name token from any text: [A-Za-z0-9-] kept, every other byte as `_XX` (UTF-8 hex).

    Distinct values give distinct tokens (the encoding is reversible) up to TOKEN_MAX_CHARS; past
    that the token is `h_` + 40 hex digits of its SHA-256. A lone surrogate is encoded by its escape.
    """
    if not value:
        return "_"
    out = []
    for char in value:
        if char in _SAFE:
            out.append(char)
        else:
            out.append("".join(f"_{byte:02X}" for byte in storable_bytes(char)))
    token = "".join(out)
    if len(token) > TOKEN_MAX_CHARS:
        return "h_" + hashlib.sha256(storable_bytes(value)).hexdigest()[:40]
    return token


def encode_command(command: str) -> str:
    """The command keeps its dots (`C2C.CallbackAfterSendMsg` is two subject tokens); each part is
    encoded like a token, so an odd command can add neither a wildcard nor an empty token."""
    return ".".join(encode_token(part) for part in command.split("."))


def template_problem(template: str) -> str | None:
    """Why a stream/subject template cannot be used (None: it can)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"not a valid template: {exc}"
    for literal, field, spec, conversion in parsed:
        if not _LITERAL.match(literal):
            return "outside placeholders, use only letters, digits and _ . : -"
        if field is not None and (field not in PLACEHOLDERS or spec or conversion):
            return f"unknown placeholder {{{field}}}: use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
    if not template or template.startswith(".") or template.endswith(".") or ".." in template:
        return "must not be empty, start or end with a dot, or hold an empty part"
    return None


def render(template: str, command: str, conversation: str, app_id: str) -> str:
    """The stream or subject of one event."""
    return template.format(command=encode_command(command), conversation=encode_token(conversation),
                           app_id=encode_token(app_id))


def stream_subjects(subject_template: str) -> str:
    """The JetStream subject filter that covers every subject the template makes: its fixed
    leading tokens then `>` (`imhook.events.{conversation}` → `imhook.events.>`)."""
    prefix = subject_template.split("{", 1)[0]
    if "{" not in subject_template:
        return subject_template
    fixed = prefix.rsplit(".", 1)[0] if "." in prefix else ""
    return f"{fixed}.>" if fixed else ">"


def redact(url: str) -> str:
    """The URL without its password (user name kept): for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class BrokerOptions:
    """What a broker target needs beyond name, commands and timeout; see docs/operations.md."""

    kind: str
    url: str = field(default="", repr=False)  # may hold a password: never log it, use redact()
    stream: str = ""  # redis_stream: key template; nats: the JetStream stream's name
    subject: str = ""  # nats only: subject template
    maxlen: int = 0  # redis_stream: XADD MAXLEN
    approximate: bool = True  # redis_stream: MAXLEN ~ (whole macro nodes: cheaper)
    dedupe_ttl_seconds: int = 0  # redis_stream: life of the SET NX marker; 0: no marker
    create_stream: bool = True  # nats: create the stream if it is missing
    duplicate_window_seconds: float = 0  # nats: the stream's Nats-Msg-Id window, when imhook creates it
    max_msgs: int = 0  # nats: the stream's bound, when imhook creates it


def resolve_url(config: Mapping[str, Any], env: Mapping[str, str], where: str) -> str:
    """The URL of a target: `url`, else the variable `url_env` names, else the file `url_file` holds.

    Raises ConfigError naming the option; never puts the URL itself in the message.
    """
    from ...errors import ConfigError

    if config.get("url"):
        return config["url"]
    if config.get("url_env"):
        value = env.get(config["url_env"], "").strip()
        if not value:
            raise ConfigError(f"environment variable {config['url_env']} is not set", path=f"{where}.url_env")
        return value
    path = Path(config["url_file"])
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the URL file {path}: {type(exc).__name__}", path=f"{where}.url_file") from None
    if not value:
        raise ConfigError(f"the URL file {path} is empty", path=f"{where}.url_file")
    return value


def url_problem(kind: str, url: str) -> str | None:
    """Why this URL does not suit the kind (None: it does); the URL is not repeated."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number or out of range
    except ValueError:
        return "is not a URL (or its port is not a number from 0 to 65535)"
    if parts.scheme not in URL_SCHEMES[kind]:
        return f"must start with {' or '.join(s + '://' for s in URL_SCHEMES[kind])}"
    if parts.scheme != "unix" and not parts.hostname:
        return "has no host"
    return None


def broker_options(config: Mapping[str, Any], env: Mapping[str, str], where: str) -> BrokerOptions:
    """BrokerOptions of a validated target config (receiver/ops/settings.py filled the defaults)."""
    from ...errors import ConfigError

    kind = config["kind"]
    url = resolve_url(config, env, where)
    problem = url_problem(kind, url)
    if problem:
        source = "url" if config.get("url") else ("url_env" if config.get("url_env") else "url_file")
        raise ConfigError(f"the {kind} URL {problem}", path=f"{where}.{source}")
    if kind == REDIS_STREAM:
        return BrokerOptions(kind, url, stream=config["stream"], maxlen=config["maxlen"],
                             approximate=config["approximate"], dedupe_ttl_seconds=config["dedupe_ttl_seconds"])
    return BrokerOptions(kind, url, stream=config["stream"], subject=config["subject"],
                         create_stream=config["create_stream"],
                         duplicate_window_seconds=config["duplicate_window_seconds"], max_msgs=config["max_msgs"])
