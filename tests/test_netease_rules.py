"""The same rule file on Tencent and NetEase: replies of every shape, equal decisions, recall_policy."""

from __future__ import annotations

import json

import pytest

from receiver.errors import ConfigError
from receiver.netease.message import NeteaseMessage

from .helpers import handle, handle_netease, make_receiver_all, rules_yaml, sample

ALLOWED = {"errCode": 0, "responseCode": 200}


def ne_text(text: str, sender: str = "alice", to: str = "bob") -> dict:
    return {"eventType": 1, "fromAccount": sender, "to": to, "msgType": "TEXT", "body": text,
            "msgTimestamp": "1700000000000"}


def ne_team_text(text: str, sender: str = "alice", team: str = "3051") -> dict:
    return {**ne_text(text, sender, team), "eventType": 2}


def tc_text(text: str, sender: str = "alice", to: str = "bob") -> dict:
    return {"CallbackCommand": "C2C.CallbackBeforeSendMsg", "From_Account": sender, "To_Account": to,
            "MsgSeq": 1, "MsgRandom": 2, "MsgTime": 1700000000, "MsgKey": "1_2_1700000000",
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]}


def tc_group_text(text: str, sender: str = "alice", group: str = "@TGS#1") -> dict:
    return {"CallbackCommand": "Group.CallbackBeforeSendMsg", "GroupId": group, "Type": "Public",
            "From_Account": sender, "Operator_Account": sender, "Random": 1,
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]}


def ne_invite(invitees: list[str], sender: str = "wmtest1") -> dict:
    return {**sample("eventType23.super-team-invite", "netease"), "fromAccount": sender, "inviteList": invitees}


def tc_invite(invitees: list[str], sender: str = "wmtest1") -> dict:
    return {"CallbackCommand": "Group.CallbackBeforeInviteJoinGroup", "GroupId": "@TGS#1", "Type": "Public",
            "Operator_Account": sender, "DestinationMembers": [{"Member_Account": m} for m in invitees]}


WORDS = "{use: sensitive_words, config: {words: [badword]%s}}"
# (case, rule, NetEase body, expected NetEase reply)
REPLIES = [
    ("allow", WORDS % "", ne_text("hello"), ALLOWED),
    ("mask body", WORDS % "", ne_text("a badword here"),
     {**ALLOWED, "modifyResponse": {"body": "a ******* here"}}),
    ("refuse with a NetEase code", WORDS % ", action: refuse, code: 20050", ne_text("badword"),
     {"errCode": 1, "responseCode": 20050}),
    ("a Tencent-only code: NetEase's generic refusal", WORDS % ", action: refuse, code: 120050",
     ne_text("badword"), {"errCode": 1, "responseCode": 20000}),
    ("per-platform codes", WORDS % ", action: refuse, code: {tencent: 120050, netease: 20042}",
     ne_text("badword"), {"errCode": 1, "responseCode": 20042}),
    ("silent drop", WORDS % ", action: drop", ne_team_text("badword"), {"errCode": 1, "responseCode": 200}),
    ("tag writes callbackExt, ext untouched", WORDS % ", action: tag", {**ne_text("badword"), "ext": '{"a":1}'},
     {**ALLOWED, "callbackExt": '{"imhook_flags": {"rule": "sensitive_words", "matches": ["badword"]}}'}),
    ("tag with a long tag_key: callbackExt over 1,024 characters is left out",
     WORDS % (", action: tag, tag_key: " + "k" * 1100), ne_text("badword"), ALLOWED),
    ("invite: a refused invitee refuses the whole invitation",
     "{use: group_policy, config: {invite: {deny_invitees: [wmtest231]}}}", ne_invite(["wmtest230", "wmtest231"]),
     {"errCode": 1, "responseCode": 20000}),
    ("invite: allowed", "{use: group_policy, config: {invite: {deny_invitees: [zed]}}}",
     ne_invite(["wmtest230"]), ALLOWED),
]


@pytest.mark.parametrize("case, rule, body, reply", REPLIES, ids=[r[0] for r in REPLIES])
def test_netease_reply_shapes(case, rule, body, reply):
    outcome = handle_netease(make_receiver_all(rules_yaml(rule)), body)
    assert outcome.status == 200
    assert outcome.reply == reply


def test_custom_attach_texts_are_masked_and_attach_re_encoded():
    body = sample("eventType2.team-custom", "netease")
    body["attach"] = json.dumps({"type": 1, "data": {"title": "hi badword", "lines": ["ok", "badword!"]}, "n": 5},
                                ensure_ascii=False)
    outcome = handle_netease(make_receiver_all(rules_yaml(WORDS % "")), body)
    changed = outcome.reply["modifyResponse"]
    assert set(changed) == {"attach"}
    assert json.loads(changed["attach"]) == {"type": 1, "data": {"title": "hi *******", "lines": ["ok", "*******!"]},
                                             "n": 5}


