"""Schema drift: load a body its schema refuses, keeping what does not fit as the IM sent it.

The IM's payloads drift from its own docs: enum fields documented as numbers arrive as strings
(and the reverse), fields appear, new variants of a command carry new members. A body the schema
refuses is therefore not rejected: `load_tolerant` loads every field that fits, keeps every field
that does not as its raw value, and names each of those by its schema path ("MsgSeq",
"FriendItem[].Remark", "MsgBody[].TIMImageElem.ImageFormat"). The paths come from the schema, never
from the body, so they can label a metric. Whether a drifted field matters is the command's to say
(commands.CommandSpec.decides_on): a before-callback whose decision needs it gets the chain's on_error.

Only bodies `Schema.load` refuses, or would load wrongly (`shadows`), come here (platform.py): the
result for a body that fits is marshmallow's own, and the fast path (receiver/fastload.py) stays
equal to it.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields

from .elements import Element, element_problems

Drift = list[tuple[str, str]]  # (schema path, what is wrong with it), in body order


def load_tolerant(schema: Schema, value: dict[str, Any]) -> tuple[dict[str, Any], Drift]:
    """The loaded body with drifted fields kept raw, and where it drifted (`value` is an object)."""
    drift: Drift = []
    return _load_object(schema, value, "", drift), drift


def shadows(schema: Schema, value: Any) -> bool:
    """Whether `value` holds, in an object the schema loads, an unknown key named like a field's
    attribute ("to_account" beside "To_Account").

    marshmallow (INCLUDE) would put that key's value over the loaded field, and the event would be
    built from it; `load_tolerant` keeps such a key in the raw body only. Schemas nest a few levels
    at most, and MsgBody elements are not looked into (they are kept raw).
    """
    stack = [(schema, value)]
    while stack:
        schema, value = stack.pop()
        if not isinstance(value, dict):
            continue
        for attr, field in schema.load_fields.items():
            if field.data_key not in (None, attr) and attr in value:
                return True
            inner = field.inner if isinstance(field, fields.List) else field
            if isinstance(inner, fields.Nested) and not inner.many:
                item = value.get(field.data_key or attr)
                items = item if isinstance(field, fields.List) and isinstance(item, list) else (item,)
                stack.extend((inner.schema, each) for each in items)
    return False


def _load_object(schema: Schema, value: dict[str, Any], prefix: str, drift: Drift) -> dict[str, Any]:
    # Schema depth is fixed by the schema; the sender's depth lives in MsgBody, which Element walks
    # with its own stack.
    out: dict[str, Any] = {}
    attributes = schema.load_fields
    by_wire = {(f.data_key or attr): (attr, f) for attr, f in attributes.items()}
    for wire, (attr, field) in by_wire.items():
        if field.required and wire not in value:
            drift.append((prefix + wire, "missing"))
    for key, item in value.items():
        spec = by_wire.get(key)
        if spec is None:
            if key not in attributes:  # unknown: kept as it is; never over a loaded field
                out[key] = item
            continue
        attr, field = spec
        out[attr] = _load_field(field, item, prefix + key, drift)
    return out


def _load_field(field: fields.Field, item: Any, path: str, drift: Drift) -> Any:
    if item is None:
        if not field.allow_none:
            drift.append((path, "null"))
        return None
    if isinstance(field, Element):
        drift.extend((path + where, message) for where, message in element_problems(item))
        return item  # elements are kept raw whatever they hold
    if isinstance(field, fields.Nested) and not field.many:
        if not isinstance(item, dict):
            drift.append((path, "not an object"))
            return item
        return _load_object(field.schema, item, path + ".", drift)
    if isinstance(field, fields.List):
        if not isinstance(item, list):
            drift.append((path, "not a list"))
            return item
        return [_load_field(field.inner, each, path + "[]", drift) for each in item]
    try:
        return field.deserialize(item)
    except ValidationError as exc:
        drift.append((path, _first_message(exc.messages)))
        return item


def _first_message(messages: Any) -> str:
    while isinstance(messages, (list, dict)) and messages:
        messages = messages[0] if isinstance(messages, list) else next(iter(messages.values()))
    return str(messages).rstrip(".")
