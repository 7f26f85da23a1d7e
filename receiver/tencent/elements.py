"""Message element schemas (PROTOCOL.md §5), merge-forward (`TIMRelayElem`) nesting included.

A merge-forwarded message carries messages whose bodies carry merge-forwarded messages, as deep as
the sender likes. Each element is checked against its content schema one level at a time, and the
bodies nested in a relay are put on an explicit stack (STYLE.md §17): the depth a sender chooses is
bounded by the body's JSON depth (receiver/tencent/platform.py MAX_JSON_DEPTH), never by the
interpreter's recursion limit.
"""

from __future__ import annotations

from marshmallow import ValidationError, fields

from ..errors import flatten_errors
from ..fastload import NOT_MINE, compile_loader
from .fields import Float, Int, List, Nested, Raw, Str, WireInt, load_wire_int, wire_schema

ImageInfo = wire_schema("ImageInfo", Type=Int(), Size=Int(), Width=Int(), Height=Int(), URL=Str())

CONTENT_SCHEMAS = {
    "TIMTextElem": wire_schema("TextContent", Text=Str(required=True)),
    "TIMLocationElem": wire_schema("LocationContent", Desc=Str(), Latitude=Float(), Longitude=Float()),
    "TIMFaceElem": wire_schema("FaceContent", Index=Int(), Data=Str()),
    "TIMCustomElem": wire_schema("CustomContent", Data=Str(), Desc=Str(), Ext=Str(), Sound=Str()),
    "TIMSoundElem": wire_schema(
        "SoundContent", Url=Str(), UUID=Str(), Size=Int(), Second=Int(), Download_Flag=Int()
    ),
    "TIMImageElem": wire_schema(
        "ImageContent", UUID=Str(), ImageFormat=Int(), ImageInfoArray=List(Nested(ImageInfo))
    ),
    "TIMFileElem": wire_schema(
        "FileContent", Url=Str(), UUID=Str(), FileSize=Int(), FileName=Str(), Download_Flag=Int()
    ),
    "TIMVideoFileElem": wire_schema(
        "VideoContent",
        VideoUrl=Str(), VideoUUID=Str(), VideoSize=Int(), VideoSecond=Int(), VideoFormat=Str(),
        VideoDownloadFlag=Int(), ThumbUrl=Str(), ThumbUUID=Str(), ThumbSize=Int(), ThumbWidth=Int(),
        ThumbHeight=Int(), ThumbFormat=Str(), ThumbDownloadFlag=Int(),
    ),
    # One level of a merge-forward: each MsgList item's MsgBody is only checked to be a list here;
    # its elements are checked by `element_problems`' loop, not by a schema inside this one.
    "TIMRelayElem": wire_schema(
        "RelayContent",
        Title=Str(), MsgNum=Int(), CompatibleText=Str(), AbstractList=List(Str()), JsonMsgKey=Str(),
        MsgList=List(Nested(wire_schema(
            "RelayItem", From_Account=Str(), To_Account=Str(), GroupId=Str(), MsgSeq=Int(), MsgRandom=Int(),
            MsgTimeStamp=Int(), MsgBody=List(Raw()), CloudCustomData=Str(allow_none=True),
        ))),
    ),
}
_CONTENT = {msg_type: schema() for msg_type, schema in CONTENT_SCHEMAS.items()}
# fastload's straight-line loaders answer only where schema.load would succeed: then the content
# has no problem, and the schema's validate (~15-40 µs for an image or a custom element) is skipped.
_FAST_CONTENT = {msg_type: loader for msg_type, schema in _CONTENT.items()
                 if (loader := compile_loader(schema, {WireInt: load_wire_int})) is not None}

Problem = tuple[str, str]  # (where, relative to an element: "", ".MsgType", ".TIMTextElem.Text"; what)


def element_problems(element) -> list[Problem]:
    """Every way `element` and the elements merge-forwarded inside it differ from their schemas.

    Where is a schema path ("[]" for any list item), the same at every nesting depth: it names a
    field of the schema, never a value of the body, so it can label a metric. An unknown MsgType
    passes untouched (PROTOCOL.md §5), and so do the bodies nested in it.
    """
    problems: list[Problem] = []
    stack = [element]
    while stack:
        value = stack.pop()
        if not isinstance(value, dict):
            problems.append(("", "element must be an object"))
            continue
        msg_type = value.get("MsgType")
        if not isinstance(msg_type, str):
            problems.append((".MsgType", "missing or not a string"))
            continue
        content = value.get("MsgContent")
        if not isinstance(content, dict):
            problems.append((".MsgContent", "missing or not an object"))
            continue
        if msg_type == "TIMTextElem" and isinstance(content.get("Text"), str):
            continue  # the common case, and all TextContent checks: skip a schema load
        schema = _CONTENT.get(msg_type)
        if schema is None:
            continue
        fast = _FAST_CONTENT.get(msg_type)
        if fast is not None and fast(content) is not NOT_MINE:
            errors = {}  # well formed, as schema.load would have found
        else:
            errors = schema.validate(content)
        problems.extend((f".{msg_type}.{_schema_path(where)}", message)
                        for where, message in flatten_errors(errors))
        if msg_type == "TIMRelayElem":
            stack.extend(reversed(nested_elements(content)))
    return problems


def nested_elements(relay_content: dict) -> list:
    """The elements of every message a relay's MsgList carries, in order (one level only)."""
    found: list = []
    items = relay_content.get("MsgList")
    for item in items if isinstance(items, list) else ():
        body = item.get("MsgBody") if isinstance(item, dict) else None
        if isinstance(body, list):
            found.extend(body)
    return found


def _schema_path(where: str) -> str:
    """"ImageInfoArray.0.Size" -> "ImageInfoArray[].Size": list positions are not labels."""
    parts = []
    for part in where.split("."):
        if part.isdigit() and parts:
            parts[-1] += "[]"
        else:
            parts.append(part)
    return ".".join(parts)


class Element(fields.Field):
    """One `{"MsgType", "MsgContent"}` element, validated by type, returned as the raw dict.

    The raw dict is kept (not the loaded form) so a message passes through, or is rewritten,
    with every field it had. An unknown MsgType is passed through untouched (PROTOCOL.md §5).
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is dict and value.get("MsgType") == "TIMTextElem":
            content = value.get("MsgContent")
            if type(content) is dict and type(content.get("Text")) is str:
                return value  # the common case: no list to build
        problems = element_problems(value)
        if problems:
            raise ValidationError({where or "(element)": [message] for where, message in problems})
        return value


def load_element(field: Element):
    """fastload's loader for an element: the field's own check, NOT_MINE where it objects."""
    def load(value):
        try:
            return field._deserialize(value, None, None)
        except ValidationError:
            return NOT_MINE

    return load


def MsgBody(**kw) -> fields.List:
    return List(Element(), **kw)
