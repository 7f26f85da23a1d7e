"""`regex`: user regular expressions over every text of a message (and, when the rule's scope names
those commands, of friend requests and group or topic names).

Patterns are compiled once at start-up. In list order, the first `refuse` or `drop` pattern that
matches any text decides; otherwise every `mask` pattern rewrites the texts it matches. Texts of
other callbacks (group and topic names, friend wording and remarks) cannot be rewritten, so there a
matching `mask` or `drop` pattern refuses — for friend requests only the friend the text is about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from receiver.errors import ConfigError
from receiver.model import (FRIEND_ADD, FRIEND_RESPOND, GROUP_CREATE, MESSAGE_SEND, TOPIC_CREATE, Callback,
                            FriendAdd, FriendRespond, MessageSend, TextField)
from receiver.verdict import DROP, Verdict, refuse_friends, rewrite

from ..base import Rule, RuleContext
from .refusal import Refusal, build_refusal, code_field

FLAGS = {"IGNORECASE": re.IGNORECASE, "MULTILINE": re.MULTILINE, "DOTALL": re.DOTALL,
         "VERBOSE": re.VERBOSE, "ASCII": re.ASCII}
FLAG_LETTERS = {"i": "IGNORECASE", "m": "MULTILINE", "s": "DOTALL", "x": "VERBOSE", "a": "ASCII"}
MASK = "mask"


class PatternConfig(Schema):
    class Meta:
        unknown = RAISE

    pattern = fields.String(required=True, validate=validate.Length(min=1))
    flags = fields.List(fields.String(validate=validate.OneOf(
        tuple(FLAGS) + tuple(FLAG_LETTERS), error="unknown flag {input!r}; use one of {choices}")),
        load_default=list)
    action = fields.String(required=True, validate=validate.OneOf((MASK, "refuse", DROP)))
    code = code_field()
    info = fields.String(load_default="")
    mask_char = fields.String(load_default=None, validate=validate.Length(equal=1))
    replacement = fields.String(load_default=None)
    kinds = fields.List(fields.String(), load_default=None)  # only texts of these kinds ("text", ...)

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs) -> None:
        if data.get("mask_char") is not None and data.get("replacement") is not None:
            raise ValidationError("give `mask_char` or `replacement`, not both", "replacement")
        if data.get("action") != MASK:
            for key in ("mask_char", "replacement"):
                if data.get(key) is not None:
                    raise ValidationError(f"`{key}` only applies to action `mask`", key)


class RegexConfig(Schema):
    class Meta:
        unknown = RAISE

    patterns = fields.List(fields.Nested(PatternConfig), required=True, validate=validate.Length(min=1))


@dataclass(frozen=True)
class Pattern:
    index: int
    regex: re.Pattern
    action: str
    refusal: Refusal
    replacement: str | None  # a re.sub template; None: mask each matched character
    mask_char: str
    kinds: frozenset[str] | None

    def applies_to(self, field: TextField) -> bool:
        return self.kinds is None or field.kind in self.kinds

    def first_hit(self, texts: list[TextField]) -> TextField | None:
        """The first text this pattern matches, if any."""
        return next((f for f in texts if self.applies_to(f) and self.regex.search(f.text)), None)

    def mask(self, text: str) -> str:
        if self.replacement is not None:
            return self.regex.sub(self.replacement, text)
        return self.regex.sub(lambda m: self.mask_char * len(m.group(0)), text)

    @property
    def label(self) -> str:
        return f"patterns[{self.index}] /{self.regex.pattern}/"


class RegexRule(Rule):
    """Mask, refuse or drop by user regular expressions."""

    Config = RegexConfig
    actions = (MESSAGE_SEND,)  # by default; naming other commands in `scope` widens it to `supports`
    supports = (MESSAGE_SEND, FRIEND_ADD, FRIEND_RESPOND, GROUP_CREATE, TOPIC_CREATE)

    def __init__(self, config: dict[str, Any], *, name: str, context: RuleContext):
        super().__init__(config, name=name, context=context)
        self.patterns = [compile_pattern(i, p, context, self.supports) for i, p in enumerate(config["patterns"])]
        self.deciding = [p for p in self.patterns if p.action != MASK]
        self.masking = [p for p in self.patterns if p.action == MASK]

    def decide(self, callback: Callback) -> Verdict | None:
        event = callback.event
        texts = list(event.text_fields())
        if not texts:
            return None
        if isinstance(event, MessageSend):
            return self.decide_message(callback, event, texts)
        if isinstance(event, (FriendAdd, FriendRespond)):
            return self.decide_friends(callback, texts)
        for pattern in self.patterns:  # a name cannot be rewritten: any match refuses
            field = pattern.first_hit(texts)
            if field is not None:
                return pattern.refusal.verdict(callback, f"{field.kind} matches {pattern.label}")
        return None

    def decide_message(self, callback: Callback, event: MessageSend, texts: list[TextField]) -> Verdict | None:
        for pattern in self.deciding:
            field = pattern.first_hit(texts)
            if field is not None:
                return pattern.refusal.verdict(callback, f"{field.kind} matches {pattern.label}")
        edits: dict[tuple, str] = {}
        used: list[str] = []
        for field in texts:
            text = field.text
            for pattern in self.masking:
                if pattern.applies_to(field) and pattern.regex.search(text):
                    text = pattern.mask(text)
                    used.append(pattern.label)
            if text != field.text:
                edits[field.path] = text
        if not edits:
            return None
        return rewrite(event.message.replace_texts(edits), f"masked by {', '.join(dict.fromkeys(used))}")

    def decide_friends(self, callback: Callback, texts: list[TextField]) -> Verdict | None:
        """Each text is about one requested friend: refuse only that friend."""
        results, reasons = {}, []
        for field in texts:
            pattern = next((p for p in self.patterns if p.applies_to(field) and p.regex.search(field.text)), None)
            if pattern is not None and not field.subject:  # a text about no one friend: refuse all
                return pattern.refusal.verdict(callback, f"{field.kind} matches {pattern.label}")
            if pattern is not None and field.subject not in results:
                results[field.subject] = pattern.refusal.friend_result(callback)
                reasons.append(f"{field.subject}: {field.kind} matches {pattern.label}")
        return refuse_friends(results, reason="; ".join(reasons)) if results else None

    def describe(self) -> str:
        return f"{len(self.patterns)} patterns ({len(self.masking)} mask, {len(self.deciding)} refuse/drop)"


def compile_pattern(index: int, config: dict[str, Any], context: RuleContext, actions) -> Pattern:
    """Compile one pattern; a bad expression or template is a config error naming patterns[index]."""
    path = f"patterns.{index}"
    flags = 0
    for name in config["flags"]:
        flags |= FLAGS[FLAG_LETTERS.get(name, name)]
    try:
        regex = re.compile(config["pattern"], flags)
    except re.error as exc:
        raise ConfigError(f"patterns[{index}]: invalid regular expression {config['pattern']!r}: {exc}",
                          path=f"{path}.pattern") from None
    if regex.search(""):
        raise ConfigError(f"patterns[{index}]: {config['pattern']!r} matches the empty string, so it "
                          "would match every text", path=f"{path}.pattern")
    replacement = config["replacement"]
    if replacement is not None:
        try:
            regex.sub(replacement, "")  # compiles the template: a bad group reference fails here
        except (re.error, IndexError) as exc:
            raise ConfigError(f"patterns[{index}]: invalid replacement {replacement!r}: {exc}",
                              path=f"{path}.replacement") from None
    # A mask pattern refuses (never drops) outside messages, so its code is checked like a refusal's.
    refusal = build_refusal({**config, "action": "refuse" if config["action"] == MASK else config["action"]},
                            context, actions, path=path)
    return Pattern(index, regex, config["action"], refusal, replacement, config["mask_char"] or "*",
                   frozenset(config["kinds"]) if config["kinds"] is not None else None)
