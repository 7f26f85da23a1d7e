"""Message element schemas (PROTOCOL.md §5), merge-forward (`TIMRelayElem`) recursion included."""

from __future__ import annotations

from marshmallow import ValidationError, fields

from ..fastload import NOT_MINE
from .fields import Float, Int, List, Nested, Str, wire_schema

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
}


class Element(fields.Field):
    """One `{"MsgType", "MsgContent"}` element, validated by type, returned as the raw dict.

    The raw dict is kept (not the loaded form) so a message passes through, or is rewritten,
    with every field it had. An unknown MsgType is passed through untouched (PROTOCOL.md §5).
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("element must be an object")
        msg_type = value.get("MsgType")
        if not isinstance(msg_type, str):
            raise ValidationError({"MsgType": ["missing or not a string"]})
        content = value.get("MsgContent")
        if not isinstance(content, dict):
            raise ValidationError({"MsgContent": ["missing or not an object"]})
        if msg_type == "TIMTextElem" and isinstance(content.get("Text"), str):
            return value  # the common case, and all TextContent checks: skip a schema load
        schema = _content_schema(msg_type)
        if schema is not None:
            errors = schema.validate(content)
            if errors:
                raise ValidationError({"MsgContent": errors})
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


RelayItem = wire_schema(
    "RelayItem",
    From_Account=Str(), To_Account=Str(), GroupId=Str(), MsgSeq=Int(), MsgRandom=Int(),
    MsgTimeStamp=Int(), MsgBody=MsgBody(), CloudCustomData=Str(allow_none=True),
)
CONTENT_SCHEMAS["TIMRelayElem"] = wire_schema(
    "RelayContent",
    Title=Str(), MsgNum=Int(), CompatibleText=Str(), AbstractList=List(Str()),
    MsgList=List(Nested(RelayItem)), JsonMsgKey=Str(),
)

_INSTANCES: dict = {}


def _content_schema(msg_type: str):
    schema_cls = CONTENT_SCHEMAS.get(msg_type)
    if schema_cls is None:
        return None
    schema = _INSTANCES.get(msg_type)
    if schema is None:
        schema = _INSTANCES[msg_type] = schema_cls()
    return schema
