"""The signaling decoder and the signaling_policy rule (call invitations in custom messages)."""

from __future__ import annotations

import json

import pytest

from receiver.tencent.message import TencentMessage
from rules.builtin.signaling import SignalingInfo, decode_payload, decode_signaling

from .helpers import handle, make_receiver, rules_yaml
from .test_rules_policies import OK, c2c, custom, group_msg, refused, text


def step(action: int = 1, invitees=("Jonh",), data: str = "", **extra) -> str:
    doc = {"businessID": 1, "inviteID": "inv-1", "inviter": "jared", "actionType": action,
           "inviteeList": list(invitees), "data": data, "timeout": 30, "groupID": "", **extra}
    return json.dumps(doc)


def call_data(call_type: int | None = None, cmd: str | None = None) -> str:
    doc: dict = {"version": 4, "businessID": "av_call", "room_id": 123}
    if call_type is not None:
        doc["call_type"] = call_type
    if cmd is not None:
        doc["data"] = {"cmd": cmd}
    return json.dumps(doc)


DECODED = [
    ("not JSON", "hello", None),
    ("JSON but not an object", "[1, 2]", None),
    ("no businessID", '{"actionType": 1}', None),
    ("another business", '{"businessID": 2, "actionType": 1}', None),
    ("businessID as a string is not the SDK's number", '{"businessID": "1", "actionType": 1}', None),
    ("businessID true is not 1", '{"businessID": true, "actionType": 1}', None),
    ("a video invitation", step(data=call_data(2)),
     SignalingInfo("inv-1", "jared", 1, ("Jonh",), call_data(2), 30, "", "video")),
    ("an audio call named by data.cmd", step(3, data=call_data(cmd="audioCall")),
     SignalingInfo("inv-1", "jared", 3, ("Jonh",), call_data(cmd="audioCall"), 30, "", "audio")),
    ("app data that is not a call kit's", step(data="my own string"),
     SignalingInfo("inv-1", "jared", 1, ("Jonh",), "my own string", 30, "", "")),
    ("malformed fields are dropped, not trusted",
     '{"businessID": 1, "actionType": "1", "inviteeList": ["a", 2, null], "timeout": "x", "groupID": 5}',
     SignalingInfo("", "", 0, ("a",), "", 0, "", "")),
]


@pytest.mark.parametrize("case, payload, expected", DECODED, ids=[d[0] for d in DECODED])
def test_decode_payload(case, payload, expected):
    assert decode_payload(payload) == expected


def test_decode_signaling_finds_the_custom_element_among_others():
    message = TencentMessage.from_wire([text("hi"), custom(step(2, data=call_data(1)))])
    info = decode_signaling(message)
    assert info is not None and info.action_name == "cancel" and info.media == "audio" and not info.is_invite
    assert decode_signaling(TencentMessage.from_wire([text("hi"), custom('{"businessID": 2}')])) is None


def reply_of(rule: str, *bodies: dict) -> list[dict]:
    receiver = make_receiver(rules_yaml(rule))
    try:
        return [handle(receiver, body).reply for body in bodies]
    finally:
        receiver.chain.close()


INVITE = c2c(custom(step()))
VIDEO = c2c(custom(step(data=call_data(2))))
AUDIO = c2c(custom(step(data=call_data(1))))
GROUP_CALL = group_msg(custom(step(invitees=("a", "b", "c"), groupID="@TGS#2J4SZEAEL")))

POLICY = [
    ("ordinary messages pass", "{use: signaling_policy, config: {deny_callers: [jared]}}", [c2c(text("hi"))], [OK]),
    ("deny_callers refuses the invitation with code and info",
     "{use: signaling_policy, config: {deny_callers: [jared], code: 120300, info: no calls}}",
     [INVITE], [refused(120300, "no calls")]),
    ("the caller is the sender, whatever the payload's inviter says",
     "{use: signaling_policy, config: {deny_callers: [mallory]}}",
     [c2c(custom(step()), sender="mallory")], [refused(1)]),
    ("cancel, accept, reject and timeout pass", "{use: signaling_policy, config: {deny_callers: [jared]}}",
     [c2c(custom(step(a))) for a in (2, 3, 4, 5)], [OK] * 4),
    ("allow_callers", "{use: signaling_policy, config: {allow_callers: [boss]}}", [INVITE], [refused(1)]),
    ("deny_callees", "{use: signaling_policy, config: {deny_callees: [Jonh]}}", [INVITE], [refused(1)]),
    ("allow_callees", "{use: signaling_policy, config: {allow_callees: [Jonh]}}", [INVITE, GROUP_CALL],
     [OK, refused(1)]),
    ("a c2c invitation without a list is for the recipient", "{use: signaling_policy, config: {deny_callees: [Jonh]}}",
     [c2c(custom(step(invitees=())))], [refused(1)]),
    ("max_invitees", "{use: signaling_policy, config: {max_invitees: 2, code: 10110}}", [INVITE, GROUP_CALL],
     [OK, refused(10110)]),
    ("media: video refused, audio and unknown media pass", "{use: signaling_policy, config: {media: [audio]}}",
     [VIDEO, AUDIO, INVITE], [refused(1), OK, OK]),
    ("drop", "{use: signaling_policy, config: {media: [audio], action: drop}}", [VIDEO], [refused(2)]),
    ("rate per caller; other steps are not counted",
     "{use: signaling_policy, config: {rate: {max: 2, per_seconds: 60}}}",
     [INVITE, c2c(custom(step(2))), INVITE, INVITE, c2c(custom(step()), sender="other")],
     [OK, OK, OK, refused(1), OK]),
]


@pytest.mark.parametrize("case, rule, bodies, expected", POLICY, ids=[p[0] for p in POLICY])
def test_signaling_policy(case, rule, bodies, expected):
    assert reply_of(rule, *bodies) == expected


def test_refused_invitations_do_not_use_up_the_rate():
    rule = "{use: signaling_policy, config: {max_invitees: 1, rate: {max: 1, per_seconds: 60}}}"
    assert reply_of(rule, GROUP_CALL, INVITE, INVITE) == [refused(1), OK, refused(1)]


def test_rate_in_redis_is_shared_by_two_rule_instances(redis_client):
    from .helpers import redis_url

    rule = ("{use: signaling_policy, budget_ms: 1400, config: {rate: {max: 2, per_seconds: 60, backend: redis, "
            f"redis_url: '{redis_url()}', key_prefix: 'test:sig:', read_timeout_ms: 1000}}}}}}")
    first, second = make_receiver(rules_yaml(rule)), make_receiver(rules_yaml(rule))
    try:
        replies = [handle(r, INVITE).reply for r in (first, second, first, second)]
    finally:
        first.chain.close()
        second.chain.close()
    assert replies == [OK, OK, refused(1), refused(1)]
    assert len(redis_client.keys("test:sig:*")) == 1


def test_config_error_in_rate_names_its_field():
    from receiver.errors import ConfigError

    text = "rules:\n  - use: signaling_policy\n    config:\n      rate:\n        max: 0\n        per_seconds: 1\n"
    with pytest.raises(ConfigError) as info:
        make_receiver(text)
    assert str(info.value).startswith("test.yaml:5: rules[0].config.rate.max: ")
