"""A self-contained HTML replay report: inline CSS, inline SVG charts, no external assets."""

from __future__ import annotations

from datetime import datetime
from html import escape

from .changes import ADDED, REMOVED, Change
from .report import describe, sent_lines, show_value, when
from .summary import KINDS, Case, Summary

MAX_CASES = 1000  # beyond this the page gets slow to open; the JSON output has them all
OPEN_CASES = 20  # cases shown unfolded per section, as many as the terminal report shows by default
PREVIEW_CHARS = 60  # of the first text, in a case's one-line summary
ABSENT = "(absent)"  # the cell of a field the reply did not have (the text report's + and -)
ABSENT_CELL = f"<td class='absent'>{ABSENT}</td>"
COLOURS = {"unchanged": "#9aa5b1", "changed": "#d64545", "new": "#3b82c4", "error": "#e8a33d"}
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#1f2933;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #e4e7eb;padding-bottom:.2em}
.meta{color:#616e7c}.cards{display:flex;gap:1em;margin:1em 0}
.card{flex:1;border-radius:6px;padding:.7em 1em;color:#fff}.card b{display:block;font-size:1.8em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .8em;text-align:right;border-bottom:1px solid #eef0f2}
td:first-child,th:first-child{text-align:left}details{margin:.4em 0;border:1px solid #e4e7eb;border-radius:4px}
summary{cursor:pointer;padding:.4em .6em;background:#f5f7fa}details>div{padding:.4em .8em}
pre{background:#f8f9fa;padding:.6em;font-size:12.5px;white-space:pre-wrap;word-break:break-all}.add{color:#1a7f37;background:#e6ffec}
.del{color:#b42318;background:#ffebe9}code{font-size:12.5px}
.sent{background:#f5f7fa;border-left:3px solid #3b82c4;padding:.4em .8em;margin:.4em 0}
.sent ul{margin:.2em 0 0;padding-left:1.2em}.sent li{white-space:pre-wrap;word-break:break-word}
.preview{color:#616e7c}td.absent{color:#9aa5b1;font-style:italic}.was{margin:.4em 0}
table.changes{width:100%;table-layout:fixed}table.changes td{text-align:left;vertical-align:top;
font:12.5px ui-monospace,monospace;word-break:break-all;white-space:pre-wrap}
table.changes th{text-align:left}table.changes th:first-child{width:24%}
"""


def render_html(summary: Summary, *, source: str, target: str, mode: str) -> str:
    c = summary.counts
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>imhook replay: {c['changed']} changed</title><style>{CSS}</style></head><body>",
        "<h1>imhook replay report</h1>",
        f"<p class='meta'>{summary.total} recordings from <code>{escape(source)}</code> against "
        f"<code>{escape(target)}</code> ({escape(mode)}), {datetime.now().isoformat(sep=' ', timespec='seconds')}"
        + (f"; {summary.skipped_rejected} rejected requests skipped" if summary.skipped_rejected else "") + "</p>",
        "<div class='cards'>" + "".join(
            f"<div class='card' style='background:{COLOURS[k]}'><b>{c[k]}</b>{'errors' if k == 'error' else k}</div>"
            for k in KINDS) + "</div>",
    ]
    if summary.redacted:
        parts.append(f"<p class='meta'>{summary.redacted} records had texts or account ids hashed when "
                     "recorded; rules that read them now see the hashes.</p>")
    parts += _section("By command", summary.by_command, KINDS)
    parts += _section("By rule", summary.by_rule, KINDS[:3])
    if summary.transitions:
        parts.append("<h2>Decision changes</h2><table><tr><th>was</th><th>now</th><th>count</th></tr>")
        parts += [f"<tr><td>{escape(a or '?')}</td><td>{escape(b)}</td><td>{n}</td></tr>"
                  for (a, b), n in summary.transitions.most_common()]
        parts.append("</table>")
    parts += _cases("Changed", summary.changed, diff=True)
    parts += _cases("New (no recorded reply)", summary.new, diff=False)
    if summary.errors:
        parts.append(f"<h2>Errors ({len(summary.errors)})</h2><table><tr><th>record</th><th>why</th></tr>")
        parts += [f"<tr><td>{escape(e.where)}</td><td style='text-align:left'>{escape(e.error)}</td></tr>"
                  for e in summary.errors[:MAX_CASES]]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _section(title: str, rows: dict, kinds: tuple[str, ...]) -> list[str]:
    if not rows:
        return []
    head = "".join(f"<th>{'errors' if k == 'error' else k}</th>" for k in kinds)
    body = "".join(f"<tr><td>{escape(name)}</td>" + "".join(f"<td>{rows[name][k]}</td>" for k in kinds) + "</tr>"
                   for name in sorted(rows))
    return [f"<h2>{title}</h2>", bar_chart(rows, kinds), f"<table><tr><th></th>{head}</tr>{body}</table>"]


def bar_chart(rows: dict, kinds: tuple[str, ...], *, width: int = 760, bar: int = 18) -> str:
    """Horizontal stacked bars, one per row, scaled to the largest total; changed drawn first."""
    order = ["changed", "new", "error", "unchanged"]
    kinds = tuple(k for k in order if k in kinds)
    names = sorted(rows, key=lambda n: (-rows[n]["changed"], n))
    label_w, count_w = 300, 60
    scale = (width - label_w - count_w) / max(1, max(sum(rows[n][k] for k in kinds) for n in names))
    height = len(names) * (bar + 6) + 28
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
           f"font-size='12' font-family='system-ui,sans-serif'>"]
    for i, name in enumerate(names):
        y = i * (bar + 6)
        label = name if len(name) <= 44 else name[:43] + "…"
        out.append(f"<text x='{label_w - 6}' y='{y + bar - 5}' text-anchor='end'>{escape(label)}</text>")
        x = float(label_w)
        for kind in kinds:
            w = rows[name][kind] * scale
            if w > 0:
                out.append(f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='{bar}' fill='{COLOURS[kind]}'>"
                           f"<title>{escape(name)}: {rows[name][kind]} {kind}</title></rect>")
                x += w
        out.append(f"<text x='{x + 4:.1f}' y='{y + bar - 5}'>{rows[name]['changed']} / "
                   f"{sum(rows[name][k] for k in kinds)}</text>")
    y = len(names) * (bar + 6) + 12
    for j, kind in enumerate(kinds):
        out.append(f"<rect x='{label_w + j * 110}' y='{y}' width='12' height='12' fill='{COLOURS[kind]}'/>"
                   f"<text x='{label_w + j * 110 + 16}' y='{y + 11}'>{kind}</text>")
    out.append("</svg>")
    return "".join(out)


def _cases(title: str, cases: list[Case], *, diff: bool) -> list[str]:
    if not cases:
        return []
    out = [f"<h2>{title} ({len(cases)})</h2>"]
    if len(cases) > MAX_CASES:
        out.append(f"<p class='meta'>First {MAX_CASES} shown; the JSON output (--json) has all of them.</p>")
    for number, case in enumerate(cases[:MAX_CASES]):
        head = f"{escape(case.where)} · {escape(case.command)} · " + (
            f"{escape(case.old.outcome or '?')} → {escape(case.new.outcome)}" if diff else escape(case.new.outcome))
        preview = _preview(case.sent)
        if preview:
            head += f" · <span class='preview'>{escape(preview)}</span>"
        # As many open as the terminal shows (--show's default): the first ones read without a click.
        out.append(f"<details{' open' if number < OPEN_CASES else ''}><summary>{head}</summary><div>")
        out.append(f"<p class='meta'>user {escape(case.user or '-')}, received {escape(when(case.received_at))}</p>")
        out += _sent(case.sent)
        if diff:
            out.append(f"<p class='was'>was: {escape(describe(case.old))}<br>now: {escape(describe(case.new))}</p>")
            out.append(_changes(case.changes()))
        else:
            out.append(f"<p class='was'>now: {escape(describe(case.new))}</p>"
                       f"<pre>{escape(show_value(case.new.reply))}</pre>")
        out.append("</div></details>")
    return out


def _sent(sent: dict | None) -> list[str]:
    """The lines render_text prints for the callback, as a headline and a list."""
    lines = sent_lines(sent)
    if not lines:
        return []
    head, items = lines[0], lines[1:]
    html = [f"<div class='sent'><b>{escape(head.partition(': ')[0])}:</b> {escape(head.partition(': ')[2])}"]
    if items:
        html.append("<ul>" + "".join(f"<li>{escape(item.strip())}</li>" for item in items) + "</ul>")
    html.append("</div>")
    return ["".join(html)]


def _changes(changes: list[Change]) -> str:
    rows = "".join(
        f"<tr class='{change.kind}'><td><code>{escape(change.path)}</code></td>"
        + (ABSENT_CELL if change.kind == ADDED else f"<td class='del'>{escape(show_value(change.old))}</td>")
        + (ABSENT_CELL if change.kind == REMOVED else f"<td class='add'>{escape(show_value(change.new))}</td>")
        + "</tr>" for change in changes)
    return ("<table class='changes'><tr><th>reply field</th><th>was</th><th>now</th></tr>"
            f"{rows}</table>")


def _preview(sent: dict | None) -> str:
    """The first text sent, cut short, for the one-line summary of a case."""
    texts = (sent or {}).get("texts") or [f["wording"] for f in (sent or {}).get("friends", ()) if "wording" in f]
    if texts and texts[0]["kept"] and texts[0]["text"]:
        text = texts[0]["text"]
        return f"“{text[:PREVIEW_CHARS]}{'…' if len(text) > PREVIEW_CHARS else ''}”"
    if sent and sent.get("invitees"):
        return "invites " + ", ".join(sent["invitees"][:5]) + (" …" if len(sent["invitees"]) > 5 else "")
    return ""
