"""The `of` constructors of the per-request dataclasses make exactly what their __init__ makes.

They fill the instance dict at once (receiver/model.py `filled`); each must name every field, in
the class's order, or the object would differ from the one __init__ makes.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from receiver.core import HttpRequest
from receiver.model import MESSAGE_SEND, Callback, MessageSend
from receiver.tencent.message import TencentMessage

MESSAGE = TencentMessage.from_wire([{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}], None)
EVENT = MessageSend(MESSAGE_SEND, actor="a", group_id="g", group_type="Public", conversation="group",
                    peer="g", topic_id="t", online_only=True, message=MESSAGE)
CASES = {
    MessageSend: dict(action=MESSAGE_SEND, actor="a", group_id="", group_type="", conversation="c2c", peer="b",
                      topic_id="", online_only=False, message=MESSAGE),
    Callback: dict(platform="tencent", command="C2C.CallbackBeforeSendMsg", is_before=True, app_id="1400000000",
                   event=EVENT, query={"SdkAppid": "1400000000"}, body={"CallbackCommand": "x"}, data={"a": 1},
                   client_ip="10.0.0.1", client_platform="iOS", known=True, drift=("MsgSeq",),
                   undecidable=""),
    HttpRequest: dict(method="POST", query={"a": "b"}, body=b"{}", headers={"X": "y"}, remote_addr="127.0.0.1",
                      request_id="r1", platform=""),
}


@pytest.mark.parametrize("cls", CASES, ids=lambda cls: cls.__name__)
def test_of_names_every_field_in_order(cls):
    names = [name for name in inspect.signature(cls.of).parameters]
    assert names == [f.name for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("cls", CASES, ids=lambda cls: cls.__name__)
def test_of_makes_what_init_makes(cls):
    values = CASES[cls]
    fast, slow = cls.of(**values), cls(**values)
    assert type(fast) is type(slow) and fast == slow
    assert list(vars(fast).items()) == list(vars(slow).items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(fast, dataclasses.fields(cls)[0].name, "changed")
    with pytest.raises(TypeError):
        cls.of(**{name: value for name, value in values.items() if name != dataclasses.fields(cls)[-1].name})
