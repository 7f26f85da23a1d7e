"""`signaling_policy`: refuse call invitations by caller, callee, number of invitees, media or rate.

Only the invite step (actionType 1) is judged; cancel, accept, reject and timeout pass, so a call
already under way can always be ended. Ordinary messages are not signaling and pass too.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from receiver.model import MESSAGE_SEND, Callback, MessageSend
from receiver.verdict import Verdict

from ..base import Rule, RuleContext
from ..ratelimit import Hit, StoreConfig, build_store
from .refusal import RefusalConfig, build_refusal, describe_options
from .signaling import SignalingInfo, decode_signaling

MEDIA = ("audio", "video")


class RateConfig(StoreConfig):
    max = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000))
    per_seconds = fields.Float(required=True, validate=validate.Range(min=0.001, max=7 * 86400))


def _users() -> fields.List:
    return fields.List(fields.String(), load_default=None)


class SignalingPolicyConfig(RefusalConfig):
    allow_callers = _users()
    deny_callers = _users()
    allow_callees = _users()
    deny_callees = _users()
    max_invitees = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=1))
    media = fields.List(fields.String(validate=validate.OneOf(MEDIA)), load_default=None)
    rate = fields.Nested(RateConfig, load_default=None)


class SignalingPolicy(Rule):
    """Judge call invitations carried as signaling custom messages (PROTOCOL.md §6)."""

    Config = SignalingPolicyConfig
    actions = (MESSAGE_SEND,)

    def __init__(self, config: dict[str, Any], *, name: str, context: RuleContext):
        super().__init__(config, name=name, context=context)
        self.refusal = build_refusal(config, context, self.actions)
        self.lists = {k: frozenset(config[k]) if config[k] is not None else None
                      for k in ("allow_callers", "deny_callers", "allow_callees", "deny_callees")}
        self.media = frozenset(config["media"]) if config["media"] is not None else None
        self.rate = config["rate"]
        self.store = build_store(self.rate, path="rate") if self.rate else None
        self.blocking = bool(self.rate) and self.rate["backend"] != "memory"  # Redis may hang

    def describe(self) -> str:
        return describe_options(self.config)

    def decide(self, callback: Callback) -> Verdict | None:
        event = callback.event
        assert isinstance(event, MessageSend)
        info = decode_signaling(event.message)
        if info is None or not info.is_invite:
            return None
        reason = self.objection(event, info) or self.over_rate(callback, event.actor)
        return self.refusal.verdict(callback, reason) if reason else None

    def objection(self, event: MessageSend, info: SignalingInfo) -> str:
        """Why this invitation is refused by the lists, count or media; "" if it is not."""
        caller, callees = event.actor, callees_of(event, info)
        allow_callers, deny_callers = self.lists["allow_callers"], self.lists["deny_callers"]
        if deny_callers is not None and caller in deny_callers:
            return f"caller {caller} may not start calls"
        if allow_callers is not None and caller not in allow_callers:
            return f"caller {caller} is not allowed to start calls"
        deny_callees, allow_callees = self.lists["deny_callees"], self.lists["allow_callees"]
        barred = [c for c in callees if (deny_callees is not None and c in deny_callees)
                  or (allow_callees is not None and c not in allow_callees)]
        if barred:
            return f"callee {', '.join(barred)} may not be called"
        if self.config["max_invitees"] is not None and len(callees) > self.config["max_invitees"]:
            return f"{len(callees)} invitees, over the maximum of {self.config['max_invitees']}"
        # A call whose media the data does not tell passes: the call kit would not know it either.
        if self.media is not None and info.media and info.media not in self.media:
            return f"{info.media} calls are not allowed"
        return ""

    def over_rate(self, callback: Callback, caller: str) -> str:
        """Count this invitation against the caller's rate; "" if under it (or no rate is set)."""
        if self.store is None or not caller:
            return ""
        hit = Hit(f"{callback.app_id}|{self.name}|invites|{caller}", self.rate["max"], self.rate["per_seconds"])
        result = self.store.hit([hit])
        if result.allowed:
            return ""
        return (f"caller {caller} over {self.rate['max']} invitations per {self.rate['per_seconds']:g} s "
                f"(room again in {result.retry_after:.1f} s)")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def callees_of(event: MessageSend, info: SignalingInfo) -> tuple[str, ...]:
    """The invitees named by the invitation; for a one-to-one call without a list, the recipient."""
    if info.invitees:
        return info.invitees
    return (event.peer,) if event.conversation == "c2c" and event.peer else ()