def test_message_rewrites_only_what_they_touch():
    message = NeteaseMessage.from_wire("CUSTOM", None, '{"a": "x", "b": {"c": "y"}}', '{ "keep" : 1 }')
    rewritten = message.replace_texts({("attach", "b", "c"): "z"})
    assert message.attach_data == {"a": "x", "b": {"c": "y"}}  # the original is not changed
    assert rewritten.modify_response() == {"attach": '{"a":"x","b":{"c":"z"}}'}
    assert rewritten.ext == '{ "keep" : 1 }'


# The same YAML against a Tencent and a NetEase callback: the same decision.
SAME = [
    ("words: mask", WORDS % "", tc_text("x badword"), ne_text("x badword"), "rewrite"),
    ("words: clean", WORDS % "", tc_text("fine"), ne_text("fine"), "allow"),
    ("words: refuse", WORDS % ", action: refuse", tc_text("badword"), ne_text("badword"), "refuse"),
    ("words: drop in a group", WORDS % ", action: drop", tc_group_text("badword"), ne_team_text("badword"), "drop"),
    ("contact info", "{use: contact_info, config: {action: refuse}}", tc_text("mail me a@b.example"),
     ne_text("mail me a@b.example"), "refuse"),
    ("message_policy: max length", "{use: message_policy, config: {default: {max_text_length: 3}}}",
     tc_text("abcdef"), ne_text("abcdef"), "refuse"),
    ("scope users", "{use: sensitive_words, scope: {users: [carol]}, config: {words: [badword]}}",
     tc_text("badword"), ne_text("badword"), "allow"),
    ("scope conversations", "{use: sensitive_words, scope: {conversations: [group]}, config: {words: [badword]}}",
     tc_group_text("badword"), ne_team_text("badword"), "rewrite"),
    ("regex", "{use: regex, config: {patterns: [{pattern: 'secret\\d+', action: refuse}]}}",
     tc_text("secret42"), ne_text("secret42"), "refuse"),
    ("group invite denied", "{use: group_policy, config: {invite: {deny_invitees: [wmtest231]}}}",
     tc_invite(["wmtest231"]), ne_invite(["wmtest231"]), "refuse"),
    ("group join denied", "{use: group_policy, config: {join: [{users: [eve]}]}}",
     {"CallbackCommand": "Group.CallbackBeforeApplyJoinGroup", "GroupId": "g1", "Type": "Public",
      "Requestor_Account": "eve"}, {"eventType": 19, "fromAccount": "eve", "tid": "g1"}, "refuse"),
    ("group join by another", "{use: group_policy, config: {join: [{users: [eve]}]}}",
     {"CallbackCommand": "Group.CallbackBeforeApplyJoinGroup", "GroupId": "g1", "Type": "Public",
      "Requestor_Account": "ann"}, {"eventType": 19, "fromAccount": "ann", "tid": "g1"}, "allow"),
    ("group create: name words", "{use: group_policy, config: {deny_name_words: [casino]}}",
     {"CallbackCommand": "Group.CallbackBeforeCreateGroup", "Operator_Account": "ann", "Owner_Account": "ann",
      "Type": "Public", "Name": "Casino night", "CreateGroupNum": 0}, {"eventType": 7, "fromAccount": "ann",
                                                                      "tname": "Casino night"}, "refuse"),
    ("group create: deny a user everywhere", "{use: group_policy, config: {create: {'*': {deny_users: [ann]}}}}",
     {"CallbackCommand": "Group.CallbackBeforeCreateGroup", "Operator_Account": "ann", "Owner_Account": "ann",
      "Type": "Public", "Name": "x", "CreateGroupNum": 0}, {"eventType": 7, "fromAccount": "ann"}, "refuse"),
    ("group invite allowed", "{use: group_policy, config: {invite: {deny_invitees: [x]}}}",
     tc_invite(["wmtest231"]), ne_invite(["wmtest231"]), "allow"),
]


@pytest.mark.parametrize("case, rule, tencent, netease, expected", SAME, ids=[s[0] for s in SAME])
def test_same_rule_file_same_decision(case, rule, tencent, netease, expected):
    receiver = make_receiver_all(rules_yaml(rule))
    by_tencent = handle(receiver, tencent)
    by_netease = handle_netease(receiver, netease)
    assert by_tencent.status == by_netease.status == 200, (by_tencent.reply, by_netease.reply)
    tencent_name, _, netease_name = expected.partition("|")
    assert by_tencent.outcome_name == tencent_name
    assert by_netease.outcome_name == (netease_name or tencent_name)


def test_rate_limit_counts_by_the_same_user_ids_on_each_platform():
    """Counters are per app (receiver rate_limit keys by app id): each IM's users count on their own."""
    rule = "{use: rate_limit, config: {limits: [{key: sender, max: 2, per_seconds: 60}]}}"
    receiver = make_receiver_all(rules_yaml(rule))
    tencent = [handle(receiver, tc_text("hi")).outcome_name for _ in range(3)]
    netease = [handle_netease(receiver, ne_text("hi")).outcome_name for _ in range(3)]
    other = handle_netease(receiver, ne_text("hi", sender="bob")).outcome_name
    assert tencent == netease == ["allow", "allow", "refuse"]
    assert other == "allow"


