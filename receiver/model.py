"""Platform-neutral values: the callback, its event, message text fields.

A platform adapter (Tencent today, NetEase next) turns its wire format into these values, so a
rule written against them serves every platform.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Neutral action names. Rules may be scoped by these or by platform command names.
MESSAGE_SEND = "message.send"
FRIEND_ADD = "friend.add"
FRIEND_RESPOND = "friend.respond"
GROUP_CREATE = "group.create"
GROUP_JOIN = "group.join"
GROUP_INVITE = "group.invite"
TOPIC_CREATE = "topic.create"
# NetEase IM adds these (PROTOCOL.md §8): Tencent reports them only after the fact.
GROUP_CHANGE = "group.change"  # team operations other than create/invite/join: dismiss, kick, mute...
MESSAGE_RECALL = "message.recall"
LOGIN = "login"
PROFILE_UPDATE = "profile.update"
NOTIFY = "notify"

# A path into the wire body, e.g. (0, "MsgContent", "Text"): opaque to rules, which only hand it back
# to Message.replace_texts. A platform may nest a shared prefix as the first item (Tencent does for
# merge-forwarded texts, receiver/tencent/message.py), so deep paths do not each copy it.
Path = tuple


def filled(cls, /, **fields: Any):
    """The instance `cls(**fields)` makes, for a dataclass without __post_init__ or slots, given every
    field in the order the class declares them: its __init__ sets each field of a frozen class
    through object.__setattr__ (~0.1 µs each); filling the instance dict at once makes the same
    object. Callers name every field (tests/test_model_filled.py checks each against __init__)."""
    made = object.__new__(cls)
    made.__dict__.update(fields)
    return made


@dataclass(frozen=True)
class TextField:
    """One human-readable text inside an event, with where it lives and whom it concerns."""

    path: Path
    text: str
    kind: str  # "text", "custom.desc", "relay.title", "group.name", "friend.wording", ...
    subject: str = ""  # for per-friend texts: the friend the text is about


class Message(Protocol):
    """A message body as rules see it; each platform implements it over its wire form."""

    cloud_custom_data: str | None

    def text_fields(self) -> Iterator[TextField]: ...

    def replace_texts(self, edits: Mapping[Path, str]) -> "Message": ...

    def with_cloud_custom_data(self, value: str | None) -> "Message": ...

    def element_types(self) -> tuple[str, ...]: ...

    def custom_payloads(self) -> Iterator[str]: ...

    def text_length(self) -> int: ...

    def to_wire(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Event:
    """What the callback is about, platform-neutral. `actor` is who does it."""

    action: str
    actor: str = ""
    group_id: str = ""
    group_type: str = ""

    def text_fields(self) -> Iterator[TextField]:
        return iter(())


@dataclass(frozen=True)
class MessageSend(Event):
    conversation: str = "c2c"  # "c2c", "group" or "official"
    peer: str = ""  # the recipient account (c2c) or group id
    topic_id: str = ""
    online_only: bool = False
    message: Any = None  # a Message

    def text_fields(self) -> Iterator[TextField]:
        return self.message.text_fields()

    @classmethod
    def of(cls, action: str, actor: str, group_id: str, group_type: str, conversation: str, peer: str,
           topic_id: str, online_only: bool, message: Any) -> "MessageSend":
        """MessageSend(...) with every field given, at a third of the cost: made for every message.
        See `filled`."""
        return filled(cls, action=action, actor=actor, group_id=group_id, group_type=group_type,
                      conversation=conversation, peer=peer, topic_id=topic_id, online_only=online_only,
                      message=message)


@dataclass(frozen=True)
class FriendRequestItem:
    to: str
    wording: str = ""
    remark: str = ""
    source: str = ""
    group_name: str = ""


@dataclass(frozen=True)
class FriendAdd(Event):
    items: tuple[FriendRequestItem, ...] = ()
    add_type: str = ""
    forced: bool = False

    def text_fields(self) -> Iterator[TextField]:
        for i, item in enumerate(self.items):
            if item.wording:
                yield TextField(("FriendItem", i, "AddWording"), item.wording, "friend.wording", item.to)
            if item.remark:
                yield TextField(("FriendItem", i, "Remark"), item.remark, "friend.remark", item.to)


@dataclass(frozen=True)
class FriendResponseItem:
    to: str
    action: str = ""
    remark: str = ""
    tag: str = ""


@dataclass(frozen=True)
class FriendRespond(Event):
    items: tuple[FriendResponseItem, ...] = ()

    def text_fields(self) -> Iterator[TextField]:
        for i, item in enumerate(self.items):
            if item.remark:
                yield TextField(("ResponseFriendItem", i, "Remark"), item.remark, "friend.remark", item.to)


@dataclass(frozen=True)
class GroupCreate(Event):
    owner: str = ""
    name: str = ""
    created_count: int = 0
    members: tuple[str, ...] = ()

    def text_fields(self) -> Iterator[TextField]:
        if self.name:
            yield TextField(("Name",), self.name, "group.name")


@dataclass(frozen=True)
class GroupJoin(Event):
    pass


@dataclass(frozen=True)
class GroupInvite(Event):
    invitees: tuple[str, ...] = ()


@dataclass(frozen=True)
class TopicCreate(Event):
    name: str = ""

    def text_fields(self) -> Iterator[TextField]:
        if self.name:
            yield TextField(("Name",), self.name, "topic.name")


@dataclass(frozen=True)
class GroupChange(Event):
    """A team operation the IM asks about first (NetEase 8, 10–18, 24): `operation` names it."""

    operation: str = ""  # "dismiss", "leave", "kick", "mute", "transfer_owner", "update_info", ...
    targets: tuple[str, ...] = ()  # the members it is done to, where the body names them


@dataclass(frozen=True)
class MessageRecall(Event):
    """A recall asked about before it happens (NetEase 35). `actor` recalls `sender`'s message."""

    sender: str = ""  # who sent the recalled message
    conversation: str = "c2c"  # "c2c" or "group"
    peer: str = ""  # recipient account or group id of the recalled message
    message_id: str = ""
    sent_at_ms: int | None = None  # when the recalled message was sent; None: not in the body
    recalled_at_ms: int | None = None  # when the recall was asked for; None: not in the body
    note: str = ""

    def text_fields(self) -> Iterator[TextField]:
        if self.note:
            yield TextField(("msg",), self.note, "recall.note")


