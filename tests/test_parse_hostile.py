"""Hostile and drifting bodies: deep merge-forwards, drift kept raw, unreadable decisions on on_error.

Issue 11: no input reaches a 5xx, no before-callback escapes the rules by its shape, and what the IM
sends that drifts from its docs is kept, not refused.
"""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from prometheus_client.registry import REGISTRY

from receiver.core import HttpRequest
from receiver.tencent.platform import MAX_JSON_DEPTH

from .helpers import APP_ID, TOKEN, handle, make_receiver, rules_yaml, sample

WORDS = "{use: sensitive_words, config: {words: [badword]}}"
CONTACTS = "{use: contact_info, config: {action: mask}}"
PHONE = "13800138000"


def relay(levels: int, text: str) -> list:
    """A MsgBody whose text sits inside `levels` merge-forwarded messages, with every documented field."""
    body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]
    for _ in range(levels):
        body = [{"MsgType": "TIMRelayElem", "MsgContent": {
            "Title": "chat history", "MsgNum": 1, "CompatibleText": "upgrade to see", "AbstractList": ["a: hi"],
            "MsgList": [{"From_Account": "a", "To_Account": "b", "MsgSeq": 1, "MsgRandom": 2,
                         "MsgTimeStamp": 1557481126, "MsgBody": body}]}}]
    return body


def relay_bytes(command: str, levels: int, text: str) -> bytes:
    """The body of `relay` as bytes, built without an encoder (which recurses as deep as the value)."""
    head = sample("C2C.CallbackBeforeSendMsg")
    head["CallbackCommand"] = command
    del head["MsgBody"]
    level = ('{"MsgType": "TIMRelayElem", "MsgContent": {"Title": "chat history", "MsgList": '
             '[{"From_Account": "a", "MsgBody": [')
    inner = json.dumps([{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}])[1:-1]
    body = "[" + level * levels + inner + "]}]}}" * levels + "]"
    return (json.dumps(head)[:-1] + ', "MsgBody": ' + body + "}").encode()


def relay_json_depth(levels: int) -> int:
    # body object, MsgBody; per relay: element, MsgContent, MsgList, item, MsgBody; the text element, its content
    return 2 + 5 * levels + 2


DEEPEST_RELAY = (MAX_JSON_DEPTH - 4) // 5  # the most merge-forward levels under the depth limit


def innermost_text(body: list) -> str:
    while body[0]["MsgType"] == "TIMRelayElem":
        body = body[0]["MsgContent"]["MsgList"][0]["MsgBody"]
    return body[0]["MsgContent"]["Text"]


def c2c(command: str = "C2C.CallbackBeforeSendMsg", **fields) -> dict:
    body = sample("C2C.CallbackBeforeSendMsg")
    body["CallbackCommand"] = command
    body.update(fields)
    return body


def with_chain(*rules: str, on_error: str = "allow"):
    return make_receiver(rules_yaml(*rules, extra=f"chain: {{on_error: {on_error}}}"))


# --- merge-forward nesting ----------------------------------------------------------------------------

def test_the_deepest_relay_level_is_just_under_the_depth_limit():
    assert relay_json_depth(DEEPEST_RELAY) <= MAX_JSON_DEPTH < relay_json_depth(DEEPEST_RELAY + 1)
    assert DEEPEST_RELAY > 52


@pytest.mark.parametrize("levels", [52, DEEPEST_RELAY], ids=["52-relays", "deepest-relays"])
@pytest.mark.parametrize("rule, text, masked", [
    (WORDS, "a badword here", "a ******* here"),
    (CONTACTS, f"call {PHONE}", "call " + "*" * len(PHONE)),
], ids=["sensitive-word", "contact"])
def test_a_text_at_any_depth_is_seen_and_masked(levels, rule, text, masked):
    receiver = with_chain(rule)
    outcome = handle(receiver, c2c(MsgBody=relay(levels, text)))
    assert outcome.status == 200, outcome.reply
    assert outcome.outcome_name == "rewrite", outcome.decision.trace
    assert innermost_text(outcome.reply["MsgBody"]) == masked
    assert innermost_text(outcome.callback.body["MsgBody"]) == text  # the received body is not changed
    # Every other text of every level went through untouched.
    assert json.dumps(outcome.reply["MsgBody"]).count("chat history") == levels


