"""An example third-party rule: only VIP users may create groups; others get the app's own code.

Install it beside imhook (`pip install ./examples/third_party_rule`) and write `use: vip_only`, or
skip the install and write `use: imhook_vip_rule:VipOnly` with this folder on PYTHONPATH.
"""

from __future__ import annotations

from marshmallow import fields, validate

import rules
from receiver.model import GROUP_CREATE, TOPIC_CREATE
from rules.base import RuleConfig


class VipOnly(rules.Rule):
    """Refuse group (and topic) creation by anyone not on the VIP list."""

    actions = (GROUP_CREATE, TOPIC_CREATE)

    class Config(RuleConfig):
        vips = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
        code = fields.Integer(load_default=10150, validate=validate.Range(10100, 10200))
        info = fields.String(load_default="only VIP members can create groups")

    def decide(self, callback):
        if callback.event.actor in self.config["vips"]:
            return rules.allow(f"{callback.event.actor} is a VIP")
        return rules.refuse(self.config["info"], code=self.config["code"],
                            reason=f"{callback.event.actor} is not a VIP")

    def describe(self) -> str:
        return f"{len(self.config['vips'])} VIPs, refusal code {self.config['code']}"
