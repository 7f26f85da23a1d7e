"""receiver.app.JsonReply: sent exactly as Werkzeug's own Response with the same arguments."""

from __future__ import annotations

import pytest
from flask import Flask, Response
from werkzeug.test import EnvironBuilder

from receiver import jsonout
from receiver.app import JsonReply, json_response

BODIES = [{"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""},
          {"ActionStatus": "FAIL", "ErrorCode": 1, "ErrorInfo": "非法 \u2028 ünïcode \x00"}, {}]
STATUSES = [200, 201, 204, 304, 400, 401, 403, 404, 405, 413, 429, 500, 503, 101]


def sent(response: Response, method: str) -> tuple[str, list, bytes]:
    """What a WSGI server sends for `response`: status line, headers, body."""
    environ = EnvironBuilder(path="/callback", method=method).get_environ()
    started = []
    iterable = response(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    body = b"".join(iterable)
    iterable.close()  # a WSGI server calls it; the harnesses (benchmarks/parts.py) call it unasked
    (status, headers), = started
    return status, list(headers), body


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("method", ["POST", "GET", "HEAD", "PUT"])
@pytest.mark.parametrize("body", BODIES)
def test_sent_exactly_as_werkzeugs_response(status, method, body):
    data = jsonout.dumps(body)
    expected = Response(data, status=status, mimetype="application/json")
    reply = json_response(status, body)
    assert type(reply) is JsonReply
    assert sent(reply, method) == sent(expected, method)
    assert (reply.status, reply.status_code, reply.get_data(), reply.mimetype, reply.content_length) == (
        expected.status, expected.status_code, expected.get_data(), expected.mimetype, expected.content_length)
    assert reply.headers == expected.headers


@pytest.mark.parametrize("change", [
    lambda r: r.headers.add("X-Extra", "1"),
    lambda r: r.headers.__setitem__("Content-Type", "text/plain"),
    lambda r: r.set_data(b'{"other": true}'),
    lambda r: setattr(r, "status_code", 204),
    lambda r: r.headers.__setitem__("Location", "/elsewhere"),
])
def test_a_reply_changed_after_it_was_made_is_sent_as_changed(change):
    """An after_request hook (none today) may change the reply: the fast path must not hide that."""
    data = jsonout.dumps(BODIES[0])
    reply, expected = json_response(200, BODIES[0]), Response(data, status=200, mimetype="application/json")
    change(reply)
    change(expected)
    assert sent(reply, "POST") == sent(expected, "POST")


def test_close_callbacks_still_run():
    reply, closed = json_response(200, BODIES[0]), []
    reply.call_on_close(lambda: closed.append(True))
    environ = EnvironBuilder(path="/callback", method="POST").get_environ()
    iterable = reply(environ, lambda *args: None)
    b"".join(iterable)
    iterable.close()
    assert closed == [True]


def test_through_a_flask_app_as_a_view_return():
    app = Flask("t")
    app.add_url_rule("/r", "r", lambda: json_response(403, BODIES[1]), methods=["GET", "POST"])
    client = app.test_client()
    for method in ("post", "get", "head"):
        response = getattr(client, method)("/r")
        assert response.status_code == 403
        assert response.headers["Content-Type"] == "application/json"
        assert response.data == (b"" if method == "head" else jsonout.dumps(BODIES[1]))
        assert int(response.headers["Content-Length"]) == len(jsonout.dumps(BODIES[1]))
