"""`contact_info`: phone numbers, e-mail, URLs and QQ/WeChat ids, digits in any disguise."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from rules.text.contacts import KINDS, ContactFinder

from .textscan import Span, TextScanConfig, TextScanRule


class ContactInfoConfig(TextScanConfig):
    kinds = fields.List(fields.String(validate=validate.OneOf(KINDS)), load_default=lambda: list(KINDS))
    allow_domains = fields.List(fields.String(), load_default=list)
    min_digits = fields.Integer(load_default=5, validate=validate.Range(min=2, max=20))


class ContactInfo(TextScanRule):
    """Keep users from moving the conversation off the platform (or being spammed with links)."""

    Config = ContactInfoConfig

    def __init__(self, config: dict[str, Any], *, name: str, context):
        super().__init__(config, name=name, context=context)
        self.finder = ContactFinder(kinds=config["kinds"], allow_domains=config["allow_domains"],
                                    min_digits=config["min_digits"])

    def find(self, text: str) -> list[Span]:
        hits = self.finder.find(text)
        return [Span(hit.start, hit.end, hit.kind) for hit in hits] if hits else hits

    def describe(self) -> str:
        c = self.config
        return (f"kinds={','.join(c['kinds'])}, action={c['action']}, allow_domains={c['allow_domains']}, "
                f"min_digits={c['min_digits']}")
