"""One recorded callback as a value, and its JSON form (one line of a .jsonl export).

The JSON form is an edge: it is loaded through a marshmallow schema so a corrupt or hand-edited
line is reported with the field at fault, never half-loaded.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from .. import jsonout
from ..errors import ImhookError, flatten_errors

FORMAT_VERSION = 1
OUTCOMES = ("allow", "refuse", "drop", "rewrite", "refuse_some", "notify", "rejected", "shed")


class RecordError(ImhookError):
    """A recording is corrupt or incomplete; the message says why."""


@dataclass(frozen=True)
class Problem:
    """A record that could not be read or replayed: where it is and why."""

    where: str
    why: str


@dataclass
class Record:
    """A callback as received, with the reply sent and why. No reply: an imported sample."""

    received_at: float
    command: str
    query: dict[str, str]
    body: bytes
    status: int | None = None
    reply: dict[str, Any] | None = None
    outcome: str = ""
    rule: str = ""
    reason: str = ""
    trace: list[dict[str, Any]] = field(default_factory=list)
    elapsed_ms: float = 0.0
    rejected: bool = False
    error: str = ""
    body_truncated: bool = False
    user: str = ""
    request_id: str = ""
    source: str = "live"
    redacted: tuple[str, ...] = ()  # "text", "user_ids": what was hashed before storing
    id: int | None = None
    origin: str = ""  # where it was read from ("file.jsonl:12"); not part of the record itself

    @property
    def where(self) -> str:
        """How a report names this record: file:line, #id in the db, plus the sample file it came from."""
        if self.origin:
            return self.origin
        sample = f" ({self.source.removeprefix('sample:')})" if self.source.startswith("sample:") else ""
        return f"#{self.id}{sample}" if self.id is not None else self.request_id or self.source

    @property
    def has_reply(self) -> bool:
        return self.status is not None and self.reply is not None

    def to_json(self) -> dict[str, Any]:
        """The JSON Lines form: the body as text when it is UTF-8, else base64."""
        # Shallow on purpose (asdict deep-copies, 5x the cost): the dict is encoded at once, and on
        # the reply path when journaling (writer.py). The instance dict holds the fields in their
        # order (the dataclass __init__ sets them so): a copy of it, less body and origin, is the
        # same dict as picking the fields one by one, at a third of the cost.
        data = self.__dict__.copy()
        if len(data) == _FIELD_COUNT:
            del data["body"], data["origin"]
        else:  # an attribute set on it besides the fields: pick them
            data = {name: getattr(self, name) for name in _JSON_FIELDS}
        data["v"] = FORMAT_VERSION
        data["redacted"] = list(self.redacted)
        try:
            data["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            data["body_base64"] = base64.b64encode(self.body).decode("ascii")
        return data

    @classmethod
    def from_json(cls, data: Any) -> "Record":
        """Load a JSON object (one .jsonl line); raise RecordError naming what is wrong."""
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object, got {type(data).__name__}")
        try:
            loaded = _SCHEMA.load(data)
        except ValidationError as exc:
            problems = "; ".join(f"{path}: {msg}" for path, msg in flatten_errors(exc.messages))
            raise RecordError(problems) from None
        return cls(**loaded)


_JSON_FIELDS = tuple(f.name for f in dataclasses.fields(Record) if f.name not in ("body", "origin"))
_FIELD_COUNT = len(dataclasses.fields(Record))


class _RecordSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # later versions may add fields; they must not break an older replay

    v = fields.Integer(load_default=FORMAT_VERSION, validate=validate.Range(min=1, max=FORMAT_VERSION))
    id = fields.Integer(load_default=None, allow_none=True)
    received_at = fields.Float(required=True)
    command = fields.String(required=True)
    query = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    body = fields.String(load_default=None, allow_none=True)
    body_base64 = fields.String(load_default=None)
    status = fields.Integer(load_default=None, allow_none=True)
    reply = fields.Dict(load_default=None, allow_none=True)
    outcome = fields.String(load_default="", validate=validate.OneOf(("",) + OUTCOMES))
    rule = fields.String(load_default="")
    reason = fields.String(load_default="")
    trace = fields.List(fields.Dict(), load_default=list)
    elapsed_ms = fields.Float(load_default=0.0)
    rejected = fields.Boolean(load_default=False)
    error = fields.String(load_default="")
    body_truncated = fields.Boolean(load_default=False)
    user = fields.String(load_default="")
    request_id = fields.String(load_default="")
    source = fields.String(load_default="import")
    redacted = fields.List(fields.String(), load_default=list)

    @post_load
    def _to_record_fields(self, loaded: dict, **kwargs) -> dict:
        loaded.pop("v")
        body, body_b64 = loaded.pop("body"), loaded.pop("body_base64")
        if body is not None:
            loaded["body"] = body.encode("utf-8")
        elif body_b64 is not None:
            try:
                loaded["body"] = base64.b64decode(body_b64, validate=True)
            except ValueError:
                raise ValidationError({"body_base64": ["not valid base64"]}) from None
        else:
            raise ValidationError({"body": ["missing: a record needs the raw body (body or body_base64)"]})
        if (loaded["status"] is None) != (loaded["reply"] is None):
            raise ValidationError({"reply": ["status and reply go together: give both or neither"]})
        loaded["redacted"] = tuple(loaded["redacted"])
        return loaded


_SCHEMA = _RecordSchema()


def encode(record: Record) -> bytes:
    """One JSON Lines line (no newline), UTF-8. orjson: on the reply path when journaling, where the
    standard library's encoder cost ~20 µs a record against orjson's ~2 (jsonout.py)."""
    return jsonout.dumps(record.to_json())


def dumps(record: Record) -> str:
    """One JSON Lines line (no newline)."""
    return encode(record).decode("utf-8")
