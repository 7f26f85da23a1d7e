"""The NetEase event table: schema, neutral event and reply shape per `eventType` (PROTOCOL.md §8).

Field lists: the message events (1, 2, 6, 22), the super-team invite (23) and the logins (36, 40)
have doc samples (two sources); the recall (35) list is unverified, and for the other team operations
(7–19, 24) and the profile update (3) no field list was found: those builders read only the fields
every event carries (`fromAccount`, `tid`) and a few likely names, and tolerate their absence.
Numbers may come as strings and the reverse (§8): every field here takes both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields

from .. import model as m
from .message import NeteaseMessage


@dataclass(frozen=True)
class CodeRange:
    low: int
    high: int

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and not isinstance(code, bool) and self.low <= code <= self.high

    def __str__(self) -> str:
        return f"{self.low}–{self.high}"


# A refusal's responseCode in this range reaches the sender as its error code (§8, two sources).
REFUSAL_CODES = CodeRange(20000, 20099)
INT_MAX = (1 << 63) - 1  # ms timestamps and ids: signed 64-bit; wider is drift


class Text(fields.Field):
    """A string; a number sent where a string was documented is taken as its decimal text."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= INT_MAX:
            return str(value)
        raise ValidationError("Not a string.")


class Number(fields.Field):
    """An integer; digits in a string are taken as the number (timestamps come as strings, §8)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isascii() and value.strip().lstrip("-").isdigit() \
                and len(value.strip()) <= 20:
            number = int(value)
        else:
            raise ValidationError("Not an integer.")
        if abs(number) > INT_MAX:
            raise ValidationError("Integer out of range.")
        return number


class EventSchema(Schema):
    class Meta:
        unknown = INCLUDE

    event_type = Number(data_key="eventType")
    from_account = Text(data_key="fromAccount")
    from_client_type = Text(data_key="fromClientType")
    from_device_id = Text(data_key="fromDeviceId")
    from_client_ip = Text(data_key="fromClientIp")
    timestamp = Number(data_key="timestamp")


class MessageSchema(EventSchema):
    from_nick = Text(data_key="fromNick")
    to = Text(data_key="to")
    msg_timestamp = Number(data_key="msgTimestamp")
    msg_type = Text(data_key="msgType")
    msgid_client = Text(data_key="msgidClient")
    body = Text(data_key="body")
    attach = Text(data_key="attach")
    ext = Text(data_key="ext")


class TeamSchema(EventSchema):
    tid = Text(data_key="tid")
    tname = Text(data_key="tname")
    owner = Text(data_key="owner")
    invite_list = fields.List(Text(), data_key="inviteList")
    members = fields.List(Text(), data_key="members")
    accids = fields.List(Text(), data_key="accids")
    msg = Text(data_key="msg")


class RecallSchema(EventSchema):
    msg_from_accid = Text(data_key="msgFromAccid")
    msg_id = Text(data_key="msgId")
    time = Number(data_key="time")
    ope_type = Number(data_key="opeType")
    to_account = Text(data_key="toAccount")
    msgid_client = Text(data_key="msgidClient")
    msg = Text(data_key="msg")


class LoginSchema(EventSchema):
    custom_tag = Text(data_key="customTag")
    auth_type = Number(data_key="authType")


# Reply shapes.
MESSAGE = "message"  # allow / refuse / silent drop / modifyResponse, callbackExt
DECIDE = "decide"  # allow / refuse


@dataclass(frozen=True)
class EventSpec:
    event_type: int
    name: str  # the command name rules and metrics see
    schema: Schema
    build_event: Callable[[dict], m.Event]
    action: str
    reply: str = DECIDE
    reads: frozenset[str] = frozenset()  # wire fields the decision needs: drift there is undecidable
    codes: CodeRange = REFUSAL_CODES
    is_before: bool = True  # every NetEase third-party callback is asked before the action

    @property
    def can_drop(self) -> bool:
        return self.reply == MESSAGE

    def decides_on(self, path: str) -> bool:
        return path.split("[", 1)[0] in self.reads


def _s(d: dict, key: str) -> str:
    value = d.get(key)
    return value if isinstance(value, str) else ""


def _message(conversation: str, group_type: str = "") -> Callable[[dict], m.Event]:
    def build(d: dict) -> m.Event:
        peer = _s(d, "to")
        is_group = conversation != "c2c"
        return m.MessageSend(
            m.MESSAGE_SEND, actor=_s(d, "from_account"), group_id=peer if is_group else "",
            group_type=group_type, conversation=conversation, peer=peer,
            message=NeteaseMessage.from_wire(d.get("msg_type"), d.get("body"), d.get("attach"), d.get("ext")),
        )
    return build


def _accounts(d: dict, *keys: str) -> tuple[str, ...]:
    found: list[str] = []
    for key in keys:
        value = d.get(key)
        if isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str) and v)
    return tuple(dict.fromkeys(found))


def _team_create(group_type: str) -> Callable[[dict], m.Event]:
    def build(d: dict) -> m.Event:
        return m.GroupCreate(m.GROUP_CREATE, actor=_s(d, "from_account"), group_id=_s(d, "tid"),
                             group_type=group_type, owner=_s(d, "owner") or _s(d, "from_account"),
                             name=_s(d, "tname"), members=_accounts(d, "invite_list", "members", "accids"))
    return build


def _team_invite(group_type: str) -> Callable[[dict], m.Event]:
    def build(d: dict) -> m.Event:
        return m.GroupInvite(m.GROUP_INVITE, actor=_s(d, "from_account"), group_id=_s(d, "tid"),
                             group_type=group_type, invitees=_accounts(d, "invite_list", "members", "accids"))
    return build


def _team_join(d: dict) -> m.Event:
    return m.GroupJoin(m.GROUP_JOIN, actor=_s(d, "from_account"), group_id=_s(d, "tid"), group_type="team")


def _team_change(operation: str, group_type: str = "team") -> Callable[[dict], m.Event]:
    def build(d: dict) -> m.Event:
        return m.GroupChange(m.GROUP_CHANGE, actor=_s(d, "from_account"), group_id=_s(d, "tid"),
                             group_type=group_type, operation=operation,
                             targets=_accounts(d, "invite_list", "members", "accids"))
    return build


def _profile(d: dict) -> m.Event:
    changes = {k: v for k, v in d.items() if k not in EventSchema().load_fields and k != "eventType"}
    return m.ProfileUpdate(m.PROFILE_UPDATE, actor=_s(d, "from_account"), changes=changes)


def _recall(d: dict) -> m.Event:
    ope_type = d.get("ope_type")
    conversation = "group" if ope_type == 8 else "c2c"  # 7 one-to-one, 8 team (unverified)
    peer = _s(d, "to_account")
    return m.MessageRecall(
        m.MESSAGE_RECALL, actor=_s(d, "from_account"), group_id=peer if conversation == "group" else "",
        sender=_s(d, "msg_from_accid"), conversation=conversation, peer=peer,
        message_id=_s(d, "msg_id") or _s(d, "msgid_client"),
        sent_at_ms=_int(d.get("time")), recalled_at_ms=_int(d.get("timestamp")), note=_s(d, "msg"),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _login(qchat: bool) -> Callable[[dict], m.Event]:
    def build(d: dict) -> m.Event:
        # The body's `token` is a credential: it is never copied into the event.
        return m.Login(m.LOGIN, actor=_s(d, "from_account"), client_type=_s(d, "from_client_type"),
                       device_id=_s(d, "from_device_id"), client_ip=_s(d, "from_client_ip"),
                       custom_tag=_s(d, "custom_tag"), qchat=qchat)
    return build


_MSG_READS = frozenset({"fromAccount", "to", "msgType", "body", "attach", "ext"})
_TEAM_READS = frozenset({"fromAccount", "tid", "tname", "owner", "inviteList", "members", "accids"})
_message_schema, _team_schema, _recall_schema, _login_schema, _event_schema = (
    MessageSchema(), TeamSchema(), RecallSchema(), LoginSchema(), EventSchema())

_TABLE = [
    (1, "NetEase.P2PMessage", _message_schema, _message("c2c"), m.MESSAGE_SEND, MESSAGE, _MSG_READS),
    (2, "NetEase.TeamMessage", _message_schema, _message("group", "team"), m.MESSAGE_SEND, MESSAGE, _MSG_READS),
    (3, "NetEase.ProfileUpdate", _event_schema, _profile, m.PROFILE_UPDATE, DECIDE, frozenset({"fromAccount"})),
    (6, "NetEase.ChatroomMessage", _message_schema, _message("chatroom", "chatroom"), m.MESSAGE_SEND, MESSAGE,
     _MSG_READS),
    (7, "NetEase.CreateTeam", _team_schema, _team_create("team"), m.GROUP_CREATE, DECIDE, _TEAM_READS),
    (8, "NetEase.DismissTeam", _team_schema, _team_change("dismiss"), m.GROUP_CHANGE, DECIDE, _TEAM_READS),
    (9, "NetEase.InviteToTeam", _team_schema, _team_invite("team"), m.GROUP_INVITE, DECIDE, _TEAM_READS),
    (10, "NetEase.LeaveTeam", _team_schema, _team_change("leave"), m.GROUP_CHANGE, DECIDE, _TEAM_READS),
    (11, "NetEase.AddTeamManager", _team_schema, _team_change("add_manager"), m.GROUP_CHANGE, DECIDE, _TEAM_READS),
    (12, "NetEase.RemoveTeamManager", _team_schema, _team_change("remove_manager"), m.GROUP_CHANGE, DECIDE,
     _TEAM_READS),
    (13, "NetEase.TransferTeamOwner", _team_schema, _team_change("transfer_owner"), m.GROUP_CHANGE, DECIDE,
     _TEAM_READS),
    (14, "NetEase.KickFromTeam", _team_schema, _team_change("kick"), m.GROUP_CHANGE, DECIDE, _TEAM_READS),
    (15, "NetEase.UpdateTeamInfo", _team_schema, _team_change("update_info"), m.GROUP_CHANGE, DECIDE, _TEAM_READS),
    (16, "NetEase.UpdateOwnMemberInfo", _team_schema, _team_change("update_own_member_info"), m.GROUP_CHANGE,
     DECIDE, _TEAM_READS),
    (17, "NetEase.UpdateMemberInfo", _team_schema, _team_change("update_member_info"), m.GROUP_CHANGE, DECIDE,
     _TEAM_READS),
    (18, "NetEase.MuteTeamMember", _team_schema, _team_change("mute"), m.GROUP_CHANGE, DECIDE, _TEAM_READS),
    (19, "NetEase.ApplyToJoinTeam", _team_schema, _team_join, m.GROUP_JOIN, DECIDE, _TEAM_READS),
    (22, "NetEase.SuperTeamMessage", _message_schema, _message("group", "superteam"), m.MESSAGE_SEND, MESSAGE,
     _MSG_READS),
    (23, "NetEase.InviteToSuperTeam", _team_schema, _team_invite("superteam"), m.GROUP_INVITE, DECIDE,
     _TEAM_READS),
    (24, "NetEase.KickFromSuperTeam", _team_schema, _team_change("kick", "superteam"), m.GROUP_CHANGE, DECIDE,
     _TEAM_READS),
    (35, "NetEase.RecallMessage", _recall_schema, _recall, m.MESSAGE_RECALL, DECIDE,
     frozenset({"fromAccount", "msgFromAccid", "time", "timestamp", "opeType", "toAccount"})),
    (36, "NetEase.Login", _login_schema, _login(False), m.LOGIN, DECIDE, frozenset({"fromAccount"})),
    (40, "NetEase.QChatLogin", _login_schema, _login(True), m.LOGIN, DECIDE, frozenset({"fromAccount"})),
]
EVENTS: dict[int, EventSpec] = {row[0]: EventSpec(*row) for row in _TABLE}
BY_NAME: dict[str, EventSpec] = {spec.name: spec for spec in EVENTS.values()}
UNKNOWN = "NetEase.UnknownEvent"  # every eventType not in EVENTS: one bounded metric label


def generic_event(d: dict[str, Any]) -> m.Event:
    return m.Notification(m.NOTIFY, actor=_s(d, "fromAccount"))


def load(schema: Schema, payload: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Load `payload` field by field: what fits is converted, what does not is kept raw as drift.

    The schemas are flat (a list of strings at most), so a field-by-field pass is the whole job:
    unknown keys are kept as sent (the IM adds fields), nothing is rejected.
    """
    data: dict[str, Any] = {}
    drift: list[tuple[str, str]] = []
    by_wire = {(f.data_key or attr): (attr, f) for attr, f in schema.load_fields.items()}
    for key, value in payload.items():
        spec = by_wire.get(key)
        if spec is None:
            if key not in schema.load_fields:
                data[key] = value
            continue
        attr, field = spec
        if value is None:
            continue  # absent and null are alike: not every field is always present (§8)
        try:
            data[attr] = field.deserialize(value)
        except ValidationError as exc:
            drift.append((key + ("[]" if isinstance(field, fields.List) else ""), _first(exc.messages)))
            data[attr] = value
    return data, drift


def _first(messages: Any) -> str:
    while isinstance(messages, (list, dict)) and messages:
        messages = messages[0] if isinstance(messages, list) else next(iter(messages.values()))
    return str(messages).rstrip(".")
