"""Body schemas for every documented Tencent IM callback command (PROTOCOL.md §3–4).

Strict where rules depend on a field (required, typed); every other documented field is typed but
optional, and unknown fields are kept.
"""

from __future__ import annotations

from ..fastload import compile_loader
from .elements import Element, MsgBody, load_element
from .fields import Int, List, Members, Nested, Raw, Str, WireInt, load_wire_int, wire_schema

Cmd = dict(CallbackCommand=Str(required=True))
Pairs = lambda *keys: List(Nested(wire_schema("Pair", **{k: Str() for k in keys})))  # noqa: E731
Extension = wire_schema("Extension", Key=Str(), Value=Str(), Seq=Int())
UserData = wire_schema("UserData", Key=Str(), Value=Raw())


def _c2c_send(**extra):
    return dict(
        Cmd, From_Account=Str(required=True), To_Account=Str(required=True), MsgSeq=Int(),
        MsgRandom=Int(), MsgTime=Int(), MsgKey=Str(), MsgId=Str(), OnlineOnlyFlag=Int(),
        MsgBody=MsgBody(required=True), CloudCustomData=Str(allow_none=True), EventTime=Int(), **extra,
    )


def _group_send(**extra):
    return dict(
        Cmd, GroupId=Str(required=True), Type=Str(), From_Account=Str(required=True),
        Operator_Account=Str(), Random=Int(), MsgSeq=Int(), MsgTime=Int(), MsgId=Str(),
        OnlineOnlyFlag=Int(), MsgBody=MsgBody(required=True), CloudCustomData=Str(allow_none=True),
        TopicId=Str(), EventTime=Int(), **extra,
    )


GroupAt = wire_schema("GroupAt", GroupAtAllFlag=Int(), GroupAt_Account=Str())