@pytest.mark.parametrize("depth, status", [(MAX_JSON_DEPTH, 200), (MAX_JSON_DEPTH + 1, 400)])
def test_the_json_depth_limit_exactly(depth, status):
    nested = "[" * (depth - 1) + "]" * (depth - 1)  # inside the body object: one level
    raw = ('{"CallbackCommand": "State.StateChange", "Info": {}, "Extra": ' + nested + "}").encode()
    outcome = handle(with_chain(), raw, query={"SdkAppid": APP_ID, "CallbackCommand": "State.StateChange"})
    assert outcome.status == status, outcome.reply


def test_deep_text_paths_share_their_prefix_and_lead_to_the_text():
    from receiver.tencent.message import TencentMessage, flatten

    body = relay(DEEPEST_RELAY, "deep")
    fields = [f for f in TencentMessage.from_wire(body).text_fields() if f.text == "deep"]
    assert len(fields) == 1 and len(fields[0].path) <= 6  # not the 5 × 101 keys it stands for
    node = body
    for key in flatten(fields[0].path):
        node = node[key]
    assert node == "deep"


@pytest.mark.parametrize("on_error, code", [("allow", 0), ("refuse", 1), ("drop", 2)])
@pytest.mark.parametrize("levels", [DEEPEST_RELAY + 1, 5000], ids=["just-over", "beyond-the-parser"])
def test_a_before_callback_deeper_than_the_limit_gets_on_error(levels, on_error, code):
    receiver = with_chain(WORDS, on_error=on_error)
    outcome = handle(receiver, relay_bytes("C2C.CallbackBeforeSendMsg", levels, "a badword here"),
                     query={"SdkAppid": APP_ID, "CallbackCommand": "C2C.CallbackBeforeSendMsg"})
    assert outcome.status == 200 and outcome.reply["ErrorCode"] == code, outcome.reply
    assert outcome.outcome_name == on_error
    step = outcome.decision.trace[0]
    assert (step.rule, step.result) == ("chain", "error")
    assert f"deeper than {MAX_JSON_DEPTH} levels" in step.reason


@pytest.mark.parametrize("levels, status", [(DEEPEST_RELAY, 200), (DEEPEST_RELAY + 1, 400), (5000, 400)])
def test_an_after_callback_deeper_than_the_limit_is_a_400(levels, status):
    outcome = handle(with_chain(WORDS), relay_bytes("C2C.CallbackAfterSendMsg", levels, "x"),
                     query={"SdkAppid": APP_ID, "CallbackCommand": "C2C.CallbackAfterSendMsg"})
    assert outcome.status == status, outcome.reply
    if status == 400:
        assert f"deeper than {MAX_JSON_DEPTH} levels" in outcome.reply["ErrorInfo"]


# --- schema drift: kept raw, counted, never a 400 -----------------------------------------------------

def image(**content) -> dict:
    return {"MsgType": "TIMImageElem", "MsgContent": {"UUID": "u", "ImageFormat": 1, **content}}


TEXT = {"MsgType": "TIMTextElem", "MsgContent": {"Text": "a badword here"}}

