"""Callback bodies as the Tencent IM backend writes them (PROTOCOL.md §4).

Shapes follow the documented samples in tests/samples/tencent/. EventTime is written as an
integer number of milliseconds (the tables say integer; some doc samples print a string).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _members(accounts: Iterable[str], key: str = "Member_Account") -> list[dict[str, str]]:
    return [{key: account} for account in accounts]


def _message_fields(body: list, cloud_custom_data: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"MsgBody": body}
    if cloud_custom_data is not None:
        fields["CloudCustomData"] = cloud_custom_data
    return fields


def c2c_before_send(message, event_ms: int) -> dict[str, Any]:
    return {
        "CallbackCommand": "C2C.CallbackBeforeSendMsg",
        "From_Account": message.sender, "To_Account": message.peer,
        "MsgSeq": message.seq, "MsgRandom": message.random, "MsgTime": message.time,
        "MsgKey": message.key, "MsgId": message.msg_id, "OnlineOnlyFlag": int(message.online_only),
        **_message_fields(message.body, message.cloud_custom_data), "EventTime": event_ms,
    }


def c2c_after_send(message, unread: int, event_ms: int) -> dict[str, Any]:
    body = c2c_before_send(message, event_ms)
    body.update(CallbackCommand="C2C.CallbackAfterSendMsg", SendMsgResult=0, ErrorInfo="send msg succeed",
                UnreadMsgNum=unread)
    return body


def group_before_send(message, group, event_ms: int) -> dict[str, Any]:
    # No MsgSeq yet: the group assigns it when the message is stored (the after-callback has it).
    return {
        "CallbackCommand": "Group.CallbackBeforeSendMsg", "GroupId": group.group_id, "Type": group.type,
        "From_Account": message.sender, "Operator_Account": message.sender, "Random": message.random,
        "MsgId": message.msg_id, "OnlineOnlyFlag": int(message.online_only),
        **_message_fields(message.body, message.cloud_custom_data), "EventTime": event_ms,
    }


def group_after_send(message, group, event_ms: int) -> dict[str, Any]:
    body = group_before_send(message, group, event_ms)
    body.update(CallbackCommand="Group.CallbackAfterSendMsg", MsgSeq=message.seq, MsgTime=message.time)
    return body


def c2c_withdraw(message, unread: int, event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "C2C.CallbackAfterMsgWithDraw", "From_Account": message.sender,
            "To_Account": message.peer, "MsgKey": message.key, "UnreadMsgNum": unread, "EventTime": event_ms}


def group_recall(message, group, operator: str, event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Group.CallbackAfterRecallMsg", "Operator_Account": operator,
            "Type": group.type, "GroupId": group.group_id,
            "MsgSeqList": [{"MsgSeq": message.seq, "MsgId": message.msg_id}], "EventTime": event_ms}


def msg_report(reader: str, peer: str, unread: int, event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "C2C.CallbackAfterMsgReport", "Report_Account": reader, "Peer_Account": peer,
            "LastReadTime": event_ms // 1000, "UnreadMsgNum": unread, "EventTime": event_ms}


def prev_friend_add(action, event_ms: int, source: str) -> dict[str, Any]:
    items = [{"To_Account": friend, "Remark": action.remark, "GroupName": "", "AddSource": source,
              "AddWording": action.wording} for friend in action.friends]
    return {"CallbackCommand": "Sns.CallbackPrevFriendAdd", "Requester_Account": action.actor,
            "From_Account": action.actor, "FriendItem": items, "AddType": action.add_type,
            "ForceAddFlags": 0, "EventTime": event_ms}


def prev_friend_response(responder: str, requester: str, response: str, event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Sns.CallbackPrevFriendResponse", "Requester_Account": responder,
            "From_Account": responder, "EventTime": event_ms,
            "ResponseFriendItem": [{"To_Account": requester, "Remark": "", "TagName": "",
                                    "ResponseAction": response}]}


def friend_add(pairs: list[tuple[str, str]], initiator: str, client_cmd: str, event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Sns.CallbackFriendAdd",
            "PairList": [{"From_Account": a, "To_Account": b, "Initiator_Account": initiator} for a, b in pairs],
            "ClientCmd": client_cmd, "Admin_Account": "", "ForceFlag": 0, "EventTime": event_ms}


def friend_delete(pairs: list[tuple[str, str]], event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Sns.CallbackFriendDelete",
            "PairList": [{"From_Account": a, "To_Account": b} for a, b in pairs], "EventTime": event_ms}


def before_create_group(action, created: int, event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Group.CallbackBeforeCreateGroup", "Operator_Account": action.actor,
            "Owner_Account": action.actor, "Type": action.group_type, "Name": action.name,
            "CreateGroupNum": created, "MemberList": _members(action.members), "EventTime": event_ms}


def after_create_group(group, members: Iterable[str], event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Group.CallbackAfterCreateGroup", "GroupId": group.group_id,
            "Operator_Account": group.owner, "Owner_Account": group.owner, "Type": group.type,
            "Name": group.name, "MemberList": _members(members), "UserDefinedDataList": [],
            "EventTime": event_ms}


def before_apply_join(group, applicant: str, event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Group.CallbackBeforeApplyJoinGroup", "GroupId": group.group_id,
            "Type": group.type, "Requestor_Account": applicant, "EventTime": event_ms}


def before_invite_join(group, operator: str, invitees: Iterable[str], event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Group.CallbackBeforeInviteJoinGroup", "GroupId": group.group_id,
            "Type": group.type, "Operator_Account": operator, "DestinationMembers": _members(invitees),
            "EventTime": event_ms}


def after_new_member_join(group, join_type: str, operator: str, members: Iterable[str],
                          event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Group.CallbackAfterNewMemberJoin", "GroupId": group.group_id,
            "Type": group.type, "JoinType": join_type, "Operator_Account": operator,
            "NewMemberList": _members(members), "EventTime": event_ms}


def after_member_exit(group, exit_type: str, operator: str, members: Iterable[str],
                      event_ms: int) -> dict[str, Any]:
    return {"CallbackCommand": "Group.CallbackAfterMemberExit", "GroupId": group.group_id,
            "Type": group.type, "ExitType": exit_type, "Operator_Account": operator,
            "ExitMemberList": _members(members), "EventTime": event_ms}


def state_change(user: str, action: str, reason: str, kicked: Iterable[str], event_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = {"CallbackCommand": "State.StateChange", "EventTime": event_ms,
                            "Info": {"Action": action, "To_Account": user, "Reason": reason}}
    kicked = list(kicked)
    if kicked:
        body["KickedDevice"] = [{"Platform": platform} for platform in kicked]
    return body


def text_element(text: str) -> dict[str, Any]:
    return {"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}


def body_text(body: Iterable[Any]) -> str:
    """The text a person reads in a message: its text elements joined."""
    return "".join(e.get("MsgContent", {}).get("Text", "") for e in body
                   if isinstance(e, dict) and e.get("MsgType") == "TIMTextElem")
