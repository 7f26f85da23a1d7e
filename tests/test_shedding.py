"""Load shedding (receiver/shedding.py): a callback that waited too long is answered at once, fail-open.

The fail-open reply must be, command by command, what the rules' "allow" renders; everything the
app would reject still goes to the app; every shed request is still recorded, counted and forwarded.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from werkzeug.test import Client

from receiver.app import CALLBACK_PATHS, create_app
from receiver.client import callback_query, post_callback
from receiver.config import parse_config
from receiver.core import HttpRequest, Outcome
from receiver.errors import ConfigError
from receiver.ops.forward.events import Target
from receiver.ops.forward.observer import Enqueuer
from receiver.ops.forward.outbox import Outbox
from receiver.recording.store import Store
from receiver.tencent.commands import COMMANDS, FRIEND
from receiver.tencent.platform import TencentPlatform
from receiver.tencent.replies import FRIEND_LISTS, fail_open
from receiver.verdict import allow
from receiver.app import parse_query
from receiver.shedding import Shedder, should_shed

from .helpers import APP_ID, ROOT, TOKEN, request_samples, sample

OK = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}


# --- the decision ------------------------------------------------------------------------------------

# (seconds waited in the queue, server.shed_after_ms, shed?)
DECISIONS = [
    (0.0, 500, False),
    (0.499, 500, False),
    (0.5, 500, False),  # "longer than": exactly the threshold is still decided
    (0.501, 500, True),
    (1.9, 500, True),
    (30.0, 0, False),  # 0 switches shedding off
    (0.051, 50, True),
]


@pytest.mark.parametrize("waited, after_ms, shed", DECISIONS)
def test_a_request_is_shed_only_when_it_waited_longer_than_the_setting(waited, after_ms, shed):
    assert should_shed(waited, after_ms) is shed


def test_the_query_reads_as_flask_reads_it():
    assert parse_query("a=1&b=&a=2&c=x%20y") == {"a": "1", "b": "", "c": "x y"}


# --- the fail-open reply, command by command ---------------------------------------------------------

def parsed(name: str, body: bytes):
    query = callback_query(name, APP_ID)
    return query, TencentPlatform().from_http(query, body, app_id=APP_ID, now=time.time())


@pytest.mark.parametrize("name", request_samples())
def test_the_fail_open_reply_is_what_allow_renders(name):
    body = json.dumps(sample(name), ensure_ascii=False).encode()
    query, callback = parsed(name, body)
    platform = TencentPlatform()
    shed = platform.render_fail_open(query, body)
    assert shed == platform.render(callback, allow())
    if COMMANDS[name].reply == FRIEND:  # the only replies that need the body: one item per friend
        assert [item["To_Account"] for item in shed["ResultItem"]] == [item.to for item in callback.event.items]
        assert shed["ResultItem"]
    else:
        assert shed == OK


def test_every_friend_command_names_the_list_its_reply_answers():
    assert {name for name, spec in COMMANDS.items() if spec.reply == FRIEND} == set(FRIEND_LISTS)


def test_an_unknown_command_is_acknowledged_as_the_generic_path_does():
    body = json.dumps({"CallbackCommand": "New.CallbackSomething", "X": 1}).encode()
    query, callback = parsed("New.CallbackSomething", body)
    assert fail_open("New.CallbackSomething", body) == TencentPlatform().render(callback, allow()) == OK


FRIEND_ADD = "Sns.CallbackPrevFriendAdd"
# Bodies the normal path rejects: no cheap fail-open reply, so the app answers (400).
UNREADABLE = [
    (FRIEND_ADD, b"{oops"),
    (FRIEND_ADD, b"[]"),
    (FRIEND_ADD, json.dumps({"CallbackCommand": FRIEND_ADD}).encode()),
    (FRIEND_ADD, json.dumps({"CallbackCommand": FRIEND_ADD, "FriendItem": [{"Remark": "no account"}]}).encode()),
    (FRIEND_ADD, json.dumps({"CallbackCommand": FRIEND_ADD, "FriendItem": [{"To_Account": 7}]}).encode()),
    ("Sns.CallbackPrevFriendResponse", json.dumps({"FriendItem": [{"To_Account": "a"}]}).encode()),
    ("", b"{}"),
]


@pytest.mark.parametrize("command, body", UNREADABLE)
def test_no_fail_open_reply_for_a_body_the_normal_path_rejects(command, body):
    assert fail_open(command, body) is None


# --- the WSGI wrapper: what is shed, what still goes to the app ---------------------------------------

REFUSE_ALL = """
rules:
  - use: tests.rulekit:Decide
    name: refuse-all
    config: {outcome: refuse, info: decided}
