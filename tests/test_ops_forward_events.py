"""Pure parts of forwarding: target globs, dedupe and conversation keys, signature, backoff."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

from receiver.errors import ConfigError
from receiver.ops.forward import events
from receiver.ops.forward.events import Target

from .helpers import sample, request_samples

GLOBS = [
    (("C2C.CallbackAfter*",), "C2C.CallbackAfterSendMsg", True),
    (("C2C.CallbackAfter*",), "Group.CallbackAfterSendMsg", False),
    (("C2C.CallbackAfter*", "State.StateChange"), "State.StateChange", True),
    (("*",), "Anything.AtAll", True),
    (("*.CallbackAfterSendMsg",), "Group.CallbackAfterSendMsg", True),
    (("c2c.callbackafter*",), "C2C.CallbackAfterSendMsg", False),  # command names are case-sensitive
]


@pytest.mark.parametrize("globs, command, wanted", GLOBS)
def test_target_wants_commands_by_glob(globs, command, wanted):
    assert Target("t", "http://x", globs, 2.0).wants(command) is wanted


DEDUPE = [
    ("C2C.CallbackAfterSendMsg", {"MsgKey": "1_2_3", "MsgId": "m"}, "C2C.CallbackAfterSendMsg|MsgKey=1_2_3"),
    ("Group.CallbackAfterSendMsg", {"MsgId": "m9", "GroupId": "g", "MsgSeq": 7}, "Group.CallbackAfterSendMsg|MsgId=m9"),
    ("Group.CallbackAfterSendMsg", {"GroupId": "g", "MsgSeq": 7}, "Group.CallbackAfterSendMsg|GroupId=g|MsgSeq=7"),
    ("Bot.OnC2CMessage", {"MsgKey": "k"}, "Bot.OnC2CMessage|MsgKey=k"),
]


@pytest.mark.parametrize("command, body, key", DEDUPE)
def test_message_callbacks_dedupe_on_message_identity(command, body, key):
    assert events.dedupe_key(command, body) == key


def test_other_callbacks_dedupe_on_their_whole_body():
    # Two extension events on the same message share its MsgKey but are distinct events.
    first = {"MsgKey": "1_2_3", "Seq": 1, "OperateType": 1}
    second = {"MsgKey": "1_2_3", "Seq": 2, "OperateType": 1}
    command = "C2C.CallbackAfterC2CMsgExtension"
    assert events.dedupe_key(command, first) != events.dedupe_key(command, second)
    assert events.dedupe_key(command, first) == events.dedupe_key(command, dict(reversed(first.items())))


def test_the_same_body_under_two_commands_is_two_events():
    body = {"MsgKey": "k"}
    assert events.dedupe_key("C2C.CallbackAfterSendMsg", body) != events.dedupe_key("Bot.OnC2CMessage", body)


CONVERSATIONS = [
    ({"GroupId": "@TGS#1", "From_Account": "a"}, "group:@TGS#1"),
    ({"From_Account": "bob", "To_Account": "alice"}, "c2c:alice|bob"),
    ({"From_Account": "alice", "To_Account": "bob"}, "c2c:alice|bob"),  # both directions, one order
    ({"PairList": [{"From_Account": "y", "To_Account": "x"}]}, "c2c:x|y"),
    ({"Info": {"Action": "Login", "To_Account": "carol"}}, "account:carol"),
    ({"From_Account": "dave", "To_Account": ["e", "f"]}, "account:dave"),  # FollowDelete: a list
    ({"Operator_Account": "admin"}, "account:admin"),
    ({"QuotaUsed": 1, "Quota": 2}, "global"),
]


@pytest.mark.parametrize("body, key", CONVERSATIONS)
def test_conversation_key(body, key):
    assert events.conversation_key(body) == key


@pytest.mark.parametrize("name", request_samples())
def test_every_sample_has_a_conversation_and_dedupe_key(name):
    body = sample(name)
    assert events.conversation_key(body)
    assert events.dedupe_key(body["CallbackCommand"], body).startswith(body["CallbackCommand"] + "|")


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    secret, timestamp, body = b"s3cret", "1700000000", b'{"CallbackCommand":"State.StateChange"}'
    expected = hmac.new(secret, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert events.sign(secret, timestamp, body) == f"sha256={expected}"


@pytest.mark.parametrize("change", ["secret", "timestamp", "body"])
def test_verify_fails_when_anything_signed_changes(change):
    secret, timestamp, body = b"s3cret", "1700000000", b"{}"
    signature = events.sign(secret, timestamp, body)
    assert events.verify(secret, timestamp, body, signature)
    altered = {"secret": (b"other", timestamp, body), "timestamp": (secret, "1700000001", body),
               "body": (secret, timestamp, b"{ }")}[change]
    assert not events.verify(*altered, signature)


@pytest.mark.parametrize("attempts, base, cap, low, high", [
    (1, 0.5, 60, 0.25, 0.5),
    (2, 0.5, 60, 0.5, 1.0),
    (5, 0.5, 60, 4.0, 8.0),
    (20, 0.5, 60, 30.0, 60.0),  # capped
])
def test_backoff_doubles_with_jitter_under_a_cap(attempts, base, cap, low, high):
    rand = random.Random(7)
    delays = [events.backoff_seconds(attempts, base, cap, rand) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jittered, not one fixed value


@pytest.mark.parametrize("status, permanent", [
    (400, True), (404, True), (410, True), (408, False), (429, False), (500, False), (503, False), (302, False),
])
def test_which_statuses_are_not_retried(status, permanent):
    assert events.is_permanent(status) is permanent


def test_target_names_never_show_the_path_or_credentials():
    assert events.target_name({"url": "https://user:pw@hooks.example.com:8443/secret/path"}) == "hooks.example.com:8443"
    assert events.target_name({"url": "https://hooks.example.com/x", "name": "crm"}) == "crm"


def test_a_missing_secret_variable_is_a_config_error():
    config = {"url": "http://x", "commands": ["*"], "timeout_seconds": 2.0, "secret_env": "NOPE_SECRET"}
    with pytest.raises(ConfigError, match="NOPE_SECRET"):
        events.resolve_targets([config], env={})
    (target,) = events.resolve_targets([config], env={"NOPE_SECRET": "abc"})
    assert target.secret == b"abc"
