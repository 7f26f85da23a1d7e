"""Render a Verdict as the reply NetEase expects: errCode, responseCode, modifyResponse (PROTOCOL.md §8).

Two sources agree on the shape; the HTTP status is not documented, so every reply is 200 with JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from ..model import Callback, MessageSend
from ..verdict import DROP, REFUSE, Verdict
from .events import BY_NAME, REFUSAL_CODES, EventSpec
from .message import NeteaseMessage

log = logging.getLogger("imhook.netease.reply")

ALLOW_CODE = 200
# errCode 1 with responseCode 200 on a message event: the sender sees success, nothing is delivered.
SILENT_DROP_CODE = 200
# The refusal sent when no rule code fits: the lowest of the app's own codes, so the sender's client
# sees a code the app can tell apart from the IM's own 403 (sent for a refusal without a valid code).
GENERIC_REFUSAL = REFUSAL_CODES.low
MAX_CALLBACK_EXT_CHARS = 1024  # §8: a longer callbackExt is not sent (logged), the rest of the reply is


def allow() -> dict[str, Any]:
    return {"errCode": 0, "responseCode": ALLOW_CODE}


def error(status: int, message: str) -> dict[str, Any]:
    """The body of an error reply (401, 403, 400, 404...): errCode 1 with the HTTP status and why."""
    return {"errCode": 1, "responseCode": status, "errMsg": message}


def render(callback: Callback, verdict: Verdict) -> dict[str, Any]:
    spec = BY_NAME.get(callback.command)
    if spec is None or not callback.is_before:
        return allow()
    if verdict.outcome == DROP and spec.can_drop:
        return {"errCode": 1, "responseCode": SILENT_DROP_CODE}
    if verdict.outcome in (REFUSE, DROP):
        return refusal(spec, verdict.code)
    if verdict.refused_members:
        # NetEase has no reply field refusing only some invitees: the whole invitation is refused
        # rather than letting through members a rule objected to.
        return refusal(spec, None)
    reply = allow()
    event = callback.event
    if verdict.message is not None and isinstance(event, MessageSend) and isinstance(verdict.message,
                                                                                      NeteaseMessage):
        changes = verdict.message.modify_response()
        if changes:
            reply["modifyResponse"] = changes
        ext = verdict.message.callback_ext
        if ext is not None and len(ext) <= MAX_CALLBACK_EXT_CHARS:
            reply["callbackExt"] = ext
        elif ext is not None:
            log.warning("callbackExt of %d characters is over NetEase's %d; not sent", len(ext),
                        MAX_CALLBACK_EXT_CHARS)
    return reply


def refusal(spec: EventSpec, code: int | None) -> dict[str, Any]:
    """errCode 1 with the app's code when it lies in 20000–20099, else GENERIC_REFUSAL."""
    if code is not None and code not in spec.codes:
        log.warning("refusal code %s is outside %s's range %s; sent %s instead", code, spec.name, spec.codes,
                    GENERIC_REFUSAL)
        code = None
    return {"errCode": 1, "responseCode": GENERIC_REFUSAL if code is None else code}

