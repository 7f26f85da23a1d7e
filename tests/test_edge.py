"""receiver/edge.py: the JSON error reply at the edge, and values made safe to log."""

from __future__ import annotations

import json

import pytest
from gunicorn.http import errors as http_errors

from receiver.edge import MAX_LOGGED_VALUE_CHARS, error_response, loggable, parse_error_status

# (value, what the logged text must hold, what it must not)
LOGGABLE = [
    ("abc-123", "abc-123", None),
    ("/callback?SdkAppid=1&RequestTime=1700000000&Sign=deadbeef", "Sign=<redacted>", "deadbeef"),
    ("x sign=deadbeef y", "sign=<redacted>", "deadbeef"),
    ("token=s3cret", "token=<redacted>", "s3cret"),
    ("bell\x07newline\n", "bell?newline?", "\n"),
    ("r" * 8000, "cut at", "r" * (MAX_LOGGED_VALUE_CHARS + 1)),
    ("\ud800", "\ud800", None),  # a lone surrogate passes as text; the JSON encoder escapes it
]


@pytest.mark.parametrize("value, holds, lacks", LOGGABLE)
def test_a_value_is_made_safe_to_log(value, holds, lacks):
    text = loggable(value)
    assert holds in text
    assert lacks is None or lacks not in text
    assert len(text) <= MAX_LOGGED_VALUE_CHARS + 40


@pytest.mark.parametrize("exc, status", [
    (http_errors.LimitRequestLine(9000, 8190), 414),
    (http_errors.LimitRequestHeaders("too big"), 431),
    (http_errors.InvalidRequestLine("GET /?Sign=abc"), 400),
    (http_errors.InvalidHeader("X"), 400),
    (http_errors.UnsupportedTransferCoding("gzip"), 400),  # not gunicorn's 501: no 5xx for any input
    (http_errors.InvalidChunkSize(b"zz"), 400),
    (ValueError("a bug"), None),
])
def test_gunicorn_parse_errors_map_to_a_status_and_a_text_that_quotes_nothing(exc, status):
    known = parse_error_status(exc)
    assert (known[0] if known else None) == status
    if known:
        assert "Sign" not in known[1]


def test_the_error_response_is_a_whole_http_reply_with_the_json_envelope():
    raw = error_response(413, "body over the limit")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 Content Too Large\r\n") and b"Connection: close" in head
    assert json.loads(body) == {"ActionStatus": "FAIL", "ErrorCode": 413, "ErrorInfo": "body over the limit"}
    assert f"Content-Length: {len(body)}".encode() in head
