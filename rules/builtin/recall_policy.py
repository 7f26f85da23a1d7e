"""`recall_policy`: who may recall a message, and until when (NetEase IM event 35, PROTOCOL.md §8).

A sender may recall their own message within `window_seconds`; recalling someone else's needs the
revoke-others permission. The recall callback does not say who holds that permission (NetEase keeps
it in QChat roles, `kPermissionRevokeMemberMessage`, or in team roles), so the accounts allowed to
recall others' messages are listed in the config: `revoke_others`. The window applies to everyone,
those accounts included. A message's age is the recall's `timestamp` minus the message's `time`;
a recall whose body lacks either is judged on who recalls only (the field list is unverified).

Tencent IM asks nothing before a recall (it reports recalls afterwards): on Tencent this rule has
nothing to decide, and the loader says so when both platforms are on.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from receiver.model import MESSAGE_RECALL, Callback, MessageRecall
from receiver.verdict import Verdict, refuse

from ..base import Rule, RuleConfig, RuleContext
from .refusal import build_refusal, code_field, describe_options

DEFAULT_WINDOW_SECONDS = 120  # NetEase's own default recall period (2 minutes, §8)


class RecallPolicyConfig(RuleConfig):
    window_seconds = fields.Float(load_default=DEFAULT_WINDOW_SECONDS, validate=validate.Range(min=0))
    revoke_others = fields.List(fields.String(), load_default=list)  # accounts that may recall others'
    code = code_field()  # an unauthorised recall
    info = fields.String(load_default="")
    late_code = code_field()  # a recall past the window
    late_info = fields.String(load_default="")


class RecallPolicy(Rule):
    """Refuse recalls of others' messages by accounts without the permission, and late recalls."""

    blocking = False  # bounded CPU work, no I/O

    Config = RecallPolicyConfig
    actions = (MESSAGE_RECALL,)

    def __init__(self, config: dict[str, Any], *, name: str, context: RuleContext):
        super().__init__(config, name=name, context=context)
        self.refusal = build_refusal(config, context, self.actions)
        self.late = build_refusal({"code": config["late_code"], "info": config["late_info"]}, context,
                                  self.actions, path="late")
        self.revoke_others = frozenset(config["revoke_others"])
        self.window_ms = config["window_seconds"] * 1000

    def describe(self) -> str:
        return describe_options(self.config)

    def decide(self, callback: Callback) -> Verdict | None:
        event = callback.event
        if not isinstance(event, MessageRecall):
            return None
        own = not event.sender or event.sender == event.actor
        if not own and event.actor not in self.revoke_others:
            return self.refusal.verdict(callback, f"{event.actor} may not recall {event.sender}'s messages")
        if event.sent_at_ms is not None and event.recalled_at_ms is not None:
            age_ms = event.recalled_at_ms - event.sent_at_ms
            if age_ms > self.window_ms:
                return refuse(self.late.info, code=self.late.code_for(callback.command),
                              reason=f"recalled {age_ms / 1000:g} s after sending, past the "
                                     f"{self.window_ms / 1000:g} s window")
        return None
