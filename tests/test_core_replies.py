"""Every doc sample parses, and every decision type renders exactly the documented reply."""

from __future__ import annotations

import pytest

from receiver import verdict as v
from receiver.core import HttpRequest
from receiver.tencent.commands import COMMANDS

from .helpers import APP_ID, handle, make_receiver, request_samples, rules_yaml, sample

NO_RULES = rules_yaml()


@pytest.mark.parametrize("name", request_samples())
def test_every_sample_parses_and_is_answered(name):
    receiver = make_receiver(NO_RULES)
    outcome = handle(receiver, sample(name))
    assert outcome.status == 200, outcome.reply
    assert outcome.callback.command == name
    assert outcome.callback.known
    expected = sample(f"{name}.response")
    assert outcome.reply == expected


def test_every_documented_command_has_a_schema():
    documented = {
        "C2C.CallbackBeforeSendMsg", "Group.CallbackBeforeSendMsg", "OfficialAccount.CallbackBeforeSendMsg",
        "Group.CallbackBeforeCreateGroup", "Group.CallbackBeforeApplyJoinGroup",
        "Group.CallbackBeforeInviteJoinGroup", "Group.CallbackBeforeCreateTopic", "Sns.CallbackPrevFriendAdd",
        "Sns.CallbackPrevFriendResponse", "State.StateChange", "Profile.CallbackPortraitSet",
        "Sns.CallbackFriendAdd", "Sns.CallbackFriendDelete", "Sns.CallbackBlackListAdd",
        "Sns.CallbackBlackListDelete", "Follow.CallbackAfterFollowAdd", "Follow.CallbackAfterFollowDelete",
        "C2C.CallbackAfterSendMsg", "C2C.CallbackAfterMsgReport", "C2C.CallbackAfterMsgWithDraw",
        "C2C.CallbackAfterC2CMsgExtension", "Group.CallbackAfterCreateGroup", "Group.CallbackAfterNewMemberJoin",
        "Group.CallbackAfterMemberExit", "Group.CallbackAfterSendMsg", "Group.CallbackAfterGroupFull",
        "Group.CallbackAfterGroupDestroyed", "Group.CallbackAfterGroupInfoChanged", "Group.CallbackAfterRecallMsg",
        "Group.CallbackOnMemberStateChange", "Group.CallbackSendMsgException", "Group.CallbackAfterCreateTopic",
        "Group.CallbackAfterTopicDestroyed", "Group.CallbackAfterTopicInfoChanged",
        "Group.CallbackAfterMemberFieldChanged", "Group.CallbackAfterGroupAttrChanged",
        "Group.CallbackAfterReadReceipt", "Group.CallbackAfterChangeGroupOwner",
        "Group.CallbackOnDailyGroupQuotaAlarm", "Group.CallbackAfterGroupMsgExtension", "Bot.OnC2CMessage",
        "Bot.OnGroupMessage", "Alert.RequestOverLimit", "Call.CallbackAfterStartCall", "Call.CallbackAfterEndCall",
    }
    assert documented <= set(COMMANDS)


def _callback(name):
    receiver = make_receiver(NO_RULES)
    return handle(receiver, sample(name)).callback


def _modified_message(callback, reply_name):
    wanted = sample(reply_name)
    return callback.event.message.with_body(wanted["MsgBody"]).with_cloud_custom_data(wanted["CloudCustomData"])


# (request sample, verdict factory, expected reply sample)
DECISIONS = [
    ("C2C.CallbackBeforeSendMsg", lambda cb: v.allow(), "C2C.CallbackBeforeSendMsg.response"),
    ("C2C.CallbackBeforeSendMsg", lambda cb: v.refuse(), "C2C.CallbackBeforeSendMsg.response.deny"),
    ("C2C.CallbackBeforeSendMsg", lambda cb: v.drop(), "C2C.CallbackBeforeSendMsg.response.silent_drop"),
    ("C2C.CallbackBeforeSendMsg",
     lambda cb: v.rewrite(_modified_message(cb, "C2C.CallbackBeforeSendMsg.response.modify")),
     "C2C.CallbackBeforeSendMsg.response.modify"),
    ("Group.CallbackBeforeSendMsg", lambda cb: v.allow(), "Group.CallbackBeforeSendMsg.response"),
    ("Group.CallbackBeforeSendMsg", lambda cb: v.refuse(), "Group.CallbackBeforeSendMsg.response.deny"),
    ("Group.CallbackBeforeSendMsg", lambda cb: v.drop(), "Group.CallbackBeforeSendMsg.response.silent_drop"),
    ("Group.CallbackBeforeSendMsg",
     lambda cb: v.rewrite(_modified_message(cb, "Group.CallbackBeforeSendMsg.response.modify")),
     "Group.CallbackBeforeSendMsg.response.modify"),
    ("Group.CallbackBeforeCreateGroup", lambda cb: v.refuse(), "Group.CallbackBeforeCreateGroup.response.deny"),
    ("Group.CallbackBeforeApplyJoinGroup", lambda cb: v.refuse(),
     "Group.CallbackBeforeApplyJoinGroup.response.deny"),
    ("Group.CallbackBeforeCreateTopic", lambda cb: v.refuse(), "Group.CallbackBeforeCreateTopic.response.deny"),
    ("Group.CallbackBeforeInviteJoinGroup", lambda cb: v.refuse_members(["jared"]),
     "Group.CallbackBeforeInviteJoinGroup.response.refuse_some"),
    ("Sns.CallbackPrevFriendAdd", lambda cb: v.allow(), "Sns.CallbackPrevFriendAdd.response"),
    ("Sns.CallbackPrevFriendResponse", lambda cb: v.allow(), "Sns.CallbackPrevFriendResponse.response"),
]