@dataclass(frozen=True)
class Login(Event):
    """A login asked about before it succeeds (NetEase 36, 40 for QChat). Never holds the token."""

    client_type: str = ""
    device_id: str = ""
    client_ip: str = ""
    custom_tag: str = ""
    qchat: bool = False


@dataclass(frozen=True)
class ProfileUpdate(Event):
    """A user profile update asked about first (NetEase 3); `changes` as the IM names the fields."""

    changes: Mapping[str, Any] = field(default_factory=dict)

    def text_fields(self) -> Iterator[TextField]:
        for key in ("name", "sign"):
            value = self.changes.get(key)
            if isinstance(value, str) and value:
                yield TextField((key,), value, f"profile.{key}")


@dataclass(frozen=True)
class Notification(Event):
    """An after-callback or notification: nothing to decide, only to record and forward."""

    texts: tuple[TextField, ...] = ()

    def text_fields(self) -> Iterator[TextField]:
        return iter(self.texts)


@dataclass(frozen=True)
class Callback:
    """One received callback: immutable, typed, with its raw wire form kept."""

    platform: str
    command: str
    is_before: bool
    app_id: str
    event: Event
    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    client_ip: str = ""
    client_platform: str = ""
    known: bool = True  # False: a command this version has no schema for
    # Schema paths of the fields that did not fit their schema and are kept as the IM sent them
    # ("MsgSeq", "FriendItem[].Remark"): from the schema, never from the body, so they label metrics.
    drift: tuple[str, ...] = ()
    # Why the rules cannot decide this before-callback ("" when they can): a field its decision needs
    # is unreadable, or the body nests too deep. The chain then answers with its on_error outcome.
    undecidable: str = ""

    @classmethod
    def of(cls, platform: str, command: str, is_before: bool, app_id: str, event: Event, query: Mapping[str, str],
           body: Mapping[str, Any], data: Mapping[str, Any], client_ip: str, client_platform: str, known: bool,
           drift: tuple[str, ...], undecidable: str) -> "Callback":
        """Callback(...) with every field given, at a third of the cost: made for every request. See `filled`."""
        return filled(cls, platform=platform, command=command, is_before=is_before, app_id=app_id, event=event,
                      query=query, body=body, data=data, client_ip=client_ip, client_platform=client_platform,
                      known=known, drift=drift, undecidable=undecidable)

    @property
    def action(self) -> str:
        return self.event.action

    def with_event(self, event: Event) -> "Callback":
        """Return a copy with another event (used when a rule rewrites the message)."""
        from dataclasses import replace

        return replace(self, event=event)
