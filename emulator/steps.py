"""Step sentences: what each one means (an action value) and the table that reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .grammar import Pattern, SentenceError, match_first, parse_options
from .world import DEFAULT_JOIN

GROUP_TYPES = tuple(DEFAULT_JOIN)
# `recalls m1 after N s`: how far back a recall step may date the message it recalls (a week).
MAX_RECALL_AGE_SECONDS = 7 * 24 * 3600


# --- actions: frozen values, one per kind of step ----------------------------------------------

@dataclass(frozen=True)
class SendMessage:
    actor: str
    conversation: str  # "c2c" or "group"
    peer: str  # user name or group alias
    body: tuple[dict, ...] = ()
    cloud_custom_data: str | None = None
    online_only: bool = False
    label: str | None = None  # `as m1`: the name a later recall step uses for this message
    attach: str | None = None  # NetEase only: the message's `attach` string
    ext: str | None = None  # NetEase only: the message's `ext` string


@dataclass(frozen=True)
class AddFriend:
    actor: str
    friends: tuple[str, ...]
    wording: str = ""
    remark: str = ""
    add_type: str = "Add_Type_Both"


@dataclass(frozen=True)
class RespondFriend:
    actor: str
    response: str  # Response_Action_Agree, Response_Action_AgreeAndAdd, Response_Action_Reject
    requester: str | None = None


@dataclass(frozen=True)
class DeleteFriend:
    actor: str
    friend: str


@dataclass(frozen=True)
class CreateGroup:
    actor: str
    name: str
    group_type: str
    members: tuple[str, ...] = ()
    alias: str = ""


@dataclass(frozen=True)
class ApplyJoin:
    actor: str
    group: str


@dataclass(frozen=True)
class ReviewApplication:
    actor: str
    applicant: str
    approve: bool
    group: str | None = None


@dataclass(frozen=True)
class InviteMembers:
    actor: str
    invitees: tuple[str, ...]
    group: str


@dataclass(frozen=True)
class LeaveGroup:
    actor: str
    group: str


@dataclass(frozen=True)
class KickMembers:
    actor: str
    members: tuple[str, ...]
    group: str


@dataclass(frozen=True)
class Recall:
    actor: str
    peer: str | None = None
    group: str | None = None
    label: str | None = None  # a message named with `as LABEL` when it was sent
    device: str | None = None  # NetEase: the device that recalls (default: the user's current one)
    age_seconds: float | None = None  # NetEase: recall as if the message were this old


@dataclass(frozen=True)
class Read:
    actor: str
    peer: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Login:
    actor: str
    platform: str = ""


@dataclass(frozen=True)
class Logout:
    actor: str
    reason: str = "Unregister"  # "LinkClose" for a dropped connection (Action Disconnect)


@dataclass(frozen=True)
class Call:
    actor: str
    invitees: tuple[str, ...]
    group: str | None = None
    media: str = "audio"
    timeout: int = 30
    online_only: bool = False
    data: str | None = None  # the app's `data` string; None: the call kits' JSON


@dataclass(frozen=True)
class AnswerCall:
    actor: str
    action: str  # accept, reject, cancel, timeout
    busy: bool = False
    data: str | None = None


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Check:
    """A step with expectations only: nothing happens."""


# --- the context a sentence is read in -------------------------------------------------------

@dataclass
class Names:
    """Users and groups a sentence may name; groups grow as `creates group ... as X` is read."""

    users: set[str]
    groups: set[str] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)  # labels given with `sends ... as LABEL`

    def user(self, name: str) -> str:
        if name not in self.users:
            raise SentenceError(f"unknown user {name!r}; declared users: {', '.join(sorted(self.users))}")
        return name

    def user_list(self, names) -> tuple[str, ...]:
        if not names:
            raise SentenceError("the list of users is empty")
        return tuple(self.user(n) for n in names)

    def group(self, alias: str) -> str:
        if alias not in self.groups:
            known = ", ".join(sorted(self.groups)) or "(none yet)"
            raise SentenceError(f"unknown group {alias!r}; groups so far: {known}")
        return alias

    def message(self, label: str) -> str:
        if label not in self.messages:
            known = ", ".join(sorted(self.messages)) or "(none yet)"
            raise SentenceError(f"no message sent as {label!r} before this step; labels so far: {known}")
        return label

    def new_message(self, label: str | None) -> str | None:
        if label is not None:
            if label in self.messages:
                raise SentenceError(f"a message was sent as {label!r} already; pick another label")
            self.messages.add(label)
        return label


@dataclass(frozen=True)
class StepExtras:
    """What the mapping form of a step may add to its sentence."""

    elements: tuple[dict, ...] | None = None
    cloud_custom_data: str | None = None
    online_only: bool | None = None
    data: str | None = None
    attach: str | None = None
    ext: str | None = None


def _extras_for_send(extras: StepExtras, text: str | None) -> dict[str, Any]:
    if text is not None and extras.elements:
        raise SentenceError("give the message either as \"TEXT\" in the sentence or as `elements`, not both")
    if text is None and not extras.elements:
        raise SentenceError("a send needs \"TEXT\" in the sentence or an `elements` list")
    body = extras.elements or ({"MsgType": "TIMTextElem", "MsgContent": {"Text": text}},)
    return {"body": tuple(body), "cloud_custom_data": extras.cloud_custom_data,
            "online_only": bool(extras.online_only), "attach": extras.attach, "ext": extras.ext}


_SEND_OPTIONS = {"online only": "flag"}
_CALL_OPTIONS = {"audio": "flag", "video": "flag", "timeout": "num", "online only": "flag"}
_RESPONSES = {"agree": "Response_Action_Agree", "reject": "Response_Action_Reject"}


def _send_c2c(v, names: Names, extras: StepExtras):
    opts = parse_options(v.get("opts", ()), _SEND_OPTIONS)
    fields = _extras_for_send(extras, v.get("text"))
    fields["online_only"] = fields["online_only"] or "online only" in opts
    return SendMessage(names.user(v["actor"]), "c2c", names.user(v["peer"]), label=names.new_message(v.get("label")),
                       **fields)


def _send_group(v, names: Names, extras: StepExtras):
    opts = parse_options(v.get("opts", ()), _SEND_OPTIONS)
    fields = _extras_for_send(extras, v.get("text"))
    fields["online_only"] = fields["online_only"] or "online only" in opts
    return SendMessage(names.user(v["actor"]), "group", names.group(v["group"]),
                       label=names.new_message(v.get("label")), **fields)


def _add_friend(v, names: Names, extras: StepExtras):
    opts = parse_options(v.get("opts", ()), {"single": "flag"})
    friends = names.user_list(v["friends"])
    if v["actor"] in friends:
        raise SentenceError("a user cannot add herself as a friend")
    return AddFriend(names.user(v["actor"]), friends, wording=v.get("wording", ""),
                     remark=v.get("remark", ""),
                     add_type="Add_Type_Single" if opts.get("single") else "Add_Type_Both")


def _respond(v, names: Names, extras: StepExtras):
    response = _RESPONSES[v["response"]]
    if v.get("and_add"):
        if response != "Response_Action_Agree":
            raise SentenceError("only `agree and add` exists; `reject and add` does not")
        response = "Response_Action_AgreeAndAdd"
    requester = names.user(v["requester"]) if v.get("requester") else None
    return RespondFriend(names.user(v["actor"]), response, requester)


def _create_group(v, names: Names, extras: StepExtras):
    if v["type"] not in GROUP_TYPES:
        raise SentenceError(f"unknown group type {v['type']!r}; one of {', '.join(GROUP_TYPES)}")
    alias = v.get("alias") or v["name"]
    if alias in names.groups:
        raise SentenceError(f"a group called {alias!r} exists already; add `as OTHER_NAME`")
    members = names.user_list(v["members"]) if v.get("members") else ()
    names.groups.add(alias)
    return CreateGroup(names.user(v["actor"]), v["name"], v["type"], members, alias)


def _call(v, names: Names, extras: StepExtras):
    opts = parse_options(v.get("opts", ()), _CALL_OPTIONS)
    if opts.get("audio") and opts.get("video"):
        raise SentenceError("a call is audio or video, not both")
    group = names.group(v["group"]) if v.get("group") else None
    invitees = names.user_list(v["invitees"])
    if group is None and len(invitees) != 1:
        raise SentenceError("a one-to-one call has one invitee; for several use `... to a group call in GROUP`")
    if v["actor"] in invitees:
        raise SentenceError("a user cannot call herself")
    timeout = opts.get("timeout", 30)
    if not isinstance(timeout, int) or timeout < 0:
        raise SentenceError("timeout is a whole number of seconds (0: no timeout)")
    return Call(names.user(v["actor"]), invitees, group, "video" if opts.get("video") else "audio",
                timeout, bool(extras.online_only) or "online only" in opts, extras.data)


def _answer(action: str):
    def build(v, names: Names, extras: StepExtras):
        opts = parse_options(v.get("opts", ()), {"busy": "flag"} if action == "reject" else {})
        return AnswerCall(names.user(v["actor"]), action, bool(opts.get("busy")), extras.data)
    return build


def _review(approve: bool):
    def build(v, names: Names, extras: StepExtras):
        group = names.group(v["group"]) if v.get("group") else None
        return ReviewApplication(names.user(v["actor"]), names.user(v["applicant"]), approve, group)
    return build


def _recall(v, names: Names, extras: StepExtras):
    age = v.get("seconds")
    if age is not None and not 0 <= age <= MAX_RECALL_AGE_SECONDS:
        raise SentenceError(f"`after N s` takes 0 to {MAX_RECALL_AGE_SECONDS} seconds")
    return Recall(names.user(v["actor"]), peer=names.user(v["peer"]) if v.get("peer") else None,
                  group=names.group(v["group"]) if v.get("group") else None,
                  label=names.message(v["label"]) if v.get("label") else None, device=v.get("device"),
                  age_seconds=float(age) if age is not None else None)


def _wait(v, names: Names, extras: StepExtras):
    if v["seconds"] <= 0 or v["seconds"] > 600:
        raise SentenceError("wait between 0 and 600 seconds")
    return Wait(float(v["seconds"]))


def _simple(cls, **slots):
    """A builder that passes slots to same-named fields, checking users and groups by kind."""
    def build(v, names: Names, extras: StepExtras):
        kwargs = {}
        for slot, kind in slots.items():
            if slot not in v:
                continue
            check = {"user": names.user, "users": names.user_list, "group": names.group}.get(kind)
            kwargs[slot] = check(v[slot]) if check else v[slot]
        return cls(**kwargs)
    return build


U = "{actor:user}"
_RECALLED_HOW = " [on {device:word}] [after {seconds:num} s|second|seconds]"
STEP_TABLE = [(Pattern.compile(source), builder) for source, builder in [
    (U + ' sends group {group:group} [{text:str}] [as {label:word}] [{opts:opts}]', _send_group),
    (U + ' sends {peer:user} [{text:str}] [as {label:word}] [{opts:opts}]', _send_c2c),
    (U + ' adds friend|friends {friends:users} [with wording {wording:str}] [remark {remark:str}] [{opts:opts}]',
     _add_friend),
    (U + ' responds {response=agree|reject} [{and_add=and} add] [to {requester:user}]', _respond),
    (U + ' deletes friend {friend:user}', _simple(DeleteFriend, actor="user", friend="user")),
    (U + ' creates group {name:str} type {type:word} [with {members:users}] [as {alias:word}]', _create_group),
    (U + ' applies to join {group:group}', _simple(ApplyJoin, actor="user", group="group")),
    (U + ' invites {invitees:users} to a group call in {group:group} [{opts:opts}]', _call),
    (U + ' invites {invitees:users} to {group:group}', _simple(InviteMembers, actor="user", invitees="users",
                                                               group="group")),
    (U + ' approves {applicant:user} [for {group:group}]', _review(approve=True)),
    (U + ' declines {applicant:user} [for {group:group}]', _review(approve=False)),
    (U + ' leaves {group:group}', _simple(LeaveGroup, actor="user", group="group")),
    (U + ' kicks {members:users} from {group:group}', _simple(KickMembers, actor="user", members="users",
                                                              group="group")),
    (U + ' recalls her|his|their|the last message [to {peer:user}]' + _RECALLED_HOW, _recall),
    (U + ' recalls her|his|their|the last message in {group:group}' + _RECALLED_HOW, _recall),
    (U + ' recalls {label:word}' + _RECALLED_HOW, _recall),
    (U + ' reads group {group:group}', _simple(Read, actor="user", group="group")),
    (U + ' reads [{peer:user}]', _simple(Read, actor="user", peer="user")),
    (U + ' logs in [on {platform:word}]', _simple(Login, actor="user", platform="word")),
    (U + ' logs out', _simple(Logout, actor="user")),
    (U + ' disconnects', lambda v, n, e: Logout(n.user(v["actor"]), "LinkClose")),
    (U + ' calls {invitees:users} [{opts:opts}]', _call),
    (U + ' accepts', _answer("accept")),
    (U + ' rejects [{opts:opts}]', _answer("reject")),
    (U + ' cancels', _answer("cancel")),
    (U + ' lets it time out', _answer("timeout")),
    ('wait {seconds:num} [s|second|seconds]', _wait),
]]


def parse_step(sentence: str, names: Names, extras: StepExtras = StepExtras()) -> Any:
    """Read one step sentence into an action value, or raise SentenceError."""
    builder, values = match_first(STEP_TABLE, sentence, "step")
    action = builder(values, names, extras)
    _check_extras(action, extras)
    return action


def _check_extras(action: Any, extras: StepExtras) -> None:
    if any(x is not None for x in (extras.elements, extras.cloud_custom_data, extras.attach, extras.ext)):
        if not isinstance(action, SendMessage):
            raise SentenceError("`elements`, `cloud_custom_data`, `attach` and `ext` only apply to `sends` steps")
    if extras.data is not None and not isinstance(action, (Call, AnswerCall)):
        raise SentenceError("`data` only applies to call steps")
    if extras.online_only is not None and not isinstance(action, (SendMessage, Call)):
        raise SentenceError("`online_only` only applies to sends and calls")
