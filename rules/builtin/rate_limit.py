"""`rate_limit`: at most N callbacks per sender / group / sender+peer in any window of S seconds.

Counters are sliding-window logs, in process memory or in Redis (shared by every worker). Only
callbacks the rule lets through are counted: a refused attempt does not use up the allowance.
The memory store keeps at most rules/ratelimit/store.py MAX_MEMORY_KEYS counters per process (the
least recently used is forgotten first), so senders the IM names cannot grow a worker without bound.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from receiver.model import Callback, Event, FriendAdd, FriendRespond, GroupInvite, MessageSend
from receiver.verdict import Verdict

from ..base import Rule, RuleContext
from ..ratelimit import Hit, StoreConfig, build_store
from .refusal import RefusalConfig, build_refusal

KEYS = ("sender", "group", "pair")


class LimitConfig(Schema):
    class Meta:
        unknown = RAISE

    key = fields.String(required=True, validate=validate.OneOf(KEYS))
    max = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000))
    per_seconds = fields.Float(required=True, validate=validate.Range(min=0.001, max=7 * 86400))


class RateLimitConfig(RefusalConfig, StoreConfig):
    limits = fields.List(fields.Nested(LimitConfig), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _distinct_limits(self, data: dict[str, Any], **kwargs) -> None:
        seen: dict[tuple, int] = {}
        for i, limit in enumerate(data.get("limits", ())):
            ident = (limit["key"], limit["per_seconds"])
            if ident in seen:
                raise ValidationError(f"same key and per_seconds as limits[{seen[ident]}]; "
                                      "keep one limit per key and window", "limits")
            seen[ident] = i


def peers(event: Event) -> tuple[str, ...]:
    """The other party of each `pair` counter: recipient or group of a message, requested friends,
    invitees, the group joined or given a topic; none for a group creation."""
    if isinstance(event, MessageSend):
        return (event.peer,) if event.peer else ()
    if isinstance(event, (FriendAdd, FriendRespond)):
        return tuple(dict.fromkeys(item.to for item in event.items))
    if isinstance(event, GroupInvite):
        return tuple(dict.fromkeys(event.invitees))
    return (event.group_id,) if event.group_id else ()


def subjects(key: str, event: Event) -> tuple[str, ...]:
    """The values a limit on `key` counts for this event (empty: the limit does not apply)."""
    if key == "sender":
        return (event.actor,) if event.actor else ()
    if key == "group":
        return (event.group_id,) if event.group_id else ()
    # Length-prefixed so ("a:b", "c") and ("a", "b:c") stay distinct counters.
    return tuple(f"{len(event.actor)}:{event.actor}:{peer}" for peer in peers(event)) if event.actor else ()


class RateLimit(Rule):
    """Refuse (or drop) a callback when its sender, group or pair is over a configured rate."""

    Config = RateLimitConfig
    actions = ()  # any before-callback; narrow it with `scope.commands`

    def __init__(self, config: dict[str, Any], *, name: str, context: RuleContext):
        super().__init__(config, name=name, context=context)
        # Any command may be in scope, so the code is checked against all of them; `drop` refuses
        # where the command cannot drop (everything but message sends).
        self.refusal = build_refusal(config, context, self.actions)
        # The limit's part of its counters' keys: stable when limits are reordered or `max` changes.
        self.limits = [(limit, f"{limit['key']}:{limit['per_seconds']:.15g}s") for limit in config["limits"]]
        self.store = build_store(config)
        self.blocking = config["backend"] != "memory"  # a network round trip may hang; memory cannot

    def decide(self, callback: Callback) -> Verdict | None:
        hits = self.hits(callback)
        if not hits:
            return None
        result = self.store.hit(list(hits))
        if result.allowed:
            return None
        limit = hits[result.hit]
        reason = (f"rate limit: {limit['key']} over {limit['max']} per {limit['per_seconds']:g} s "
                  f"(room again in {result.retry_after:.1f} s)")
        return self.refusal.verdict(callback, reason)

    def hits(self, callback: Callback) -> dict[Hit, dict]:
        """One counter per limit and value, keyed by app, rule and limit so rules never share one."""
        hits: dict[Hit, dict] = {}
        for limit, ident in self.limits:
            for value in subjects(limit["key"], callback.event):
                key = f"{callback.app_id}|{self.name}|{ident}|{value}"
                hits.setdefault(Hit(key, limit["max"], limit["per_seconds"]), limit)
        return hits

    def describe(self) -> str:
        limits = ", ".join(f"{limit['max']}/{limit['per_seconds']:g}s per {limit['key']}"
                           for limit, _ in self.limits)
        return f"{limits}; backend={self.config['backend']}, action={self.config['action']}"

    def close(self) -> None:
        self.store.close()
