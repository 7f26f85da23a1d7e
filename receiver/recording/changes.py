"""What differs between two replies, field by field: key order ignored, equal fields left out.

A reply is compared as data, not as text: `{"a": 1, "b": 2}` and `{"b": 2, "a": 1}` are the same
reply, and an `"ErrorInfo": ""` present in both is not a change. Each difference is a `Change` at a
path such as `MsgBody[0].MsgContent.Text`, with the old and new values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
STATUS_PATH = "HTTP status"  # not a key path (it has a space), so it cannot be mistaken for one
_ABSENT = object()
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Change:
    """One difference: `kind` added (no `old`), removed (no `new`) or changed."""

    path: str
    kind: str
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "change": self.kind}
        if self.kind != ADDED:
            data["old"] = self.old
        if self.kind != REMOVED:
            data["new"] = self.new
        return data


def reply_changes(old_status: int | None, old_reply: Any, new_status: int | None, new_reply: Any) -> list[Change]:
    """The changes from one (status, reply) to another, the status first, then by path."""
    found = [Change(STATUS_PATH, CHANGED, old_status, new_status)] if old_status != new_status else []
    return found + value_changes(old_reply, new_reply)


def value_changes(old: Any, new: Any) -> list[Change]:
    """The differences between two JSON values, sorted by path.

    Objects are compared key by key; lists of objects or lists item by item; a list of plain
    values (`RefusedMembers_Account`) as one value, which reads better than item-wise shifts.
    An explicit stack, not recursion: a recorded reply comes from a file anyone may have edited,
    and its depth must not reach the interpreter's limit.
    """
    found: list[tuple[tuple, Change]] = []
    # A path is a linked list (parent, key): extending it costs the same at any depth.
    stack: list[tuple[Any, Any, Any]] = [(None, old, new)]
    while stack:
        link, a, b = stack.pop()
        if isinstance(a, dict) and isinstance(b, dict):
            stack += [((link, key), a.get(key, _ABSENT), b.get(key, _ABSENT)) for key in a.keys() | b.keys()]
        elif isinstance(a, list) and isinstance(b, list) and not (_plain(a) and _plain(b)):
            stack += [((link, i), a[i] if i < len(a) else _ABSENT, b[i] if i < len(b) else _ABSENT)
                      for i in range(max(len(a), len(b)))]
        elif a is _ABSENT or b is _ABSENT or not _same(a, b):
            path = _unlink(link)
            kind = ADDED if a is _ABSENT else REMOVED if b is _ABSENT else CHANGED
            found.append((path, Change(_path_text(path), kind, None if a is _ABSENT else a,
                                       None if b is _ABSENT else b)))
    found.sort(key=lambda item: _sort_key(item[0]))
    return [change for _, change in found]


def _unlink(link: Any) -> tuple:
    parts = []
    while link is not None:
        link, part = link
        parts.append(part)
    return tuple(reversed(parts))


def _same(a: Any, b: Any) -> bool:
    """Equal plain values, or equal lists of them. Containers are never compared with == here:
    that recurses, and the walk above has already taken apart every container pair it can."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False  # a container against a plain value, or an object against a list
    # JSON tells true from 1; Python's == does not.
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _plain(items: list) -> bool:
    return not any(isinstance(item, (dict, list)) for item in items)


def _sort_key(path: tuple) -> tuple:
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in path)


def _path_text(path: tuple) -> str:
    """`MsgBody[0].MsgContent.Text`; a key that is not a plain name is quoted: `["a.b"]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _NAME.fullmatch(str(part)):
            text += f".{part}" if text else str(part)
        else:
            text += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return text or "(the whole reply)"
