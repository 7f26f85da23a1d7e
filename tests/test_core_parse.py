"""Parsing: tolerant where the IM is loose, strict where it matters; a table of bad inputs."""

from __future__ import annotations

import json

import pytest

from receiver.core import HttpRequest
from receiver.signature import sign
from receiver.tencent.platform import TencentPlatform

from .helpers import APP_ID, TOKEN, handle, make_receiver, rules_yaml, sample

NOW = 1_700_000_000


def c2c(**overrides):
    body = sample("C2C.CallbackBeforeSendMsg")
    body.update(overrides)
    return body


def query(command="C2C.CallbackBeforeSendMsg", **extra):
    q = {"SdkAppid": APP_ID, "CallbackCommand": command, "contenttype": "json"}
    q.update(extra)
    return {k: v for k, v in q.items() if v is not None}


def signed(command="C2C.CallbackBeforeSendMsg", *, token=TOKEN, at=NOW, **extra):
    return query(command, RequestTime=str(at), Sign=sign(token, at), **extra)


def receive(body, q, *, tokens=(TOKEN,), max_body=1 << 20, now=NOW):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return TencentPlatform().from_http(q, raw, app_id=APP_ID, tokens=tokens, window=60, max_body=max_body, now=now)


# (case, body, query, expected status, words the message must contain)
BAD = [
    ("wrong app id", c2c(), signed(SdkAppid="1400000001"), 403, "SdkAppid"),
    ("missing app id", c2c(), signed(SdkAppid=None), 403, "SdkAppid"),
    ("missing Sign", c2c(), query(RequestTime=str(NOW)), 401, "Sign"),
    ("missing RequestTime", c2c(), query(Sign=sign(TOKEN, NOW)), 401, "RequestTime"),
    ("wrong Sign", c2c(), signed(token="other"), 401, "Sign does not match"),
    ("stale RequestTime", c2c(), signed(at=NOW - 61), 401, "window"),
    ("future RequestTime", c2c(), signed(at=NOW + 61), 401, "window"),
    ("RequestTime not a number", c2c(), query(RequestTime="soon", Sign="ab"), 401, "integer"),
    ("missing command", c2c(), signed(CallbackCommand=None), 400, "CallbackCommand"),
    ("body not JSON", b"{not json", signed(), 400, "not valid JSON"),
    ("body not UTF-8", b"\xff\xfe{}", signed(), 400, "not valid JSON"),
    ("empty body", b"", signed(), 400, "empty body"),
    ("body is an array", b"[1, 2]", signed(), 400, "JSON object"),
    ("commands disagree", c2c(CallbackCommand="Group.CallbackBeforeSendMsg"), signed(), 400, "does not match"),
    ("command missing in body", {k: v for k, v in c2c().items() if k != "CallbackCommand"}, signed(), 400,
     "does not match"),
    ("RequestTime of 401 digits", c2c(), query(RequestTime="1" + "0" * 400, Sign="00"), 401, "out of range"),
    ("RequestTime not ASCII digits", c2c(), query(RequestTime="\u0661\u0662", Sign="00"), 401, "integer"),
    ("body deeper than the limit, after-callback", {"CallbackCommand": "State.StateChange", "Info": {},
     "Deep": json.loads("[" * 600 + "]" * 600)}, signed("State.StateChange"), 400, "deeper than 512"),
    ("body too deep for the parser, after-callback", b'{"CallbackCommand": "State.StateChange", "x": '
     + b"[" * 5000 + b"]" * 5000 + b"}", signed("State.StateChange"), 400, "deeper than 512"),
    ("body too large", c2c(CloudCustomData="x" * 20000), signed(), 413, "over the limit"),
]