RECALL = "{use: recall_policy, config: {revoke_others: [admin], code: 20010, late_code: 20011%s}}"


def recall(actor: str, sender: str, age_seconds: float | None, **extra) -> dict:
    body = {**sample("eventType35.recall", "netease"), "fromAccount": actor, "msgFromAccid": sender, **extra}
    if age_seconds is None:
        body.pop("time")
    else:
        body["time"] = str(1700000000000)
        body["timestamp"] = str(1700000000000 + int(age_seconds * 1000))
    return body


REFUSED, LATE = {"errCode": 1, "responseCode": 20010}, {"errCode": 1, "responseCode": 20011}
# (case, extra config, body, reply)
RECALLS = [
    ("own, in time", "", recall("alice", "alice", 30), ALLOWED),
    ("own, at the window", "", recall("alice", "alice", 120), ALLOWED),
    ("own, just past it", "", recall("alice", "alice", 120.001), LATE),
    ("own, late", "", recall("alice", "alice", 600), LATE),
    ("own, shorter window", ", window_seconds: 10", recall("alice", "alice", 11), LATE),
    ("someone else's", "", recall("mallory", "alice", 5), REFUSED),
    ("someone else's, by an admin", "", recall("admin", "alice", 5), ALLOWED),
    ("admins too are bound by the window", "", recall("admin", "alice", 121), LATE),
    ("no time in the body: judged on who only", "", recall("alice", "alice", None), ALLOWED),
    ("no time, someone else's", "", recall("mallory", "alice", None), REFUSED),
    ("timestamps as numbers", "", {**recall("alice", "alice", 0), "time": 1, "timestamp": 200_000}, LATE),
    ("team recall", "", recall("mallory", "alice", 5, opeType=8, toAccount="3051"), REFUSED),
]


@pytest.mark.parametrize("case, extra, body, reply", RECALLS, ids=[r[0] for r in RECALLS])
def test_recall_policy(case, extra, body, reply):
    outcome = handle_netease(make_receiver_all(rules_yaml(RECALL % extra)), body)
    assert outcome.reply == reply


def test_recall_policy_without_codes_sends_the_generic_refusal():
    receiver = make_receiver_all(rules_yaml("{use: recall_policy}"))
    assert handle_netease(receiver, recall("alice", "alice", 121)).reply == {"errCode": 1, "responseCode": 20000}


# Config errors name their place; a code must fit some event of the rule on some platform.
CONFIG_ERRORS = [
    ("{use: recall_policy, config: {code: 508}}", "code 508 is outside"),
    ("{use: recall_policy, config: {late_code: 120050}}", "late.code"),
    ("{use: recall_policy, config: {code: {tencent: 120050}}}", "no tencent callback"),
    ("{use: sensitive_words, config: {words: [x], code: {wechat: 1}}}", "unknown platform"),
    ("{use: sensitive_words, config: {words: [x], code: {netease: 120050}}}", "code.netease"),
    ("{use: sensitive_words, config: {words: [x], code: 99}}", "outside"),
    ("{use: sensitive_words, config: {words: [x], code: true}}", "integer"),
]


@pytest.mark.parametrize("rule, words", CONFIG_ERRORS)
def test_codes_are_checked_at_load(rule, words):
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        make_receiver_all(rules_yaml(rule))


def test_rules_idle_on_one_platform_say_so_at_load(caplog):
    make_receiver_all(rules_yaml("{use: friend_policy, config: {deny_targets: [x]}}", "{use: recall_policy}",
                                 "{use: sensitive_words, config: {words: [x]}}"))
    lines = [r.getMessage() for r in caplog.records if "never asks about" in r.getMessage()]
    assert len(lines) == 2
    assert "friend_policy" in lines[0] and "netease IM" in lines[0]
    assert "recall_policy" in lines[1] and "tencent IM" in lines[1]


def test_no_note_when_only_tencent_is_on(caplog):
    make_receiver_all(rules_yaml("{use: friend_policy, config: {deny_targets: [x]}}"),
                      {"IMHOOK_NETEASE_APP_KEY": "", "IMHOOK_NETEASE_APP_SECRET": ""})
    assert not [r for r in caplog.records if "never asks about" in r.getMessage()]


def test_the_yaml_examples_of_docs_netease_build():
    """Every ```yaml block of docs/netease.md: a rule entry builds, a `netease:` section loads."""
    import re

    from .helpers import ROOT

    doc = (ROOT / "docs" / "netease.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)
    assert len(blocks) == 2  # recall_policy's example lives in docs/rules.md, loaded by tests/test_docs.py
    for block in blocks:
        if block.startswith("- use:"):
            text = "app_id: 1400000000\nrecording: {enabled: false}\nrules:\n" + \
                   "".join(f"  {line}\n" for line in block.splitlines())
        else:
            text = "app_id: 1400000000\nrecording: {enabled: false}\n" + block
        make_receiver_all(text)
