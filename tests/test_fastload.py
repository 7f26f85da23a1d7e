"""The fast path (receiver/fastload.py) agrees with marshmallow wherever it answers, and answers for
well-formed bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, post_load, validate

from receiver.fastload import NOT_MINE, compile_loader
from receiver.tencent.schemas import FAST_LOADERS, GENERIC, GENERIC_FAST, SCHEMAS

SAMPLES = Path(__file__).parent / "samples" / "tencent"
BODIES = sorted(p for p in SAMPLES.glob("*.json") if ".response" not in p.name)


def schema_for(command):
    return (SCHEMAS.get(command), FAST_LOADERS.get(command)) if command in SCHEMAS else (GENERIC, GENERIC_FAST)


def marshmallow_load(schema, payload):
    try:
        return schema.load(payload)
    except ValidationError as exc:
        return exc


def test_every_command_has_a_fast_path():
    assert SCHEMAS and all(FAST_LOADERS[command] is not None for command in SCHEMAS)
    assert GENERIC_FAST is not None


@pytest.mark.parametrize("path", BODIES, ids=lambda p: p.stem)
def test_every_sample_takes_the_fast_path_with_marshmallows_result(path):
    payload = json.loads(path.read_text(encoding="utf-8"))
    schema, fast = schema_for(payload["CallbackCommand"])
    loaded = fast(copy.deepcopy(payload))
    if "EventTime" in payload and isinstance(payload["EventTime"], str):
        # The docs print EventTime as a string: a numeric string is marshmallow's to convert.
        assert loaded is NOT_MINE
        payload["EventTime"] = int(payload["EventTime"])
        loaded = fast(copy.deepcopy(payload))
    assert loaded is not NOT_MINE, "a well-formed sample must not need the slow path"
    assert loaded == schema.load(payload)


# Values of every JSON kind, including the ones marshmallow converts or refuses.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=True)
    | st.text(max_size=5) | st.sampled_from(["12", "1.5", "", "TIMTextElem", "x.y"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def paths(value, prefix=()):
    """Every place in a JSON value that can be replaced."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, prefix + (index,))


def replaced(value, path, new):
    if not path:
        return new
    value = copy.deepcopy(value)
    target = value
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return value


def well_formed(payload):
    """A sample as the IM sends it: the docs print EventTime as a string, the IM an integer."""
    if isinstance(payload.get("EventTime"), str):
        payload["EventTime"] = int(payload["EventTime"])
    return payload


SAMPLE_PAYLOADS = [well_formed(json.loads(p.read_text(encoding="utf-8"))) for p in BODIES]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_where_the_fast_path_answers_it_is_marshmallows_answer(data):
    payload = data.draw(st.sampled_from(SAMPLE_PAYLOADS))
    for _ in range(data.draw(st.integers(0, 3))):
        where = data.draw(st.sampled_from(list(paths(payload))[1:]))
        payload = replaced(payload, where, data.draw(JSON_VALUES))
    if data.draw(st.booleans()):  # an unknown field: plain, dotted, or named like an attribute
        key = data.draw(st.sampled_from(["Extra", "a.b", "msg_body", "from_account", "callback_command"]))
        extra = {key: data.draw(JSON_VALUES)}
        payload = {**extra, **payload} if data.draw(st.booleans()) else {**payload, **extra}
    command = payload.get("CallbackCommand")
    schema, fast = schema_for(command if isinstance(command, str) else "")
    loaded = fast(copy.deepcopy(payload))
    if loaded is NOT_MINE:
        return
    expected = marshmallow_load(schema, payload)
    assert not isinstance(expected, ValidationError), f"fast path accepted what marshmallow refuses: {expected}"
    assert loaded == expected


def test_fast_path_declines_what_marshmallow_converts_or_refuses():
    schema, fast = schema_for("C2C.CallbackBeforeSendMsg")
    good = json.loads((SAMPLES / "C2C.CallbackBeforeSendMsg.json").read_text(encoding="utf-8"))
    good["EventTime"] = 1
    assert fast(good) is not NOT_MINE
    for change in ({"MsgSeq": "12"}, {"MsgSeq": True}, {"MsgSeq": 1.0}, {"From_Account": None},
                   {"From_Account": 5}, {"MsgBody": {}}, {"MsgBody": [None]}, {"a.b": 1},
                   {"MsgSeq": 1 << 64}, {"MsgSeq": -(1 << 63) - 1}):
        assert fast({**good, **change}) is NOT_MINE, change
    missing = dict(good)
    del missing["To_Account"]
    assert fast(missing) is NOT_MINE
    assert fast({**good, "CloudCustomData": None})["cloud_custom_data"] is None  # allow_none
    # The widest integers the IM uses (receiver/tencent/fields.py) are plain; one beyond is drift.
    assert fast({**good, "MsgSeq": (1 << 64) - 1})["msg_seq"] == schema.load({**good, "MsgSeq": (1 << 64) - 1})[
        "msg_seq"]
    assert fast({**good, "MsgSeq": -(1 << 63)})["msg_seq"] == -(1 << 63)


