"""The Tencent command table: schema, neutral event and reply shape per CallbackCommand.

A dispatch table, not an if-chain: adding a command is adding a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import model as m
from .message import TEXT_KEYS, TencentMessage
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


# The parts of a message element the rules read (schema paths relative to the element, as
# elements.element_problems names them): its shape, every readable text (PROTOCOL.md §5), a custom
# element's Data (signaling, PROTOCOL.md §6) and the relay structure that nests further messages.
# Drift anywhere else in an element (a size, a URL, an image format) is kept and does not matter.
DECISIVE_ELEMENT_PATHS = frozenset(
    ["", ".MsgType", ".MsgContent", ".TIMCustomElem.Data"]
    + [f".{msg_type}.{key}" for msg_type, keys in TEXT_KEYS.items() for key, _ in keys]
    + [f".TIMRelayElem.{key}" for key in ("AbstractList", "AbstractList[]", "MsgList", "MsgList[]",
                                          "MsgList[].MsgBody")]
)
MESSAGE_BODY = "MsgBody"


@dataclass(frozen=True)
class CommandSpec:
    name: str
    reply: str
    build_event: Callable[[dict], m.Event]
    codes: CodeRange | None = None  # the app's own refusal codes, None: only the generic 1
    action: str = m.NOTIFY  # the neutral action of its event, known without building one
    reads: frozenset[str] = frozenset()  # the wire fields build_event reads: what a decision needs

    def decides_on(self, path: str) -> bool:
        """Whether drift at schema `path` leaves the rules without something they decide on."""
        if not self.is_before:
            return False
        top = path.split(".", 1)[0].split("[", 1)[0]
        if top not in self.reads:
            return False
        if top == MESSAGE_BODY and path.startswith(MESSAGE_BODY + "[]"):
            return path[len(MESSAGE_BODY) + 2:] in DECISIVE_ELEMENT_PATHS
        return True

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
    return m.MessageSend.of(
        m.MESSAGE_SEND, actor=d["from_account"], group_id="", group_type="", conversation="c2c",
        peer=d["to_account"], topic_id="", online_only=d.get("online_only_flag") == 1,
        message=TencentMessage.from_wire(d["msg_body"], d.get("cloud_custom_data")),
    )


def _group_message(d: dict) -> m.Event:
    return m.MessageSend.of(
        m.MESSAGE_SEND, actor=d["from_account"], group_id=d["group_id"], group_type=d.get("type", ""),
        conversation="group", peer=d["group_id"], topic_id=d.get("topic_id", ""),
        online_only=d.get("online_only_flag") == 1,
        message=TencentMessage.from_wire(d["msg_body"], d.get("cloud_custom_data")),
    )


def _official_message(d: dict) -> m.Event:
    return m.MessageSend.of(
        m.MESSAGE_SEND, actor=d.get("from_account") or d["official_account"], group_id="", group_type="",
        conversation="official", peer=d["official_account"], topic_id="",
        online_only=d.get("online_only_flag") == 1,
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


def _text(d: Any, key: str) -> str:
    """d[key] if it is a string, else "": a drifted field is kept raw, and may be anything."""
    value = d.get(key) if isinstance(d, dict) else None
    return value if isinstance(value, str) else ""


def _notification(d: dict) -> m.Event:
    actor = _text(d, "from_account") or _text(d, "operator_account") or _text(d.get("info"), "to_account")
    return m.Notification(m.NOTIFY, actor=actor, group_id=_text(d, "group_id"), group_type=_text(d, "type"))


def generic_event(d: dict[str, Any]) -> m.Event:
    """The event of a command this version does not know: a notification."""
    return m.Notification(m.NOTIFY, actor=_text(d, "From_Account") or _text(d, "Operator_Account"))


# The raw field listing each requested friend (PROTOCOL.md §3–4): one ResultItem per entry.
FRIEND_LISTS = {"Sns.CallbackPrevFriendAdd": "FriendItem", "Sns.CallbackPrevFriendResponse": "ResponseFriendItem"}


def undecided_event(spec: CommandSpec, payload: dict[str, Any]) -> m.Event:
    """The event of a before-callback the rules cannot decide, from what of the raw body is readable.

    Only the reply needs it: the chain applies its on_error outcome without running a rule. A friend
    reply answers per requested friend, so the friends whose To_Account is readable are listed; the
    others cannot be named in a reply (and the IM lets unnamed ones through, unverified).
    """
    actor = _text(payload, "From_Account") or _text(payload, "Operator_Account") \
        or _text(payload, "Requestor_Account") or _text(payload, "Official_Account")
    key = FRIEND_LISTS.get(spec.name)
    if key is None:
        return m.Event(spec.action, actor=actor, group_id=_text(payload, "GroupId"))
    items = payload.get(key)
    accounts = tuple(dict.fromkeys(a for a in (_text(i, "To_Account") for i in items) if a)) \
        if isinstance(items, list) else ()
    if spec.name == "Sns.CallbackPrevFriendAdd":
        return m.FriendAdd(spec.action, actor=actor, items=tuple(m.FriendRequestItem(a) for a in accounts))
    return m.FriendRespond(spec.action, actor=actor, items=tuple(m.FriendResponseItem(a) for a in accounts))


def _reads(*names: str) -> frozenset[str]:
    return frozenset(names)


_MESSAGE_PARTS = ("From_Account", "OnlineOnlyFlag", MESSAGE_BODY, "CloudCustomData")
# Each row: reply shape, event builder, refusal codes, neutral action, the wire fields the builder
# reads (keep them in step: drift in one of those is drift the rules cannot decide past).
_BEFORE = {
    "C2C.CallbackBeforeSendMsg": (MESSAGE, _c2c_message, C2C_CODES, m.MESSAGE_SEND,
                                  _reads("To_Account", *_MESSAGE_PARTS)),
    "Group.CallbackBeforeSendMsg": (MESSAGE, _group_message, GROUP_CODES, m.MESSAGE_SEND,
                                    _reads("GroupId", "Type", "TopicId", *_MESSAGE_PARTS)),
    "OfficialAccount.CallbackBeforeSendMsg": (MESSAGE, _official_message, None, m.MESSAGE_SEND,
                                              _reads("Official_Account", *_MESSAGE_PARTS)),
    "Group.CallbackBeforeCreateGroup": (DECIDE, _group_create, GROUP_CODES, m.GROUP_CREATE, _reads(
        "Operator_Account", "Type", "Owner_Account", "Name", "CreateGroupNum", "MemberList")),
    "Group.CallbackBeforeApplyJoinGroup": (DECIDE, _group_join, GROUP_CODES, m.GROUP_JOIN,
                                           _reads("Requestor_Account", "GroupId", "Type")),
    "Group.CallbackBeforeInviteJoinGroup": (INVITE, _group_invite, GROUP_CODES, m.GROUP_INVITE,
                                            _reads("Operator_Account", "GroupId", "Type", "DestinationMembers")),
    "Group.CallbackBeforeCreateTopic": (DECIDE, _topic_create, GROUP_CODES, m.TOPIC_CREATE,
                                        _reads("Operator_Account", "GroupId", "Type", "Name")),
    "Sns.CallbackPrevFriendAdd": (FRIEND, _friend_add, FRIEND_CODES, m.FRIEND_ADD,
                                  _reads("From_Account", "AddType", "ForceAddFlags", "FriendItem")),
    "Sns.CallbackPrevFriendResponse": (FRIEND, _friend_respond, FRIEND_CODES, m.FRIEND_RESPOND,
                                       _reads("From_Account", "ResponseFriendItem")),
}

COMMANDS: dict[str, CommandSpec] = {
    name: CommandSpec(name, *_BEFORE[name]) if name in _BEFORE else CommandSpec(name, PLAIN, _notification)
    for name in SCHEMAS
}
BEFORE_COMMANDS = tuple(name for name, spec in COMMANDS.items() if spec.is_before)
