"""Small test-only rules, referenced from YAML as `tests.rulekit:Name` (the module:Class path)."""

from __future__ import annotations

import time

from marshmallow import fields

import rules
from receiver.model import MESSAGE_SEND
from rules.base import RuleConfig


class Decide(rules.Rule):
    """Return a fixed decision: allow, refuse (code, info), drop or none."""

    class Config(RuleConfig):
        outcome = fields.String(load_default="none")
        code = fields.Integer(load_default=None)
        info = fields.String(load_default="")

    def decide(self, callback):
        outcome = self.config["outcome"]
        if outcome == "refuse":
            return rules.refuse(self.config["info"], code=self.config["code"], reason="told to refuse")
        if outcome == "drop":
            return rules.drop("told to drop")
        if outcome == "allow":
            return rules.allow("told to allow")
        return None


class Append(rules.Rule):
    """Append a suffix to every text element: shows that rewrites compose."""

    actions = (MESSAGE_SEND,)

    class Config(RuleConfig):
        suffix = fields.String(required=True)

    def decide(self, callback):
        message = callback.event.message
        edits = {f.path: f.text + self.config["suffix"] for f in message.text_fields() if f.kind == "text"}
        return rules.rewrite(message.replace_texts(edits), reason=f"appended {self.config['suffix']}")


class Raise(rules.Rule):
    def decide(self, callback):
        raise RuntimeError("boom")


class Nonsense(rules.Rule):
    def decide(self, callback):
        return "yes please"


class Sleep(rules.Rule):
    """Sleep, then allow: a slow or hanging rule."""

    class Config(RuleConfig):
        seconds = fields.Float(required=True)

    def decide(self, callback):
        time.sleep(self.config["seconds"])
        return rules.allow("woke up")


class RefuseInvitees(rules.Rule):
    class Config(RuleConfig):
        accounts = fields.List(fields.String(), required=True)

    def decide(self, callback):
        return rules.refuse_members(self.config["accounts"], reason="listed")


class RefuseFriends(rules.Rule):
    class Config(RuleConfig):
        accounts = fields.List(fields.String(), required=True)
        code = fields.Integer(load_default=None)

    def decide(self, callback):
        return rules.refuse_friends({a: (self.config["code"], "not you") for a in self.config["accounts"]})


class Tag(rules.Rule):
    """Set CloudCustomData."""

    actions = (MESSAGE_SEND,)

    class Config(RuleConfig):
        value = fields.String(required=True)

    def decide(self, callback):
        message = callback.event.message.with_cloud_custom_data(self.config["value"])
        return rules.rewrite(message, reason="tagged")


class WhereRun(rules.Rule):
    """Remember the thread that decided: shows where the chain ran."""

    class Config(RuleConfig):
        blocking = fields.Boolean(required=True)

    seen: list = []

    def __init__(self, config, *, name, context):
        super().__init__(config, name=name, context=context)
        self.blocking = config["blocking"]

    def decide(self, callback):
        import threading

        WhereRun.seen.append(threading.current_thread().name)
        return None


class SlowStart(rules.Rule):
    """Takes `seconds` to build, as a large word list does; decides nothing. For tests of what
    happens to callbacks while a worker boots."""

    class Config(RuleConfig):
        seconds = fields.Float(required=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        time.sleep(self.config["seconds"])

    def decide(self, callback):
        return None
