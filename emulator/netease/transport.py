"""Posting callbacks as the NetEase IM does, and reading its replies as it reads them (PROTOCOL.md §8)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from receiver.client import PostResult

from ..answers import read_answer
from ..report import Exchange
from .wire import command_of, signed_headers

BUDGET_SECONDS = 2.0  # one attempt, 2 s timeout, then the console's default applies (official)
OWN_CODES = range(20000, 20100)  # a refusal's responseCode the sender sees as its error code
DEFAULT_REFUSAL = 403  # what the sender sees for a refusal without a responseCode in OWN_CODES
SILENT_DROP = 200  # responseCode 200 with errCode 1 on a message event: dropped, the sender sees success
CALLBACK_EXT_MAX = 1024  # callbackExt longer than this is not carried (what the IM does then: unverified)
REWRITABLE = ("body", "attach", "ext")
# modifyResponse keys the IM accepts but the emulator does not model: noted, not applied.
NOT_MODELLED = ("pushContent", "pushPayload", "pushEnable", "needPushNick", "persistEnable", "roamingEnable",
                "historyEnable")

ALLOW, REFUSE, DROP = "allow", "refuse", "drop"


class Transport:
    """Signs and posts callbacks on one keep-alive session, as the NetEase backend does."""

    def __init__(self, url: str, app_key: str, app_secret: str, *, budget_seconds: float = BUDGET_SECONDS,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.time):
        self.url, self.app_key, self.app_secret = url, app_key, app_secret
        self.budget = budget_seconds
        self.session = session or requests.Session()
        self.clock = clock

    def post(self, body: dict[str, Any], **_device: Any) -> Exchange:
        """Post one event; the device and address are in the body itself, not in the request."""
        raw = encode(body)
        headers = signed_headers(self.app_key, self.app_secret, raw, int(self.clock() * 1000))
        shown = {k: headers[k] for k in ("AppKey", "CurTime", "MD5")}  # CheckSum is never shown
        exchange = Exchange(command_of(body), shown, body)
        return read_answer(exchange, self.budget, lambda: self._send(raw, headers))

    def _send(self, raw: bytes, headers: dict[str, str]) -> PostResult:
        started = time.perf_counter()
        response = self.session.post(self.url, data=raw, headers=headers, timeout=self.budget)
        elapsed = (time.perf_counter() - started) * 1000
        try:
            reply = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            reply = response.text
        return PostResult(response.status_code, reply, elapsed)

    def close(self) -> None:
        self.session.close()


def encode(body: dict[str, Any]) -> bytes:
    """The body as UTF-8 JSON; text UTF-8 cannot carry (a lone surrogate) goes as a JSON escape."""
    try:
        return json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(body).encode()


@dataclass(frozen=True)
class Ruling:
    """How the NetEase IM reads one reply: what happens, the code the actor sees, any rewrite."""

    outcome: str = ALLOW
    code: int = 0
    rewrite: dict[str, str] | None = None  # body / attach / ext replaced by modifyResponse
    callback_ext: str | None = None


def read_message_reply(exchange: Exchange, on_failure: str = "deliver") -> Ruling:
    """Events 1 and 2: errCode 0 allows (maybe rewritten), 1 refuses, or drops with responseCode 200."""
    code = _err_code(exchange)
    if code is None:
        return _default(exchange, on_failure)
    if code == 0:
        return _allow(exchange)
    if code == 1 and exchange.reply.get("responseCode") == SILENT_DROP:
        exchange.outcome = "silent drop (errCode 1, responseCode 200)"
        return Ruling(DROP)
    return _refuse(exchange, code)


def read_recall_reply(exchange: Exchange, on_failure: str = "deliver") -> Ruling:
    """Event 35: errCode 0 lets the recall happen, 1 refuses it with the reply's responseCode."""
    code = _err_code(exchange)
    if code is None:
        return _default(exchange, on_failure)
    if code == 0:
        exchange.outcome = "allow"
        return Ruling()
    if exchange.reply.get("responseCode") == SILENT_DROP:
        exchange.warnings.append("responseCode 200 is a silent drop only for messages; a recall reads it as "
                                 f"a refusal the user sees as {DEFAULT_REFUSAL} (unverified)")
    return _refuse(exchange, code)


def _default(exchange: Exchange, on_failure: str) -> Ruling:
    if on_failure == "refuse":
        # The console's default may be "refuse"; the code the user then sees is unverified.
        exchange.outcome = f"no usable reply: refused ({DEFAULT_REFUSAL}), as the console is set"
        return Ruling(REFUSE, DEFAULT_REFUSAL)
    exchange.outcome = "no usable reply: let through (the console's default)"
    return Ruling()


def _refuse(exchange: Exchange, code: int) -> Ruling:
    if code != 1:
        exchange.warnings.append(f"errCode {code} is neither 0 nor 1; read as a refusal (undocumented)")
    response_code = exchange.reply.get("responseCode")
    if isinstance(response_code, int) and not isinstance(response_code, bool) and response_code in OWN_CODES:
        exchange.outcome = f"refuse {response_code} (errCode {code})"
        return Ruling(REFUSE, response_code)
    if response_code is not None:
        exchange.warnings.append(f"responseCode {response_code!r} is outside {OWN_CODES.start}–"
                                 f"{OWN_CODES.stop - 1}: the user sees {DEFAULT_REFUSAL}")
    exchange.outcome = f"refuse (errCode {code}; user sees {DEFAULT_REFUSAL})"
    return Ruling(REFUSE, DEFAULT_REFUSAL)


def _allow(exchange: Exchange) -> Ruling:
    reply = exchange.reply
    rewrite = _rewrite(exchange, reply.get("modifyResponse"))
    callback_ext = reply.get("callbackExt")
    if callback_ext is not None and not (isinstance(callback_ext, str) and len(callback_ext) <= CALLBACK_EXT_MAX):
        exchange.warnings.append(f"callbackExt is not a string of at most {CALLBACK_EXT_MAX} characters: "
                                 "not carried (what the IM does with it is unverified)")
        callback_ext = None
    exchange.outcome = f"allow, rewritten {' and '.join(rewrite)}" if rewrite else "allow"
    return Ruling(ALLOW, rewrite=rewrite or None, callback_ext=callback_ext)


def _rewrite(exchange: Exchange, modify: Any) -> dict[str, str]:
    if modify is None:
        return {}
    if isinstance(modify, str):
        # One public receiver sends a JSON string; whether the IM accepts it is unverified.
        exchange.warnings.append("modifyResponse is a string, not a JSON object: read as JSON (unverified "
                                 "that the IM accepts it)")
        try:
            modify = json.loads(modify)
        except (ValueError, RecursionError):
            modify = None
    if not isinstance(modify, dict):
        exchange.warnings.append("modifyResponse is not a JSON object: ignored")
        return {}
    rewrite = {}
    for key, value in modify.items():
        if key in REWRITABLE and isinstance(value, str):
            rewrite[key] = value
        elif key in REWRITABLE:
            exchange.warnings.append(f"modifyResponse.{key} is not a string: ignored")
        elif key not in NOT_MODELLED:
            exchange.warnings.append(f"modifyResponse.{key} is not a field the IM rewrites: ignored")
    return rewrite


def _err_code(exchange: Exchange) -> int | None:
    """The reply's errCode, or None when the reply does not count (the console's default applies)."""
    if not exchange.answered:
        return None
    code = exchange.reply.get("errCode")
    if isinstance(code, bool) or not isinstance(code, int):
        exchange.warnings.append("the reply has no integer errCode: it counts as no reply")
        return None
    return code
