"""Posting callbacks as the IM does, and reading replies as the IM reads them (PROTOCOL.md §2–3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from receiver.client import callback_query, post_callback

from ..answers import read_answer
from ..report import Exchange

BUDGET_SECONDS = 2.0  # the IM waits 2 s for a reply, fixed for message callbacks (PROTOCOL.md §2)
C2C_REFUSED = 20006  # what the sender sees for ErrorCode 1 on a one-to-one message
GROUP_REFUSED = 10016  # ... on a group message or another group before-callback

ALLOW, REFUSE, DROP = "allow", "refuse", "drop"


@dataclass(frozen=True)
class CodeRange:
    """The app's own error codes for one kind of callback (PROTOCOL.md §3).

    The same ranges as receiver/tencent/commands.py, written out here so the emulator, a client,
    does not load the receiver's Tencent adapter.
    """

    low: int
    high: int

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.low <= code <= self.high

    def __str__(self) -> str:
        return f"{self.low}–{self.high}"


GROUP_CODES = CodeRange(10100, 10200)
C2C_CODES = CodeRange(120001, 130000)
FRIEND_CODES = CodeRange(38000, 39000)


class Transport:
    """Signs and posts callbacks on one keep-alive session, as the IM backend does."""

    def __init__(self, url: str, app_id: str, token: str | None = None, *,
                 budget_seconds: float = BUDGET_SECONDS, session: requests.Session | None = None):
        self.url, self.app_id, self.token = url, str(app_id), token or None
        self.budget = budget_seconds
        self.session = session or requests.Session()

    def post(self, body: dict[str, Any], *, platform: str, client_ip: str) -> Exchange:
        command = body["CallbackCommand"]
        query = callback_query(command, self.app_id, token=self.token, client_ip=client_ip, platform=platform)
        exchange = Exchange(command, query, body)
        return read_answer(exchange, self.budget, lambda: post_callback(
            self.url, body, app_id=self.app_id, session=self.session, timeout=self.budget, query=query))

    def close(self) -> None:
        self.session.close()


@dataclass(frozen=True)
class Ruling:
    """How the IM reads one before-callback reply: what happens and what the actor sees."""

    outcome: str = ALLOW
    code: int = 0
    info: str = ""
    body: list | None = None  # a rewritten MsgBody, None: the original stands
    cloud_custom_data: Any = None  # a rewritten CloudCustomData, or None: the original stands
    refused_members: tuple[str, ...] = ()
    friend_results: dict[str, tuple[int, str]] = field(default_factory=dict)  # refused friends only


def read_message_reply(exchange: Exchange, conversation: str, on_failure: str = "deliver") -> Ruling:
    """C2C/Group.CallbackBeforeSendMsg: 0 allow (maybe rewritten), 1 refuse, 2 drop, app codes."""
    generic, own = (C2C_REFUSED, C2C_CODES) if conversation == "c2c" else (GROUP_REFUSED, GROUP_CODES)
    code = _error_code(exchange)
    if code is None:
        if on_failure == "refuse":
            exchange.outcome = f"no usable reply: refused ({generic}), as the console is set"
            return Ruling(REFUSE, generic)
        exchange.outcome = "no usable reply: let through (the IM's default)"
        return Ruling()
    info = str(exchange.reply.get("ErrorInfo", ""))
    if code == 0:
        return _rewrite(exchange)
    if code == 2:
        exchange.outcome = "silent drop (ErrorCode 2)"
        return Ruling(DROP)
    if code == 1:
        exchange.outcome = f"refuse (ErrorCode 1; sender sees {generic})"
        return Ruling(REFUSE, generic, info)
    if code in own:
        exchange.outcome = f"refuse {code} {info!r}"
        return Ruling(REFUSE, code, info)
    exchange.warnings.append(f"ErrorCode {code} is none of 0, 1, 2 or {own}; read as a refusal "
                             "(the IM's handling of it is not documented)")
    exchange.outcome = f"refuse (unknown ErrorCode {code}; sender sees {generic})"
    return Ruling(REFUSE, generic, info)


def _rewrite(exchange: Exchange) -> Ruling:
    reply = exchange.reply
    body, custom, changed = None, None, []
    if "MsgBody" in reply:
        if _valid_body(reply["MsgBody"]):
            body = reply["MsgBody"]
            changed.append("MsgBody")
        else:
            exchange.warnings.append("MsgBody in the reply is not a list of {MsgType, MsgContent}: ignored")
    if "CloudCustomData" in reply:
        if isinstance(reply["CloudCustomData"], str):
            custom = reply["CloudCustomData"]
            changed.append("CloudCustomData")
        else:
            exchange.warnings.append("CloudCustomData in the reply is not a string: ignored")
    exchange.outcome = f"allow, rewritten {' and '.join(changed)}" if changed else "allow"
    return Ruling(ALLOW, body=body, cloud_custom_data=custom)


def _valid_body(body: Any) -> bool:
    return (isinstance(body, list) and bool(body)
            and all(isinstance(e, dict) and isinstance(e.get("MsgType"), str) for e in body))


def read_decide_reply(exchange: Exchange, invitees: tuple[str, ...] = ()) -> Ruling:
    """Group create/apply/invite: 0 allow, 1 refuse (10016), 10100–10200 the app's own code;
    an invite may refuse some invitees with RefusedMembers_Account."""
    code = _error_code(exchange)
    if code is None:
        exchange.outcome = "no usable reply: let through (the IM's default)"
        return Ruling()
    info = str(exchange.reply.get("ErrorInfo", ""))
    if code == 0:
        refused = exchange.reply.get("RefusedMembers_Account") or []
        if not isinstance(refused, list):
            exchange.warnings.append("RefusedMembers_Account is not a list: ignored")
            refused = []
        strangers = [r for r in refused if r not in invitees]
        if strangers:
            exchange.warnings.append(f"RefusedMembers_Account names {strangers}, who were not invited")
        refused = tuple(r for r in invitees if r in refused)
        exchange.outcome = f"allow, refusing {list(refused)}" if refused else "allow"
        return Ruling(ALLOW, refused_members=refused)
    if code in GROUP_CODES:
        exchange.outcome = f"refuse {code} {info!r}"
        return Ruling(REFUSE, code, info)
    if code != 1:
        exchange.warnings.append(f"ErrorCode {code} is none of 0, 1 or {GROUP_CODES}; read as a refusal"
                                 " (2, silent drop, exists only for messages)")
    exchange.outcome = f"refuse (ErrorCode {code}; user sees {GROUP_REFUSED})"
    return Ruling(REFUSE, GROUP_REFUSED, info)


def read_friend_reply(exchange: Exchange, friends: tuple[str, ...]) -> Ruling:
    """Sns.CallbackPrev*: refusals live in ResultItem; a top-level ErrorCode ≠ 0 means the app
    failed and the IM lets the request through (PROTOCOL.md §3)."""
    code = _error_code(exchange)
    if code is None:
        exchange.outcome = "no usable reply: let through (the IM's default)"
        return Ruling()
    if code != 0:
        exchange.warnings.append(f"top-level ErrorCode {code} on a friend callback means the app failed: "
                                 "the IM lets the request through")
        exchange.outcome = "app failure: let through"
        return Ruling()
    results: dict[str, tuple[int, str]] = {}
    items = exchange.reply.get("ResultItem") or []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or item.get("To_Account") not in friends:
            continue
        result = item.get("ResultCode", 0)
        if result in (0, None):
            continue
        if result not in FRIEND_CODES:
            exchange.warnings.append(f"ResultCode {result} for {item['To_Account']} is outside {FRIEND_CODES}; "
                                     "read as a refusal (not documented)")
        results[item["To_Account"]] = (int(result) if isinstance(result, int) else 0,
                                       str(item.get("ResultInfo", "")))
    exchange.outcome = (f"allow, refusing {', '.join(f'{f} ({c})' for f, (c, _) in results.items())}"
                        if results else "allow")
    return Ruling(ALLOW, friend_results=results)


def _error_code(exchange: Exchange) -> int | None:
    """The reply's ErrorCode, or None when the reply does not count (the IM's default applies)."""
    if not exchange.answered:
        return None
    code = exchange.reply.get("ErrorCode")
    if isinstance(code, bool) or not isinstance(code, int):
        exchange.warnings.append("the reply has no integer ErrorCode: it counts as no reply")
        return None
    return code
