"""Schema helpers shared by the Tencent body and element schemas."""

from __future__ import annotations

import re

from marshmallow import INCLUDE, Schema, ValidationError, fields

from ..fastload import NOT_MINE

# The widest integer the IM's fields take: signed 64-bit times (EventTime in ms) and unsigned 64-bit
# ids and sequence numbers both fit. A value outside is not an integer of the protocol: it is kept as
# sent and reported as schema drift (receiver/tencent/drift.py), never a 400 or a float conversion.
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1


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


class WireInt(fields.Integer):
    """An integer in [INT_MIN, INT_MAX] that also accepts numeric strings (doc samples print
    EventTime as a string)."""

    def _validated(self, value):
        number = super()._validated(value)
        if not INT_MIN <= number <= INT_MAX:
            raise ValidationError("Integer out of range.")
        return number


def load_wire_int(field: WireInt):
    """fastload's loader for a WireInt: a JSON integer in range as it is, anything else NOT_MINE."""
    def load(value):
        return value if type(value) is int and INT_MIN <= value <= INT_MAX else NOT_MINE

    return load


def Int(**kw) -> WireInt:
    return WireInt(strict=False, **kw)


def Float(**kw) -> fields.Float:
    return fields.Float(**kw)


def Members(key: str = "Member_Account", **kw) -> fields.List:
    """A list of {"Member_Account": id} objects."""
    return List(Nested(wire_schema(f"{key}Item", **{key: Str(required=True)})), **kw)
