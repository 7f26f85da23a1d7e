"""Replay: recordings made over real HTTP, replayed offline and over HTTP against other rules."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.client import post_callback
from receiver.recording.sources import parse_time

from .helpers import APP_ID, ROOT, TOKEN, request_samples, sample, start_server
from .test_recording import message
from .test_recording_rules import rules_yaml

ENV = {"PYTHONPATH": str(ROOT)}  # served workers import the test rule from tests/
RULES_A = ({"name": "no_apple", "word": "apple"},)
RULES_B = ({"name": "no_banana", "word": "banana"}, {"name": "mask_cherry", "word": "cherry", "action": "mask"})
# user, text, outcome under A (recorded), outcome under B (replayed)
MESSAGES = [
    ("u-plain", "hello there", "allow", "allow"),
    ("u-apple", "an apple", "refuse", "allow"),
    ("u-banana", "a banana", "allow", "refuse"),
    ("u-both", "apple and banana", "refuse", "refuse"),  # another rule, the same reply: unchanged
    ("u-cherry", "cherry pie", "allow", "rewrite"),
]
CHANGED_USERS = {user for user, _, a, b in MESSAGES if a != b}
BAD_SIGNED = 2


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A recordings db written by a served imhook (2 workers) with rules A."""
    folder = tmp_path_factory.mktemp("recorded")
    db = folder / "rec.sqlite"
    server = start_server(folder, rules_yaml(*RULES_A, recording=f"recording: {{path: {json.dumps(str(db))}}}\n"),
                          workers=2, env=ENV)
    try:
        bodies = [sample(name) for name in request_samples()]
        bodies += [message(text, user=user) for user, text, _, _ in MESSAGES]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda b: post_callback(server.callback_url, b, app_id=APP_ID, token=TOKEN),
                                    bodies))
        for body in bodies[:BAD_SIGNED]:
            post_callback(server.callback_url, body, app_id=APP_ID, token="not-the-token")
    finally:
        assert server.stop() == 0
    assert all(r.ok for r in results)
    return db


def write_rules(folder: Path, rules) -> str:
    path = folder / "rules.yaml"
    path.write_text(rules_yaml(*rules), encoding="utf-8")
    return str(path)


