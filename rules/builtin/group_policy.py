"""`group_policy`: who may create which groups and how many, names, join applications, invitations.

- `create`, per group type (`"*"` for every type; a listed type's options override `"*"`'s one by
  one): `deny`, `allow_users`, `deny_users`, `max_created` (groups of that type a user may own).
- `deny_name_words`: refuse group and topic names containing one of these (case-insensitive).
- `join`: entries of users whose join applications are refused, optionally only for some group ids
  or types.
- `invite`: refuse only the disallowed invitees; if none is left, refuse the whole invitation.

Each check (`create`, `max_created`, `name`, `join`, `invite`) answers with its own code and text:
`refusals.<check>` sets them; unset, the shared `code`/`info` apply to every check (as before
`refusals` existed); unset too, the generic refusal code and the check's own wording (CHECKS).
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from receiver.model import (GROUP_CREATE, GROUP_INVITE, GROUP_JOIN, TOPIC_CREATE, Callback, GroupCreate,
                            GroupInvite, GroupJoin)
from receiver.verdict import Verdict, refuse_members

from ..base import Rule, RuleContext
from .refusal import NamedBlocks, Refusal, RefusalConfig, build_refusal, code_field, describe_options

ANY_TYPE = "*"
OVER_MAX = ("refuse_excess", "refuse_all")
# check -> (the actions it refuses, its wording when neither refusals.<check>.info nor info is set).
# The wording is the ErrorInfo of the reply: the IM passes it to the client with an own code
# (PROTOCOL.md §3, §7), and it is what a recording or a replay report shows.
CHECKS = {
    "create": ((GROUP_CREATE,), "you may not create this type of group"),
    "max_created": ((GROUP_CREATE,), "you already created the most groups of this type allowed"),
    "name": ((GROUP_CREATE, TOPIC_CREATE), "the name contains a word that is not allowed"),
    "join": ((GROUP_JOIN,), "you may not apply to join this group"),
    "invite": ((GROUP_INVITE,), "these users may not be invited"),
}
Objection = tuple[str, str]  # (check, why): which check refused, and the reason for the trace


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _strings(**kw) -> fields.List:
    return fields.List(fields.String(), load_default=None, **kw)


class CreateConfig(_Strict):
    deny = fields.Boolean(load_default=None)
    allow_users = _strings()
    deny_users = _strings()
    max_created = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=0))


class JoinConfig(_Strict):
    users = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    group_ids = _strings()
    group_types = _strings()


class InviteConfig(_Strict):
    deny_invitees = _strings()
    max_invitees = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=1))
    over_max = fields.String(load_default="refuse_excess", validate=validate.OneOf(OVER_MAX))


class CheckRefusal(_Strict):
    """`code`/`info` of one check; either left out: the shared one."""

    code = code_field()
    info = fields.String(load_default=None)


class RefusalsConfig(_Strict):
    create = fields.Nested(CheckRefusal, load_default=None)
    max_created = fields.Nested(CheckRefusal, load_default=None)
    name = fields.Nested(CheckRefusal, load_default=None)
    join = fields.Nested(CheckRefusal, load_default=None)
    invite = fields.Nested(CheckRefusal, load_default=None)


class GroupPolicyConfig(RefusalConfig):
    create = NamedBlocks(CreateConfig, load_default=dict)
    deny_name_words = _strings()
    join = fields.List(fields.Nested(JoinConfig), load_default=list)
    invite = fields.Nested(InviteConfig, load_default=None)
    info = fields.String(load_default=None)  # None, not "": unset lets each check's own wording show
    refusals = fields.Nested(RefusalsConfig, load_default=None)


def build_check_refusals(config: dict[str, Any], context: RuleContext) -> dict[str, Refusal]:
    """One Refusal per check: its own code/info, else the shared ones, else its default wording.

    A check's own code is validated against that check's commands, and an error points at
    `refusals.<check>.code`; the shared code is validated once, at `code`.
    """
    build_refusal(config, context, GroupPolicy.actions)  # `action` and the shared `code`, at their place
    own_blocks = config["refusals"] or {}
    result = {}
    for check, (actions, wording) in CHECKS.items():
        own = own_blocks.get(check) or {}
        has_code = own.get("code") is not None
        settings = {"action": config["action"], "code": own["code"] if has_code else config["code"],
                    "info": next(i for i in (own.get("info"), config["info"], wording) if i is not None)}
        result[check] = build_refusal(settings, context, actions, path=f"refusals.{check}" if has_code else "")
    return result


class GroupPolicy(Rule):
    """Refuse group creations, join applications, topic names and (some) invitees by policy."""

    blocking = False  # bounded CPU work, no I/O: decided inline, without a thread hop

    Config = GroupPolicyConfig
    actions = (GROUP_CREATE, GROUP_JOIN, GROUP_INVITE, TOPIC_CREATE)

    def __init__(self, config: dict[str, Any], *, name: str, context: RuleContext):
        super().__init__(config, name=name, context=context)
        self.refusals = build_check_refusals(config, context)
        self.create = config["create"]
        self.name_words = tuple(w.casefold() for w in config["deny_name_words"] or () if w)
        self.invite = config["invite"]
        self._deciders = {GROUP_CREATE: self.create_objection, GROUP_JOIN: self.join_objection,
                          TOPIC_CREATE: self.name_objection}

    def describe(self) -> str:
        return describe_options(self.config)

    def decide(self, callback: Callback) -> Verdict | None:
        event = callback.event
        if isinstance(event, GroupInvite):
            return self.decide_invite(callback, event)
        objection = self._deciders[event.action](event)
        if objection is None:
            return None
        check, reason = objection
        return self.refusals[check].verdict(callback, reason)

    def create_policy(self, group_type: str) -> dict[str, Any]:
        """The `"*"` options overridden, one by one, by those set for `group_type`."""
        merged = dict(self.create.get(ANY_TYPE) or {})
        for key, value in (self.create.get(group_type) or {}).items():
            if value is not None:
                merged[key] = value
        return merged

    def create_objection(self, event: GroupCreate) -> Objection | None:
        policy, user, kind = self.create_policy(event.group_type), event.actor, event.group_type
        if policy.get("deny"):
            return "create", f"{kind} groups may not be created"
        if policy.get("deny_users") is not None and user in policy["deny_users"]:
            return "create", f"{user} may not create {kind} groups"
        if policy.get("allow_users") is not None and user not in policy["allow_users"]:
            return "create", f"{user} is not allowed to create {kind} groups"
        cap = policy.get("max_created")
        # CreateGroupNum counts the groups of this type the user already created (PROTOCOL.md §4).
        if cap is not None and event.created_count >= cap:
            return "max_created", f"{user} already created {event.created_count} {kind} groups (maximum {cap})"
        return self.name_objection(event)

    def name_objection(self, event: Any) -> Objection | None:
        for field in event.text_fields():
            text = field.text.casefold()
            word = next((w for w in self.name_words if w in text), None)
            if word:
                return "name", f"{field.kind} contains {word!r}"
        return None

    def join_objection(self, event: GroupJoin) -> Objection | None:
        for entry in self.config["join"]:
            if (event.actor in entry["users"]
                    and (entry["group_ids"] is None or event.group_id in entry["group_ids"])
                    and (entry["group_types"] is None or event.group_type in entry["group_types"])):
                return "join", f"{event.actor} may not apply to join {event.group_id}"
        return None

    def decide_invite(self, callback: Callback, event: GroupInvite) -> Verdict | None:
        if self.invite is None:
            return None
        invitees = tuple(dict.fromkeys(event.invitees))
        deny = frozenset(self.invite["deny_invitees"] or ())
        refused = [i for i in invitees if i in deny]
        allowed = [i for i in invitees if i not in deny]
        cap = self.invite["max_invitees"]
        reasons = [f"{', '.join(refused)} may not be invited"] if refused else []
        if cap is not None and len(allowed) > cap:
            if self.invite["over_max"] == "refuse_all":
                return self.refusals["invite"].verdict(callback, f"{len(allowed)} invitees, over the maximum of {cap}")
            refused += allowed[cap:]
            reasons.append(f"{len(allowed) - cap} invitees over the maximum of {cap}")
        if not refused:
            return None
        if len(refused) == len(invitees):  # nobody left to invite: refuse the invitation itself
            return self.refusals["invite"].verdict(callback, "every invitee refused: " + "; ".join(reasons))
        return refuse_members(refused, reason="; ".join(reasons))
