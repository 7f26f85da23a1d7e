"""The console's pages through Flask's test client: no secret shown, texts as the privacy settings allow,
search filters and their indexes, the playground. (A real browser: test_console_browser.py.)"""

from __future__ import annotations

import sqlite3
import time

import pytest
from click.testing import CliRunner

from .consolekit import SIGN, console_app, csrf_of, log_in, message, record_callbacks
from .consolekit import client, recorded  # noqa: F401  (fixtures shared by the console tests)


# --- secrets and privacy -------------------------------------------------------------------------------


def test_no_page_shows_the_sign_even_when_the_recording_kept_it(client, recorded):
    stored = sqlite3.connect(recorded / "rec.sqlite").execute("SELECT query FROM recordings").fetchall()
    assert all(SIGN in row[0] for row in stored)  # keep_sign: true kept it
    for path in ("/live", "/live/feed", "/search", "/search?text=badword", "/record/1", "/record/2",
                 "/playground?record=2"):
        page = client.get(path).text
        assert SIGN not in page and "Sign" not in page, path


def test_texts_are_shown_only_when_the_recording_kept_them(tmp_path):
    record_callbacks(tmp_path / "rec.sqlite", [message("secret plan at dawn")], store_text=False)
    client = console_app(tmp_path, recording="store_text: false").test_client()
    log_in(client)
    for path in ("/live", "/search", "/record/1", "/playground?record=1"):
        assert "secret plan" not in client.get(path).text, path
    assert "(text not kept)" in client.get("/search").text
    assert "were not kept" in client.get("/record/1").text


def test_texts_kept_by_older_records_are_hidden_once_store_text_is_off(recorded):
    client = console_app(recorded, recording="store_text: false").test_client()
    log_in(client)
    for path in ("/live", "/search", "/record/2", "/playground?record=2"):
        assert "you badword" not in client.get(path).text, path
    assert "sha256:" in client.get("/record/2").text


def test_a_hashed_text_is_still_found_by_searching_for_the_whole_text(tmp_path):
    record_callbacks(tmp_path / "rec.sqlite", [message("meet me at noon"), message("other")], store_text=False)
    client = console_app(tmp_path, recording="store_text: false").test_client()
    log_in(client)
    page = client.get("/search?text=meet me at noon").text
    assert page.count('href="/record/') == 1 and 'href="/record/1"' in page


# --- search --------------------------------------------------------------------------------------------


def _found(client, query: str) -> set[int]:
    import re

    return {int(n) for n in re.findall(r'href="/record/(\d+)"', client.get("/search?" + query).text)}


def test_search_filters_select_what_they_name(client):
    assert _found(client, "") == {1, 2, 3}
    assert _found(client, "outcome=refuse") == {2}
    assert _found(client, "outcome=allow") == {1, 3}
    assert _found(client, "rule=bad_words") == {2}
    assert _found(client, "user=bob") == {3}
    assert _found(client, "command=C2C.CallbackBeforeSendMsg") == {1, 2, 3}
    assert _found(client, "command=Group.CallbackBeforeSendMsg") == set()
    assert _found(client, "text=lunch") == {3}
    assert _found(client, "text=lunch&user=alice") == set()
    assert _found(client, "since=1h") == {1, 2, 3}
    assert _found(client, "until=1h") == set()


def test_a_time_that_cannot_be_read_is_said_not_searched(client):
    page = client.get("/search?since=yesterday-ish").text
    assert "cannot read the time" in page and "/record/" not in page


def test_the_older_link_pages_back_in_time(tmp_path):
    from receiver.console import views

    record_callbacks(tmp_path / "rec.sqlite", [message(f"m{i}") for i in range(5)], when=time.time() - 100)
    client = console_app(tmp_path).test_client()
    log_in(client)
    views.PAGE_SIZE, saved = 2, views.PAGE_SIZE
    try:
        first = client.get("/search").text
        assert _found(client, "") == {5, 4}
        import html
        import re

        older = html.unescape(re.search(r'href="([^"]+)">Older', first).group(1))
        assert {int(n) for n in re.findall(r'href="/record/(\d+)"', client.get(older).text)} == {3, 2}
    finally:
        views.PAGE_SIZE = saved