def replay(*args: str) -> tuple[int, dict, str]:
    """Run `imhook replay ... --json -`; return (exit code, the JSON, the text report)."""
    result = CliRunner().invoke(main, ["replay", *args, "--json", "-"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def changed_users(data: dict) -> set[str]:
    return {case["user"] for case in data["changed"]}


def test_replay_against_the_recorded_rules_changes_nothing(recorded, tmp_path):
    code, data, _ = replay(str(recorded), "--rules", write_rules(tmp_path, RULES_A), "--fail-on-change")
    assert code == 0
    total = len(request_samples()) + len(MESSAGES)
    assert data["summary"] == {"total": total, "unchanged": total, "changed": 0, "new": 0, "error": 0,
                               "skipped_rejected": BAD_SIGNED, "redacted": 0}


def test_replay_offline_shows_exactly_the_expected_changes(recorded, tmp_path):
    code, data, text = replay(str(recorded), "--rules", write_rules(tmp_path, RULES_B), "--fail-on-change")
    assert code == 1
    assert data["mode"] == "offline" and data["summary"]["changed"] == len(CHANGED_USERS)
    assert changed_users(data) == CHANGED_USERS
    transitions = {(t["from"], t["to"]): t["count"] for t in data["transitions"]}
    assert transitions == {("refuse", "allow"): 1, ("allow", "refuse"): 1, ("allow", "rewrite"): 1}
    by_rule = {rule: counts["changed"] for rule, counts in data["by_rule"].items() if counts["changed"]}
    assert by_rule == {"no_apple": 1, "no_banana": 1, "mask_cherry": 1}
    assert data["by_rule"]["no_banana"]["unchanged"] == 1  # u-both: refused before and now
    assert data["by_command"]["C2C.CallbackBeforeSendMsg"]["changed"] == len(CHANGED_USERS)
    [cherry] = [c for c in data["changed"] if c["user"] == "u-cherry"]
    assert (cherry["old"]["outcome"], cherry["new"]["outcome"], cherry["new"]["rule"]) == ("allow", "rewrite",
                                                                                          "mask_cherry")
    assert [(c["path"], c["change"]) for c in cherry["changes"]] == [("MsgBody", "added")]
    assert "****** pie" in json.dumps(cherry["changes"][0]["new"], ensure_ascii=False)
    assert [t["text"] for t in cherry["sent"]["texts"]] == ["cherry pie"]  # what was sent, beside the replies
    assert "Changed (3):" in text and "****** pie" in text and '  text: "cherry pie"' in text
    assert "cb/s" not in text  # no progress bar when stderr is not a terminal


def test_replay_over_http_against_a_second_instance_with_other_rules(recorded, tmp_path):
    server = start_server(tmp_path, rules_yaml(*RULES_B, recording="recording: {enabled: false}\n"), env=ENV)
    try:
        code, data, _ = replay(str(recorded), "--url", server.callback_url, "--token", TOKEN, "--app-id", APP_ID,
                               "--concurrency", "3", "--rate", "500", "--quiet")
    finally:
        server.stop()
    assert code == 0 and data["mode"] == "http"
    assert data["summary"]["changed"] == len(CHANGED_USERS) and data["summary"]["error"] == 0
    assert changed_users(data) == CHANGED_USERS
    transitions = {(t["from"], t["to"]): t["count"] for t in data["transitions"]}
    assert transitions == {("refuse", "allow"): 1, ("allow", "refuse"): 1, ("allow", "rewrite"): 1}


def test_replay_over_http_reports_an_unreachable_receiver_per_record(recorded):
    code, data, _ = replay(str(recorded), "--url", "http://127.0.0.1:9/callback", "--token", TOKEN,
                           "--command", "C2C.CallbackBeforeSendMsg", "--timeout", "1")
    # Nothing was tested: exit 3, and no error line shows the Sign the request carried.
    assert code == 3 and data["summary"]["error"] == data["summary"]["total"] > 0
    assert all("HTTP request failed: cannot reach http://127.0.0.1:9/callback" in e["why"] for e in data["errors"])
    assert not any("Sign=" in e["why"] and "Sign=<hidden>" not in e["why"] for e in data["errors"])


@pytest.mark.parametrize("filters, total", [
    (["--command", "C2C.CallbackBeforeSendMsg"], len(MESSAGES) + 1),
    (["--command", "C2C.CallbackBeforeSendMsg", "--command", "Group.CallbackBeforeCreateGroup"], len(MESSAGES) + 2),
    (["--user", "u-apple"], 1),
    (["--since", "1h"], len(request_samples()) + len(MESSAGES)),
    (["--until", "1h"], 0),
    (["--since", "2999-01-01"], 0),
])
def test_replay_filters(recorded, tmp_path, filters, total):
    _, data, _ = replay(str(recorded), "--rules", write_rules(tmp_path, RULES_A), *filters)
    assert data["summary"]["total"] == total


def test_include_rejected_replays_bad_signed_requests_too(recorded, tmp_path):
    _, data, _ = replay(str(recorded), "--rules", write_rules(tmp_path, RULES_A), "--include-rejected")
    assert data["summary"]["skipped_rejected"] == 0
    # Offline replay trusts the request, so a callback once refused for its Sign is now answered.
    # The bad-signed ones were the first samples: after-callbacks, so now plain notifications.
    assert data["transitions"] == [{"from": "rejected", "to": "notify", "count": BAD_SIGNED}]
    assert data["summary"]["changed"] == BAD_SIGNED


def test_html_report_is_self_contained(recorded, tmp_path):
    page = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["replay", str(recorded), "--rules", write_rules(tmp_path, RULES_B),
                                       "--html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and html.count("<svg") == 2 and "<style>" in html
    for external in ("<link", "<script", "src=", "@import", "url("):
        assert external not in html
    assert "mask_cherry" in html and "****** pie" in html


@pytest.mark.parametrize("text, expected", [
    ("1700000000", 1_700_000_000.0),
    ("1700000000.5", 1_700_000_000.5),
    ("2h", 1_700_000_000.0 - 7200),
    ("7d", 1_700_000_000.0 - 7 * 86400),
    ("2023-11-14T22:13:20+00:00", 1_700_000_000.0),
    ("2023-11-14T22:13:20Z", 1_700_000_000.0),
])
def test_parse_time(text, expected):
    assert parse_time(text, now=1_700_000_000.0) == expected


def test_parse_time_says_what_it_accepts():
    with pytest.raises(Exception, match="epoch seconds, an ISO 8601"):
        parse_time("yesterday")
