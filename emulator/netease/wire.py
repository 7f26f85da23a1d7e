"""Callback requests as the NetEase IM writes them (PROTOCOL.md §8): signed headers and bodies.

Message events follow the documented sample (tests/samples/netease/); the recall event's field
list is unverified (one source), and so is which of its times is the message's (see recall_event).
"""

from __future__ import annotations

import hashlib
from typing import Any

EVENT_P2P_MESSAGE, EVENT_TEAM_MESSAGE, EVENT_RECALL = 1, 2, 35
RECALL_P2P, RECALL_TEAM = 7, 8  # the recall event's opeType
# Transcript names for the events (NetEase names events by number only); one word each, so an
# expectation can say `callback NetEase.Recall is sent`.
COMMANDS = {EVENT_P2P_MESSAGE: "NetEase.P2PMessage", EVENT_TEAM_MESSAGE: "NetEase.TeamMessage",
            EVENT_RECALL: "NetEase.Recall"}


def command_of(body: dict[str, Any]) -> str:
    event = body.get("eventType")
    return COMMANDS.get(event, f"NetEase.Event{event}")


def checksum(app_secret: str, md5: str, cur_time: str) -> str:
    """CheckSum = hex SHA-1 of AppSecret + MD5 + CurTime, plain concatenation (official)."""
    return hashlib.sha1(f"{app_secret}{md5}{cur_time}".encode()).hexdigest()


def signed_headers(app_key: str, app_secret: str, raw: bytes, now_ms: int) -> dict[str, str]:
    """The headers NetEase sends with each callback: CurTime in ms, MD5 of the exact body bytes."""
    md5 = hashlib.md5(raw).hexdigest()
    cur_time = str(now_ms)
    return {"Content-Type": "application/json; charset=utf-8", "AppKey": app_key, "CurTime": cur_time,
            "MD5": md5, "CheckSum": checksum(app_secret, md5, cur_time)}


def device_id(user: str, client_type: str) -> str:
    """A stable device id per user and client type (the sample's are opaque 32-character strings)."""
    return hashlib.md5(f"{user}/{client_type}".encode()).hexdigest()


def message_event(message, client_ip: str, client_port: int) -> dict[str, Any]:
    """Event 1 (one-to-one) or 2 (team): `to` is the account or the team id; times are strings of ms."""
    body: dict[str, Any] = {
        "eventType": EVENT_P2P_MESSAGE if message.conversation == "c2c" else EVENT_TEAM_MESSAGE,
        "fromAccount": message.sender, "fromNick": message.sender, "fromClientType": message.device,
        "fromDeviceId": device_id(message.sender, message.device), "to": message.to,
        "msgTimestamp": str(message.timestamp_ms), "msgType": message.msg_type,
        "fromClientIp": client_ip, "fromClientPort": str(client_port), "msgidClient": message.msgid_client,
        "body": message.body,
    }
    # "Not every field is always present": attach and ext only when the message has them.
    for key in ("attach", "ext"):
        if getattr(message, key) is not None:
            body[key] = getattr(message, key)
    return body


def recall_event(message, operator: str, message_time_ms: int, now_ms: int, note: str = "") -> dict[str, Any]:
    """Event 35. Unverified: the field list (one source); `time` taken as the recalled message's
    time (as `timetag` is in NetEase's server recall API) and `timestamp` as the recall's; `msgId`
    written as a string of digits (server ids are 64-bit)."""
    return {
        "eventType": EVENT_RECALL, "fromAccount": operator, "msgFromAccid": message.sender,
        "msgId": message.msg_id, "time": str(message_time_ms),
        "opeType": RECALL_P2P if message.conversation == "c2c" else RECALL_TEAM,
        "toAccount": message.to, "msgidClient": message.msgid_client, "msg": note, "timestamp": str(now_ms),
    }
