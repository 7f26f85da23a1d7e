"""The per-callback values made without their frozen dataclass __init__ are the same objects."""

from __future__ import annotations

import dataclasses

from receiver.core import HttpRequest
from rules.chain import TraceStep, _trace_step


def same(fast, slow) -> None:
    assert type(fast) is type(slow)
    assert fast == slow
    assert list(vars(fast).items()) == list(vars(slow).items())  # same fields, same order
    assert repr(fast) == repr(slow)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)


def test_http_request_of():
    args = dict(method="POST", query={"SdkAppid": "1"}, body=b"{}", headers={"X": "y"}, remote_addr="10.0.0.1",
                request_id="abc", platform="netease")
    same(HttpRequest.of(**args), HttpRequest(**args))
    # positionally too, in the fields' order
    same(HttpRequest.of(*args.values()), HttpRequest(*args.values()))


def test_http_request_of_is_still_frozen():
    made = HttpRequest.of("POST", {}, b"", {}, "", "", "")
    try:
        made.method = "GET"
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("HttpRequest.of made a mutable request")


def test_trace_step():
    same(_trace_step("a", "no_opinion", "", 0.5), TraceStep("a", "no_opinion", "", 0.5))
