"""`group_policy`: who may create which groups and how many, names, join applications, invitations.

- `create`, per group type (`"*"` for every type; a listed type's options override `"*"`'s one by
  one): `deny`, `allow_users`, `deny_users`, `max_created` (groups of that type a user may own).
- `deny_name_words`: refuse group and topic names containing one of these (case-insensitive).
- `join`: entries of users whose join applications are refused, optionally only for some group ids
  or types.
- `invite`: refuse only the disallowed invitees; if none is left, refuse the whole invitation.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from receiver.model import (GROUP_CREATE, GROUP_INVITE, GROUP_JOIN, TOPIC_CREATE, Callback, GroupCreate,
                            GroupInvite, GroupJoin)
from receiver.verdict import Verdict, refuse_members

from ..base import Rule, RuleContext
from .refusal import NamedBlocks, RefusalConfig, build_refusal, describe_options

ANY_TYPE = "*"
OVER_MAX = ("refuse_excess", "refuse_all")


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


class GroupPolicyConfig(RefusalConfig):
    create = NamedBlocks(CreateConfig, load_default=dict)
    deny_name_words = _strings()
    join = fields.List(fields.Nested(JoinConfig), load_default=list)
    invite = fields.Nested(InviteConfig, load_default=None)


class GroupPolicy(Rule):
    """Refuse group creations, join applications, topic names and (some) invitees by policy."""

    blocking = False  # bounded CPU work, no I/O: decided inline, without a thread hop

    Config = GroupPolicyConfig
    actions = (GROUP_CREATE, GROUP_JOIN, GROUP_INVITE, TOPIC_CREATE)

    def __init__(self, config: dict[str, Any], *, name: str, context: RuleContext):
        super().__init__(config, name=name, context=context)
        self.refusal = build_refusal(config, context, self.actions)
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
        reason = self._deciders[event.action](event)
        return self.refusal.verdict(callback, reason) if reason else None

    def create_policy(self, group_type: str) -> dict[str, Any]:
        """The `"*"` options overridden, one by one, by those set for `group_type`."""
        merged = dict(self.create.get(ANY_TYPE) or {})
        for key, value in (self.create.get(group_type) or {}).items():
            if value is not None:
                merged[key] = value
        return merged

    def create_objection(self, event: GroupCreate) -> str:
        policy, user, kind = self.create_policy(event.group_type), event.actor, event.group_type
        if policy.get("deny"):
            return f"{kind} groups may not be created"
        if policy.get("deny_users") is not None and user in policy["deny_users"]:
            return f"{user} may not create {kind} groups"
        if policy.get("allow_users") is not None and user not in policy["allow_users"]:
            return f"{user} is not allowed to create {kind} groups"
        cap = policy.get("max_created")
        # CreateGroupNum counts the groups of this type the user already created (PROTOCOL.md §4).
        if cap is not None and event.created_count >= cap:
            return f"{user} already created {event.created_count} {kind} groups (maximum {cap})"
        return self.name_objection(event)

    def name_objection(self, event: Any) -> str:
        for field in event.text_fields():
            text = field.text.casefold()
            word = next((w for w in self.name_words if w in text), None)
            if word:
                return f"{field.kind} contains {word!r}"
        return ""

    def join_objection(self, event: GroupJoin) -> str:
        for entry in self.config["join"]:
            if (event.actor in entry["users"]
                    and (entry["group_ids"] is None or event.group_id in entry["group_ids"])
                    and (entry["group_types"] is None or event.group_type in entry["group_types"])):
                return f"{event.actor} may not apply to join {event.group_id}"
        return ""

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
                return self.refusal.verdict(callback, f"{len(allowed)} invitees, over the maximum of {cap}")
            refused += allowed[cap:]
            reasons.append(f"{len(allowed) - cap} invitees over the maximum of {cap}")
        if not refused:
            return None
        if len(refused) == len(invitees):  # nobody left to invite: refuse the invitation itself
            return self.refusal.verdict(callback, "every invitee refused: " + "; ".join(reasons))
        return refuse_members(refused, reason="; ".join(reasons))