# (case, command, body changes, (path into the body, raw value kept), drift field paths)
DRIFT = [
    ("number as string, before", "C2C.CallbackBeforeSendMsg", {"MsgBody": [image(ImageFormat="JPG"), TEXT]},
     (("MsgBody", 0, "MsgContent", "ImageFormat"), "JPG"), ("MsgBody[].TIMImageElem.ImageFormat",)),
    ("number as string, after", "C2C.CallbackAfterSendMsg", {"SendMsgResult": "ok", "MsgBody": [TEXT]},
     (("SendMsgResult",), "ok"), ("SendMsgResult",)),
    ("string as number, before", "C2C.CallbackBeforeSendMsg", {"MsgKey": 48374, "MsgId": 1, "MsgBody": [TEXT]},
     (("MsgKey",), 48374), ("MsgKey", "MsgId")),
    ("string as number, after", "State.StateChange", {"Info": {"Action": 1, "To_Account": "u"}},
     (("Info", "Action"), 1), ("Info.Action",)),
    ("list where object, before", "C2C.CallbackBeforeSendMsg",
     {"MsgBody": [image(ImageInfoArray=[[1, 2]]), TEXT]},
     (("MsgBody", 0, "MsgContent", "ImageInfoArray"), [[1, 2]]), ("MsgBody[].TIMImageElem.ImageInfoArray[]",)),
    ("list where object, after", "State.StateChange", {"Info": [{"Action": "Login"}]},
     (("Info",), [{"Action": "Login"}]), ("Info",)),
    ("integer beyond 64 bits", "C2C.CallbackBeforeSendMsg", {"MsgSeq": 2**70, "MsgBody": [TEXT]},
     (("MsgSeq",), 2**70), ("MsgSeq",)),
    ("numeric string of 5,000 digits", "C2C.CallbackAfterSendMsg", {"MsgTime": "9" * 5000, "MsgBody": [TEXT]},
     (("MsgTime",), "9" * 5000), ("MsgTime",)),
    ("infinite coordinate", "C2C.CallbackBeforeSendMsg",
     {"MsgBody": [{"MsgType": "TIMLocationElem", "MsgContent": {"Desc": "x", "Latitude": 1e999}}, TEXT]},
     (("MsgBody", 0, "MsgContent", "Latitude"), float("inf")), ("MsgBody[].TIMLocationElem.Latitude",)),
    ("added fields", "C2C.CallbackBeforeSendMsg",
     {"SenderTags": {"vip": True}, "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {
         "Text": "a badword here", "TextStyle": {"bold": 1}}}]},
     (("SenderTags",), {"vip": True}), ()),
    ("v2025 variant member", "Group.CallbackAfterSendMsg",
     {"GroupAtInfo": [{"GroupAtAllFlag": 0, "GroupAt_Account": ["a", "b"]}], "MsgBodyV2025": {"Segments": []}},
     (("GroupAtInfo", 0, "GroupAt_Account"), ["a", "b"]), ("GroupAtInfo[].GroupAt_Account",)),
    ("v2025 variant member, before", "Group.CallbackBeforeSendMsg",
     {"Random": {"v": 2025}, "MsgBody": [TEXT], "AtInfoV2025": [1]},
     (("Random",), {"v": 2025}), ("Random",)),
]


def drift_body(command: str, changes: dict) -> dict:
    names = {"C2C": "C2C.CallbackBeforeSendMsg", "Gro": "Group.CallbackAfterSendMsg", "Sta": "State.StateChange"}
    body = sample(names[command[:3]])
    body["CallbackCommand"] = command
    if command == "Group.CallbackBeforeSendMsg":
        body.pop("MsgSeq", None)
    body.update(changes)
    return body


def drift_count(command: str, field: str) -> float:
    return REGISTRY.get_sample_value("imhook_schema_drift_total", {"command": command, "field": field}) or 0.0


@pytest.mark.parametrize("case, command, changes, kept, paths", DRIFT, ids=[d[0] for d in DRIFT])
def test_drift_is_kept_raw_counted_and_the_rules_still_decide(case, command, changes, kept, paths):
    from receiver.ops import metrics

    body = drift_body(command, changes)
    receiver = with_chain(WORDS, on_error="refuse")
    metrics.flush()
    counts = [drift_count(command, p) for p in paths]
    outcome = handle(receiver, body)
    assert outcome.status == 200, outcome.reply
    callback = outcome.callback
    assert callback.drift == paths
    where, raw = kept
    value = callback.body
    for key in where:
        value = value[key]
    assert value == raw  # as the IM sent it, for rules and recordings alike
    if len(where) == 1 and callback.drift:
        attribute = next(a for a, f in callback_schema(command).load_fields.items() if f.data_key == where[0])
        assert callback.data[attribute] == raw
    if callback.is_before:  # the rules ran on the drifted body: the word is masked, nothing refused
        assert outcome.outcome_name == "rewrite", outcome.decision.trace
        assert "*******" in json.dumps(outcome.reply["MsgBody"])
    metrics.observe(outcome, frozenset(receiver.platform.commands))
    metrics.flush()
    assert [drift_count(command, p) - c for p, c in zip(paths, counts)] == [1] * len(paths)


