"""`friend_policy`: refuse friend requests and responses by who asks, whom, from where, with what words.

Each requested friend is judged on its own: one refused target does not refuse the others in the
same request (the IM answers per friend, PROTOCOL.md §3). The requester lists refuse the whole
request. Wording matching is a plain case-insensitive substring test; evasion-proof matching
(look-alike characters, spacing) is the `sensitive_words` rule's job.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from marshmallow import fields

from receiver.model import FRIEND_ADD, FRIEND_RESPOND, Callback, FriendAdd, FriendRequestItem, FriendRespond
from receiver.verdict import Verdict, refuse_friends

from ..base import Rule, RuleContext
from .refusal import RefusalConfig, build_refusal, describe_options


def _strings() -> fields.List:
    return fields.List(fields.String(), load_default=None)


class FriendPolicyConfig(RefusalConfig):
    deny_requesters = _strings()
    allow_requesters = _strings()
    deny_targets = _strings()
    deny_sources = _strings()  # AddSource globs, e.g. AddSource_Type_Web*
    allow_sources = _strings()
    deny_words = _strings()  # substrings of AddWording, case-insensitive
    deny_response_actions = _strings()  # globs of ResponseAction, e.g. Response_Action_Agree*


class FriendPolicy(Rule):
    """Refuse friend additions and responses, per requested friend where the reason is per friend."""

    blocking = False  # bounded CPU work, no I/O: decided inline, without a thread hop

    Config = FriendPolicyConfig
    actions = (FRIEND_ADD, FRIEND_RESPOND)

    def __init__(self, config: dict[str, Any], *, name: str, context: RuleContext):
        super().__init__(config, name=name, context=context)
        self.refusal = build_refusal(config, context, self.actions)
        self.deny_requesters = _set(config["deny_requesters"])
        self.allow_requesters = _set(config["allow_requesters"])
        self.deny_targets = _set(config["deny_targets"]) or frozenset()
        self.deny_words = tuple(w.casefold() for w in config["deny_words"] or () if w)

    def describe(self) -> str:
        return describe_options(self.config)

    def decide(self, callback: Callback) -> Verdict | None:
        event = callback.event
        assert isinstance(event, (FriendAdd, FriendRespond))
        requester = event.actor
        if self.deny_requesters is not None and requester in self.deny_requesters:
            return self.refusal.verdict(callback, f"requester {requester} is denied")
        if self.allow_requesters is not None and requester not in self.allow_requesters:
            return self.refusal.verdict(callback, f"requester {requester} is not allowed")
        reasons = {item.to: reason for item in event.items if (reason := self.objection(item))}
        if not reasons:
            return None
        result = self.refusal.friend_result(callback)
        return refuse_friends({to: result for to in reasons},
                              reason="; ".join(f"{to}: {why}" for to, why in reasons.items()))

    def objection(self, item: Any) -> str:
        """Why this one requested friend is refused; "" if not."""
        if item.to in self.deny_targets:
            return "target is denied"
        if isinstance(item, FriendRequestItem):
            return self.add_objection(item)
        patterns = self.config["deny_response_actions"]
        if patterns and any(fnmatchcase(item.action, p) for p in patterns):
            return f"response {item.action} is denied"
        return ""

    def add_objection(self, item: FriendRequestItem) -> str:
        deny, allow = self.config["deny_sources"], self.config["allow_sources"]
        if deny and any(fnmatchcase(item.source, p) for p in deny):
            return f"source {item.source} is denied"
        if allow is not None and not any(fnmatchcase(item.source, p) for p in allow):
            return f"source {item.source or '(none)'} is not allowed"
        wording = item.wording.casefold()
        word = next((w for w in self.deny_words if w in wording), None)
        return f"wording contains {word!r}" if word else ""


def _set(values: list[str] | None) -> frozenset[str] | None:
    return frozenset(values) if values is not None else None
