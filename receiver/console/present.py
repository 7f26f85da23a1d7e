"""How a record is shown: never a Sign or another secret, texts only as the privacy settings allow.

The recording already applied the privacy settings of its day (receiver/recording/privacy.py). The
console applies today's too: with `recording.store_text: false` now, texts kept by older records are
shown as their hashes as well, and the Sign is dropped from every query shown even where
`recording.keep_sign` kept it.
"""

from __future__ import annotations

import difflib
import json
from datetime import datetime
from html import escape
from typing import Any

from ..recording.privacy import Policy
from ..recording.record import Problem, Record
from ..recording.sent import describe_sent, printable

# Query parameters never shown: the Tencent Sign, and anything named like a credential.
SECRET_PARAMS = frozenset({"sign", "checksum", "token", "secret", "appsecret", "password", "curtime_sign"})
OUTCOMES = ("allow", "refuse", "refuse_some", "drop", "rewrite", "shed", "rejected", "notify")
COLOURS = {"allow": "#3f9c6d", "refuse": "#d64545", "refuse_some": "#e07b39", "drop": "#8e44ad",
           "rewrite": "#3b82c4", "shed": "#e8a33d", "rejected": "#52606d", "notify": "#b8c2cc", "?": "#cbd2d9"}
PREVIEW_CHARS = 80
MAX_SHOWN_BYTES = 256 * 1024  # a body or reply beyond this is cut on the page (the export has it all)


def shown_query(query: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in query.items() if k.lower() not in SECRET_PARAMS}


def display_policy(recording: dict) -> Policy:
    """Today's text policy, for showing: hash texts if the recording no longer keeps them."""
    return Policy(keep_sign=False, store_text=bool(recording.get("store_text", True)))


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def shown_body(record: Record, policy: Policy) -> tuple[Any, bool]:
    """(the body as JSON, or as text if it is not JSON; texts hidden now that were kept then)."""
    data = _json_or_none(record.body)
    if data is None:
        text = record.body[:MAX_SHOWN_BYTES].decode("utf-8", "backslashreplace")
        return (policy.body(record.body).decode("utf-8", "replace") if not policy.store_text else text), False
    return policy.value(data), True


def when(ts: float, *, short: bool = False) -> str:
    if not ts:
        return "-"
    moment = datetime.fromtimestamp(ts)
    return moment.strftime("%H:%M:%S") if short else moment.isoformat(sep=" ", timespec="seconds")


def pretty(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)
    return text if len(text) <= MAX_SHOWN_BYTES else text[:MAX_SHOWN_BYTES] + "\n… (cut here on the page)"


def preview(record: Record | Problem, policy: Policy) -> str:
    """The first text the callback carried, shortened; "(text not kept)" when only its hash was."""
    if isinstance(record, Problem):
        return ""
    hidden = not policy.store_text
    sent = describe_sent(record if not hidden else _with_hidden_text(record, policy))
    texts = sent.get("texts") or [f["wording"] for f in sent.get("friends", ()) if "wording" in f]
    if not texts:
        return sent.get("error", "")
    first = texts[0]
    if not first["kept"]:
        return "(text not kept)"
    text = first["text"]
    return text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")


def _with_hidden_text(record: Record, policy: Policy) -> Record:
    from dataclasses import replace

    return replace(record, body=policy.body(record.body), redacted=tuple(set(record.redacted) | {"text"}))


def rewrite_diff(body: Any, reply: Any) -> list[tuple[str, str]]:
    """[(kind, line)]: the rewritten parts of the message (Tencent MsgBody/CloudCustomData, NetEase
    modifyResponse) against the original, a line diff of their JSON; [] when nothing was rewritten."""
    if not isinstance(body, dict) or not isinstance(reply, dict):
        return []
    modified = reply.get("modifyResponse")
    if isinstance(modified, dict) and modified:
        changes = modified
    else:
        changes = {k: reply[k] for k in ("MsgBody", "CloudCustomData") if k in reply}
    if not changes:
        return []
    before = pretty({k: body.get(k) for k in changes}).splitlines()
    after = pretty(changes).splitlines()
    out = []
    for line in difflib.ndiff(before, after):
        tag, text = line[:2], line[2:]
        if tag == "? ":
            continue
        out.append(({"- ": "del", "+ ": "add"}.get(tag, "same"), text))
    return out


