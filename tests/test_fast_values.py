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


def test_lazy_works_a_value_out_once_and_keeps_it_on_the_instance():
    from receiver.lazy import lazy

    calls = []

    @dataclasses.dataclass(frozen=True)
    class Frozen:
        n: int

        @lazy
        def doubled(self) -> int:
            calls.append(self.n)
            return self.n * 2

    one, two = Frozen(1), Frozen(2)
    assert (one.doubled, one.doubled, two.doubled) == (2, 2, 4)
    assert calls == [1, 2]  # once per instance
    assert vars(one) == {"n": 1, "doubled": 2}
    assert one == Frozen(1)  # not a field: equality and the repr ignore it
    assert isinstance(Frozen.doubled, lazy)


def test_a_config_section_is_read_from_its_sections_each_time():
    import os

    from receiver.config import Config, load_config

    config = load_config(env={**os.environ, "IMHOOK_APP_ID": "1400000000"})
    assert isinstance(vars(Config)["server"], property)  # not through __getattr__
    assert config.server is config.sections["server"]
    config.sections["recording"] = {"enabled": False}  # as the console's playground replaces one
    assert config.recording == {"enabled": False}
    bare = Config("f", "1", (), {"custom": {"a": 1}}, [], None)
    assert bare.custom == {"a": 1}  # a section no property names: still found
    try:
        bare.server
    except AttributeError as exc:
        assert str(exc) == "server"
    else:
        raise AssertionError("a missing section must raise AttributeError")
