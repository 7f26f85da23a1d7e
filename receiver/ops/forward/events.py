"""Pure pieces of forwarding: which targets want a callback, its dedupe and conversation keys,
the signature, the retry delay. No I/O here, so each is tested by a table.

The keys are stored as SQLite TEXT: they follow the text policy of receiver/jsonout.py (a lone
surrogate, which JSON admits and UTF-8 cannot hold, is written as its `\\udXXX` escape). The body
forwarded is the raw body as received, byte for byte, whatever it holds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from ...jsonout import storable, storable_bytes

SIGNATURE_HEADER = "X-Imhook-Signature"
TIMESTAMP_HEADER = "X-Imhook-Timestamp"
EVENT_ID_HEADER = "X-Imhook-Event-Id"
COMMAND_HEADER = "X-Imhook-Command"
APP_ID_HEADER = "X-Imhook-App-Id"
ATTEMPT_HEADER = "X-Imhook-Attempt"


@dataclass(frozen=True)
class Target:
    """One downstream endpoint, resolved from the config (secret read from the environment)."""

    name: str
    url: str
    commands: tuple[str, ...]
    timeout: float
    secret: bytes | None = None
    kind: str = "http"  # or "redis_stream", "nats": see brokers.py
    broker: Any = None  # brokerconf.BrokerOptions of a broker target (holds its URL: never log it)

    def wants(self, command: str) -> bool:
        return any(fnmatchcase(command, pattern) for pattern in self.commands)


def target_name(config: Mapping[str, Any]) -> str:
    """The configured name, else host[:port] of the URL (else the kind): never the path or credentials."""
    if config.get("name"):
        return config["name"]
    if not config.get("url"):
        return config.get("kind") or "target"
    parts = urlsplit(config["url"])
    host = parts.hostname or "target"
    return f"{host}:{parts.port}" if parts.port else host


def resolve_targets(configs: Sequence[Mapping[str, Any]], env: Mapping[str, str]) -> list[Target]:
    """Build Targets; a named secret variable that is unset is a ConfigError, not a silent no-sign."""
    from ...errors import ConfigError

    targets = []
    for index, config in enumerate(configs):
        secret = None
        if config.get("secret_env"):
            value = env.get(config["secret_env"], "")
            if not value:
                raise ConfigError(f"environment variable {config['secret_env']} is not set",
                                  path=f"forwarding.targets[{index}].secret_env")
            secret = value.encode()
        kind = config.get("kind", "http")
        broker = None
        if kind != "http":
            from .brokerconf import broker_options

            broker = broker_options(config, env, f"forwarding.targets[{index}]")
        targets.append(Target(target_name(config), config["url"] if kind == "http" else "",
                              tuple(config["commands"]), config["timeout_seconds"], secret, kind, broker))
    return targets


# Commands whose body *is* one message: a retried callback repeats its MsgKey / MsgId. Other
# commands may carry the MsgKey of the message they are about (withdraw, extensions), so two
# distinct events can share it; those are keyed by their whole body instead.
_MESSAGE_COMMANDS = ("*.CallbackAfterSendMsg", "Bot.On*Message", "*.CallbackSendMsgException")


def dedupe_key(command: str, body: Mapping[str, Any]) -> str:
    """A key equal for a callback and its duplicate: command + message identity, else body digest."""
    if any(fnmatchcase(command, p) for p in _MESSAGE_COMMANDS):
        for field in ("MsgKey", "MsgId"):
            if body.get(field):
                return storable(f"{command}|{field}={body[field]}")
        if body.get("GroupId") and body.get("MsgSeq") is not None:
            return storable(f"{command}|GroupId={body['GroupId']}|MsgSeq={body['MsgSeq']}")
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    # Unchanged bytes for any body without a lone surrogate: keys stored before stay valid.
    return storable(f"{command}|sha256={hashlib.sha256(storable_bytes(canonical)).hexdigest()}")


def event_id(dedupe: str) -> str:
    """A stable id sent with every attempt, so a downstream can drop a redelivery."""
    return hashlib.sha256(storable_bytes(dedupe)).hexdigest()[:32]


def _account(value: Any) -> str:
    return value if isinstance(value, str) else ""


def conversation_key(body: Mapping[str, Any]) -> str:
    """What events must stay in order together: a group, a C2C pair, else one account."""
    return storable(_conversation(body))


def _conversation(body: Mapping[str, Any]) -> str:
    if _account(body.get("GroupId")):
        return f"group:{body['GroupId']}"
    sender, receiver = _account(body.get("From_Account")), _account(body.get("To_Account"))
    if sender and receiver:
        return "c2c:" + "|".join(sorted((sender, receiver)))
    pairs = body.get("PairList")
    if isinstance(pairs, list) and pairs and isinstance(pairs[0], dict):
        a, b = _account(pairs[0].get("From_Account")), _account(pairs[0].get("To_Account"))
        if a and b:
            return "c2c:" + "|".join(sorted((a, b)))
    info = body.get("Info")
    if isinstance(info, dict) and _account(info.get("To_Account")):
        return f"account:{info['To_Account']}"
    for field in ("From_Account", "Operator_Account", "Report_Account", "Requester_Account"):
        if _account(body.get(field)):
            return f"account:{body[field]}"
    # NetEase copy feed (docs/netease.md): `fromAccount`, `to`, `convType` TEAM for teams (field
    # names from the callback events; the copy feed's own list is unverified, so each is optional).
    sender, peer = _account(body.get("fromAccount")), _account(body.get("to"))
    if peer and body.get("convType") in ("TEAM", "SUPER_TEAM"):
        return f"group:{peer}"
    if sender and peer:
        return "c2c:" + "|".join(sorted((sender, peer)))
    if sender:
        return f"account:{sender}"
    return "global"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>." + body): binds the time to the bytes."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """What a downstream does (see docs/operations.md); used by the tests as the downstream."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def backoff_seconds(attempts: int, base: float, cap: float, rand: random.Random | None = None) -> float:
    """Exponential backoff with a cap and "equal jitter": between half and all of min(cap, base·2ⁿ).

    Jitter spreads the retries of many conversations that failed together, so a downstream that
    comes back is not hit by all of them in the same instant.
    """
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + (rand or random).uniform(0, ceiling / 2)


def is_permanent(status: int) -> bool:
    """A 4xx (other than timeout/too-early/too-many) will not succeed on retry: give up on it."""
    return 400 <= status < 500 and status not in (408, 425, 429)
