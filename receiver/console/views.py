"""The console's pages: live, search, one record, the playground. Thin: queries.py reads,
present.py shapes, playground.py runs rules; these turn requests into those calls and templates."""

from __future__ import annotations

import json
import time

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from ..errors import ImhookError
from ..recording.record import Problem
from ..recording.sources import parse_time
from . import playground, present
from .queries import CHART_MINUTES, PAGE_SIZE, Search, StoreMissing

blueprint = Blueprint("views", __name__)
LIVE_REFRESH_SECONDS = 2
MAX_FIELD_CHARS = 500  # a filter longer than this is no filter a person typed


def _state():
    return current_app.extensions["imhook.console"]


def _commands() -> list[str]:
    from ..platforms import Platforms

    return sorted(Platforms().commands)


def _search_from(args, *, with_time: bool = True) -> tuple[Search, str]:
    """(the search the query string asks for, a problem to show or "")."""
    fields = {name: (args.get(name) or "").strip()[:MAX_FIELD_CHARS]
              for name in ("command", "user", "rule", "outcome", "text")}
    times, problem = {}, ""
    for name in ("since", "until") if with_time else ():
        value = (args.get(name) or "").strip()
        if value:
            try:
                times[name] = parse_time(value)
            except ImhookError as exc:
                problem = f"{name}: {exc}"
    return Search(**fields, **times), problem


def _rows(records):
    policy = present.display_policy(_state().recording)
    return [present.row_view(r, policy) for r in records]


@blueprint.get("/")
def index():
    return redirect(url_for("views.live"))


@blueprint.get("/live")
def live():
    search, _ = _search_from(request.args, with_time=False)
    return render_template("live.html", search=search, outcomes=present.OUTCOMES, commands=_commands(),
                           refresh=LIVE_REFRESH_SECONDS, **_feed(search))


@blueprint.get("/live/feed")
def live_feed():
    search, _ = _search_from(request.args, with_time=False)
    return render_template("_feed.html", **_feed(search))


def _feed(search: Search) -> dict:
    state, now = _state(), time.time()
    try:
        page = state.reader.search(search, limit=PAGE_SIZE, scan_rows=state.settings["text_search_rows"],
                                   user_salt=state.user_salt)
        counts = state.reader.per_minute(search, now=now, user_salt=state.user_salt)
    except StoreMissing as exc:
        return {"problem": str(exc), "rows": [], "chart": "", "total": 0, "minutes": CHART_MINUTES,
                "updated": present.when(now, short=True)}
    chart = present.minute_chart(counts, now=now, minutes=CHART_MINUTES)
    axis = present.chart_axis(counts, now=now, minutes=CHART_MINUTES)
    totals: dict[str, int] = {}
    for per_outcome in counts.values():
        for outcome, n in per_outcome.items():
            totals[outcome] = totals.get(outcome, 0) + n
    return {"problem": "", "rows": _rows(page.records), "chart": chart, "axis": axis, "totals": totals,
            "colours": present.COLOURS, "total": sum(totals.values()), "minutes": CHART_MINUTES,
            "updated": present.when(now, short=True)}


@blueprint.get("/search")
def search():
    state = _state()
    query, problem = _search_from(request.args)
    page, rows = None, []
    if not problem:
        try:
            page = state.reader.search(query, limit=PAGE_SIZE, scan_rows=state.settings["text_search_rows"],
                                       user_salt=state.user_salt)
            rows = _rows(page.records)
        except StoreMissing as exc:
            problem = str(exc)
    older = None
    if page and page.more and page.records and not isinstance(page.records[-1], Problem):
        args = {k: v for k, v in request.args.items() if v and k != "until"}
        older = url_for("views.search", **args, until=repr(page.records[-1].received_at))
    return render_template("search.html", search=query, args=request.args, rows=rows, page=page, problem=problem,
                           older=older, outcomes=present.OUTCOMES, commands=_commands(),
                           scan_rows=state.settings["text_search_rows"])


@blueprint.get("/record/<int:record_id>")
def record(record_id: int):
    state = _state()
    try:
        found = state.reader.record(record_id)
    except StoreMissing as exc:
        abort(503, str(exc))
    if found is None:
        abort(404, f"no record #{record_id}")
    if isinstance(found, Problem):
        return render_template("error.html", code=500, message=f"record {found.where}: {found.why}"), 500
    return render_template("record.html", **present.record_view(found, state.recording))


@blueprint.get("/playground")
def playground_page():
    state = _state()
    body, command, picked = "", "", None
    if request.args.get("record", "").isdigit():
        try:
            picked = state.reader.record(int(request.args["record"]))
        except StoreMissing:
            picked = None
        if picked is not None and not isinstance(picked, Problem):
            shown, is_json = present.shown_body(picked, present.display_policy(state.recording))
            body = present.pretty(shown) if is_json else shown
            command = picked.command
    try:
        recent = state.reader.search(Search(), limit=20).records
    except StoreMissing:
        recent = []
    return render_template("playground.html", rules=playground.rules_section(state.config_text), body=body,
                           command=command, picked=picked if not isinstance(picked, Problem) else None,
                           recent=_rows(recent), commands=_commands(), settings=state.settings)


@blueprint.post("/playground/try")
def playground_try():
    state = _state()
    form = request.form
    recorded = None
    if form.get("record", "").isdigit():
        try:
            recorded = state.reader.record(int(form["record"]))
        except StoreMissing:
            recorded = None
    try:
        tried = playground.try_callback(form.get("rules", ""), form.get("body", "").encode("utf-8", "surrogatepass"),
                                        form.get("command", "").strip(), state.config)
    except ImhookError as exc:
        return render_template("_tried.html", error=str(exc))
    policy = present.display_policy(state.recording)
    reply = policy.value(tried.reply)
    return render_template("_tried.html", error="", tried=tried, reply=present.pretty(reply),
                           recorded=recorded if recorded is not None and not isinstance(recorded, Problem) else None,
                           diff=present.rewrite_diff(_json(form.get("body", "")), reply))


def _json(text: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


@blueprint.post("/playground/replay")
def playground_replay():
    state = _state()
    try:
        hours = float(request.form.get("hours") or 1)
    except ValueError:
        hours = -1
    limit = state.settings["replay_max_hours"]
    if not 0 < hours <= limit:
        return render_template("_replayed.html", error=f"hours: give a number above 0, at most {limit:g} "
                                                       "(console.replay_max_hours)")
    try:
        done = playground.replay(request.form.get("rules", ""), state.config, state.reader, hours=hours,
                                 settings=state.settings, where=state.reader.where)
    except ImhookError as exc:
        return render_template("_replayed.html", error=str(exc))
    return render_template("_replayed.html", error="", done=done)

