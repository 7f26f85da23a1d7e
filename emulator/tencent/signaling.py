"""Signaling (call invitations) as the client SDK puts it on the wire (PROTOCOL.md §6).

Each signaling step is one TIMCustomElem whose Data is a JSON string. The emulator has its own
small encoder and decoder so it does not depend on the rules' decoder it is meant to test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

INVITE, CANCEL, ACCEPT, REJECT, TIMEOUT = 1, 2, 3, 4, 5
ACTION_NAMES = {INVITE: "invite", CANCEL: "cancel", ACCEPT: "accept", REJECT: "reject", TIMEOUT: "timeout"}
ACTION_TYPES = {name: number for number, name in ACTION_NAMES.items()}


@dataclass(frozen=True)
class Signal:
    """One signaling message: who acts on which invitation, and for whom."""

    action: int
    invite_id: str
    inviter: str
    invitees: tuple[str, ...]
    data: str = ""
    timeout: int = 0
    group_id: str = ""


def encode(signal: Signal) -> str:
    """The Data string of the TIMCustomElem, keys in the order the SDK writes them."""
    return json.dumps({
        "businessID": 1, "inviteID": signal.invite_id, "inviter": signal.inviter,
        "actionType": signal.action, "inviteeList": list(signal.invitees), "data": signal.data,
        "timeout": signal.timeout, "groupID": signal.group_id,
    }, ensure_ascii=False, separators=(",", ":"))


def element(signal: Signal) -> dict[str, Any]:
    return {"MsgType": "TIMCustomElem", "MsgContent": {"Data": encode(signal), "Desc": "", "Ext": ""}}


def decode_body(body: list) -> Signal | None:
    """Read a delivered body as the client SDK does: one custom element with businessID 1, or
    not signaling at all (then the client shows an ordinary message)."""
    customs = [e for e in body if isinstance(e, dict) and e.get("MsgType") == "TIMCustomElem"]
    if len(customs) != 1 or len(body) != 1:
        return None
    data = (customs[0].get("MsgContent") or {}).get("Data")
    try:
        payload = json.loads(data) if isinstance(data, str) else None
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("businessID") != 1:
        return None
    action = payload.get("actionType")
    invitees = payload.get("inviteeList")
    if action not in ACTION_NAMES or not isinstance(invitees, list):
        return None
    return Signal(action, str(payload.get("inviteID", "")), str(payload.get("inviter", "")),
                  tuple(str(i) for i in invitees), str(payload.get("data", "")),
                  int(payload.get("timeout") or 0), str(payload.get("groupID") or ""))


def call_data(media: str, room_id: int, *, busy: bool = False) -> str:
    """The call kits' `data` string (PROTOCOL.md §6): version 4, "av_call", call_type 1 audio / 2
    video. `line_busy` marks a busy reject; its exact value is not documented (unverified)."""
    payload: dict[str, Any] = {
        "version": 4, "businessID": "av_call", "call_type": 2 if media == "video" else 1,
        "room_id": room_id, "data": {"cmd": "videoCall" if media == "video" else "audioCall"},
    }
    if busy:
        payload["line_busy"] = "line_busy"
    return json.dumps(payload, separators=(",", ":"))
