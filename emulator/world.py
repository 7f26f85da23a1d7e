"""The emulated IM world: users and their devices, friends, groups, messages, unread counts,
pending friend and join applications, and signaling invitations."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .ids import Ids

C2C = "c2c"
GROUP = "group"

# Who may join a group without approval, by type, as the console's defaults have it
# (Public: admin approval; Private/Work: no applications; ChatRoom/AVChatRoom/Community: free).
DEFAULT_JOIN = {"Public": "approve", "Private": "disabled", "Work": "disabled", "ChatRoom": "free",
                "Meeting": "free", "AVChatRoom": "free", "Community": "free"}


@dataclass
class UserState:
    name: str
    default_platform: str = "Android"
    platforms: list[str] = field(default_factory=list)  # devices online; the last one acts
    add_friend: str = "confirm"  # AllowType: any, confirm (NeedConfirm, the default) or deny
    friends: set[str] = field(default_factory=set)  # accounts on this user's friend list
    client_ip: str = ""

    @property
    def online(self) -> bool:
        return bool(self.platforms)

    @property
    def platform(self) -> str:
        return self.platforms[-1] if self.platforms else self.default_platform


@dataclass
class GroupState:
    alias: str  # the scenario's name for it
    group_id: str  # GroupId on the wire
    name: str
    type: str
    owner: str
    members: list[str] = field(default_factory=list)  # owner included, in joining order
    admins: set[str] = field(default_factory=set)
    join: str = "approve"  # free, approve or disabled
    seq: int = 0  # the last MsgSeq used in this group

    def can_review(self, user: str) -> bool:
        return user == self.owner or user in self.admins


@dataclass
class StoredMessage:
    conversation: str  # c2c or group
    sender: str
    peer: str  # recipient account (c2c) or group alias
    seq: int
    random: int
    time: int  # MsgTime, seconds
    msg_id: str
    body: list[dict]
    cloud_custom_data: str | None = None
    online_only: bool = False
    delivered_to: set[str] = field(default_factory=set)
    unread_by: set[str] = field(default_factory=set)
    recalled: bool = False

    @property
    def key(self) -> str:
        return f"{self.seq}_{self.random}_{self.time}"


@dataclass
class FriendApplication:
    requester: str
    target: str
    wording: str = ""
    add_type: str = "Add_Type_Both"


@dataclass
class JoinApplication:
    applicant: str
    group: str  # alias


@dataclass
class Invitation:
    """One signaling invitation and each invitee's state: pending, accepted, rejected, timeout,
    cancelled."""

    invite_id: str
    inviter: str
    invitees: tuple[str, ...]
    group: str | None  # alias, or None for a one-to-one invitation
    timeout: int
    online_only: bool
    data: str
    status: dict[str, str] = field(default_factory=dict)
    received: set[str] = field(default_factory=set)  # invitees whose client raised the invitation

    def __post_init__(self) -> None:
        self.status = self.status or {user: "pending" for user in self.invitees}

    @property
    def open(self) -> bool:
        return any(state == "pending" for state in self.status.values())

    def pending(self, user: str) -> bool:
        return self.status.get(user) == "pending"


class World:
    """Everything the emulated IM knows; steps read and change it."""

    def __init__(self, ids: Ids):
        self.ids = ids
        self.users: dict[str, UserState] = {}
        self.groups: dict[str, GroupState] = {}
        self.unread: Counter[tuple[str, str, str]] = Counter()  # (user, c2c|group, peer) -> count
        self.messages: list[StoredMessage] = []
        self.friend_applications: list[FriendApplication] = []
        self.join_applications: list[JoinApplication] = []
        self.invitations: list[Invitation] = []
        self.labels: dict[str, Any] = {}  # `sends ... as LABEL`: the message sent under that name
        self._c2c_seq: dict[frozenset, int] = {}

    # --- users -----------------------------------------------------------------------------
    def add_user(self, name: str, *, platform: str = "Android", online: bool = True,
                 add_friend: str = "confirm", devices: tuple[str, ...] = ()) -> UserState:
        # The acting device is the last online one: `platform` goes last.
        online_devices = [d for d in devices if d != platform] + [platform] if online else []
        user = UserState(name, platform, online_devices, add_friend,
                         client_ip=f"203.0.113.{len(self.users) % 250 + 1}")
        self.users[name] = user
        return user

    def online(self, name: str) -> bool:
        return self.users[name].online

    def befriend(self, owner: str, friend: str) -> bool:
        """Put `friend` on `owner`'s list; False if already there."""
        if friend in self.users[owner].friends:
            return False
        self.users[owner].friends.add(friend)
        return True

    # --- groups ----------------------------------------------------------------------------
    def add_group(self, group: GroupState) -> GroupState:
        if group.owner not in group.members:
            group.members.insert(0, group.owner)
        self.groups[group.alias] = group
        return group

    def groups_created(self, owner: str, group_type: str) -> int:
        return sum(1 for g in self.groups.values() if g.owner == owner and g.type == group_type)

    # --- messages and unread counts ----------------------------------------------------------
    def next_c2c_seq(self, a: str, b: str) -> int:
        """MsgSeq grows per one-to-one conversation; it starts at a random point as on the wire."""
        pair = frozenset((a, b))
        seq = self._c2c_seq.get(pair) or self.ids.rng.randint(1, 60000)
        self._c2c_seq[pair] = seq + 1
        return seq

    def next_group_seq(self, alias: str) -> int:
        group = self.groups[alias]
        group.seq += 1
        return group.seq

    def c2c_unread_total(self, user: str) -> int:
        """A user's unread one-to-one messages over all conversations (the callbacks' UnreadMsgNum)."""
        return sum(n for (owner, kind, _), n in self.unread.items() if owner == user and kind == C2C)

    def unread_count(self, user: str, kind: str | None = None, peer: str | None = None) -> int:
        return sum(n for (owner, k, p), n in self.unread.items()
                   if owner == user and kind in (None, k) and peer in (None, p))

    def mark_unread(self, message: StoredMessage, reader: str) -> None:
        peer = message.sender if message.conversation == C2C else message.peer
        self.unread[(reader, message.conversation, peer)] += 1
        message.unread_by.add(reader)

    def mark_read(self, reader: str, kind: str, peer: str) -> int:
        """Clear a conversation's unread count; return how many were unread."""
        count = self.unread.pop((reader, kind, peer), 0)
        for message in self.messages:
            if message.conversation == kind and (message.peer == peer if kind == GROUP else
                                                 message.sender == peer and message.peer == reader):
                message.unread_by.discard(reader)
        return count

    def forget_unread(self, message: StoredMessage) -> None:
        """A recalled message no longer counts as unread for anybody."""
        peer = message.sender if message.conversation == C2C else message.peer
        for reader in message.unread_by:
            key = (reader, message.conversation, peer)
            self.unread[key] -= 1
            if self.unread[key] <= 0:
                del self.unread[key]
        message.unread_by.clear()

    def last_message(self, sender: str, *, peer: str | None = None, group: str | None = None
                     ) -> StoredMessage | None:
        for message in reversed(self.messages):
            if message.sender != sender or message.recalled or not message.delivered_to:
                continue
            if peer is not None and (message.conversation != C2C or message.peer != peer):
                continue
            if group is not None and (message.conversation != GROUP or message.peer != group):
                continue
            return message
        return None

    # --- signaling ---------------------------------------------------------------------------
    def invitation(self, invite_id: str) -> Invitation | None:
        return next((i for i in self.invitations if i.invite_id == invite_id), None)

    def latest_invitation(self, test) -> Invitation | None:
        return next((i for i in reversed(self.invitations) if test(i)), None)

    def snapshot(self) -> dict[str, Any]:
        """A plain summary for debugging and for the end of a transcript."""
        return {
            "online": {u.name: u.platforms for u in self.users.values()},
            "friends": {u.name: sorted(u.friends) for u in self.users.values()},
            "groups": {g.alias: list(g.members) for g in self.groups.values()},
            "unread": {f"{u}/{k}/{p}": n for (u, k, p), n in self.unread.items()},
            "open invitations": [i.invite_id for i in self.invitations if i.open],
        }