class Including(Schema):
    class Meta:
        unknown = INCLUDE

    name = fields.String()


class WithHook(Including):

    @post_load
    def upper(self, data, **kwargs):
        return data


class Excluding(Including):
    class Meta:
        unknown = EXCLUDE

    name = fields.String()


@pytest.mark.parametrize("schema", [
    WithHook(), Excluding(), Including.from_dict({"n": fields.Integer(validate=validate.Range(0, 9))})(),
    Including.from_dict({"n": fields.Integer(load_default=0)})(), Including.from_dict({"d": fields.Date()})(),
], ids=["hook", "exclude", "validator", "load_default", "unknown_kind"])
def test_schemas_it_cannot_mirror_get_no_fast_path(schema):
    assert compile_loader(Including()) is not None
    assert compile_loader(schema) is None


def element_contents(value):
    """(MsgType, MsgContent) of every element in a JSON value, merge-forwarded ones included."""
    if isinstance(value, dict):
        if isinstance(value.get("MsgType"), str) and isinstance(value.get("MsgContent"), dict):
            yield value["MsgType"], value["MsgContent"]
        for item in value.values():
            yield from element_contents(item)
    elif isinstance(value, list):
        for item in value:
            yield from element_contents(item)


# Every element type as PROTOCOL.md §5 shows it (the samples carry text elements only).
ELEMENT_CONTENTS = [pair for payload in SAMPLE_PAYLOADS for pair in element_contents(payload)] + [
    ("TIMLocationElem", {"Desc": "someplace", "Latitude": 29.340656774469956, "Longitude": 116}),
    ("TIMFaceElem", {"Index": 1, "Data": "content"}),
    ("TIMCustomElem", {"Data": "message", "Desc": "notification", "Ext": "url", "Sound": "dingdong.aiff"}),
    ("TIMSoundElem", {"Url": "https://x/s", "UUID": "u", "Size": 8907, "Second": 3, "Download_Flag": 2}),
    ("TIMImageElem", {"UUID": "1853095_D61040894AC3DE44CDFFFB3EC7EB720F", "ImageFormat": 1, "ImageInfoArray": [
        {"Type": 1, "Size": 1553, "Width": 120, "Height": 120, "URL": "https://x/1"},
        {"Type": 3, "Size": 133, "Width": 64, "Height": 64, "URL": "https://x/3"}]}),
    ("TIMFileElem", {"Url": "https://x/f", "UUID": "u", "FileSize": 1773552, "FileName": "file:a.docx",
                     "Download_Flag": 2}),
    ("TIMVideoFileElem", {"VideoUrl": "https://x/v", "VideoUUID": "v", "VideoSize": 1, "VideoSecond": 5,
                          "VideoFormat": "mp4", "VideoDownloadFlag": 2, "ThumbUrl": "https://x/t",
                          "ThumbUUID": "t", "ThumbSize": 2, "ThumbWidth": 3, "ThumbHeight": 4, "ThumbFormat": "JPG",
                          "ThumbDownloadFlag": 2}),
    ("TIMRelayElem", {"Title": "chat", "MsgNum": 1, "CompatibleText": "old", "AbstractList": ["a: hi"],
                      "MsgList": [{"From_Account": "a", "To_Account": "b", "MsgSeq": 1, "MsgRandom": 2,
                                   "MsgTimeStamp": 3, "MsgBody": [{"MsgType": "TIMTextElem",
                                                                   "MsgContent": {"Text": "hi"}}],
                                   "CloudCustomData": None}]}),
]


def test_every_element_type_has_a_fast_check_and_the_samples_take_it():
    from receiver.tencent.elements import _CONTENT, _FAST_CONTENT

    assert set(_FAST_CONTENT) == set(_CONTENT)
    kinds = {msg_type for msg_type, _ in ELEMENT_CONTENTS}
    assert {"TIMTextElem", "TIMFaceElem", "TIMImageElem", "TIMCustomElem"} <= kinds
    for msg_type, content in ELEMENT_CONTENTS:
        if msg_type in _FAST_CONTENT:
            assert _FAST_CONTENT[msg_type](copy.deepcopy(content)) is not NOT_MINE, msg_type
            assert _CONTENT[msg_type].validate(content) == {}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_element_the_fast_check_passes_has_no_problem_by_its_schema(data):
    from receiver.tencent.elements import _CONTENT, _FAST_CONTENT

    msg_type, content = data.draw(st.sampled_from([p for p in ELEMENT_CONTENTS if p[0] in _CONTENT]))
    for _ in range(data.draw(st.integers(0, 3))):
        where = data.draw(st.sampled_from(list(paths(content))[1:] or [()]))
        replaced_content = replaced(content, where, data.draw(JSON_VALUES))
        content = replaced_content if isinstance(replaced_content, dict) else content
    if _FAST_CONTENT[msg_type](copy.deepcopy(content)) is not NOT_MINE:
        assert _CONTENT[msg_type].validate(content) == {}, (msg_type, content)
