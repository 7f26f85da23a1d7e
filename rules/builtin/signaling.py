"""Decode a signaling step (call invitation, cancel, accept, reject, timeout) from a message.

The client SDK carries signaling as a custom element whose `Data` is JSON with `businessID == 1`
(PROTOCOL.md §6). Like the SDK's `getSignalingInfo`, anything else is "not signaling" (None).
Call kits put their own JSON in the `data` string; the media type is read from it when present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

INVITE, CANCEL, ACCEPT, REJECT, TIMEOUT = 1, 2, 3, 4, 5
ACTION_NAMES = {INVITE: "invite", CANCEL: "cancel", ACCEPT: "accept", REJECT: "reject", TIMEOUT: "timeout"}
SIGNALING_BUSINESS_ID = 1
CALL_TYPES = {1: "audio", 2: "video"}  # call kits' `call_type`
CALL_COMMANDS = {"audioCall": "audio", "videoCall": "video"}  # newer call kits: data.cmd


@dataclass(frozen=True)
class SignalingInfo:
    """One signaling step. `action` is the wire actionType (1 invite … 5 timeout; others kept as is)."""

    invite_id: str
    inviter: str
    action: int
    invitees: tuple[str, ...] = ()
    data: str = ""
    timeout: int = 0  # seconds, 0 = none
    group_id: str = ""
    media: str = ""  # "audio", "video", or "" when `data` does not say

    @property
    def action_name(self) -> str:
        return ACTION_NAMES.get(self.action, f"unknown:{self.action}")

    @property
    def is_invite(self) -> bool:
        return self.action == INVITE


def decode_signaling(message: Any) -> SignalingInfo | None:
    """The signaling step carried by `message` (a neutral Message), or None for an ordinary message."""
    for payload in message.custom_payloads():
        info = decode_payload(payload)
        if info is not None:
            return info
    return None


def decode_payload(payload: str) -> SignalingInfo | None:
    """Decode one custom element's `Data` string; None unless it is a JSON object with businessID 1."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not _is_int(doc.get("businessID"), SIGNALING_BUSINESS_ID):
        return None
    action = doc.get("actionType")
    invitees = doc.get("inviteeList")
    data = doc.get("data")
    data = data if isinstance(data, str) else ""
    timeout = doc.get("timeout")
    return SignalingInfo(
        invite_id=_str(doc.get("inviteID")),
        inviter=_str(doc.get("inviter")),
        # A missing or non-integer actionType is kept as 0: no known step, so no policy applies.
        action=action if _is_int(action) else 0,
        invitees=tuple(i for i in invitees if isinstance(i, str)) if isinstance(invitees, list) else (),
        data=data,
        timeout=timeout if _is_int(timeout) else 0,
        group_id=_str(doc.get("groupID")),
        media=media_of(data),
    )


def media_of(data: str) -> str:
    """"audio"/"video" from a call kit's `data` JSON (`call_type`, else `data.cmd`); "" if unknown."""
    try:
        doc = json.loads(data) if data else None
    except (ValueError, RecursionError):
        return ""
    if not isinstance(doc, dict):
        return ""
    call_type = doc.get("call_type")
    if _is_int(call_type) and call_type in CALL_TYPES:
        return CALL_TYPES[call_type]
    inner = doc.get("data")
    cmd = inner.get("cmd") if isinstance(inner, dict) else None
    return CALL_COMMANDS.get(cmd, "") if isinstance(cmd, str) else ""


def _is_int(value: Any, expected: int | None = None) -> bool:
    # JSON true would pass isinstance(value, int); the SDK compares numbers only.
    return type(value) is int and (expected is None or value == expected)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
