"""A Tencent `MsgBody` as a neutral Message: text fields, rewrites, element kinds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..lazy import lazy
from ..model import Path, TextField

ELEMENT_KINDS = {
    "TIMTextElem": "text",
    "TIMLocationElem": "location",
    "TIMFaceElem": "face",
    "TIMCustomElem": "custom",
    "TIMSoundElem": "sound",
    "TIMImageElem": "image",
    "TIMFileElem": "file",
    "TIMVideoFileElem": "video",
    "TIMRelayElem": "relay",
}

# Where a person-readable text lives in each element (PROTOCOL.md §5).
TEXT_KEYS = {
    "TIMTextElem": (("Text", "text"),),
    "TIMCustomElem": (("Desc", "custom.desc"),),
    "TIMLocationElem": (("Desc", "location.desc"),),
    "TIMFileElem": (("FileName", "file.name"),),
    "TIMRelayElem": (("Title", "relay.title"), ("CompatibleText", "relay.text")),
}


@dataclass(frozen=True)
class TencentMessage:
    """An immutable view over a raw `MsgBody` list; rewrites copy only what they touch."""

    body: tuple[Any, ...]
    cloud_custom_data: str | None = None

    @classmethod
    def from_wire(cls, body: list | None, cloud_custom_data: str | None = None) -> "TencentMessage":
        return cls(tuple(body or ()), cloud_custom_data)

    def text_fields(self) -> Iterator[TextField]:
        """Yield every human-readable text, nested relay messages included."""
        return iter(self._text_fields)

    @lazy
    def _text_fields(self) -> tuple[TextField, ...]:
        # Listed once per message: the message policy, both text rules and the log each ask, and
        # a message never changes (a rewrite makes a new one, without this cache).
        return tuple(_texts(self.body, ()))

    def replace_texts(self, edits: Mapping[Path, str]) -> "TencentMessage":
        """Return a message with the texts at `edits` paths replaced; other elements untouched.

        Only the containers on the way to an edited text are copied (a deep copy would recurse as
        deep as the sender nested the message): the original body is never changed.
        """
        if not edits:
            return self
        body = list(self.body)
        copies: set[int] = {id(body)}  # containers made here, safe to change
        for path, text in edits.items():
            node: Any = body
            path = flatten(path)
            for key in path[:-1]:
                child = node[key]
                if id(child) not in copies:
                    child = node[key] = child.copy()  # a dict or a list: shallow, one level
                    copies.add(id(child))
                node = child
            node[path[-1]] = text
        return replace(self, body=tuple(body))

    def with_body(self, body: list) -> "TencentMessage":
        return replace(self, body=tuple(body))

    def with_cloud_custom_data(self, value: str | None) -> "TencentMessage":
        return replace(self, cloud_custom_data=value)

    def element_types(self) -> tuple[str, ...]:
        """Neutral element kinds; an unknown MsgType shows as "unknown:<MsgType>"."""
        return tuple(_kind(element) for element in self.body)

    def custom_payloads(self) -> Iterator[str]:
        for element in self.body:
            if element.get("MsgType") == "TIMCustomElem":
                data = element.get("MsgContent", {}).get("Data")
                if isinstance(data, str):
                    yield data

    def text_length(self) -> int:
        return sum([len(f.text) for f in self._text_fields if f.kind == "text"])

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"MsgBody": list(self.body)}
        if self.cloud_custom_data is not None:
            wire["CloudCustomData"] = self.cloud_custom_data
        return wire


def _kind(element: Any) -> str:
    msg_type = element.get("MsgType", "") if isinstance(element, dict) else ""
    return ELEMENT_KINDS.get(msg_type, f"unknown:{msg_type}")


def _texts(body, prefix: Path) -> Iterator[TextField]:
    """Every readable text of `body` in reading order, relays as deep as they nest.

    An explicit stack of (path, element) iterators, one per nested body (STYLE.md §17): the sender
    chooses the depth, the interpreter's recursion limit must not.
    """
    stack = [_elements(body, prefix)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path, element = entry
        msg_type = element.get("MsgType") if isinstance(element, dict) else None
        content = element.get("MsgContent") if msg_type else None
        if not isinstance(content, dict):
            continue
        for key, kind in TEXT_KEYS.get(msg_type, ()):
            value = content.get(key)
            if isinstance(value, str) and value:
                yield TextField(path + ("MsgContent", key), value, kind)
        if msg_type != "TIMRelayElem":
            continue
        abstracts = content.get("AbstractList")
        for j, abstract in enumerate(abstracts if isinstance(abstracts, list) else ()):
            if isinstance(abstract, str) and abstract:
                yield TextField(path + ("MsgContent", "AbstractList", j), abstract, "relay.abstract")
        stack.append(_relay_elements(content, path + ("MsgContent", "MsgList")))


def _elements(body, prefix: Path) -> Iterator[tuple[Path, Any]]:
    for i, element in enumerate(body):
        yield prefix + (i,), element


def _relay_elements(content: dict, relay_list: Path) -> Iterator[tuple[Path, Any]]:
    """The elements of each message in a relay's MsgList, in order: one level, no recursion.

    Their paths start with `relay_list` as one item, not its copied contents: a text 100 relays
    deep has a path of a few items, not of 500, and 20,000 such texts share one prefix.
    """
    items = content.get("MsgList")
    for k, item in enumerate(items if isinstance(items, list) else ()):
        inner = item.get("MsgBody") if isinstance(item, dict) else None
        if isinstance(inner, list):
            yield from _elements(inner, (relay_list, k, "MsgBody"))


def flatten(path: Path) -> Path:
    """The plain key sequence of a path whose first item may be the path of its relay (see above)."""
    if not path or not isinstance(path[0], tuple):
        return path
    parts = []
    while path and isinstance(path[0], tuple):
        parts.append(path[1:])
        path = path[0]
    parts.append(path)
    return tuple(key for part in reversed(parts) for key in part)