def callback_schema(command: str):
    from receiver.tencent.schemas import SCHEMAS

    return SCHEMAS[command]


def test_drift_is_logged_once_per_command_and_field(caplog):
    receiver = with_chain()
    body = drift_body("C2C.CallbackAfterSendMsg", {"SendMsgResult": "ok", "MsgSeq": "x"})
    for _ in range(3):
        assert handle(receiver, body).status == 200
    lines = [r.getMessage() for r in caplog.records if "schema drift" in r.getMessage()]
    assert len(lines) == 2 and all("kept as the IM sent it" in line for line in lines)
    assert {line.split(": ")[1] for line in lines} == {"MsgSeq", "SendMsgResult"}


# --- a before-callback whose decision needs an unreadable field: on_error -----------------------------

FRIEND_ITEMS = [{"To_Account": "id1", "AddWording": 5}, {"To_Account": "id2", "AddWording": "hi"}]

# (case, command, body changes, what the trace names, the reply's friend accounts)
UNREADABLE = [
    ("MsgBody not a list", "C2C.CallbackBeforeSendMsg", {"MsgBody": "a badword here"}, "MsgBody", None),
    ("sender missing", "C2C.CallbackBeforeSendMsg", {"From_Account": None}, "From_Account", None),
    ("text a number", "C2C.CallbackBeforeSendMsg",
     {"MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": int(PHONE)}}]},
     "MsgBody[].TIMTextElem.Text", None),
    ("text a number 80 relays deep", "C2C.CallbackBeforeSendMsg",
     {"MsgBody": json.loads(json.dumps(relay(80, "x")).replace('"Text": "x"', f'"Text": {PHONE}'))},
     "MsgBody[].TIMTextElem.Text", None),
    ("element not an object", "C2C.CallbackBeforeSendMsg", {"MsgBody": ["a badword here"]}, "MsgBody[]", None),
    ("custom data not a string", "C2C.CallbackBeforeSendMsg",
     {"MsgBody": [{"MsgType": "TIMCustomElem", "MsgContent": {"Data": {"businessID": 1}}}]},
     "MsgBody[].TIMCustomElem.Data", None),
    ("group type a number", "Group.CallbackBeforeSendMsg", {"Type": 1}, "Type", None),
    ("friend item list a string", "Sns.CallbackPrevFriendAdd", {"FriendItem": "id1,id2"}, "FriendItem", []),
    ("friend wording a number", "Sns.CallbackPrevFriendAdd", {"FriendItem": FRIEND_ITEMS},
     "FriendItem[].AddWording", ["id1", "id2"]),
    ("group name a list", "Group.CallbackBeforeCreateGroup", {"Name": ["x"]}, "Name", None),
]


