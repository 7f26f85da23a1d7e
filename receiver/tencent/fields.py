"""Schema helpers shared by the Tencent body and element schemas."""

from __future__ import annotations

import re

from marshmallow import INCLUDE, Schema, fields


class WireSchema(Schema):
    """Base schema: unknown fields are kept (the IM adds fields over time, PROTOCOL.md §4)."""

    class Meta:
        unknown = INCLUDE


def snake(wire_name: str) -> str:
    """From_Account -> from_account, MsgBody -> msg_body, GroupAttr.key -> key."""
    name = wire_name.replace("_", "")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return name.lower()


def wire_schema(name: str, **wire_fields: fields.Field) -> type[Schema]:
    """Build a schema whose attributes are snake_case and whose data keys are the wire names."""
    attrs = {}
    for wire_name, field in wire_fields.items():
        field.data_key = wire_name
        attrs[snake(wire_name)] = field
    return WireSchema.from_dict(attrs, name=name)


# Short names keep the command tables readable.
Str = fields.String
Raw = fields.Raw
List = fields.List
Nested = fields.Nested
Dict = fields.Dict


def Int(**kw) -> fields.Integer:
    """An integer that also accepts numeric strings: doc samples print EventTime as a string."""
    return fields.Integer(strict=False, **kw)


def Float(**kw) -> fields.Float:
    return fields.Float(**kw)


def Members(key: str = "Member_Account", **kw) -> fields.List:
    """A list of {"Member_Account": id} objects."""
    return List(Nested(wire_schema(f"{key}Item", **{key: Str(required=True)})), **kw)