"""


@pytest.fixture
def shedder(tmp_path, monkeypatch):
    """A Shedder around an in-process imhook app whose only rule refuses everything (and a Sign token)."""
    monkeypatch.setenv("IMHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("IMHOOK_APP_ID", APP_ID)
    return lambda extra="": build_shedder(tmp_path, extra)


def build_shedder(tmp_path, extra: str = "") -> tuple[Shedder, list[Outcome]]:
    """The refuse-all app (config in `tmp_path`, plus `extra` YAML) in a Shedder, and the outcomes it saw."""
    config = tmp_path / "imhook.yaml"
    config.write_text(f"recording: {{enabled: false}}\nmetrics: {{enabled: false}}\n"
                      f"logging: {{callbacks: false}}\n{extra}\n{REFUSE_ALL}", encoding="utf-8")
    app = create_app(config)
    seen: list[Outcome] = []
    app.extensions["imhook"].observers.append(seen.append)
    return Shedder(app, CALLBACK_PATHS), seen


def call(shedder: Shedder, waited: float, name: str = "C2C.CallbackBeforeSendMsg", *, body: bytes | None = None,
         method: str = "POST", path: str = "/callback", app_id: str = APP_ID, token: str = TOKEN,
         remote_addr: str = "127.0.0.1"):
    """One request through the wrapper on this thread, as if it had waited `waited` s in the queue."""
    shedder.waits.seconds = waited
    try:
        raw = json.dumps(sample(name)).encode() if body is None else body
        return Client(shedder).open(path, method=method, query_string=callback_query(name, app_id, token=token),
                                    data=raw, content_type="application/json",
                                    environ_base={"REMOTE_ADDR": remote_addr})
    finally:
        shedder.waits.seconds = 0.0


def test_a_stale_callback_is_answered_fail_open_and_reported_as_shed(shedder):
    wrapper, seen = shedder()
    response = call(wrapper, 0.6)
    assert response.status_code == 200 and response.json == OK  # the rule would have refused
    [outcome] = seen
    assert outcome.shed and outcome.outcome_name == "shed" and outcome.command == "C2C.CallbackBeforeSendMsg"
    assert outcome.reply == OK and outcome.elapsed_ms == pytest.approx(600)
    assert outcome.request.body == json.dumps(sample("C2C.CallbackBeforeSendMsg")).encode()
    assert outcome.request.query["SdkAppid"] == APP_ID and outcome.request.request_id


def test_a_stale_friend_request_lists_every_friend(shedder):
    wrapper, seen = shedder()
    response = call(wrapper, 0.6, FRIEND_ADD)
    accounts = [item["To_Account"] for item in sample(FRIEND_ADD)["FriendItem"]]
    assert response.json["ResultItem"] == [{"To_Account": a, "ResultCode": 0, "ResultInfo": ""} for a in accounts]
    assert seen[0].outcome_name == "shed"


REFUSED = {"ActionStatus": "OK", "ErrorCode": 1, "ErrorInfo": "decided"}
# (what differs from a stale, valid callback; the app's answer)
STILL_DECIDED = [
    ("fresh", dict(waited=0.05), 200, REFUSED),
    ("shedding off", dict(waited=5.0, extra="server: {shed_after_ms: 0}"), 200, REFUSED),
    ("another setting", dict(waited=0.6, extra="server: {shed_after_ms: 800}"), 200, REFUSED),
    ("wrong app id", dict(app_id="1"), 403, None),
    ("wrong Sign", dict(token="not-the-token"), 401, None),
    ("client not allowed", dict(extra="server: {allow_ips: [10.0.0.0/8]}"), 403, None),
    ("body over the limit", dict(extra="server: {max_body_bytes: 1024}", body=b'{"x": "' + b"y" * 2000 + b'"}'),
     413, None),
    ("unreadable friend body", dict(name=FRIEND_ADD, body=b"{oops"), 400, None),
    ("GET", dict(method="GET"), 405, None),
    ("not a callback path", dict(path="/healthz", method="GET"), 200, {"status": "ok"}),
]


@pytest.mark.parametrize("case, change, status, reply", STILL_DECIDED, ids=[c[0] for c in STILL_DECIDED])
def test_what_the_app_must_answer_is_never_shed(shedder, case, change, status, reply):
    change = dict(change)
    wrapper, seen = shedder(change.pop("extra", ""))
    response = call(wrapper, change.pop("waited", 0.6), **change)
    assert response.status_code == status, response.data
    if reply is not None:
        assert response.json == reply
    else:
        assert response.json["ActionStatus"] == "FAIL"
    assert not any(outcome.shed for outcome in seen)


def test_a_failure_while_shedding_leaves_the_request_to_the_app(shedder, monkeypatch):
    wrapper, seen = shedder()

    def broken(query, body):
        raise RuntimeError("bug")

    monkeypatch.setattr(wrapper.receiver.platform, "render_fail_open", broken)
    response = call(wrapper, 0.6)
    assert response.status_code == 200 and response.json == REFUSED  # decided, body intact
    assert [outcome.outcome_name for outcome in seen] == ["refuse"]


def test_a_bare_app_gets_its_own_ok_envelope():
    from flask import Flask

    app = Flask("bare")
    app.post("/callback")(lambda: ("decided", 200))
    wrapper = Shedder(app, CALLBACK_PATHS)
    assert call(wrapper, 0.6).json == OK and wrapper.shed_count == 1
    assert call(wrapper, 0.1).data == b"decided" and wrapper.shed_count == 1


# --- server.shed_reply: allow (fail-open) or the chain's on_error outcome, per event kind --------------

REFUSED_ON_ERROR = {"ActionStatus": "OK", "ErrorCode": 1, "ErrorInfo": ""}
GROUP_CREATE = "Group.CallbackBeforeCreateGroup"
# (server.shed_reply, chain.on_error, command, reply: "fail_open", "refused" or "friends refused")
SHED_REPLIES = [
    ("{}", "refuse", "C2C.CallbackBeforeSendMsg", "fail_open"),  # default: allow
    ("{default: on_error}", "refuse", "C2C.CallbackBeforeSendMsg", "refused"),
    ("{message.send: on_error}", "refuse", "C2C.CallbackBeforeSendMsg", "refused"),
    ("{message.send: on_error}", "refuse", GROUP_CREATE, "fail_open"),  # another kind: default allow
    ("{message.send: on_error}", "drop", "C2C.CallbackBeforeSendMsg", "dropped"),
    ("{default: on_error, message.send: allow}", "refuse", "C2C.CallbackBeforeSendMsg", "fail_open"),
    ("{default: on_error}", "refuse", GROUP_CREATE, "refused"),
    ("{default: on_error}", "refuse", FRIEND_ADD, "friends refused"),
    ("{default: on_error}", "allow", "C2C.CallbackBeforeSendMsg", "fail_open"),  # on_error allows anyway
    ("{default: on_error}", "refuse", "C2C.CallbackAfterSendMsg", "fail_open"),  # the ack of an after-callback
]


@pytest.mark.parametrize("policy, on_error, name, expected", SHED_REPLIES)
def test_the_shed_reply_is_chosen_per_event_kind(shedder, policy, on_error, name, expected):
    wrapper, seen = shedder(f"server: {{shed_reply: {policy}}}\nchain: {{on_error: {on_error}}}")
    response = call(wrapper, 0.6, name)
    body = json.dumps(sample(name)).encode()
    fail_open_reply = TencentPlatform().render_fail_open(callback_query(name, APP_ID), body)
    assert response.status_code == 200
    if expected == "fail_open":
        assert response.json == fail_open_reply
    elif expected == "refused":
        assert response.json["ErrorCode"] == 1 and response.json["ActionStatus"] == "OK"
    elif expected == "dropped":
        assert response.json["ErrorCode"] == 2
    else:
        assert [item["ResultCode"] for item in response.json["ResultItem"]] == [
            38001 for _ in sample(name)["FriendItem"]]
    [outcome] = seen
    assert outcome.outcome_name == "shed" and outcome.reply == response.json  # counted, logged, recorded as shed


def test_an_on_error_shed_of_an_unparseable_body_goes_to_the_app(shedder):
    wrapper, seen = shedder("server: {shed_reply: {default: on_error}}\nchain: {on_error: refuse}")
    # A field of the wrong type is drift the platform tolerates; a body that is no object is unusable.
    response = call(wrapper, 0.6, body=b'["C2C.CallbackBeforeSendMsg"]')
    assert response.status_code == 400 and [o.outcome_name for o in seen] == ["rejected"]


@pytest.mark.parametrize("bad, where", [
    ("{message.sent: on_error}", "server.shed_reply.message.sent"),
    ("{default: refuse}", "server.shed_reply.default"),
    ("allow", "server.shed_reply"),
])
def test_shed_reply_is_validated_with_file_line_and_path(bad, where):
    with pytest.raises(ConfigError) as info:
        parse_config(f"server:\n  shed_reply: {bad}\n", "c.yaml", {"IMHOOK_APP_ID": APP_ID})
    assert "c.yaml:2" in str(info.value) and where in str(info.value)


# --- config -----------------------------------------------------------------------------------------

def test_shed_after_ms_defaults_to_100_and_is_validated():
    env = {"IMHOOK_APP_ID": APP_ID}
    assert parse_config("rules: []\n", "c.yaml", env).server["shed_after_ms"] == 100
    assert parse_config("server: {shed_after_ms: 0}\n", "c.yaml", env).server["shed_after_ms"] == 0
    for bad in ("-1", "2500", "soon"):
        with pytest.raises(ConfigError) as info:
            parse_config(f"server:\n  shed_after_ms: {bad}\n", "c.yaml", env)
        assert "c.yaml:2" in str(info.value) and "server.shed_after_ms" in str(info.value)


# --- forwarding: a shed after-callback still reaches the targets -------------------------------------

def shed_outcome(name: str) -> Outcome:
    body = json.dumps(sample(name)).encode()
    return Outcome(200, OK, HttpRequest("POST", callback_query(name, APP_ID), body), time.time(), shed=True)


def test_a_shed_after_callback_is_forwarded_and_a_before_callback_is_not(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    enqueue = Enqueuer(outbox, [Target("all", "http://127.0.0.1:9/", ("*",), 1.0)],
                       before_commands=TencentPlatform().before_commands)
    enqueue(shed_outcome("C2C.CallbackAfterSendMsg"))
    enqueue(shed_outcome("C2C.CallbackBeforeSendMsg"))
    [row] = outbox.heads(["all"], 10)
    assert row.command == "C2C.CallbackAfterSendMsg" and row.app_id == APP_ID
    outbox.close()


# --- under real gunicorn -----------------------------------------------------------------------------

SLOW = """
server: {{shed_after_ms: 100}}
recording: {{path: {db}, flush_interval_seconds: 0.05}}
rules:
  - use: tests.rulekit:Sleep
    name: slow
    config: {{seconds: 0.25}}
