"""A Tencent `MsgBody` as a neutral Message: text fields, rewrites, element kinds."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

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
        yield from _texts(self.body, ())

    def replace_texts(self, edits: Mapping[Path, str]) -> "TencentMessage":
        """Return a message with the texts at `edits` paths replaced; other elements untouched."""
        if not edits:
            return self
        body = list(self.body)
        copied: set[int] = set()
        for path, text in edits.items():
            index = path[0]
            if index not in copied:
                body[index] = copy.deepcopy(body[index])
                copied.add(index)
            _set_path(body[index], path[1:], text)
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
        return sum(len(f.text) for f in self.text_fields() if f.kind == "text")

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"MsgBody": list(self.body)}
        if self.cloud_custom_data is not None:
            wire["CloudCustomData"] = self.cloud_custom_data
        return wire


def _kind(element: Any) -> str:
    msg_type = element.get("MsgType", "") if isinstance(element, dict) else ""
    return ELEMENT_KINDS.get(msg_type, f"unknown:{msg_type}")


def _texts(body, prefix: Path) -> Iterator[TextField]:
    for i, element in enumerate(body):
        msg_type = element.get("MsgType")
        content = element.get("MsgContent") or {}
        for key, kind in TEXT_KEYS.get(msg_type, ()):
            value = content.get(key)
            if isinstance(value, str) and value:
                yield TextField(prefix + (i, "MsgContent", key), value, kind)
        if msg_type != "TIMRelayElem":
            continue
        for j, abstract in enumerate(content.get("AbstractList") or ()):
            if isinstance(abstract, str) and abstract:
                yield TextField(prefix + (i, "MsgContent", "AbstractList", j), abstract, "relay.abstract")
        for k, item in enumerate(content.get("MsgList") or ()):
            inner = item.get("MsgBody") if isinstance(item, dict) else None
            if inner:
                yield from _texts(inner, prefix + (i, "MsgContent", "MsgList", k, "MsgBody"))


def _set_path(node: Any, path: Path, value: str) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
