"""The JSON log lines: the callback line written straight to the handler, the same as logging's."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import subprocess
import sys
import textwrap

import pytest

from receiver.ops import logs

from .helpers import APP_ID, ROOT, handle, make_receiver, rules_yaml
from .test_ops_support import c2c_after, c2c_before, wait_until

SETTINGS = {"enabled": True, "level": "info", "callbacks": True}


@pytest.fixture
def stream():
    """The JSON handler on a StringIO."""
    out = io.StringIO()
    logs.setup_logging(SETTINGS, stream=out)
    yield out
    logs.setup_logging(SETTINGS)  # back to stderr, as the other tests' apps set it


@contextlib.contextmanager
def json_handler_alone():
    """No handler but imhook's, as in production: pytest's log capture puts one on the root logger
    while a test runs (after the fixtures are set up)."""
    root = logging.getLogger()
    saved, root.handlers = root.handlers, []
    try:
        yield
    finally:
        root.handlers = saved


def lines_of(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture(scope="module")
def cases():
    """Outcomes of several kinds (made before `stream`: the failing rule logs an error)."""
    receiver = make_receiver(rules_yaml("{use: tests.rulekit:Raise, name: boom}"))
    return {
        "after": handle(receiver, c2c_after(1)),
        "before-traced": handle(receiver, c2c_before(text="TEXT-MARKER")),
        "rejected": handle(receiver, b"not json", query={"SdkAppid": APP_ID, "CallbackCommand": "Made.Up"}),
        "wrong-app": handle(receiver, {}, query={"SdkAppid": "999", "CallbackCommand": "X"}),
    }


@pytest.mark.parametrize("log_text", [False, True])
def test_direct_line_is_the_line_logging_writes(cases, stream, log_text):
    with json_handler_alone():
        assert logs._direct_handler() is not None
        for outcome in cases.values():
            logs.log_callback(outcome, log_text=log_text)
        logs.flush()
    assert logs._direct_handler() is None  # pytest's handler is back: logging's own path
    for outcome in cases.values():
        logs.log_callback(outcome, log_text=log_text)
    written = lines_of(stream)
    direct, through_logging = written[:len(cases)], written[len(cases):]
    assert len(through_logging) == len(cases)
    for a, b in zip(direct, through_logging):
        assert list(a) == list(b)  # the same keys in the same order
        assert {**a, "ts": ""} == {**b, "ts": ""}
    assert ("TEXT-MARKER" in stream.getvalue()) is log_text
    assert [line["outcome"] for line in direct] == ["notify", "allow", "rejected", "rejected"]


def test_direct_lines_are_written_within_the_flush_interval(cases, stream):
    with json_handler_alone():
        logs.log_callback(cases["after"])
        assert wait_until(lambda: stream.getvalue(), timeout=logs.FLUSH_SECONDS * 4)
    (line,) = lines_of(stream)
    assert line["logger"] == "imhook.callback" and line["msg"] == "callback" and line["level"] == "info"


def test_other_records_come_after_the_queued_callback_lines(cases, stream):
    after = cases["after"]
    with json_handler_alone():
        logs.log_callback(after)
        logging.getLogger("imhook.test").warning("later %s", "on", extra={"detail": 3})
        written = lines_of(stream)
    assert [line["logger"] for line in written] == ["imhook.callback", "imhook.test"]
    assert written[1]["msg"] == "later on" and written[1]["detail"] == 3 and written[1]["level"] == "warning"


@pytest.mark.parametrize("settings", [
    {**SETTINGS, "level": "warning"},
    {**SETTINGS, "callbacks": False},
    {**SETTINGS, "enabled": False},
], ids=["level-warning", "callbacks-off", "logging-off"])
def test_level_and_switches_hold_on_the_direct_path(cases, stream, settings):
    logs.setup_logging(settings, stream=stream)
    with json_handler_alone():
        logs.log_callback(cases["after"])
        logs.flush()
    assert stream.getvalue() == ""


def test_another_handler_on_the_way_gets_the_record_through_logging(cases, stream):
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    with json_handler_alone():
        logging.getLogger().addHandler(handler)
        assert logs._direct_handler() is None
        logs.log_callback(cases["after"])
    assert [record.name for record in seen] == ["imhook.callback"]
    assert lines_of(stream)[0]["outcome"] == "notify"  # written at once, by logging


def test_a_long_queue_is_written_by_the_request_itself(cases, stream, monkeypatch):
    monkeypatch.setattr(logs, "MAX_QUEUED_LINES", 3)
    monkeypatch.setattr(logs, "WAKE_AT_LINES", 3)
    with json_handler_alone():
        for _ in range(3):
            logs.log_callback(cases["after"])
        assert len(lines_of(stream)) == 3  # no waiting for the writer thread


def test_setting_up_again_writes_the_old_handlers_queue(cases, stream):
    with json_handler_alone():
        logs.log_callback(cases["after"])
        logs.setup_logging(SETTINGS, stream=io.StringIO())
    assert len(lines_of(stream)) == 1


def test_queued_lines_are_written_at_exit(tmp_path):
    script = textwrap.dedent(f"""
        import logging, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from receiver.ops import logs
        from tests.helpers import handle, make_receiver, rules_yaml
        from tests.test_ops_support import c2c_after
        logs.setup_logging({{"enabled": True, "level": "info", "callbacks": True}})
        assert logs._direct_handler() is not None
        outcome = handle(make_receiver(rules_yaml()), c2c_after(1))
        for _ in range(3):
            logs.log_callback(outcome)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["logger"] for line in lines] == ["imhook.callback"] * 3


class Custom:
    def __str__(self):
        return "custom!"


@pytest.mark.parametrize("value, expected", [
    ("naïve 文字", '"naïve 文字"'),  # not escaped, as json.dumps(ensure_ascii=False)
    ([1, 2.5, None, True], "[1,2.5,null,true]"),
    (datetime.datetime(2025, 1, 6, 9, 12, 30), '"2025-01-06 09:12:30"'),  # str(), as default=str did
    (Custom(), '"custom!"'),
    ({1: "a"}, '{"1":"a"}'),  # orjson refuses it: json takes over
    (2 ** 70, str(2 ** 70)),
])
def test_dumps_writes_what_json_dumps_default_str_wrote(value, expected):
    assert logs.dumps({"v": value}).decode() == '{"v":' + expected + "}"


def test_a_long_request_id_is_cut_in_the_callback_line():
    from receiver.core import HttpRequest, Outcome

    outcome = Outcome(200, {}, HttpRequest("POST", {}, b"", request_id="r" * 10_000), 0.0)
    assert logs.callback_fields(outcome)["request_id"] == "r" * logs.MAX_REQUEST_ID_CHARS
