"""A test-only rule for the emulator tests: every decision it makes is written in its config.

Referenced from test configs as `tests.emulator_rules:ScriptedRule`; it produces each reply shape
the IM understands (rewrite, refuse with a code, silent drop, refuse some invitees or friends).
"""

from __future__ import annotations

import json

from marshmallow import fields

from receiver.model import Callback, FriendAdd, GroupCreate, GroupInvite, GroupJoin, MessageSend
from receiver.verdict import Verdict, drop, refuse, refuse_friends, refuse_members, rewrite
from rules.base import Rule, RuleConfig


class ScriptedConfig(RuleConfig):
    mask = fields.List(fields.String(), load_default=list)  # words replaced by asterisks
    refuse = fields.Dict(keys=fields.String(), values=fields.Integer(), load_default=dict)  # word -> code (0: generic)
    drop = fields.List(fields.String(), load_default=list)  # words that drop the message silently
    tag = fields.String(load_default=None)  # CloudCustomData set on messages holding the word "tag"
    drop_invitations_to = fields.List(fields.String(), load_default=list)  # signaling invites naming them
    refuse_invitees = fields.List(fields.String(), load_default=list)
    refuse_friends = fields.Dict(keys=fields.String(), values=fields.Integer(), load_default=dict)
    refuse_group_names = fields.List(fields.String(), load_default=list)
    refuse_joiners = fields.List(fields.String(), load_default=list)


class ScriptedRule(Rule):
    Config = ScriptedConfig

    def decide(self, callback: Callback) -> Verdict | None:
        event = callback.event
        if isinstance(event, MessageSend):
            return self._message(event)
        if isinstance(event, FriendAdd):
            refused = {i.to: (self.config["refuse_friends"][i.to], "not allowed") for i in event.items
                       if i.to in self.config["refuse_friends"]}
            return refuse_friends(refused, "scripted") if refused else None
        if isinstance(event, GroupCreate) and event.name in self.config["refuse_group_names"]:
            return refuse("group name refused", code=10101)
        if isinstance(event, GroupJoin) and event.actor in self.config["refuse_joiners"]:
            return refuse("no joining")
        if isinstance(event, GroupInvite):
            refused = [u for u in event.invitees if u in self.config["refuse_invitees"]]
            return refuse_members(refused, "scripted") if refused else None
        return None

    def _message(self, event: MessageSend) -> Verdict | None:
        for payload in event.message.custom_payloads():
            if self._invites_blocked_user(payload):
                return drop("invitation to a blocked user")
        texts = [f for f in event.message.text_fields() if f.kind == "text"]
        for field in texts:
            for word, code in self.config["refuse"].items():
                if word in field.text:
                    return refuse(f"{word} is not allowed", code=code or None)
            if any(word in field.text for word in self.config["drop"]):
                return drop("scripted drop")
        edits = {}
        for field in texts:
            masked = field.text
            for word in self.config["mask"]:
                masked = masked.replace(word, "*" * len(word))
            if masked != field.text:
                edits[field.path] = masked
        message = event.message.replace_texts(edits)
        if self.config["tag"] and any("tag" in f.text for f in texts):
            message = message.with_cloud_custom_data(self.config["tag"])
        return rewrite(message, "scripted") if message is not event.message else None

    def _invites_blocked_user(self, payload: str) -> bool:
        try:
            data = json.loads(payload)
        except ValueError:
            return False
        return (isinstance(data, dict) and data.get("businessID") == 1 and data.get("actionType") == 1
                and any(u in self.config["drop_invitations_to"] for u in data.get("inviteeList", [])))
