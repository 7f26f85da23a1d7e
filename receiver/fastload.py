"""A fast path for marshmallow: the schema's own result for well-formed input, in a tenth of the time.

Every callback body is loaded through its command's marshmallow schema, and `Schema.load` costs
~40 µs for a C2C message: most of a callback's parse time. Nearly every body the IM sends is well
formed, and for those the result is plain: each known field's value as it came (a string, an
integer, a list of those), under the attribute name, plus the unknown fields as they are (INCLUDE).

`compile_loader(schema)` turns a schema into a function that builds exactly that result, or returns
NOT_MINE the moment anything is not the plain case: a wrong type, a None, a missing required field,
a numeric string, a field kind it does not know. The caller then runs `schema.load`, which produces
the result or the error with marshmallow's own messages. So the schema stays the one definition of
a body, errors are marshmallow's, and the fast path only ever answers where it is sure to agree
(tests/test_fastload.py checks that against `schema.load` on every sample and on generated bodies).

Schemas it cannot mirror (hooks, validators, load defaults, other unknown-field policies, field kinds
not listed here) get no fast path: `compile_loader` returns None and `load` is always used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from marshmallow import INCLUDE, Schema, fields
from marshmallow.utils import missing

NOT_MINE = object()  # the fast path declines: run marshmallow
Loader = Callable[[Any], Any]  # value -> loaded value, or NOT_MINE


def compile_loader(schema: Schema, custom: dict[type, Callable[[fields.Field], Loader]] | None = None
                   ) -> Callable[[dict], dict | Any] | None:
    """A loader for `schema` (value -> result or NOT_MINE), or None if the schema is not plain."""
    try:
        return _schema_loader(schema, custom or {})
    except _NotPlain:
        return None


class _NotPlain(Exception):
    """The schema uses something the fast path does not mirror."""


def _schema_loader(schema: Schema, custom) -> Loader:
    if schema.unknown != INCLUDE or any(schema._hooks.values()) or schema.many or schema.partial:
        raise _NotPlain(type(schema).__name__)
    known: dict[str, tuple[str, Loader, bool]] = {}  # wire name -> (attribute, loader, allow_none)
    attributes = frozenset(schema.load_fields)
    required = []
    for attr, field in schema.load_fields.items():
        if field.validators or field.load_default is not missing or getattr(field, "pre_load", None) \
                or getattr(field, "post_load", None):
            raise _NotPlain(attr)
        wire = field.data_key if field.data_key is not None else attr
        known[wire] = (attr, _field_loader(field, custom), field.allow_none)
        if field.required:
            required.append(wire)
    required_keys = tuple(required)

    def load(value):
        if type(value) is not dict:
            return NOT_MINE
        for wire in required_keys:
            if wire not in value:
                return NOT_MINE
        out = {}
        for key, item in value.items():
            spec = known.get(key)
            if spec is None:
                if "." in key or key in attributes:
                    # marshmallow would nest it under the part before the dot, or let it overwrite
                    # a known field's value: rare enough to leave to marshmallow.
                    return NOT_MINE
                out[key] = item  # unknown: kept as it is (INCLUDE)
                continue
            attr, loader, allow_none = spec
            if item is None:
                if not allow_none:
                    return NOT_MINE
                out[attr] = None
                continue
            loaded = loader(item)
            if loaded is NOT_MINE:
                return NOT_MINE
            out[attr] = loaded
        return out

    return load


def _field_loader(field: fields.Field, custom) -> Loader:
    for kind, make in custom.items():
        if type(field) is kind:
            return make(field)
    kind = type(field)
    if kind is fields.String:
        return _string
    if kind is fields.Integer:
        return _integer
    if kind is fields.Float and not field.allow_nan:
        return _float
    if kind is fields.Raw:
        return _raw
    if kind is fields.Dict and field.key_field is None and field.value_field is None:
        return _dict
    if kind is fields.List:
        return _list_loader(field.inner, custom)
    if kind is fields.Nested and not field.many and field.only is None and not field.exclude \
            and field.unknown is None:
        return _schema_loader(field.schema, custom)
    raise _NotPlain(kind.__name__)


def _string(value):
    return value if type(value) is str else NOT_MINE


def _integer(value):
    # Only a JSON integer as it is: numeric strings, floats and bools are marshmallow's to judge.
    return value if type(value) is int else NOT_MINE


def _float(value):
    if type(value) is float:
        return value if math.isfinite(value) else NOT_MINE
    if type(value) is int and -(1 << 53) <= value <= 1 << 53:  # exactly representable
        return float(value)
    return NOT_MINE


def _raw(value):
    return value


def _dict(value):
    return dict(value) if type(value) is dict else NOT_MINE


def _list_loader(inner: fields.Field, custom) -> Loader:
    if inner.allow_none or inner.validators or inner.load_default is not missing:
        raise _NotPlain("list item")
    item_loader = _field_loader(inner, custom)

    def load(value):
        if type(value) is not list:
            return NOT_MINE
        out = []
        for item in value:
            loaded = item_loader(item) if item is not None else NOT_MINE
            if loaded is NOT_MINE:
                return NOT_MINE
            out.append(loaded)
        return out

    return load
