"""Render a replay Summary for a terminal, as JSON, or (html_report.py) as a web page."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .summary import KINDS, Case, Summary


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
        if with_diff:
            lines.append(f"    was: {describe(case.old)}")
        lines.append(f"    now: {describe(case.new)}")
        if with_diff:
            lines += [f"    {line}" for line in case.diff()[2:]]  # the ---/+++ header says nothing new
        else:
            lines.append("    reply: " + json.dumps(case.new.reply, ensure_ascii=False))
    return lines


def render_json(summary: Summary, *, source: str, target: str, mode: str) -> str:
    data: dict[str, Any] = {"source": source, "target": target, "mode": mode, **summary.to_json()}
    return json.dumps(data, ensure_ascii=False, indent=2)