def test_the_live_feed_shows_refusals_with_their_rule_and_a_chart(client):
    feed = client.get("/live/feed?outcome=refuse").text
    assert "you badword" in feed and "bad_words" in feed and "hello there" not in feed
    assert "<svg class='chart'" in feed and "1 refuse" in feed


def test_the_record_page_shows_trace_reply_reason_and_the_rewrite_as_a_diff(tmp_path):
    record_callbacks(tmp_path / "rec.sqlite", [message("you badword")])
    record_callbacks(tmp_path / "rec.sqlite", [message("you badword")],
                     rules="{use: sensitive_words, name: masker, config: {words: [badword], action: mask}}")
    client = console_app(tmp_path).test_client()
    log_in(client)
    refused = client.get("/record/1").text
    assert "bad_words" in refused and "Trace" in refused and "Callback as sent" in refused and "Reply" in refused
    rewritten = client.get("/record/2").text
    assert "Rewritten message" in rewritten and "masker" in rewritten
    assert 'class="del">-' in rewritten and "you badword" in rewritten and "you *******" in rewritten


def test_an_unknown_record_is_404(client):
    assert client.get("/record/999").status_code == 404


def test_no_recording_yet_is_said_on_the_page(tmp_path):
    client = console_app(tmp_path).test_client()
    log_in(client)
    assert "nothing recorded yet" in client.get("/live").text
    assert "nothing recorded yet" in client.get("/search").text


@pytest.mark.parametrize("query, index", [
    ("", "recordings_time"), ("outcome=refuse", "recordings_outcome_time"), ("rule=r", "recordings_rule_time"),
    ("command=c", "recordings_command"), ("rule=r&outcome=shed", "recordings_rule_time"),
    ("text=t&outcome=refuse", "recordings_outcome_time"),
])
def test_every_search_is_served_by_an_index_without_sorting(recorded, query, index):
    from urllib.parse import parse_qsl

    from receiver.console.queries import SQLITE_USER_TABLES, Search, search_query

    search = Search(**dict(parse_qsl(query)))
    q = search_query(search, SQLITE_USER_TABLES, limit=51, scan_rows=1000)
    plan = " | ".join(row[3] for row in sqlite3.connect(recorded / "rec.sqlite").execute(
        "EXPLAIN QUERY PLAN " + q.sql, q.args))
    assert f"INDEX {index}" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("query, time_range", [
    ("user=u", ""), ("user=u&outcome=refuse&rule=r", ""), ("user=u&since=1&until=2", " AND received_at>? AND received_at<?"),
    ("user=u&text=t", ""),
])
def test_a_user_search_streams_the_sorted_user_table_and_sorts_only_the_newest_rows(recorded, query, time_range):
    """Schema 4 (recording/user_index.py): the sorted table's key yields the rows newest first; only
    the unsorted newest minute is sorted, and no search reads every record."""
    from urllib.parse import parse_qsl

    from receiver.console.queries import SQLITE_USER_TABLES, Search, search_query

    q = search_query(Search(**dict(parse_qsl(query))), SQLITE_USER_TABLES, limit=51, scan_rows=1000)
    rows = sqlite3.connect(recorded / "rec.sqlite").execute("EXPLAIN QUERY PLAN " + q.sql, q.args).fetchall()
    plan = " | ".join(row[3] for row in rows)
    newest_arm = next(row[0] for row in rows if row[3] == "RIGHT")
    assert f"SEARCH u USING PRIMARY KEY (user=?{time_range})" in plan, plan
    assert "SCAN r" not in plan and "recordings_time" not in plan, plan
    assert all(row[1] == newest_arm for row in rows if "TEMP B-TREE" in row[3]), plan


# --- playground ----------------------------------------------------------------------------------------


