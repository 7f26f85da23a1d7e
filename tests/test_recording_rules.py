"""A tiny Python rule for the recording and replay tests, loaded by `use: tests.test_recording_rules:ForbidWord`.

Real rules (words, regex) are built elsewhere; these tests need a rule whose decisions they can
predict exactly, and one that every served worker can import (PYTHONPATH=the repo root).
"""

from __future__ import annotations

import json

import pytest
from marshmallow import fields, validate

from receiver.core import HttpRequest
from receiver.model import MessageSend
from rules import Rule, drop, refuse, rewrite
from rules.base import RuleConfig

from .helpers import APP_ID, sample


class ForbidWord(Rule):
    """Refuse, drop or mask (rewrite) any callback whose texts contain `word`."""

    class Config(RuleConfig):
        word = fields.String(required=True, validate=validate.Length(min=1))
        action = fields.String(load_default="refuse", validate=validate.OneOf(("refuse", "drop", "mask")))
        info = fields.String(load_default="blocked")

    def decide(self, callback):
        word = self.config["word"]
        hits = [f for f in callback.event.text_fields() if word in f.text]
        if not hits:
            return None
        reason = f"contains {word!r}"
        action = self.config["action"]
        if action == "mask" and isinstance(callback.event, MessageSend):
            message = callback.event.message
            return rewrite(message.replace_texts({f.path: f.text.replace(word, "*" * len(word)) for f in hits}),
                           reason=reason)
        if action == "drop" and isinstance(callback.event, MessageSend):
            return drop(reason)
        return refuse(self.config["info"], reason=reason)


def rules_yaml(*rules: dict, recording: str = "") -> str:
    """A config text with ForbidWord entries: rules_yaml({"name": "a", "word": "x", "action": "mask"})."""
    lines = [f"app_id: {APP_ID}", "rules:" if rules else "rules: []"]
    for rule in rules:
        config = {k: v for k, v in rule.items() if k != "name"}
        lines.append(f"  - use: tests.test_recording_rules:ForbidWord\n    name: {rule['name']}")
        lines.append("    config: {" + ", ".join(f"{k}: {v!r}" for k, v in config.items()) + "}")
    return "\n".join(lines) + "\n" + recording


@pytest.mark.parametrize("action, text, expected", [
    ("refuse", "an apple a day", {"ActionStatus": "OK", "ErrorCode": 1, "ErrorInfo": "blocked"}),
    ("drop", "an apple a day", {"ActionStatus": "OK", "ErrorCode": 2, "ErrorInfo": ""}),
    ("mask", "an apple a day", {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "",
                                "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "an ***** a day"}}]}),
    ("refuse", "a pear", {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}),
])
def test_forbid_word_decides_as_configured(tmp_path, action, text, expected):
    from receiver.recording.replay import build_receiver

    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml({"name": "no_apple", "word": "apple", "action": action}), encoding="utf-8")
    receiver = build_receiver(str(config))
    body = sample("C2C.CallbackBeforeSendMsg")
    body["MsgBody"][0]["MsgContent"]["Text"] = text
    body.pop("CloudCustomData")
    query = {"SdkAppid": APP_ID, "CallbackCommand": body["CallbackCommand"]}
    outcome = receiver.handle(HttpRequest("POST", query, json.dumps(body).encode()), trusted=True)
    receiver.chain.close()
    assert outcome.reply == expected
