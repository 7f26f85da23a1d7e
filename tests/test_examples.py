"""The shipped configurations load and decide as their comments say."""

from __future__ import annotations

import pytest

from receiver.config import load_config
from receiver.core import Receiver
from receiver.tencent.platform import TencentPlatform
from rules.loader import build_chain

from .helpers import APP_ID, ROOT, handle, sample


def receiver_for(path):
    config = load_config(ROOT / path, {"IMHOOK_APP_ID": APP_ID})
    platform = TencentPlatform()
    return Receiver(config, build_chain(config, platform=platform), platform=platform)


def send(receiver, text, sender="jared", command="C2C.CallbackBeforeSendMsg", **extra):
    body = sample(command)
    body.update(From_Account=sender, MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}], **extra)
    return handle(receiver, body).reply


PRODUCTION = [
    ("hello there", {"ErrorCode": 0}),
    ("你这个傻 逼", {"ErrorCode": 0, "Text": "你这个***"}),
    ("fuuuuck you", {"ErrorCode": 0, "Text": "******* you"}),
    ("Scunthorpe is a town", {"ErrorCode": 0}),
    ("快来兼职刷单, 日结", {"ErrorCode": 120100, "ErrorInfo": "this message was refused by moderation"}),
    ("來網上賭博吧", {"ErrorCode": 2}),
    ("x" * 4001, {"ErrorCode": 120200}),
]


@pytest.mark.parametrize("text, expected", PRODUCTION)
def test_production_example_decides_as_documented(text, expected):
    reply = send(receiver_for("examples/production.yaml"), text)
    assert reply["ErrorCode"] == expected["ErrorCode"]
    if "Text" in expected:
        assert reply["MsgBody"][0]["MsgContent"]["Text"] == expected["Text"]
    elif expected["ErrorCode"] == 0:
        assert "MsgBody" not in reply
    if "ErrorInfo" in expected:
        assert reply["ErrorInfo"] == expected["ErrorInfo"]


def test_production_example_scopes():
    receiver = receiver_for("examples/production.yaml")
    assert send(receiver, "傻逼", sender="administrator")["ErrorCode"] == 0  # except_users
    assert "MsgBody" not in send(receiver, "傻逼", sender="administrator")
    group = send(receiver, "call 13800138000", command="Group.CallbackBeforeSendMsg", Type="Public")
    assert group["MsgBody"][0]["MsgContent"]["Text"] == "call ***********"
    assert "MsgBody" not in send(receiver, "call 13800138000")  # contact_info is for open groups only


def test_default_config_masks_the_starter_words():
    receiver = receiver_for("receiver/default.yaml")
    assert send(receiver, "what the FUCK")["MsgBody"][0]["MsgContent"]["Text"] == "what the ****"
    assert send(receiver, "call me at 13800138000") == sample("C2C.CallbackBeforeSendMsg.response")