def _try(client, rules: str, body: str, record: str = ""):
    token = csrf_of(client.get("/playground").text)
    return client.post("/playground/try", data={"rules": rules, "body": body, "csrf_token": token,
                                                "record": record}).text


def test_the_playground_starts_from_the_running_rules_and_a_picked_record(client):
    page = client.get("/playground?record=2").text
    assert "bad_words" in page and "you badword" in page and "Record" in page


def test_an_edited_rule_changes_the_decision_and_shows_the_trace(client):
    import json

    from .consolekit import message as make

    body = json.dumps(make("hello there"))
    before = _try(client, "rules:\n  - {use: sensitive_words, name: bad_words, config: {words: [badword]}}\n", body)
    assert 'id="tried-outcome">allow' in before
    after = _try(client, "rules:\n  - {use: sensitive_words, name: strict, config: {words: [hello], action: refuse}}\n",
                 body, record="1")
    assert 'id="tried-outcome">refuse' in after and "strict" in after and "changed" in after


@pytest.mark.parametrize("rules, expected", [
    ("rules:\n  - use: sensitive_words\n    config:\n      wordz: [x]\n",
     "playground.yaml:4: rules[0].config.wordz"),
    ("rules:\n  - use: no_such_rule\n", "playground.yaml:2: rules[0].use"),
    ("rules: [\n", "playground.yaml:2: not valid YAML"),
    ("app_id: 1\nrules: []\n", "playground.yaml:1: app_id: the playground takes rules: and chain: only"),
    ("chain: {deadline_ms: 5000}\nrules: []\n", "playground.yaml:1: chain.deadline_ms"),
])
def test_rule_mistakes_read_as_imhook_check_reports_them(client, rules, expected):
    page = _try(client, rules, "{}")
    assert 'id="tried-error"' in page and expected in page, page


def test_the_same_mistake_gives_imhook_check_the_same_message(tmp_path):
    from receiver.cli import main

    file = tmp_path / "playground.yaml"
    file.write_text("app_id: 1400000000\nrules:\n  - use: sensitive_words\n    config:\n      wordz: [x]\n")
    result = CliRunner().invoke(main, ["check", "--skip-paths", str(file)])
    assert result.exit_code == 2 and "playground.yaml:5: rules[0].config.wordz" in result.output


def test_a_shared_rate_limit_counts_in_memory_in_the_playground(client):
    import json

    rules = ("rules:\n  - {use: rate_limit, name: rl, config: {backend: redis, redis_url: 'redis://127.0.0.1:1/0', "
             "limits: [{key: sender, max: 1, per_seconds: 60}]}}\n")
    page = _try(client, rules, json.dumps(message("hi")))
    assert "counts in memory here" in page and 'id="tried-outcome">allow' in page


def test_replay_in_the_page_reports_what_the_edited_rules_change(client):
    token = csrf_of(client.get("/playground").text)
    rules = "rules:\n  - {use: sensitive_words, name: strict, config: {words: [lunch], action: refuse}}\n"
    page = client.post("/playground/replay", data={"rules": rules, "hours": "1", "csrf_token": token}).text
    assert "<b>3</b> replayed" in page and 'id="replay-changed">2<' in page
    assert "<iframe" in page and "sandbox" in page and "imhook replay report" in page
    too_far = client.post("/playground/replay", data={"rules": rules, "hours": "100000", "csrf_token": token}).text
    assert "console.replay_max_hours" in too_far


def test_the_replay_is_bounded_by_replay_max_records(recorded):
    client = console_app(recorded, console="replay_max_records: 2").test_client()
    log_in(client)
    token = csrf_of(client.get("/playground").text)
    page = client.post("/playground/replay", data={"rules": "rules: []", "hours": "1", "csrf_token": token}).text
    assert "<b>2</b> replayed" in page and "replay_max_records" in page


def test_the_playground_leaves_the_running_rules_alone(recorded):
    app = console_app(recorded)
    client = app.test_client()
    log_in(client)
    before = app.extensions["imhook.console"].config.rules
    _try(client, "rules: []\n", "{}")
    assert app.extensions["imhook.console"].config.rules == before