def unreadable_body(command: str, changes: dict) -> dict:
    body = sample(command)
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize("on_error", ["allow", "refuse"])
@pytest.mark.parametrize("case, command, changes, named, friends", UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_an_unreadable_decision_field_gets_on_error(case, command, changes, named, friends, on_error):
    rules = (WORDS, CONTACTS, "{use: sensitive_words, name: names, scope: {commands: "
             "[Sns.CallbackPrevFriendAdd, Group.CallbackBeforeCreateGroup]}, config: {words: [x]}}")
    outcome = handle(with_chain(*rules, on_error=on_error), unreadable_body(command, changes))
    assert outcome.status == 200, outcome.reply
    assert outcome.outcome_name == on_error
    assert len(outcome.decision.trace) == 1  # no rule ran
    step = outcome.decision.trace[0]
    assert (step.rule, step.result) == ("chain", "error") and named in step.reason
    if friends is None:
        assert outcome.reply["ErrorCode"] == (0 if on_error == "allow" else 1)
    else:  # refusals are per friend; a friend whose account cannot be read cannot be named
        assert [item["To_Account"] for item in outcome.reply["ResultItem"]] == friends
        expected = 0 if on_error == "allow" else 38001
        assert all(item["ResultCode"] == expected for item in outcome.reply["ResultItem"])


def test_an_unreadable_field_no_rule_reads_is_allowed_with_no_rule_for_the_action():
    # Only message rules: a friend request the rules never see is not refused for its shape.
    outcome = handle(with_chain(WORDS, on_error="refuse"),
                     unreadable_body("Sns.CallbackPrevFriendAdd", {"FriendItem": "id1"}))
    assert outcome.status == 200 and outcome.outcome_name == "allow"
    assert outcome.callback.undecidable and outcome.decision.trace == ()


@pytest.mark.parametrize("case, raw, command", [
    ("not JSON", b"{", "C2C.CallbackBeforeSendMsg"),
    ("not an object", b"[]", "C2C.CallbackBeforeSendMsg"),
    ("command missing", json.dumps({"From_Account": "a"}).encode(), "C2C.CallbackBeforeSendMsg"),
    ("command mismatched", json.dumps(c2c("Group.CallbackBeforeSendMsg")).encode(), "C2C.CallbackBeforeSendMsg"),
])
def test_only_an_unusable_body_is_a_400(case, raw, command):
    query = {"SdkAppid": APP_ID, "CallbackCommand": command}
    outcome = with_chain(WORDS).handle(HttpRequest("POST", query, raw))
    assert outcome.status == 400 and outcome.reply["ActionStatus"] == "FAIL"


@pytest.mark.integration
def test_deep_merge_forwards_over_real_http(serve):
    """The reply re-encodes the rewritten body as deep as it came: the worker's encoder must cope."""
    server = serve(f"app_id: {APP_ID}\nrules:\n  - {WORDS}\n", workers=1, threads=2)
    from receiver.client import callback_query

    def post(command: str, levels: int) -> requests.Response:
        return requests.post(server.callback_url, data=relay_bytes(command, levels, "a badword here"),
                             params=callback_query(command, APP_ID, token=TOKEN), timeout=10)

    for levels in (52, DEEPEST_RELAY):
        response = post("C2C.CallbackBeforeSendMsg", levels)
        assert response.status_code == 200
        assert innermost_text(response.json()["MsgBody"]) == "a ******* here"
    over = post("C2C.CallbackBeforeSendMsg", DEEPEST_RELAY + 1)
    assert over.status_code == 200 and over.json()["ErrorCode"] == 0  # on_error: allow, the default
    assert post("C2C.CallbackAfterSendMsg", DEEPEST_RELAY).status_code == 200
    assert post("C2C.CallbackAfterSendMsg", 5000).status_code == 400
    assert "Traceback" not in server.log()


# --- keys named like a field's attribute, and any mutation of a sample --------------------------------

SHADOWS = [
    ("Group.CallbackBeforeInviteJoinGroup", {"destination_members": 5}, lambda e: e.invitees == ("jared", "leckie")),
    ("C2C.CallbackBeforeSendMsg", {"msg_body": 5, "from_account": 6}, lambda e: e.actor == "jared"),
    ("Sns.CallbackPrevFriendAdd", {"FriendItem": [{"To_Account": "a", "to_account": [1]}]},
     lambda e: [i.to for i in e.items] == ["a"]),
    ("Group.CallbackBeforeCreateGroup", {"MemberList": [{"Member_Account": "a", "member_account": {"x": 1}}]},
     lambda e: e.members == ("a",)),
]


@pytest.mark.parametrize("command, changes, check", SHADOWS, ids=[f"{s[0]}-{list(s[1])[0]}" for s in SHADOWS])
def test_a_key_named_like_an_attribute_never_replaces_the_field(command, changes, check):
    body = sample(command)
    body.update(changes)
    outcome = handle(with_chain(WORDS, "{use: rate_limit, config: {limits: [{key: pair, max: 5, per_seconds: 10}]}}"),
                     body)
    assert outcome.status == 200 and check(outcome.callback.event), outcome.callback.event
    assert all(step.result != "error" for step in outcome.decision.trace)
    for key, value in changes.items():
        assert outcome.callback.body[key] == value  # kept in the raw body


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats() | st.text(max_size=5)
    | st.sampled_from(["12", "JPG", "TIMTextElem", "TIMRelayElem"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["MsgType", "MsgContent", "Text", "MsgList", "MsgBody", "to_account", "x"]), inner,
        max_size=3),
    max_leaves=10,
)


