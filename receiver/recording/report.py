"""Render a replay Summary for a terminal, as JSON, or (html_report.py) as a web page."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .changes import ADDED, REMOVED, Change
from .sent import MAX_SHOWN_CHARS, printable
from .summary import KINDS, Case, Summary

# A changed value longer than this is cut in the text and HTML reports: a rewritten MsgBody can be
# as long as the message. The JSON output has every value whole.
MAX_VALUE_CHARS = 200


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds") if ts else "-"


def describe(side) -> str:
    if side is None:
        return "nothing recorded"
    text = side.outcome or "?"
    if side.rule:
        text += f" by {side.rule}"
    if side.reason:
        text += f": {side.reason}"
    return text


def render_text(summary: Summary, *, source: str, target: str, mode: str, show: int = 20) -> str:
    out: list[str] = []
    c = summary.counts
    out.append(f"Replayed {summary.total} recordings from {source} against {target} ({mode})")
    out.append(f"  unchanged {c['unchanged']}   changed {c['changed']}   new {c['new']}   errors {c['error']}"
               + (f"   skipped (rejected) {summary.skipped_rejected}" if summary.skipped_rejected else ""))
    out += _table("By command", summary.by_command, KINDS)
    out += _table("By rule", summary.by_rule, KINDS[:3])
    if summary.transitions:
        out.append("")
        out.append("Changes: " + ", ".join(f"{a or '?'} → {b} ×{n}" for (a, b), n in summary.transitions.most_common()))
    out += _cases("Changed", summary.changed, show, with_diff=True)
    out += _cases("New (no recorded reply)", summary.new, show, with_diff=False)
    if summary.errors:
        out.append("")
        out.append(f"Errors ({len(summary.errors)}):")
        out += [f"  {e.where}  {e.command + ': ' if e.command else ''}{e.error}" for e in summary.errors[:show]]
        if len(summary.errors) > show:
            out.append(f"  ... and {len(summary.errors) - show} more (see --json)")
    if summary.redacted:
        out.append("")
        out.append(f"Note: {summary.redacted} records had texts or account ids hashed when recorded "
                   "(recording.store_text / hash_user_ids); rules that read them now see the hashes.")
    return "\n".join(out)


def _table(title: str, rows: dict, kinds: tuple[str, ...]) -> list[str]:
    if not rows:
        return []
    width = max(len(title), *(len(k) for k in rows)) + 2
    head = f"{title:<{width}}" + "".join(f"{('errors' if k == 'error' else k):>11}" for k in kinds)
    lines = ["", head]
    for name in sorted(rows):
        lines.append(f"  {name:<{width - 2}}" + "".join(f"{rows[name][k]:>11}" for k in kinds))
    return lines


def _cases(title: str, cases: list[Case], show: int, *, with_diff: bool) -> list[str]:
    if not cases:
        return []
    lines = ["", f"{title} ({len(cases)}" + (f"; first {show} shown" if len(cases) > show else "") + "):"]
    for case in cases[:show]:
        lines.append(f"  {case.where}  {case.command}  user {case.user or '-'}  at {when(case.received_at)}")
        lines += [f"    {line}" for line in sent_lines(case.sent)]
        if with_diff:
            lines.append(f"    was: {describe(case.old)}")
        lines.append(f"    now: {describe(case.new)}")
        if with_diff:
            lines.append("    reply changes:")
            lines += [f"      {change_line(change)}" for change in case.changes()]
        else:
            lines.append("    reply: " + show_value(case.new.reply))
    return lines


def sent_lines(sent: dict[str, Any] | None) -> list[str]:
    """The callback in brief: a headline, then one line per text, friend or list (HTML uses them too)."""
    if sent is None:
        return []
    if "error" in sent:
        return [f"sent: (the body cannot be read: {sent['error']})"]
    head = f"sent: {sent['action']}" + (f" from {sent['from']}" if sent["from"] else "")
    if sent.get("to"):
        head += f" to {sent['to']}"
    kinds = [k for k in (sent.get("conversation"), sent.get("group_type")) if k]
    if kinds:
        head += f" ({', '.join(kinds)})"
    if sent.get("elements"):
        head += f", elements: {', '.join(sent['elements'])}"
    lines = [head]
    for text in sent.get("texts", ()):
        lines.append(f"  {text['kind']}: {show_text(text)}")
    for friend in sent.get("friends", ()):
        detail = (f"response {friend['response']}" if "response" in friend
                  else f"source {friend['source'] or '-'}, wording {show_text(friend['wording'])}")
        lines.append(f"  friend {friend['to']}: {detail}")
    for name in ("invitees", "members"):
        if sent.get(name):
            lines.append(f"  {name}: {', '.join(sent[name])}")
    if "created_before" in sent:
        lines.append(f"  groups of this type created before: {sent['created_before']}")
    for name, count in sent.get("omitted", {}).items():
        lines.append(f"  ... and {count} more {name} (not shown)")
    if sent.get("text_kept") is False:
        lines.append("  (texts were not kept: recording.store_text was off; their sha256 hashes are shown)")
    return lines


def show_text(text: dict[str, Any]) -> str:
    """A text of `sent` in quotes, or why it is not shown; cut texts say their full length."""
    if not text["kept"]:
        return f"(not kept, recorded as {text['text'][:19]}…)"
    cut = text["length"] > MAX_SHOWN_CHARS
    return f'"{text["text"]}' + (f'…" ({text["length"]} characters)' if cut else '"')


def change_line(change: Change) -> str:
    """`path: old → new`; `+ path: new` for an added field, `- path: old` for a removed one."""
    if change.kind == ADDED:
        return f"+ {change.path}: {show_value(change.new)}"
    if change.kind == REMOVED:
        return f"- {change.path}: {show_value(change.old)}"
    return f"{change.path}: {show_value(change.old)} → {show_value(change.new)}"


def show_value(value: Any) -> str:
    """Compact JSON on one line, cut to MAX_VALUE_CHARS (the JSON output has the whole value)."""
    text = printable(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + f"… ({len(text)} characters)"


def render_json(summary: Summary, *, source: str, target: str, mode: str) -> str:
    data: dict[str, Any] = {"source": source, "target": target, "mode": mode, **summary.to_json()}
    return json.dumps(data, ensure_ascii=False, indent=2)