FIELDS = {
    # --- before-callbacks ---
    "C2C.CallbackBeforeSendMsg": _c2c_send(),
    "Group.CallbackBeforeSendMsg": _group_send(),
    "OfficialAccount.CallbackBeforeSendMsg": dict(
        Cmd, Official_Account=Str(required=True), From_Account=Str(), OnlineOnlyFlag=Int(),
        MsgBody=MsgBody(required=True), CloudCustomData=Str(allow_none=True), EventTime=Int(),
    ),
    "Group.CallbackBeforeCreateGroup": dict(
        Cmd, Operator_Account=Str(required=True), Owner_Account=Str(), Type=Str(required=True),
        Name=Str(), CreateGroupNum=Int(), MemberList=Members(), EventTime=Int(),
    ),
    "Group.CallbackBeforeApplyJoinGroup": dict(
        Cmd, GroupId=Str(required=True), Type=Str(), Requestor_Account=Str(required=True), EventTime=Int(),
    ),
    "Group.CallbackBeforeInviteJoinGroup": dict(
        Cmd, GroupId=Str(required=True), Type=Str(), Operator_Account=Str(required=True),
        DestinationMembers=Members(required=True), EventTime=Int(),
    ),
    "Group.CallbackBeforeCreateTopic": dict(
        Cmd, GroupId=Str(), Operator_Account=Str(required=True), Type=Str(), Name=Str(), EventTime=Int(),
    ),
    "Sns.CallbackPrevFriendAdd": dict(
        Cmd, Requester_Account=Str(), From_Account=Str(required=True), AddType=Str(),
        ForceAddFlags=Int(), EventTime=Int(),
        FriendItem=List(Nested(wire_schema(
            "FriendItem", To_Account=Str(required=True), Remark=Str(), GroupName=Str(),
            AddSource=Str(), AddWording=Str(),
        )), required=True),
    ),
    "Sns.CallbackPrevFriendResponse": dict(
        Cmd, Requester_Account=Str(), From_Account=Str(required=True), EventTime=Int(),
        ResponseFriendItem=List(Nested(wire_schema(
            "ResponseFriendItem", To_Account=Str(required=True), Remark=Str(), TagName=Str(),
            ResponseAction=Str(),
        )), required=True),
    ),
    # --- after-callbacks and notifications ---
    "State.StateChange": dict(
        Cmd, EventTime=Int(),
        Info=Nested(wire_schema("StateInfo", Action=Str(), To_Account=Str(), Reason=Str()), required=True),
        KickedDevice=List(Nested(wire_schema("KickedDevice", Platform=Str()))),
    ),
    "Profile.CallbackPortraitSet": dict(
        Cmd, Operator_Account=Str(), From_Account=Str(), EventTime=Int(),
        ProfileItem=List(Nested(wire_schema("ProfileItem", Tag=Str(), Value=Raw()))),
    ),
    "Sns.CallbackFriendAdd": dict(
        Cmd, PairList=Pairs("From_Account", "To_Account", "Initiator_Account"), ClientCmd=Str(),
        Admin_Account=Str(), ForceFlag=Int(), EventTime=Int(),
    ),
    "Sns.CallbackFriendDelete": dict(Cmd, PairList=Pairs("From_Account", "To_Account"), EventTime=Int()),
    "Sns.CallbackBlackListAdd": dict(Cmd, PairList=Pairs("From_Account", "To_Account"), EventTime=Int()),
    "Sns.CallbackBlackListDelete": dict(Cmd, PairList=Pairs("From_Account", "To_Account"), EventTime=Int()),
    "Follow.CallbackAfterFollowAdd": dict(
        Cmd, From_Account=Str(), FollowList=Members("To_Account"), EventTime=Int(),
    ),
    "Follow.CallbackAfterFollowDelete": dict(Cmd, From_Account=Str(), To_Account=List(Str()), EventTime=Int()),
    "C2C.CallbackAfterSendMsg": _c2c_send(SendMsgResult=Int(), ErrorInfo=Str(), UnreadMsgNum=Int()),
    "C2C.CallbackAfterMsgReport": dict(
        Cmd, Report_Account=Str(), Peer_Account=Str(), LastReadTime=Int(), UnreadMsgNum=Int(), EventTime=Int(),
    ),
    "C2C.CallbackAfterMsgWithDraw": dict(
        Cmd, From_Account=Str(), To_Account=Str(), MsgKey=Str(), UnreadMsgNum=Int(), EventTime=Int(),
    ),
    "C2C.CallbackAfterC2CMsgExtension": dict(
        Cmd, From_Account=Str(), To_Account=Str(), MsgKey=Str(), OperateType=Int(),
        ExtensionList=List(Nested(Extension)), Seq=Int(), EventTime=Int(),
    ),
    "Group.CallbackAfterCreateGroup": dict(
        Cmd, GroupId=Str(), Operator_Account=Str(), Owner_Account=Str(), Type=Str(), Name=Str(),
        MemberList=Members(), UserDefinedDataList=List(Nested(UserData)), EventTime=Int(),
    ),
    "Group.CallbackAfterNewMemberJoin": dict(
        Cmd, GroupId=Str(), Type=Str(), JoinType=Str(), Operator_Account=Str(),
        NewMemberList=Members(), EventTime=Int(),
    ),
    "Group.CallbackAfterMemberExit": dict(
        Cmd, GroupId=Str(), Type=Str(), ExitType=Str(), Operator_Account=Str(),
        ExitMemberList=Members(), EventTime=Int(),
    ),
    "Group.CallbackAfterSendMsg": _group_send(GroupAtInfo=List(Nested(GroupAt))),
    "Group.CallbackAfterGroupFull": dict(Cmd, GroupId=Str(), EventTime=Int()),
    "Group.CallbackAfterGroupDestroyed": dict(
        Cmd, GroupId=Str(), Type=Str(), Owner_Account=Str(), Name=Str(), MemberList=Members(), EventTime=Int(),
    ),
    "Group.CallbackAfterGroupInfoChanged": dict(
        Cmd, GroupId=Str(), Type=Str(), Operator_Account=Str(), Name=Str(), Introduction=Str(),
        Notification=Str(), FaceUrl=Str(), EventTime=Int(),
    ),
    "Group.CallbackAfterRecallMsg": dict(
        Cmd, Operator_Account=Str(), Type=Str(), GroupId=Str(), TopicId=Str(), EventTime=Int(),
        MsgSeqList=List(Nested(wire_schema("RecalledMsg", MsgSeq=Int(), MsgId=Str()))),
    ),
    "Group.CallbackOnMemberStateChange": dict(
        Cmd, GroupId=Str(), EventType=Str(), EventCause=Str(), MemberList=Members(), EventTime=Int(),
    ),
    "Group.CallbackSendMsgException": _group_send(ErrorCode=Int(), ErrorInfo=Str()),
    "Group.CallbackAfterCreateTopic": dict(
        Cmd, GroupId=Str(), TopicId=Str(), Operator_Account=Str(), Owner_Account=Str(), Type=Str(),
        Name=Str(), UserDefinedDataList=List(Nested(UserData)), EventTime=Int(),
    ),
    "Group.CallbackAfterTopicDestroyed": dict(
        Cmd, GroupId=Str(), Type=Str(), TopicIdList=List(Str()), EventTime=Int(),
    ),
    "Group.CallbackAfterTopicInfoChanged": dict(
        Cmd, GroupId=Str(), Type=Str(), Operator_Account=Str(), Name=Str(), Introduction=Str(),
        Notification=Str(), FaceUrl=Str(), EventTime=Int(),
    ),
    "Group.CallbackAfterMemberFieldChanged": dict(
        Cmd, GroupId=Str(), Type=Str(), Operator_Account=Str(), Member_Account=Str(), Role=Str(),
        NameCard=Str(), EventTime=Int(),
    ),
    "Group.CallbackAfterGroupAttrChanged": dict(
        Cmd, GroupId=Str(), Type=Str(), Operator_Account=Str(), OptionType=Str(), EventTime=Int(),
        GroupAttr=List(Nested(wire_schema("GroupAttr", key=Str(), value=Str()))),
    ),
    "Group.CallbackAfterReadReceipt": dict(
        Cmd, GroupId=Str(), Type=Str(), EventTime=Int(),
        GroupMsgReceiptList=List(Nested(wire_schema(
            "Receipt", MsgSeq=Int(), ReadNum=Int(), UnreadNum=Int(), ReadReceiptMembers=Members(),
        ))),
    ),
    "Group.CallbackAfterChangeGroupOwner": dict(
        Cmd, GroupId=Str(), Type=Str(), Operator_Account=Str(), OldOwner_Account=Str(),
        NewOwner_Account=Str(), EventTime=Int(),
    ),
    "Group.CallbackOnDailyGroupQuotaAlarm": dict(Cmd, QuotaUsed=Int(), Quota=Int(), EventTime=Int()),
    "Group.CallbackAfterGroupMsgExtension": dict(
        Cmd, GroupId=Str(), MsgSeq=Int(), OperateType=Int(), ExtensionList=List(Nested(Extension)),
        Seq=Int(), EventTime=Int(),
    ),
    "Bot.OnC2CMessage": _c2c_send(),
    "Bot.OnGroupMessage": _group_send(AtRobots_Account=List(Str())),
    "Alert.RequestOverLimit": dict(Cmd, ServiceName=Str(), Command=Str(), Request=Int(), Limit=Int()),
    "Call.CallbackAfterStartCall": dict(
        Cmd, EventTime=Int(),
        CallInfo=Nested(wire_schema(
            "CallInfo", CallId=Str(), CallMediaType=Int(), ChatGroupId=Str(), RoomId=Raw(), RoomIdType=Int(),
        )),
        UserList=List(Nested(wire_schema("CallUser", User_Account=Str(), Status=Raw()))),
    ),
    "Call.CallbackAfterEndCall": dict(
        Cmd, EventTime=Int(),
        CallRecord=Nested(wire_schema(
            "CallRecord", CallId=Str(), Caller_Account=Str(), MediaType=Int(), CallType=Int(),
            StartTime=Int(), EndTime=Int(), AcceptTime=Int(), CallResult=Raw(),
            CalleeList_Account=List(Str()), RoomId=Raw(), RoomIdType=Int(),
        )),
    ),
}

# One schema instance per command, built once at import (schemas only at the edge).
SCHEMAS = {command: wire_schema(command.replace(".", "_"), **f)() for command, f in FIELDS.items()}
GENERIC = wire_schema("Generic", **Cmd)()

# The same schemas as straight-line code for well-formed bodies (receiver/fastload.py): a body the
# fast path declines is loaded by the schema, which also words the errors.
_CUSTOM = {Element: load_element, WireInt: load_wire_int}
FAST_LOADERS = {command: compile_loader(schema, _CUSTOM) for command, schema in SCHEMAS.items()}
GENERIC_FAST = compile_loader(GENERIC)
