"""A NetEase message (`msgType`, `body`, `attach`, `ext`) as a neutral Message (PROTOCOL.md §8).

`attach` and `ext` are JSON inside strings. They are decoded for the rules and re-encoded only when
a rule changed them; untouched, they are sent back as they came (a rewrite sends only what changed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..model import Path, TextField

# msgType → the neutral element kinds message_policy knows (Tencent's ELEMENT_KINDS values).
KINDS = {
    "TEXT": "text", "PICTURE": "image", "AUDIO": "sound", "VIDEO": "video", "LOCATION": "location",
    "FILE": "file", "CUSTOM": "custom", "TIPS": "tips", "ROBOT": "robot", "NOTIFICATION": "notification",
}
# Readable texts inside the attach of these types (unverified key names, from the SDK's attachment
# classes: a location's title, a file's display name). A custom attach is the app's own JSON: every
# string in it is scanned, as Tencent's TIMCustomElem.Desc is.
ATTACH_TEXT_KEYS = {"LOCATION": (("title", "location.desc"),), "FILE": (("name", "file.name"),)}
MAX_ATTACH_TEXTS = 1000  # strings of a custom attach scanned; the rest pass unscanned (bounded work)
BODY = "body"
ATTACH = "attach"


@dataclass(frozen=True)
class NeteaseMessage:
    """An immutable message; `attach_data` is the decoded attach (None: absent or not JSON)."""

    msg_type: str = ""
    body: str | None = None
    attach: str | None = None
    ext: str | None = None
    attach_data: Any = None
    changed: frozenset[str] = frozenset()  # the wire fields a rewrite changed: body, attach, ext

    @classmethod
    def from_wire(cls, msg_type: Any, body: Any, attach: Any, ext: Any) -> "NeteaseMessage":
        attach = attach if isinstance(attach, str) else None
        return cls(msg_type if isinstance(msg_type, str) else "", body if isinstance(body, str) else None,
                   attach, ext if isinstance(ext, str) else None, decode(attach))

    callback_ext: str | None = None  # what the reply's callbackExt carries to the clients (None: none)

    # What a rule adds to the message for the clients (Tencent: CloudCustomData, which the app shares)
    # goes in NetEase's callbackExt, which exists for it: the app's own `ext` is never touched.
    @property
    def cloud_custom_data(self) -> str | None:
        return self.callback_ext

    def with_cloud_custom_data(self, value: str | None) -> "NeteaseMessage":
        return replace(self, callback_ext=value)

    def text_fields(self) -> Iterator[TextField]:
        if self.msg_type == "TEXT" and self.body:
            yield TextField((BODY,), self.body, "text")
        data = self.attach_data
        if not isinstance(data, dict):
            return
        if self.msg_type == "CUSTOM":
            yield from _strings(data)
            return
        for key, kind in ATTACH_TEXT_KEYS.get(self.msg_type, ()):
            value = data.get(key)
            if isinstance(value, str) and value:
                yield TextField((ATTACH, key), value, kind)

    def replace_texts(self, edits: Mapping[Path, str]) -> "NeteaseMessage":
        """A copy with the texts at `edits` replaced; attach is copied only along the edited paths."""
        if not edits:
            return self
        message = self
        data = self.attach_data
        copies: set[int] = set()
        for path, text in edits.items():
            if path == (BODY,):
                message = replace(message, body=text, changed=message.changed | {BODY})
                continue
            if id(data) not in copies:
                data = data.copy()
                copies.add(id(data))
            node = data
            for key in path[1:-1]:
                child = node[key]
                if id(child) not in copies:
                    child = node[key] = child.copy()
                    copies.add(id(child))
                node = child
            node[path[-1]] = text
        if data is not self.attach_data:
            message = replace(message, attach_data=data, attach=encode(data), changed=message.changed | {ATTACH})
        return message

    def element_types(self) -> tuple[str, ...]:
        return (KINDS.get(self.msg_type, f"unknown:{self.msg_type}"),)

    def custom_payloads(self) -> Iterator[str]:
        if self.msg_type == "CUSTOM" and self.attach:
            yield self.attach

    def text_length(self) -> int:
        return sum(len(f.text) for f in self.text_fields())

    def to_wire(self) -> dict[str, Any]:
        """The message fields as the IM sent them (or as rewritten)."""
        wire = {"msgType": self.msg_type, "body": self.body, "attach": self.attach, "ext": self.ext}
        return {k: v for k, v in wire.items() if v is not None}

    def modify_response(self) -> dict[str, Any]:
        """`modifyResponse` of a reply: only the fields a rewrite changed (PROTOCOL.md §8)."""
        wire = self.to_wire()
        return {key: wire.get(key, "") for key in sorted(self.changed)}


def decode(text: str | None) -> Any:
    """The JSON inside an attach/ext string, or None when there is none or it is not JSON."""
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # the sender chooses the nesting; body depth was checked
        return None


def encode(data: Any) -> str:
    """JSON text as NetEase's SDKs write it: compact, non-ASCII kept as is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _strings(data: dict) -> Iterator[TextField]:
    """Every non-empty string in a custom attach, with its path; a stack, not recursion."""
    stack: list[tuple[tuple, Any]] = [((ATTACH,), data)]
    found = 0
    while stack and found < MAX_ATTACH_TEXTS:
        path, node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        pending = []
        for key, value in items:
            if isinstance(value, str) and value:
                found += 1
                yield TextField(path + (key,), value, "custom.text")
                if found >= MAX_ATTACH_TEXTS:
                    return
            elif isinstance(value, (dict, list)):
                pending.append((path + (key,), value))
        stack.extend(reversed(pending))