def json_paths(value, prefix=()):
    yield prefix
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in children:
        yield from json_paths(item, prefix + (key,))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mutated_sample_is_answered_and_the_slow_path_is_marshmallows_where_it_is_right(data):
    from receiver.tencent.drift import load_tolerant, shadows
    from receiver.tencent.platform import TencentPlatform
    from receiver.tencent.schemas import SCHEMAS

    name = data.draw(st.sampled_from(sorted(SCHEMAS_WITH_SAMPLES)))
    body = sample(name)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(list(json_paths(body))[1:]))
        target = body
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = data.draw(JSON_VALUES)
    body["CallbackCommand"] = name
    raw = json.dumps(body).encode()
    callback = TencentPlatform().from_http({"SdkAppid": APP_ID, "CallbackCommand": name}, raw, app_id=APP_ID,
                                           now=0)
    assert callback.command == name and isinstance(callback.drift, tuple)
    schema = SCHEMAS[name]
    payload = json.loads(raw)
    try:
        expected = schema.load(payload)
    except ValidationError:
        return
    if not shadows(schema, payload):
        assert load_tolerant(schema, payload) == (expected, [])


SCHEMAS_WITH_SAMPLES = [
    "C2C.CallbackBeforeSendMsg", "C2C.CallbackAfterSendMsg", "Group.CallbackBeforeSendMsg",
    "Group.CallbackAfterSendMsg", "Group.CallbackBeforeCreateGroup", "Group.CallbackBeforeInviteJoinGroup",
    "Sns.CallbackPrevFriendAdd", "Sns.CallbackPrevFriendResponse", "State.StateChange",
    "Group.CallbackAfterRecallMsg",
]


class Reading(dict):
    """A dict that notes the keys read from it."""

    def __init__(self, data, seen):
        super().__init__(data)
        self.seen = seen

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)


@pytest.mark.parametrize("command", ["C2C.CallbackBeforeSendMsg", "Group.CallbackBeforeSendMsg",
                                     "Group.CallbackBeforeCreateGroup", "Group.CallbackBeforeApplyJoinGroup",
                                     "Group.CallbackBeforeInviteJoinGroup", "Group.CallbackBeforeCreateTopic",
                                     "Sns.CallbackPrevFriendAdd", "Sns.CallbackPrevFriendResponse"])
def test_the_fields_a_decision_reads_are_the_ones_declared(command):
    """Drift in a field the event is built from must be undecidable: `reads` has to list them all."""
    from receiver.tencent.commands import COMMANDS

    spec = COMMANDS[command]
    body = sample(command)
    if isinstance(body.get("EventTime"), str):
        body["EventTime"] = int(body["EventTime"])
    seen: set[str] = set()
    spec.build_event(Reading(spec.schema.load(body), seen))
    wire = {attr: field.data_key for attr, field in spec.schema.load_fields.items()}
    assert {wire[attr] for attr in seen} <= spec.reads


@pytest.mark.parametrize("digits", [4300, 4301, 100_000])
def test_an_integer_too_long_for_python_is_valid_json_kept_as_drift(digits):
    """Python refuses int() of over 4,300 digits; the body is still valid JSON, so it is drift."""
    from receiver.tencent.platform import WideInt

    body = json.dumps(drift_body("C2C.CallbackBeforeSendMsg", {"MsgBody": [TEXT]}))
    raw = body.replace('"MsgRandom": ', '"MsgRandom": -' + "9" * digits + ', "Was": ', 1).encode()
    assert b"9" * digits in raw
    query = {"SdkAppid": APP_ID, "CallbackCommand": "C2C.CallbackBeforeSendMsg"}
    outcome = handle(with_chain(WORDS, on_error="refuse"), raw, query=query)
    assert outcome.status == 200 and outcome.outcome_name == "rewrite", outcome.reply
    assert outcome.callback.drift == ("MsgRandom",)
    kept = outcome.callback.body["MsgRandom"]
    assert isinstance(kept, WideInt) == (digits > 4300) and str(kept) == "-" + "9" * digits