@pytest.mark.parametrize("request_name, make_verdict, reply_name", DECISIONS,
                         ids=[f"{r[0]}->{r[2].split('.response')[-1] or 'allow'}" for r in DECISIONS])
def test_decision_renders_documented_reply(request_name, make_verdict, reply_name):
    receiver = make_receiver(NO_RULES)
    callback = _callback(request_name)
    assert receiver.platform.render(callback, make_verdict(callback)) == sample(reply_name)


# Codes the app chooses: kept only inside the command's own range (PROTOCOL.md §3).
CODES = [
    ("C2C.CallbackBeforeSendMsg", 120001, 120001),
    ("C2C.CallbackBeforeSendMsg", 130000, 130000),
    ("C2C.CallbackBeforeSendMsg", 10150, 1),
    ("Group.CallbackBeforeSendMsg", 10150, 10150),
    ("Group.CallbackBeforeSendMsg", 120001, 1),
    ("Group.CallbackBeforeCreateGroup", 10100, 10100),
    ("Group.CallbackBeforeInviteJoinGroup", 10201, 1),
]


@pytest.mark.parametrize("name, code, sent", CODES)
def test_refusal_codes_stay_in_the_commands_range(name, code, sent):
    receiver = make_receiver(NO_RULES)
    callback = _callback(name)
    reply = receiver.platform.render(callback, v.refuse("no thanks", code=code))
    assert reply == {"ActionStatus": "OK", "ErrorCode": sent, "ErrorInfo": "no thanks"}


def test_friend_refusals_are_per_friend_and_never_top_level():
    receiver = make_receiver(NO_RULES)
    callback = _callback("Sns.CallbackPrevFriendAdd")
    some = receiver.platform.render(callback, v.refuse_friends({"id2": (38100, "blocked")}))
    assert some["ErrorCode"] == 0
    assert some["ResultItem"] == [
        {"To_Account": "id1", "ResultCode": 0, "ResultInfo": ""},
        {"To_Account": "id2", "ResultCode": 38100, "ResultInfo": "blocked"},
    ]
    everyone = receiver.platform.render(callback, v.refuse("go away", code=5))  # 5: out of range
    assert everyone["ErrorCode"] == 0
    assert [i["ResultCode"] for i in everyone["ResultItem"]] == [38001, 38001]


def test_drop_refuses_where_the_command_cannot_drop():
    receiver = make_receiver(NO_RULES)
    callback = _callback("Group.CallbackBeforeCreateGroup")
    assert receiver.platform.render(callback, v.drop())["ErrorCode"] == 1


def test_rewrite_sends_the_whole_body_and_custom_data():
    receiver = make_receiver(NO_RULES)
    callback = _callback("C2C.CallbackBeforeSendMsg")
    tagged = callback.event.message.with_cloud_custom_data("new")
    assert receiver.platform.render(callback, v.rewrite(tagged)) == {
        "ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "CloudCustomData": "new",
        "MsgBody": sample("C2C.CallbackBeforeSendMsg")["MsgBody"]}


def test_trusted_path_skips_app_id_but_nothing_else():
    receiver = make_receiver(NO_RULES)
    body = sample("State.StateChange")
    query = {"SdkAppid": "999", "CallbackCommand": "State.StateChange"}
    import json

    raw = json.dumps(body).encode()
    assert receiver.handle(HttpRequest("POST", query, raw)).status == 403
    assert receiver.handle(HttpRequest("POST", query, raw), trusted=True).status == 200
    assert receiver.handle(HttpRequest("POST", query, b"[]"), trusted=True).status == 400
    assert APP_ID != "999"
