"""Render a Verdict as the exact reply a Tencent command expects (PROTOCOL.md §2–3)."""

from __future__ import annotations

import json
import logging
from typing import Any

from ..model import Callback, FriendAdd, FriendRespond
from ..verdict import DROP, REFUSE, Verdict
from .commands import (COMMANDS, DECIDE, FRIEND, FRIEND_DEFAULT_REFUSAL, FRIEND_LISTS, INVITE, MESSAGE,
                       CommandSpec)

log = logging.getLogger("imhook.reply")

GENERIC_REFUSAL = 1  # sender sees 20006 (C2C) or 10016 (group)
SILENT_DROP = 2


def envelope(code: int = 0, info: str = "", status: str = "OK") -> dict[str, Any]:
    return {"ActionStatus": status, "ErrorCode": code, "ErrorInfo": info}


def ok() -> dict[str, Any]:
    return envelope()


def render(callback: Callback, verdict: Verdict) -> dict[str, Any]:
    """Return the reply body for `callback` decided by `verdict`."""
    spec = COMMANDS.get(callback.command)
    if spec is None or not spec.is_before:
        return ok()
    return _RENDERERS[spec.reply](spec, callback, verdict)


def fail_open(command: str, body: bytes) -> dict[str, Any] | None:
    """The reply `render` gives for an allow verdict, built from the raw body without schema or rules.

    A callback answered this way (load shedding, receiver/worker.py) gets what the IM does itself when
    the callback times out: by default it lets the event through (PROTOCOL.md §2). Answering "allow"
    explicitly does that whatever the console's failure setting says: a console set to "do not
    deliver" on failure is not honoured for shed callbacks. The envelope alone allows messages, group
    actions and invitations, and is the ignored reply of after-callbacks and unknown commands (§3–4).
    Friend before-callbacks are the exception: their allow lists every requested friend in ResultItem,
    so only they read the body. (Their top-level ErrorCode ≠ 0 would let the request through too, §3,
    but as "the app failed"; no reply is sent that the normal path would not send.) None: the body is
    not what the command needs, so the normal path answers (and rejects) it.
    """
    if not command:
        return None
    spec = COMMANDS.get(command)
    if spec is None or spec.reply != FRIEND:
        return ok()
    key = FRIEND_LISTS.get(command)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    items = payload.get(key) if key and isinstance(payload, dict) else None
    if not isinstance(items, list):
        return None
    accounts = [item.get("To_Account") if isinstance(item, dict) else None for item in items]
    if not all(isinstance(account, str) for account in accounts):
        return None
    reply = ok()
    reply["ResultItem"] = [{"To_Account": account, "ResultCode": 0, "ResultInfo": ""} for account in accounts]
    return reply


def refusal_code(spec: CommandSpec, code: int | None, fallback: int = GENERIC_REFUSAL) -> int:
    """The app's own code if it lies in the command's range, else the generic refusal.

    A code outside the range would be misread by the IM (for friends: as "the app failed", which
    lets the request through), so it is never sent.
    """
    if code is None:
        return fallback
    if spec.codes is not None and code in spec.codes:
        return code
    log.warning("refusal code %s is outside %s's range %s; sent %s instead",
                code, spec.name, spec.codes or "(none)", fallback)
    return fallback


def _message(spec: CommandSpec, callback: Callback, verdict: Verdict) -> dict[str, Any]:
    if verdict.outcome == REFUSE:
        return envelope(refusal_code(spec, verdict.code), verdict.info)
    if verdict.outcome == DROP:
        return envelope(SILENT_DROP)
    reply = ok()
    if verdict.message is not None:
        # The reply's MsgBody replaces the whole body, CloudCustomData likewise (PROTOCOL.md §3):
        # send both as the rules left them, as the documented "modify" replies do.
        reply.update(verdict.message.to_wire())
    return reply


def _decide(spec: CommandSpec, callback: Callback, verdict: Verdict) -> dict[str, Any]:
    if verdict.outcome in (REFUSE, DROP):  # no silent drop here: a drop refuses
        return envelope(refusal_code(spec, verdict.code), verdict.info)
    return ok()


def _invite(spec: CommandSpec, callback: Callback, verdict: Verdict) -> dict[str, Any]:
    reply = _decide(spec, callback, verdict)
    if reply["ErrorCode"] == 0 and verdict.refused_members:
        reply["RefusedMembers_Account"] = list(verdict.refused_members)
    return reply


def _friend(spec: CommandSpec, callback: Callback, verdict: Verdict) -> dict[str, Any]:
    """One ResultItem per requested friend; refusals live there, never in the top ErrorCode."""
    event = callback.event
    assert isinstance(event, (FriendAdd, FriendRespond))
    items = []
    for item in event.items:
        if verdict.outcome in (REFUSE, DROP):
            code = refusal_code(spec, verdict.code, FRIEND_DEFAULT_REFUSAL)
            info = verdict.info
        elif item.to in verdict.friend_results:
            result = verdict.friend_results[item.to]
            code = refusal_code(spec, result.code, FRIEND_DEFAULT_REFUSAL)
            info = result.info
        else:
            code, info = 0, ""
        items.append({"To_Account": item.to, "ResultCode": code, "ResultInfo": info})
    reply = ok()
    reply["ResultItem"] = items
    return reply


_RENDERERS = {MESSAGE: _message, DECIDE: _decide, INVITE: _invite, FRIEND: _friend}