@pytest.mark.parametrize("case, body, q, status, words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_clear_error(case, body, q, status, words):
    receiver = make_receiver(rules_yaml(extra="server: {max_body_bytes: 15000}"), env={"IMHOOK_TOKEN": TOKEN})
    receiver.clock = lambda: NOW
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    outcome = receiver.handle(HttpRequest("POST", q, raw))
    assert outcome.status == status, outcome.reply
    assert outcome.reply["ActionStatus"] == "FAIL"
    assert words in outcome.reply["ErrorInfo"]
    assert TOKEN not in json.dumps(outcome.reply)
    assert outcome.decision is None  # no rule ran


def test_good_signature_any_parameter_order_and_rotation():
    body = c2c()
    q = dict(reversed(list(signed(ClientIP="1.2.3.4", OptPlatform="iOS").items())))
    callback = receive(body, q)
    assert callback.client_ip == "1.2.3.4" and callback.client_platform == "iOS"
    # The old token keeps working beside the new one while the console is switched over.
    assert receive(body, signed(token="old"), tokens=("new", "old")).command == "C2C.CallbackBeforeSendMsg"


def test_documented_signature_vector():
    assert sign("xxxxyyyy", 1669872112) == "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"


def test_window_edges_are_inclusive():
    assert receive(c2c(), signed(at=NOW - 60)).command
    assert receive(c2c(), signed(at=NOW + 60)).command


def test_no_token_means_no_signature_check():
    assert receive(c2c(), query(), tokens=()).command == "C2C.CallbackBeforeSendMsg"


def test_event_time_as_string_or_int_and_unknown_fields_kept():
    body = sample("Group.CallbackBeforeCreateGroup")  # EventTime is a string in the docs
    body["BrandNewField"] = {"x": 1}
    callback = receive(body, query("Group.CallbackBeforeCreateGroup"), tokens=())
    assert callback.data["event_time"] == 1670574414123
    assert callback.data["BrandNewField"] == {"x": 1}
    assert callback.body["BrandNewField"] == {"x": 1}
    body["EventTime"] = 1670574414123
    assert receive(body, query("Group.CallbackBeforeCreateGroup"), tokens=()).data["event_time"] == 1670574414123


def test_unknown_msg_type_passes_through_untouched():
    strange = {"MsgType": "TIMFutureElem", "MsgContent": {"Hologram": [1, 2, 3]}}
    body = c2c(MsgBody=[strange, {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}])
    callback = receive(body, query(), tokens=())
    message = callback.event.message
    assert message.element_types() == ("unknown:TIMFutureElem", "text")
    rewritten = message.replace_texts({(1, "MsgContent", "Text"): "HI"})
    assert rewritten.to_wire()["MsgBody"][0] == strange
    assert message.to_wire()["MsgBody"][1]["MsgContent"]["Text"] == "hi"  # the original is not mutated


def test_texts_are_found_in_every_readable_place_nested_relays_included():
    inner = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "deep"}}]
    body = c2c(MsgBody=[
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "a"}},
        {"MsgType": "TIMCustomElem", "MsgContent": {"Data": "{}", "Desc": "b"}},
        {"MsgType": "TIMLocationElem", "MsgContent": {"Desc": "c", "Latitude": 1.5, "Longitude": 2}},
        {"MsgType": "TIMFileElem", "MsgContent": {"FileName": "d.txt", "FileSize": 3}},
        {"MsgType": "TIMImageElem", "MsgContent": {"UUID": "u", "ImageFormat": 1, "ImageInfoArray": [
            {"Type": 1, "Size": 2, "Width": 3, "Height": 4, "URL": "https://x"}]}},
        {"MsgType": "TIMRelayElem", "MsgContent": {
            "Title": "e", "CompatibleText": "f", "AbstractList": ["g"], "MsgNum": 1,
            "MsgList": [{"From_Account": "x", "To_Account": "y", "MsgSeq": 1, "MsgRandom": 2,
                         "MsgTimeStamp": 3, "MsgBody": [
                             {"MsgType": "TIMRelayElem", "MsgContent": {"Title": "h", "MsgList": [
                                 {"MsgBody": inner}]}}]}]}},
    ])
    texts = [(f.text, f.kind) for f in receive(body, query(), tokens=()).event.message.text_fields()]
    assert texts == [("a", "text"), ("b", "custom.desc"), ("c", "location.desc"), ("d.txt", "file.name"),
                     ("e", "relay.title"), ("f", "relay.text"), ("g", "relay.abstract"), ("h", "relay.title"),
                     ("deep", "text")]


def test_unknown_command_is_acknowledged_and_logged_once(caplog):
    receiver = make_receiver(rules_yaml())
    body = {"CallbackCommand": "Future.CallbackSomething", "Anything": [1]}
    for _ in range(3):
        outcome = handle(receiver, body)
        assert outcome.status == 200
        assert outcome.reply == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}
        assert not outcome.callback.known
    assert sum("Future.CallbackSomething" in r.message for r in caplog.records) == 1


def test_wrong_method_is_405():
    receiver = make_receiver(rules_yaml())
    outcome = handle(receiver, c2c(), method="GET")
    assert outcome.status == 405 and outcome.reply["ActionStatus"] == "FAIL"
