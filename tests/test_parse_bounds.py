"""Bounds on what a request can make a worker keep or say: unknown command names, RequestTime."""

from __future__ import annotations

import gc
import json
import logging
import tracemalloc

import pytest
import requests

from receiver.core import HttpRequest
from receiver.tencent.platform import MAX_LOGGED_NAME, MAX_UNKNOWN_COMMANDS

from .helpers import APP_ID, make_receiver, rules_yaml

LONG = 6000  # characters in each unknown command name, as the tester sent them


def unknown(receiver, i: int, length: int = LONG):
    name = f"Made.Up{i:06d}".ljust(length, "x")
    raw = json.dumps({"CallbackCommand": name}).encode()
    return receiver.handle(HttpRequest("POST", {"SdkAppid": APP_ID, "CallbackCommand": name}, raw))


def test_thousands_of_long_unknown_command_names_leave_memory_bounded(caplog):
    caplog.set_level(logging.ERROR, logger="imhook.tencent")  # pytest keeps every record it captures
    receiver = make_receiver(rules_yaml())
    for i in range(50):  # first-call caches (logging, json, marshmallow) are not what is measured
        assert unknown(receiver, i).status == 200
    tracemalloc.start()
    try:
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        for i in range(50, 3050):
            assert unknown(receiver, i).status == 200
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    # Unbounded, the names alone were 3,000 × 6 KB = 18 MB (7.7 MB per 1,000 with the set's overhead).
    assert grown < 256 * 1024, f"{grown} bytes kept after 3,000 unknown command names"
    assert len(receiver.platform._unknown_seen) <= MAX_UNKNOWN_COMMANDS + 1


def test_unknown_command_names_are_logged_once_shortened_then_no_more(caplog):
    receiver = make_receiver(rules_yaml())
    for i in range(MAX_UNKNOWN_COMMANDS + 50):
        unknown(receiver, i)
        unknown(receiver, i)  # the same name again: not logged again
    lines = [r.getMessage() for r in caplog.records if r.name == "imhook.tencent"]
    assert len(lines) == MAX_UNKNOWN_COMMANDS + 1
    assert all(len(line) < MAX_LOGGED_NAME + 100 for line in lines)
    assert f"({LONG} chars)" in lines[0]
    assert "no longer logged" in lines[-1]


def test_a_mismatched_long_command_is_shortened_in_the_error_too():
    receiver = make_receiver(rules_yaml())
    name = "Made.Up".ljust(LONG, "x")
    raw = json.dumps({"CallbackCommand": "Other"}).encode()
    outcome = receiver.handle(HttpRequest("POST", {"SdkAppid": APP_ID, "CallbackCommand": name}, raw))
    assert outcome.status == 400 and len(outcome.reply["ErrorInfo"]) < 300


@pytest.mark.integration
def test_a_huge_request_time_is_a_401_over_real_http_without_a_traceback(serve):
    server = serve(f"app_id: {APP_ID}\nrules: []\n", workers=1, threads=2)
    body = json.dumps({"CallbackCommand": "C2C.CallbackBeforeSendMsg"})
    for request_time in ("1" + "0" * 400, "9" * 13, "-1", "1e10", "١٢٣"):
        params = {"SdkAppid": APP_ID, "CallbackCommand": "C2C.CallbackBeforeSendMsg", "contenttype": "json",
                  "RequestTime": request_time, "Sign": "00"}
        response = requests.post(server.callback_url, params=params, data=body, timeout=5)
        assert response.status_code == 401, (request_time, response.text)
        reply = response.json()
        assert reply["ActionStatus"] == "FAIL" and "RequestTime" in reply["ErrorInfo"]
        assert "\n" not in reply["ErrorInfo"]
    log = server.log()
    assert "Traceback" not in log and "OverflowError" not in log
