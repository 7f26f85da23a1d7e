"""What a recorded callback asked for, in brief, for the replay report: who, to whom, which texts.

A reviewer of "rewrite → allow" needs the message that was sent beside the two replies. The
record's body is parsed by the platform, as the server parsed it, into the neutral event, and the
event is summed up as a small JSON value (the keys are documented in docs/recording.md). Texts
are shown as the recording kept them: with `recording.store_text: false` only their hashes were
kept, and the summary says so instead of showing a hash as if it were the text.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..model import (Callback, Event, FriendAdd, FriendRespond, GroupCreate, GroupInvite, GroupJoin,
                     MessageSend, TopicCreate)
from ..tencent.message import flatten
from .record import Record

# A report is read by a person: a 10^6-character text or a 5,000-account invitation is cut, and
# what was cut is counted (`length` of a text, `omitted` per list). --save or export has it all.
MAX_SHOWN_CHARS = 300
MAX_SHOWN_ITEMS = 20
HASHED_TEXT = "sha256:"  # privacy.hash_text's prefix: what store_text: false keeps of a text
# Control characters, line and paragraph separators, bidi overrides and lone surrogates are shown
# as escapes: a sender's text must not move the terminal's cursor, reorder a line of the report,
# or make the report unwritable as UTF-8.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_platform = None


def describe_sent(record: Record, platform: Any = None) -> dict[str, Any]:
    """The callback of `record` in brief; {"error": why} if its body cannot be read as its command."""
    try:
        callback = _parse(record, platform)
        if callback.undecidable:  # e.g. nested past the depth limit: the rules could not read it either
            return {"error": printable(f"unreadable: {callback.undecidable}"[:MAX_SHOWN_CHARS])}
        event = callback.event
        summary = _DESCRIBE.get(type(event), _other)(event, "text" in record.redacted)
    except Exception as exc:  # noqa: BLE001 - one odd record must not end the report; it says why
        return {"error": printable(f"{type(exc).__name__}: {exc}"[:MAX_SHOWN_CHARS])}
    summary = {"action": event.action, "from": printable(event.actor), **summary}
    if "text" in record.redacted:
        summary["text_kept"] = False
    return summary


def printable(text: str) -> str:
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def _parse(record: Record, platform: Any) -> Callback:
    global _platform
    from ..platforms import Platforms, split_record_query

    if platform is None:
        if _platform is None:
            _platform = Platforms()
        platform = _platform
    which, query = split_record_query(record.query)
    if which and hasattr(platform, "member"):  # a NetEase record: its own parser, no query to fill in
        return platform.member(which).from_http({}, record.body, app_id="", max_body=len(record.body) + 1,
                                                now=record.received_at or time.time())
    # Only the body is summed up: a rejected record's missing app id or command must not hide it.
    query = {**query, "CallbackCommand": query.get("CallbackCommand") or record.command,
             "SdkAppid": query.get("SdkAppid") or "0"}
    # The body was accepted once: no size limit now. Authentication is not checked (no tokens).
    return platform.from_http(query, record.body, app_id=query["SdkAppid"], max_body=len(record.body) + 1,
                              now=record.received_at or time.time())


def shown_text(text: str, hashed: bool, kind: str | None = None) -> dict[str, Any]:
    """A text as the report shows it: cut to MAX_SHOWN_CHARS, `length` its full length."""
    kept = not (hashed and text.startswith(HASHED_TEXT))
    shown: dict[str, Any] = {"kind": kind} if kind is not None else {}
    shown.update(text=printable(text[:MAX_SHOWN_CHARS]), length=len(text), kept=kept)
    return shown


def _bounded(name: str, items: list, summary: dict[str, Any]) -> dict[str, Any]:
    summary[name] = items[:MAX_SHOWN_ITEMS]
    if len(items) > MAX_SHOWN_ITEMS:
        summary.setdefault("omitted", {})[name] = len(items) - MAX_SHOWN_ITEMS
    return summary


def _texts(event: Event, hashed: bool, summary: dict[str, Any]) -> dict[str, Any]:
    texts = []
    for field in event.text_fields():
        # A text inside a forwarded (merged) message says so, and how deep: "forwarded×2 text".
        depth = flatten(field.path).count("MsgList")
        kind = field.kind if not depth else f"forwarded{'' if depth == 1 else f'×{depth}'} {field.kind}"
        texts.append(shown_text(field.text, hashed, kind))
        if len(texts) > MAX_SHOWN_ITEMS:  # one more than shown, so `omitted` is known to be non-zero
            break
    summary = _bounded("texts", texts, summary)
    if "texts" in summary.get("omitted", {}):  # count the rest without keeping them
        summary["omitted"]["texts"] = sum(1 for _ in event.text_fields()) - MAX_SHOWN_ITEMS
    return summary


def _message(event: MessageSend, hashed: bool) -> dict[str, Any]:
    summary = {"to": printable(event.peer), "conversation": event.conversation}
    if event.group_type:
        summary["group_type"] = printable(event.group_type)
    summary = _bounded("elements", [printable(kind) for kind in event.message.element_types()], summary)
    return _texts(event, hashed, summary)


def _friend_add(event: FriendAdd, hashed: bool) -> dict[str, Any]:
    friends = [{"to": printable(item.to), "source": printable(item.source),
                "wording": shown_text(item.wording, hashed)} for item in event.items]
    return _bounded("friends", friends, {})


def _friend_respond(event: FriendRespond, hashed: bool) -> dict[str, Any]:
    friends = [{"to": printable(item.to), "response": printable(item.action)} for item in event.items]
    return _bounded("friends", friends, {})


def _group(event: Event, hashed: bool) -> dict[str, Any]:
    summary = {"to": printable(event.group_id), "group_type": printable(event.group_type)}
    if isinstance(event, GroupInvite):
        summary = _bounded("invitees", [printable(i) for i in event.invitees], summary)
    if isinstance(event, GroupCreate):
        summary = _bounded("members", [printable(m) for m in event.members], summary)
        summary["created_before"] = event.created_count
    return _texts(event, hashed, summary)


def _other(event: Event, hashed: bool) -> dict[str, Any]:
    summary = {"to": printable(event.group_id)} if event.group_id else {}
    return _texts(event, hashed, summary)


_DESCRIBE = {MessageSend: _message, FriendAdd: _friend_add, FriendRespond: _friend_respond,
             GroupCreate: _group, GroupJoin: _group, GroupInvite: _group, TopicCreate: _group}