"""
MIX = ("C2C.CallbackBeforeSendMsg", "Sns.CallbackPrevFriendAdd", "Group.CallbackBeforeInviteJoinGroup",
       "C2C.CallbackAfterSendMsg", "Sns.CallbackPrevFriendResponse", "Group.CallbackBeforeCreateGroup")
REQUESTS = 48
THREADS = 2


def shed_counts(metrics_text: str) -> int:
    return sum(int(float(n)) for n in re.findall(r'^imhook_callbacks_total\{[^}]*outcome="shed"[^}]*\} (\S+)$',
                                                  metrics_text, re.MULTILINE))


@pytest.mark.integration
def test_past_saturation_replies_leave_in_time_and_every_shed_one_is_counted_and_recorded(serve, tmp_path):
    db = tmp_path / "rec.sqlite"
    server = serve(SLOW.format(db=json.dumps(str(db))), workers=1, threads=THREADS,
                   env={"PYTHONPATH": str(ROOT)})
    platform = TencentPlatform()

    def post(i: int):
        name = MIX[i % len(MIX)]
        body = json.dumps(sample(name)).encode()
        return name, body, post_callback(server.callback_url, body, app_id=APP_ID, token=TOKEN, timeout=10)

    started = time.perf_counter()
    with ThreadPoolExecutor(REQUESTS) as pool:  # all at once: far past what 2 threads x 0.25 s can decide
        results = list(pool.map(post, range(REQUESTS)))
    took = time.perf_counter() - started
    decided_in_turn = REQUESTS * 0.25 / THREADS * 5 / 6  # 5 s: 5 of the 6 commands run the slow rule
    slowest = max(result.elapsed_ms for _, _, result in results) / 1000
    assert slowest < 1.5, f"slowest reply {slowest:.2f} s, all {took:.2f} s; decided in turn: {decided_in_turn:.1f} s"
    for name, body, result in results:
        # Shed or decided, each reply is this command's fail-open one (the only rule allows).
        assert result.status == 200 and result.reply == platform.render_fail_open(
            callback_query(name, APP_ID), body), (name, result.reply)

    shed = shed_counts(requests.get(server.url + "/metrics", timeout=5).text)
    print(f"\n{REQUESTS} callbacks at once, {THREADS} threads, a 0.25 s rule: {shed} shed, slowest reply "
          f"{slowest * 1000:.0f} ms (decided in turn, the last would wait {decided_in_turn:.1f} s)")
    assert 0 < shed < REQUESTS, shed
    assert server.stop() == 0
    assert "requests shed (answered without the app)" in server.log()
    store = Store(db, create=False)
    try:
        records = list(store.records())
    finally:
        store.close()
    assert len(records) == REQUESTS
    shed_records = [r for r in records if r.outcome == "shed"]
    assert len(shed_records) == shed
    for record in shed_records:
        assert record.status == 200 and not record.rejected and record.elapsed_ms > 100
        assert record.reply == platform.render_fail_open(record.query, record.body)


def test_the_documented_shed_reply_example_loads_and_means_what_it_says():
    import textwrap

    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "shed_reply: {default: allow, message" in b]
    config = parse_config(textwrap.dedent(block), "operations.md", {"IMHOOK_APP_ID": APP_ID})
    assert config.server["shed_reply"] == {"default": "allow", "message.send": "on_error"}
    assert config.chain["on_error"] == "refuse"
