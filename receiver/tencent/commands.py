"""The Tencent command table: schema, neutral event and reply shape per CallbackCommand.

A dispatch table, not an if-chain: adding a command is adding a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import model as m
from .message import TencentMessage
from .schemas import SCHEMAS

# Reply shapes (PROTOCOL.md §3).
PLAIN = "plain"  # after-callbacks: the OK envelope, reply ignored by the IM
MESSAGE = "message"  # 0 allow / 1 refuse / 2 drop, MsgBody + CloudCustomData rewrites
DECIDE = "decide"  # 0 allow / 1 refuse
INVITE = "invite"  # DECIDE + RefusedMembers_Account
FRIEND = "friend"  # per-friend ResultItem


@dataclass(frozen=True)
class CodeRange:
    low: int
    high: int

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.low <= code <= self.high

    def __str__(self) -> str:
        return f"{self.low}–{self.high}"


GROUP_CODES = CodeRange(10100, 10200)
C2C_CODES = CodeRange(120001, 130000)
FRIEND_CODES = CodeRange(38000, 39000)
# The generic refusal for friends must itself lie in the range: a top-level ErrorCode would be read
# as "the app failed" and the IM would let the request through (PROTOCOL.md §3).
FRIEND_DEFAULT_REFUSAL = 38001


@dataclass(frozen=True)
class CommandSpec:
    name: str
    reply: str
    build_event: Callable[[dict], m.Event]
    codes: CodeRange | None = None  # the app's own refusal codes, None: only the generic 1
    action: str = m.NOTIFY  # the neutral action of its event, known without building one

    @property
    def is_before(self) -> bool:
        return self.reply != PLAIN

    @property
    def can_drop(self) -> bool:
        return self.reply == MESSAGE

    @property
    def can_rewrite(self) -> bool:
        return self.reply == MESSAGE

    @property
    def schema(self):
        return SCHEMAS[self.name]


def _accounts(items: list | None, key: str = "member_account") -> tuple[str, ...]:
    return tuple(item[key] for item in items or () if item.get(key))


def _c2c_message(d: dict) -> m.Event:
    return m.MessageSend(
        m.MESSAGE_SEND, actor=d["from_account"], conversation="c2c", peer=d["to_account"],
        online_only=d.get("online_only_flag") == 1,
        message=TencentMessage.from_wire(d["msg_body"], d.get("cloud_custom_data")),
    )


def _group_message(d: dict) -> m.Event:
    return m.MessageSend(
        m.MESSAGE_SEND, actor=d["from_account"], group_id=d["group_id"], group_type=d.get("type", ""),
        conversation="group", peer=d["group_id"], topic_id=d.get("topic_id", ""),
        online_only=d.get("online_only_flag") == 1,
        message=TencentMessage.from_wire(d["msg_body"], d.get("cloud_custom_data")),
    )


def _official_message(d: dict) -> m.Event:
    return m.MessageSend(
        m.MESSAGE_SEND, actor=d.get("from_account") or d["official_account"], conversation="official",
        peer=d["official_account"], online_only=d.get("online_only_flag") == 1,
        message=TencentMessage.from_wire(d["msg_body"], d.get("cloud_custom_data")),
    )


def _group_create(d: dict) -> m.Event:
    return m.GroupCreate(
        m.GROUP_CREATE, actor=d["operator_account"], group_type=d["type"],
        owner=d.get("owner_account", ""), name=d.get("name", ""),
        created_count=d.get("create_group_num", 0), members=_accounts(d.get("member_list")),
    )


def _group_join(d: dict) -> m.Event:
    return m.GroupJoin(m.GROUP_JOIN, actor=d["requestor_account"], group_id=d["group_id"],
                       group_type=d.get("type", ""))


def _group_invite(d: dict) -> m.Event:
    return m.GroupInvite(
        m.GROUP_INVITE, actor=d["operator_account"], group_id=d["group_id"], group_type=d.get("type", ""),
        invitees=_accounts(d["destination_members"]),
    )


def _topic_create(d: dict) -> m.Event:
    return m.TopicCreate(m.TOPIC_CREATE, actor=d["operator_account"], group_id=d.get("group_id", ""),
                         group_type=d.get("type", ""), name=d.get("name", ""))


def _friend_add(d: dict) -> m.Event:
    items = tuple(
        m.FriendRequestItem(
            to=i["to_account"], wording=i.get("add_wording", ""), remark=i.get("remark", ""),
            source=i.get("add_source", ""), group_name=i.get("group_name", ""),
        )
        for i in d["friend_item"]
    )
    return m.FriendAdd(m.FRIEND_ADD, actor=d["from_account"], items=items, add_type=d.get("add_type", ""),
                       forced=d.get("force_add_flags") == 1)


def _friend_respond(d: dict) -> m.Event:
    items = tuple(
        m.FriendResponseItem(to=i["to_account"], action=i.get("response_action", ""),
                             remark=i.get("remark", ""), tag=i.get("tag_name", ""))
        for i in d["response_friend_item"]
    )
    return m.FriendRespond(m.FRIEND_RESPOND, actor=d["from_account"], items=items)


def _notification(d: dict) -> m.Event:
    actor = d.get("from_account") or d.get("operator_account") or (d.get("info") or {}).get("to_account", "")
    return m.Notification(m.NOTIFY, actor=actor or "", group_id=d.get("group_id", ""),
                          group_type=d.get("type", ""))


def generic_event(d: dict[str, Any]) -> m.Event:
    """The event of a command this version does not know: a notification."""
    return m.Notification(m.NOTIFY, actor=str(d.get("From_Account") or d.get("Operator_Account") or ""))


_BEFORE = {
    "C2C.CallbackBeforeSendMsg": (MESSAGE, _c2c_message, C2C_CODES, m.MESSAGE_SEND),
    "Group.CallbackBeforeSendMsg": (MESSAGE, _group_message, GROUP_CODES, m.MESSAGE_SEND),
    "OfficialAccount.CallbackBeforeSendMsg": (MESSAGE, _official_message, None, m.MESSAGE_SEND),
    "Group.CallbackBeforeCreateGroup": (DECIDE, _group_create, GROUP_CODES, m.GROUP_CREATE),
    "Group.CallbackBeforeApplyJoinGroup": (DECIDE, _group_join, GROUP_CODES, m.GROUP_JOIN),
    "Group.CallbackBeforeInviteJoinGroup": (INVITE, _group_invite, GROUP_CODES, m.GROUP_INVITE),
    "Group.CallbackBeforeCreateTopic": (DECIDE, _topic_create, GROUP_CODES, m.TOPIC_CREATE),
    "Sns.CallbackPrevFriendAdd": (FRIEND, _friend_add, FRIEND_CODES, m.FRIEND_ADD),
    "Sns.CallbackPrevFriendResponse": (FRIEND, _friend_respond, FRIEND_CODES, m.FRIEND_RESPOND),
}

COMMANDS: dict[str, CommandSpec] = {
    name: CommandSpec(name, *_BEFORE[name]) if name in _BEFORE else CommandSpec(name, PLAIN, _notification)
    for name in SCHEMAS
}
BEFORE_COMMANDS = tuple(name for name, spec in COMMANDS.items() if spec.is_before)
