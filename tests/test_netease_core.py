"""NetEase IM through the sans-I/O core: auth, parsing, replies, drift, hostile bodies (PROTOCOL.md §8)."""

from __future__ import annotations

import json
import time

import pytest

from receiver.core import HttpRequest
from receiver.netease import auth
from receiver.netease.events import EVENTS, UNKNOWN

from .helpers import (NETEASE_APP_KEY, NETEASE_SECRET, handle_netease, make_receiver_all, netease_headers,
                      request_samples, rules_yaml, sample)

NO_RULES = rules_yaml()
TEXT = {"eventType": 1, "fromAccount": "alice", "to": "bob", "msgType": "TEXT", "body": "hello",
        "msgTimestamp": "1700000000000"}


def raw(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def test_checksum_is_sha1_of_secret_md5_curtime():
    assert auth.body_md5(b"") == "d41d8cd98f00b204e9800998ecf8427e"  # RFC 1321's vector
    md5 = auth.body_md5(b"{}")
    import hashlib
    assert auth.checksum("s", md5, 1) == hashlib.sha1(f"s{md5}1".encode()).hexdigest()


@pytest.mark.parametrize("name", request_samples("netease"))
def test_every_sample_is_parsed_known_and_allowed(name):
    outcome = handle_netease(make_receiver_all(NO_RULES), sample(name, "netease"))
    assert outcome.status == 200, outcome.reply
    assert outcome.callback.known and outcome.callback.is_before
    assert outcome.callback.platform == "netease"
    assert outcome.callback.drift == ()
    assert outcome.reply == {"errCode": 0, "responseCode": 200}


def _tamper(change):
    def make(body: bytes) -> dict:
        headers = netease_headers(body)
        change(headers)
        return headers
    return make


NOW = time.time


# (what is wrong, headers from the body, status, words in the message)
AUTH_CASES = [
    ("valid", lambda b: netease_headers(b), 200, ""),
    ("upper-case CheckSum", _tamper(lambda h: h.update(CheckSum=h["CheckSum"].upper())), 200, ""),
    ("rotated: second secret", lambda b: netease_headers(b, secret="old-secret"), 200, ""),
    ("wrong CheckSum", _tamper(lambda h: h.update(CheckSum="0" * 40)), 401, "CheckSum"),
    ("wrong secret", lambda b: netease_headers(b, secret="nope"), 401, "CheckSum"),
    ("MD5 of another body", _tamper(lambda h: h.update(MD5=auth.body_md5(b"other"))), 401, "MD5"),
    ("stale CurTime", lambda b: netease_headers(b, now=time.time() - 600), 401, "window"),
    ("future CurTime", lambda b: netease_headers(b, now=time.time() + 600), 401, "window"),
    ("CurTime in seconds", _tamper(lambda h: h.update(CurTime=str(int(time.time())))), 401, "window"),
    ("CurTime not digits", _tamper(lambda h: h.update(CurTime="12a")), 401, "integer"),
    ("CurTime 10^400", _tamper(lambda h: h.update(CurTime="1" * 400)), 401, "range"),
    ("no CheckSum", _tamper(lambda h: h.pop("CheckSum")), 401, "CheckSum"),
    ("no MD5", _tamper(lambda h: h.pop("MD5")), 401, "MD5"),
    ("no CurTime", _tamper(lambda h: h.pop("CurTime")), 401, "CurTime"),
    ("no AppKey", _tamper(lambda h: h.pop("AppKey")), 401, "AppKey"),
    ("no headers", lambda b: {}, 401, "AppKey"),
    ("another AppKey", lambda b: netease_headers(b, app_key="other"), 403, "AppKey"),
    ("lone surrogate AppKey", _tamper(lambda h: h.update(AppKey="\ud800")), 403, "AppKey"),
    ("NUL in CheckSum", _tamper(lambda h: h.update(CheckSum="\0" * 40)), 401, "CheckSum"),
]


@pytest.mark.parametrize("case, make_headers, status, words", AUTH_CASES, ids=[c[0] for c in AUTH_CASES])
def test_authentication(case, make_headers, status, words):
    receiver = make_receiver_all(NO_RULES, {"IMHOOK_NETEASE_APP_SECRET": f"{NETEASE_SECRET},old-secret"})
    body = raw(TEXT)
    outcome = handle_netease(receiver, body, headers=make_headers(body))
    assert outcome.status == status, outcome.reply
    if status != 200:
        assert outcome.reply["errCode"] == 1 and outcome.reply["responseCode"] == status
        assert words in outcome.reply["errMsg"]
        assert NETEASE_SECRET not in json.dumps(outcome.reply)


def test_without_a_netease_key_both_paths_answer_404():
    receiver = make_receiver_all(NO_RULES, {"IMHOOK_NETEASE_APP_KEY": "", "IMHOOK_NETEASE_APP_SECRET": ""})
    for feed in ("netease", "netease.copy"):
        for method in ("POST", "GET"):
            body = raw(TEXT)
            outcome = receiver.handle(HttpRequest(method, {}, body, netease_headers(body), platform=feed))
            assert outcome.status == 404, outcome.reply


def test_a_key_without_a_secret_is_a_config_error():
    from receiver.errors import ConfigError
    with pytest.raises(ConfigError, match="no secret"):
        make_receiver_all(NO_RULES, {"IMHOOK_NETEASE_APP_SECRET": ""})


# (body, status): bad bodies are 400 with JSON, never a 5xx.
BODY_CASES = [
    (b"not json", 400), (b"[1, 2]", 400), (b"", 400), (b"\xff\xfe", 400), (raw({"fromAccount": "a"}), 400),
    (raw({"eventType": "one"}), 400), (raw({"eventType": [1]}), 400), (raw({"eventType": True}), 400),
    (raw({"eventType": None}), 400), (b'{"eventType": 1, "body": "\\ud800"}', 200),
    (raw({"eventType": 99}), 200), (raw({"eventType": "99999999999999999999"}), 400),
    (b'{"eventType": 1, "msgTimestamp": ' + b"9" * 5000 + b"}", 200),
    (b'{"eventType": 1, "x": ' + b"[" * 600 + b"]" * 600 + b"}", 200),
    (raw({"eventType": 1, "body": "x" * 900_000}), 200),
    (raw({"eventType": 1, "body": "x" * 1_100_000}), 413),
]


@pytest.mark.parametrize("body, status", BODY_CASES, ids=range(len(BODY_CASES)))
def test_hostile_bodies_are_answered_without_a_5xx(body, status):
    outcome = handle_netease(make_receiver_all(NO_RULES), body)
    assert outcome.status == status, outcome.reply
    assert set(outcome.reply) >= {"errCode", "responseCode"}


def test_numbers_as_strings_and_strings_as_numbers_are_read():
    body = {**TEXT, "eventType": "1", "fromAccount": 12345, "to": 678}
    outcome = handle_netease(make_receiver_all(NO_RULES), body)
    event = outcome.callback.event
    assert (outcome.callback.command, event.actor, event.peer) == ("NetEase.P2PMessage", "12345", "678")
    assert outcome.callback.drift == ()


def test_drift_is_kept_raw_and_named_and_decisive_drift_is_undecidable():
    body = {**TEXT, "fromClientType": {"odd": 1}, "body": ["not", "text"]}
    outcome = handle_netease(make_receiver_all(rules_yaml("{use: sensitive_words, config: {words: [bad]}}")), body)
    callback = outcome.callback
    assert set(callback.drift) == {"fromClientType", "body"}
    assert callback.body["body"] == ["not", "text"]
    assert callback.undecidable.startswith("unreadable body")
    assert outcome.reply == {"errCode": 0, "responseCode": 200}  # chain.on_error: allow


def test_unknown_event_types_are_acknowledged_and_logged_once_each(caplog):
    receiver = make_receiver_all(NO_RULES)
    for _ in range(3):
        outcome = handle_netease(receiver, {"eventType": 72, "fromAccount": "a"})
        assert outcome.status == 200 and outcome.reply == {"errCode": 0, "responseCode": 200}
        assert outcome.callback.command == UNKNOWN and not outcome.callback.known
    assert sum("eventType 72" in r.getMessage() for r in caplog.records) == 1


def test_unknown_event_types_logged_are_bounded(caplog):
    from receiver.netease import platform as p
    receiver = make_receiver_all(NO_RULES)
    for event_type in range(1000, 1000 + p.MAX_UNKNOWN_EVENTS + 5):
        handle_netease(receiver, {"eventType": event_type})
    member = receiver.platform.member("netease")
    assert len(member._unknown._seen) == p.MAX_UNKNOWN_EVENTS
    assert sum("no longer logged" in r.getMessage() for r in caplog.records) == 1


def test_every_event_type_of_the_table_builds_its_event_from_a_bare_body():
    receiver = make_receiver_all(NO_RULES)
    for event_type, spec in EVENTS.items():
        outcome = handle_netease(receiver, {"eventType": event_type})
        assert outcome.status == 200 and outcome.callback.command == spec.name
        assert outcome.callback.event.action == spec.action
        assert not outcome.callback.undecidable


def test_login_token_never_reaches_the_event():
    outcome = handle_netease(make_receiver_all(NO_RULES), sample("eventType40.qchat-login", "netease"))
    assert "xxxxx" not in repr(outcome.callback.event)
    assert outcome.callback.event.custom_tag == "custom-ygy" and outcome.callback.event.qchat


# Copy feed: its own numbering, as strings; never decided.
@pytest.mark.parametrize("event_type, command", [("1", "NetEase.Copy.Message"), ("7", "NetEase.Copy.P2PRecall"),
                                                 (8, "NetEase.Copy.TeamRecall"), ("55", "NetEase.Copy.Other"),
                                                 ({"x": 1}, "NetEase.Copy.Other")])
def test_copy_feed_records_without_deciding(event_type, command):
    receiver = make_receiver_all(rules_yaml("{use: sensitive_words, config: {words: [hello], action: refuse}}"))
    outcome = handle_netease(receiver, {"eventType": event_type, "body": "hello"}, feed="netease.copy")
    assert outcome.status == 200 and outcome.reply == {"errCode": 0, "responseCode": 200}
    assert outcome.callback.command == command and not outcome.callback.is_before
    assert outcome.outcome_name == "notify"


def test_copy_feed_address_check_empty_body_is_200_and_bad_auth_otherwise_401():
    receiver = make_receiver_all(NO_RULES)
    assert handle_netease(receiver, b"", headers={}, feed="netease.copy").status == 200
    body = raw({"eventType": "1"})
    assert handle_netease(receiver, body, headers={}, feed="netease.copy").status == 401


def test_replay_reports_describe_a_netease_record():
    from receiver.recording.record import Record
    from receiver.recording.sent import describe_sent

    body = json.dumps(sample("callback_p2p_text_eventType1", "netease")).encode()
    record = Record(received_at=time.time(), command="NetEase.P2PMessage", query={"imhook.platform": "netease"},
                    body=body)
    summary = describe_sent(record)
    assert summary["action"] == "message.send" and summary["from"] == "000266", summary
    assert "Hello" in json.dumps(summary)


def test_rules_import_no_platform_adapter_and_the_netease_core_no_flask():
    import subprocess
    import sys

    code = ("import sys, rules.loader, rules.builtin.recall_policy, rules.builtin.sensitive_words;"
            "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith(('receiver.tencent', "
            "'receiver.netease'))}));"
            "import receiver.core, receiver.netease.platform; print('flask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "False"]


# Hostile attach strings (JSON in a string: the sender chooses its depth and size).
ATTACHES = [
    ("[" * 100_000 + "]" * 100_000, 0),  # deeper than json.loads goes: not decoded, passes untouched
    (json.dumps({"t": "x" * 1_000_00, "n": "\0bad\ud800"}), 1),
    (json.dumps({"a": [{"b": "bad"}] * 5000}), 5000),  # capped at MAX_ATTACH_TEXTS strings scanned
    ("not json", 0),
]


@pytest.mark.parametrize("attach, masked", ATTACHES, ids=range(len(ATTACHES)))
def test_hostile_custom_attaches_are_answered(attach, masked):
    from receiver.netease.message import MAX_ATTACH_TEXTS

    # What is scanned, not how fast: a loaded test machine must not turn 1,000 scans into on_error.
    receiver = make_receiver_all(rules_yaml("{use: sensitive_words, budget_ms: 1900, config: {words: [bad]}}",
                                            extra="chain: {deadline_ms: 1900}"))
    body = {"eventType": 1, "fromAccount": "a", "to": "b", "msgType": "CUSTOM", "attach": attach}
    outcome = handle_netease(receiver, body)
    assert outcome.status == 200
    rewritten = outcome.reply.get("modifyResponse", {}).get("attach", "")
    assert rewritten.count("***") == min(masked, MAX_ATTACH_TEXTS)


@pytest.mark.parametrize("event_type, status, command", [(2, 200, "NetEase.TeamMessage"), (35, 200,
                                                         "NetEase.RecallMessage"), (None, 400, None)])
def test_a_body_too_deep_to_parse_is_answered_by_on_error_as_its_event(event_type, status, command):
    receiver = make_receiver_all(rules_yaml("{use: sensitive_words, config: {words: [x]}}",
                                            "{use: recall_policy}", extra="chain: {on_error: refuse}"))
    head = b'{"eventType": %d, ' % event_type if event_type else b"{"
    outcome = handle_netease(receiver, head + b'"x": ' + b"[" * 600 + b"]" * 600 + b"}")
    assert outcome.status == status, outcome.reply
    if command:
        assert outcome.callback.command == command and outcome.callback.undecidable
        assert outcome.reply == {"errCode": 1, "responseCode": 20000}
