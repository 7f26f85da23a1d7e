"""Load shedding on NetEase's paths: a stale, authentic callback is answered allow at once; the rest
goes to the app as usual (receiver/shedding.py)."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

from receiver.shedding import Shedder

from .helpers import APP_ID, NETEASE_APP_KEY, NETEASE_SECRET, netease_headers
from .test_shedding import build_shedder

ALLOWED = {"errCode": 0, "responseCode": 200}
TEXT = json.dumps({"eventType": 1, "fromAccount": "a", "to": "b", "msgType": "TEXT", "body": "hi"}).encode()


@pytest.fixture
def shedder(tmp_path, monkeypatch):
    monkeypatch.setenv("IMHOOK_APP_ID", APP_ID)
    monkeypatch.setenv("IMHOOK_NETEASE_APP_KEY", NETEASE_APP_KEY)
    monkeypatch.setenv("IMHOOK_NETEASE_APP_SECRET", NETEASE_SECRET)
    return lambda extra="": build_shedder(tmp_path, extra)


def call(shedder: Shedder, waited: float, *, body: bytes = TEXT, headers: dict | None = None,
         path: str = "/netease/callback"):
    shedder.waits.seconds = waited
    try:
        return Client(shedder).post(path, data=body, headers=netease_headers(body) if headers is None else headers,
                                    content_type="application/json")
    finally:
        shedder.waits.seconds = 0.0


def test_a_stale_netease_callback_is_answered_allow_and_reported_as_shed(shedder):
    wrapper, seen = shedder()
    response = call(wrapper, 0.6)
    assert response.status_code == 200 and response.json == ALLOWED  # the rule would have refused
    [outcome] = seen
    assert outcome.shed and outcome.request.platform == "netease" and outcome.request.body == TEXT
    assert outcome.command == "NetEase.P2PMessage" and outcome.outcome_name == "shed"


def test_a_stale_copy_feed_event_keeps_its_command_for_recording_and_forwarding(shedder):
    wrapper, seen = shedder()
    body = json.dumps({"eventType": "1", "fromAccount": "a"}).encode()
    response = call(wrapper, 0.6, body=body, path="/netease/copy")
    assert response.status_code == 200 and response.json == ALLOWED
    [outcome] = seen
    assert outcome.shed and outcome.command == "NetEase.Copy.Message" and not outcome.callback.is_before


REFUSED = {"errCode": 1, "responseCode": 20000}
# (case, change, status, reply)
STILL_DECIDED = [
    ("fresh", dict(waited=0.05), 200, REFUSED),
    ("wrong CheckSum", dict(headers={**netease_headers(TEXT), "CheckSum": "0" * 40}), 401, None),
    ("no headers", dict(headers={}), 401, None),
    ("not JSON", dict(body=b"{oops"), 400, None),
    ("on_error refuse for messages", dict(extra="chain: {on_error: refuse}\nserver: {shed_reply: {default: allow, "
                                            "message.send: on_error}}"), 200, REFUSED),
]


@pytest.mark.parametrize("case, change, status, reply", STILL_DECIDED, ids=[c[0] for c in STILL_DECIDED])
def test_what_the_app_must_answer_is_not_shed_allow(shedder, case, change, status, reply):
    change = dict(change)
    wrapper, seen = shedder(change.pop("extra", ""))
    response = call(wrapper, change.pop("waited", 0.6), **change)
    assert response.status_code == status, response.data
    if reply is not None:
        assert response.json == reply
    else:
        assert response.json["errCode"] == 1
    if case != "on_error refuse for messages":
        assert not any(outcome.shed for outcome in seen)
    else:
        assert [outcome.shed for outcome in seen] == [True]


def test_copy_feed_events_are_forwarded_and_netease_before_callbacks_are_not(tmp_path):
    from receiver.ops.forward.events import Target
    from receiver.ops.forward.observer import Enqueuer
    from receiver.ops.forward.outbox import Outbox
    from receiver.platforms import Platforms

    from .helpers import handle_netease, make_receiver_all, rules_yaml

    receiver = make_receiver_all(rules_yaml())
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    receiver.observers.append(Enqueuer(outbox, [Target("all", "http://127.0.0.1:9/", ("*",), 1.0)],
                                       before_commands=Platforms().before_commands))
    handle_netease(receiver, {"eventType": "7", "fromAccount": "a"}, feed="netease.copy")
    handle_netease(receiver, {"eventType": 1, "fromAccount": "a", "to": "b", "msgType": "TEXT", "body": "x"})
    [row] = outbox.heads(["all"], 10)
    assert row.command == "NetEase.Copy.P2PRecall" and row.app_id == NETEASE_APP_KEY
    outbox.close()


@pytest.mark.parametrize("body, key", [
    ({"eventType": "1", "fromAccount": "b", "to": "a", "convType": "PERSON"}, "c2c:a|b"),
    ({"eventType": "1", "fromAccount": "b", "to": "3051", "convType": "TEAM"}, "group:3051"),
    ({"eventType": "2", "fromAccount": "b"}, "account:b"),
    ({"eventType": "2", "fromAccount": ["odd"]}, "global"),
])
def test_copy_events_keep_order_per_conversation_not_globally(body, key):
    from receiver.ops.forward.events import conversation_key

    assert conversation_key(body) == key