def record_view(record: Record, recording: dict) -> dict[str, Any]:
    """What the record page shows."""
    policy = display_policy(recording)
    body, is_json = shown_body(record, policy)
    reply = policy.value(record.reply) if record.reply is not None else None
    hidden_now = not policy.store_text and "text" not in record.redacted
    return {
        "record": record, "when": when(record.received_at), "query": shown_query(record.query),
        "body": pretty(body), "body_is_json": is_json, "reply": pretty(reply) if reply is not None else None,
        "trace": record.trace, "diff": rewrite_diff(body, reply) if is_json else [],
        "text_hashed": "text" in record.redacted or hidden_now, "ids_hashed": "user_ids" in record.redacted,
        "sign_hidden": any(k.lower() in SECRET_PARAMS for k in record.query),
        "sent": describe_sent(record if not hidden_now else _with_hidden_text(record, policy)),
    }


def row_view(record: Record | Problem, policy: Policy) -> dict[str, Any]:
    if isinstance(record, Problem):
        return {"problem": record}
    return {"id": record.id, "when": when(record.received_at), "short": when(record.received_at, short=True),
            "command": record.command, "user": printable(record.user), "outcome": record.outcome or "?",
            "rule": record.rule, "reason": printable(record.reason), "text": preview(record, policy),
            "elapsed_ms": record.elapsed_ms}


def minute_chart(counts: dict[int, dict[str, int]], *, now: float, minutes: int) -> str:
    """Counts per minute as stacked bars, an inline SVG scaled by its viewBox to any width. The axis
    labels are HTML beside it (chart_axis): text inside a scaled SVG would be unreadable on a phone."""
    last = int(now // 60)
    first = last - minutes + 1
    width, height = 800, 150
    bar_w = width / minutes
    top = max([sum(c.values()) for c in counts.values()] + [1])
    scale = (height - 4) / top
    parts = [f"<svg class='chart' viewBox='0 0 {width} {height}' role='img' aria-label='decisions per minute, "
             f"last {minutes} minutes' xmlns='http://www.w3.org/2000/svg'>",
             f"<line x1='0' y1='{height - 0.5}' x2='{width}' y2='{height - 0.5}' class='base'/>"]
    for minute in range(first, last + 1):
        x, y = (minute - first) * bar_w, float(height)
        for outcome in OUTCOMES + ("?",):
            n = counts.get(minute, {}).get(outcome, 0)
            if not n:
                continue
            h = n * scale
            y -= h
            label = f"{datetime.fromtimestamp(minute * 60).strftime('%H:%M')}: {n} {outcome}"
            parts.append(f"<rect x='{x + 1:.1f}' y='{y:.1f}' width='{max(bar_w - 2, 1):.1f}' height='{h:.1f}' "
                         f"fill='{COLOURS[outcome]}'><title>{escape(label)}</title></rect>")
    parts.append("</svg>")
    return "".join(parts)


def chart_axis(counts: dict[int, dict[str, int]], *, now: float, minutes: int) -> dict[str, Any]:
    """The chart's labels: its first, middle and last minute, and the tallest bar's count."""
    last = int(now // 60)
    label = lambda minute: datetime.fromtimestamp(minute * 60).strftime("%H:%M")  # noqa: E731
    return {"first": label(last - minutes + 1), "middle": label(last - minutes // 2), "last": label(last),
            "top": max([sum(c.values()) for c in counts.values()] + [0])}
