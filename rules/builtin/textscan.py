"""The common shape of text-moderation rules: find spans in every readable text, then act.

`sensitive_words` and `contact_info` differ only in how they find spans; what they do with them
(mask, refuse, drop, tag) and how that maps onto each kind of event is here, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar, NamedTuple

from marshmallow import fields, validate

from receiver import model as m
from receiver.verdict import DROP, REFUSE, FriendResult, Verdict, refuse_friends

from ..base import Rule, RuleConfig
from .refusal import build_refusal, code_field

MASK, TAG = "mask", "tag"
ACTIONS = (MASK, REFUSE, DROP, TAG)
SCANNED = (m.MESSAGE_SEND, m.FRIEND_ADD, m.FRIEND_RESPOND, m.GROUP_CREATE, m.TOPIC_CREATE)


class Span(NamedTuple):  # a tuple: made for every hit, at a third of a frozen dataclass's cost
    start: int
    end: int
    label: str  # what matched: the word, or the contact kind
    category: str = ""


_last_fields: tuple[m.Event | None, tuple[m.TextField, ...]] = (None, ())


def text_fields(event: m.Event) -> tuple[m.TextField, ...]:
    """``event.text_fields()``, remembered for the last event asked about.

    Both text rules scan every message, one after the other, and listing its texts (~1.3 µs)
    costs about as much as the contact gate that clears most of them.  Events are immutable (a
    rewrite makes a new one) and the cache holds a reference to its event, so its identity
    cannot be reused: an identity check is enough.  Threads replace the pair as a whole; at
    worst they list the texts again.
    """
    global _last_fields
    last, texts = _last_fields
    if last is not event:
        texts = tuple(event.text_fields())
        _last_fields = (event, texts)
    return texts


class TextScanConfig(RuleConfig):
    action = fields.String(load_default=MASK, validate=validate.OneOf(ACTIONS))
    mask_char = fields.String(load_default="*", validate=validate.Length(equal=1))
    replacement = fields.String(load_default=None, allow_none=True)
    code = code_field()
    info = fields.String(load_default="")
    tag_key = fields.String(load_default="imhook_flags")
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields", load_default=list)


class TextScanRule(Rule):
    """Scan every readable text of an event; mask in messages, refuse where masking is impossible."""

    blocking = False  # bounded CPU work, no I/O: decided inline, without a thread hop

    Config: ClassVar = TextScanConfig
    actions = (m.MESSAGE_SEND,)
    supports = SCANNED

    def __init__(self, config: dict[str, Any], *, name: str, context):
        super().__init__(config, name=name, context=context)
        # One Refusal (code and info validated once); drop is decided per match below, since a
        # category may drop while the rule's own action masks.
        self.refusal = build_refusal({"action": REFUSE, "code": config["code"], "info": config["info"]},
                                     context, SCANNED)
        self.kinds = frozenset(config["fields"])

    def find(self, text: str) -> list[Span]:
        raise NotImplementedError

    def action_for(self, spans: Iterable[Span]) -> str:
        """What to do about these spans (sensitive_words overrides it per category)."""
        return self.config["action"]

    def decide(self, callback: m.Callback) -> Verdict | None:
        kinds = self.kinds
        hits = [(f, spans) for f in text_fields(callback.event)
                if (not kinds or f.kind in kinds) and (spans := self.find(f.text))]
        if not hits:
            return None
        all_spans = [s for _, ss in hits for s in ss]
        action = self.action_for(all_spans)
        reason = self.describe_hits(hits)
        event = callback.event
        # Verdicts carry the rule's name already: the chain would otherwise copy each one
        # (dataclasses.replace, ~3 µs) only to set it.
        if isinstance(event, m.MessageSend):
            if action == MASK:
                edits = {f.path: self.mask(f.text, spans) for f, spans in hits}
                return Verdict(message=event.message.replace_texts(edits), reason=f"masked {reason}",
                               rule=self.name)
            if action == TAG:
                return self.tag(event.message, all_spans, reason)
            if action == DROP:
                return Verdict(DROP, reason=reason, rule=self.name)
            return self.refusal.verdict(callback, reason)
        if isinstance(event, (m.FriendAdd, m.FriendRespond)):
            # One bad wording refuses only the friend it was written to.
            result = FriendResult(self.refusal.code_for(callback.command), self.config["info"])
            return refuse_friends({f.subject: result for f, _ in hits if f.subject}, reason=reason)
        return self.refusal.verdict(callback, reason)  # names cannot be masked: refuse

    def mask(self, text: str, spans: list[Span]) -> str:
        """Mask exactly the matched original characters; everything else stays as it was."""
        pieces, position = [], 0
        for span in spans:
            pieces.append(text[position:span.start])
            replacement = self.config["replacement"]
            pieces.append(self.config["mask_char"] * (span.end - span.start) if replacement is None
                          else replacement)
            position = span.end
        pieces.append(text[position:])
        return "".join(pieces)

    def tag(self, message, spans: list[Span], reason: str) -> Verdict | None:
        """Deliver unchanged but flag the message in CloudCustomData (merged into a JSON object)."""
        current = message.cloud_custom_data
        try:
            data = json.loads(current) if current else {}
        except (ValueError, RecursionError):  # the sender chooses CloudCustomData's nesting too
            data = None
        if not isinstance(data, dict):
            # The app owns a non-JSON CloudCustomData: do not break it; the trace says why.
            return Verdict(message=message, rule=self.name,
                           reason=f"found {reason}; not tagged: CloudCustomData is not a JSON object")
        labels = sorted({s.category or s.label for s in spans})
        data[self.config["tag_key"]] = {"rule": self.name, "matches": labels}
        return Verdict(message=message.with_cloud_custom_data(json.dumps(data, ensure_ascii=False)),
                       reason=f"tagged {reason}", rule=self.name)

    def describe_hits(self, hits) -> str:
        labels = list(dict.fromkeys(f"{s.label!r}" + (f" ({s.category})" if s.category else "")
                                    for _, spans in hits for s in spans))
        where = sorted({f.kind for f, _ in hits})
        more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
        return f"{', '.join(labels[:3])}{more} in {', '.join(where)}"
