"""`message_policy`: which element kinds a message may hold, and how long its text may be.

Policies are set for all messages (`default`), per conversation kind (`c2c`, `group`, `official`)
and per group type (`group_types`); the most specific block that sets an option wins, option by
option. A custom element that is a signaling step (a call invitation …) counts as kind `signaling`,
which `custom` includes: allow `signaling` without `custom` to let calls through but no other
custom payload.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from receiver.model import MESSAGE_SEND, Callback, MessageSend
from receiver.verdict import Verdict

from ..base import Rule, RuleContext
from .refusal import NamedBlocks, RefusalConfig, build_refusal, describe_options
from .signaling import decode_signaling

KINDS = ("text", "image", "sound", "file", "video", "location", "face", "custom", "signaling", "relay",
         "unknown")
CONVERSATIONS = ("c2c", "group", "official")


def _kind(value: str) -> bool:
    return value in KINDS or (value.startswith("unknown:") and len(value) > len("unknown:"))


class PolicyBlock(Schema):
    """{allow: [kinds]} or {deny: [kinds]}, and/or max_text_length."""

    class Meta:
        unknown = RAISE

    allow = fields.List(fields.String(), load_default=None)
    deny = fields.List(fields.String(), load_default=None)
    max_text_length = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=0))

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs) -> None:
        if data.get("allow") is not None and data.get("deny") is not None:
            raise ValidationError("give `allow` or `deny`, not both", "deny")
        for key in ("allow", "deny"):
            bad = [k for k in data.get(key) or () if not _kind(k)]
            if bad:
                raise ValidationError(f"unknown element kind {', '.join(map(repr, bad))}; use "
                                      f"{', '.join(KINDS)} or unknown:<MsgType>", key)


class MessagePolicyConfig(RefusalConfig):
    default = fields.Nested(PolicyBlock, load_default=None)
    c2c = fields.Nested(PolicyBlock, load_default=None)
    group = fields.Nested(PolicyBlock, load_default=None)
    official = fields.Nested(PolicyBlock, load_default=None)
    group_types = NamedBlocks(PolicyBlock, load_default=dict)


class Policy:
    """The resolved policy of one (conversation, group type): element kinds and text length."""

    def __init__(self, blocks: list[dict[str, Any] | None]):
        self.allow: frozenset[str] | None = None
        self.deny: frozenset[str] = frozenset()
        self.max_text_length: int | None = None
        for block in blocks:  # general to specific: later blocks override
            if not block:
                continue
            if block["allow"] is not None or block["deny"] is not None:
                self.allow = frozenset(block["allow"]) if block["allow"] is not None else None
                self.deny = frozenset(block["deny"] or ())
            if block["max_text_length"] is not None:
                self.max_text_length = block["max_text_length"]
        # kind -> permits(kind), for the handful of kinds messages carry: asked for every element
        # of every message. Bounded: "unknown:X" kinds come from the wire.
        self._permitted: dict[str, bool] = {}

    def refused_kinds(self, kinds: tuple[str, ...]) -> list[str]:
        permitted = self._permitted
        refused = []
        for kind in kinds:
            allowed = permitted.get(kind)
            if allowed is None:
                allowed = self.permits(kind)
                if len(permitted) < _MAX_KINDS_CACHED:
                    permitted[kind] = allowed
            if not allowed and kind not in refused:
                refused.append(kind)
        return refused

    def permits(self, kind: str) -> bool:
        names = _names(kind)
        if self.deny & names:
            return False
        return self.allow is None or bool(self.allow & names)


_MAX_KINDS_CACHED = 64  # far more than the element kinds there are


def _names(kind: str) -> frozenset[str]:
    """Every name a policy may use for `kind`: signaling is also custom, unknown:X is also unknown."""
    if kind == "signaling":
        return frozenset(("signaling", "custom"))
    if kind.startswith("unknown:"):
        return frozenset((kind, "unknown"))
    return frozenset((kind,))


class MessagePolicy(Rule):
    """Refuse (or drop) messages with element kinds or text lengths their conversation does not allow."""

    blocking = False  # bounded CPU work, no I/O: decided inline, without a thread hop

    Config = MessagePolicyConfig
    actions = (MESSAGE_SEND,)

    def __init__(self, config: dict[str, Any], *, name: str, context: RuleContext):
        super().__init__(config, name=name, context=context)
        self.refusal = build_refusal(config, context, self.actions)
        self.policies = {conv: Policy([config["default"], config[conv]]) for conv in CONVERSATIONS}
        self.group_policies = {t: Policy([config["default"], config["group"], block])
                               for t, block in config["group_types"].items()}

    def policy_for(self, event: MessageSend) -> Policy:
        if event.conversation == "group" and event.group_type in self.group_policies:
            return self.group_policies[event.group_type]
        return self.policies.get(event.conversation) or self.policies["c2c"]

    def describe(self) -> str:
        return describe_options(self.config)

    def decide(self, callback: Callback) -> Verdict | None:
        event = callback.event
        assert isinstance(event, MessageSend)
        policy = self.policy_for(event)
        refused = policy.refused_kinds(kinds_of(event.message))
        if refused:
            return self.refusal.verdict(callback, f"element kind {', '.join(refused)} not allowed "
                                                  f"in {_where(event)}")
        limit = policy.max_text_length
        if limit is not None:
            length = event.message.text_length()
            if length > limit:
                return self.refusal.verdict(callback, f"text of {length} characters is over the "
                                                      f"maximum of {limit} in {_where(event)}")
        return None


def kinds_of(message: Any) -> tuple[str, ...]:
    """The message's element kinds, with its custom element shown as `signaling` when it is one."""
    kinds = message.element_types()
    if "custom" in kinds and decode_signaling(message) is not None:
        # A message holds at most one custom element (PROTOCOL.md §3), so that one is the step.
        return tuple("signaling" if k == "custom" else k for k in kinds)
    return kinds


def _where(event: MessageSend) -> str:
    if event.conversation == "group" and event.group_type:
        return f"{event.group_type} groups"
    return f"{event.conversation} messages"
