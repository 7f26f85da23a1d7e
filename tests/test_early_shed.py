"""Shedding from the request's bytes (receiver/early_shed.py): only where gunicorn would agree.

The early path may answer a stale callback without gunicorn's parser only if that parser would have
read the same request to the same environ keys. So every case here is checked against gunicorn's own
parser and WSGI environ: the plain ones must match key by key, the others must be declined (None),
and generated requests (hypothesis) must never be read differently. The reply's bytes are checked
against what gunicorn writes, and real gunicorn runs in tests/test_shedding.py and below.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from gunicorn import http
from gunicorn.config import Config
from gunicorn.http import wsgi
from hypothesis import HealthCheck, given, settings, strategies as st

from receiver import early_shed
from receiver.client import callback_query
from receiver.recording.store import Store
from receiver.tencent.platform import TencentPlatform

from .helpers import APP_ID, TOKEN, sample

CLIENT = ("10.1.2.3", 40000)
CFG = Config()
CFG.set("limit_request_fields", 100)  # as receiver/gunicorn_conf.py sets it
KEYS_READ = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_LENGTH", "CONTENT_TYPE", "REMOTE_ADDR")


def gunicorn_environ(data: bytes) -> tuple[dict, bytes] | None:
    """What gunicorn's parser and WSGI layer make of `data` (None: it refuses or cannot read it)."""
    try:
        request = next(http.get_parser(CFG, [data], CLIENT))
        with socket.socket() as sock:
            _, environ = wsgi.create(request, sock, CLIENT, ("127.0.0.1", 8080), CFG)
        return environ, environ["wsgi.input"].read()
    except Exception:
        return None


def ours(data: bytes):
    return early_shed.environ_of(data, CLIENT, early_shed.field_limits(CFG))


def assert_gunicorn_agrees(data: bytes, environ: dict) -> None:
    theirs = gunicorn_environ(data)
    assert theirs is not None, f"gunicorn refuses what the early path would answer: {data[:300]!r}"
    their_environ, their_body = theirs
    assert environ["wsgi.input"].read() == their_body
    for key in KEYS_READ:
        assert environ.get(key) == their_environ.get(key), key
    headers = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
    assert headers == {key: value for key, value in their_environ.items() if key.startswith("HTTP_")}


def request(head: bytes = b"POST /callback?SdkAppid=1&Sign=ab HTTP/1.1", headers=(), body: bytes = b"{}",
            length: bytes | None = None) -> bytes:
    lines = [head, b"Host: 127.0.0.1:8080", b"Content-Type: application/json", *headers]
    if length is not None or body:
        lines.append(b"Content-Length: " + (str(len(body)).encode() if length is None else length))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


PLAIN = [
    ("what requests sends", request(headers=(b"User-Agent: python-requests/2.32", b"Accept-Encoding: gzip",
                                              b"Accept: */*", b"Connection: keep-alive"))),
    ("a request id", request(headers=(b"X-Request-Id: 7f3c",))),
    ("a NetEase callback", request(b"POST /netease/callback HTTP/1.1",
                                   headers=(b"AppKey: k", b"CurTime: 1700000000", b"MD5: 99914b932bd37a50b983c5e7c90ae93b",
                                            b"CheckSum: 0f"))),
    ("no query", request(b"POST /callback HTTP/1.1")),
    ("an empty body", request(body=b"", length=b"0")),
    ("a non-ASCII body and header value", request(headers=("X-Note: caf\u00e9".encode("latin-1"),),
                                                   body="{\"t\": \"\u4f60\u597d\"}".encode())),
    ("spaces around a value", request(headers=(b"X-A:   padded \t",))),
    ("a Content-Length with leading zeros", request(body=b"{}", length=b"002")),
    ("a field at gunicorn's size limit", request(headers=(b"X-Big: " + b"v" * (8190 - 2 - 7),))),
    ("gunicorn's limit of fields", request(headers=tuple(b"X-F%d: 1" % i for i in range(97)))),
]

NOT_PLAIN = [
    ("GET", request(b"GET /callback HTTP/1.1")),
    ("lower-case method", request(b"post /callback HTTP/1.1")),
    ("HTTP/1.0", request(b"POST /callback HTTP/1.0")),
    ("percent-encoding", request(b"POST /call%62ack HTTP/1.1")),
    ("a fragment", request(b"POST /callback#x HTTP/1.1")),
    ("an absolute-form target", request(b"POST http://x/callback HTTP/1.1")),
    ("a path read as a host", request(b"POST //callback HTTP/1.1")),
    ("two spaces", request(b"POST  /callback HTTP/1.1")),
    ("chunked", request(headers=(b"Transfer-Encoding: chunked",))),
    ("Expect", request(headers=(b"Expect: 100-continue",))),
    ("Connection: close", request(headers=(b"Connection: close",))),
    ("Upgrade", request(headers=(b"Upgrade: h2c", b"Connection: Upgrade"))),
    ("a repeated header", request(headers=(b"X-A: 1", b"X-A: 2"))),
    ("two Content-Lengths", request(headers=(b"Content-Length: 2",))),
    ("no Content-Length", request(body=b"")),
    ("a Content-Length that is not the body's", request(length=b"5")),
    ("a signed Content-Length", request(length=b"+2")),
    ("an underscore in a name", request(headers=(b"X_Forwarded_For: 1.2.3.4",))),
    ("a space before the colon", request(headers=(b"X-A : 1",))),
    ("a folded line", request(headers=(b"X-A: 1", b" continued"))),
    ("a control character in a value", request(headers=(b"X-A: a\x01b",))),
    ("a NUL in a value", request(headers=(b"X-A: a\x00b",))),
    ("a line without a colon", request(headers=(b"nonsense",))),
    ("a field over gunicorn's size limit", request(headers=(b"X-Big: " + b"v" * (8190 - 2 - 6),))),
    ("over gunicorn's limit of fields", request(headers=tuple(b"X-F%d: 1" % i for i in range(98)))),
    ("a leading empty line", b"\r\n" + request()),
    ("no head end", b"POST /callback HTTP/1.1\r\nContent-Length: 2\r\n"),
]


@pytest.mark.parametrize("case, data", PLAIN, ids=[c for c, _ in PLAIN])
def test_a_plain_request_reads_as_gunicorn_reads_it(case, data):
    environ = ours(data)
    assert environ is not None, case
    assert_gunicorn_agrees(data, environ)


@pytest.mark.parametrize("case, data", NOT_PLAIN, ids=[c for c, _ in NOT_PLAIN])
def test_anything_else_is_left_to_gunicorn(case, data):
    assert ours(data) is None


def test_the_limits_are_gunicorns_own():
    # The boundary cases above are plain and not plain by one byte and one field: they follow the
    # limits given, which the worker takes from gunicorn's config as its parser applies them.
    big = request(headers=(b"X-Big: " + b"v" * 100,))  # a field of 107 bytes, 109 with its CRLF
    assert early_shed.environ_of(big, CLIENT, (100, 108)) is None
    assert early_shed.environ_of(big, CLIENT, (100, 109)) is not None
    assert early_shed.environ_of(request(), CLIENT, (2, 8190)) is None
    unset = Config()
    unset.set("limit_request_fields", 0)
    unset.set("limit_request_field_size", 0)
    assert early_shed.field_limits(unset) == (32768, 8190)  # 0: gunicorn's own maxima, not "no limit"
    assert early_shed.field_limits(CFG) == (100, 8190)


_NAME = st.sampled_from([b"X-A", b"X-B", b"Content-Length", b"Content-Type", b"Transfer-Encoding",
                         b"Connection", b"x_a", b"X A", b"", b"Host", b"Expect", b"\xe9t\xe9"])
_VALUE = st.binary(max_size=12) | st.sampled_from([b"2", b"02", b"+2", b"keep-alive", b"close", b"chunked",
                                                    b" 2 ", b"2, 2", b"-1", b"\xff"])
_TARGET = st.sampled_from([b"/callback", b"/callback?a=1&b=", b"//x", b"/a%20b", b"/\xe9", b"*", b"/?",
                           b"/netease/callback", b"/callback;p=1?q"]) | st.binary(min_size=1, max_size=10)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from([b"POST", b"POST", b"GET", b"post", b"P\x00ST"]), target=_TARGET,
       version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"http/1.1"]),
       headers=st.lists(st.tuples(_NAME, st.sampled_from([b": ", b":", b" : ", b":\t"]), _VALUE), max_size=5),
       body=st.binary(max_size=8), length=st.sampled_from(["right", "right", "none", "off by one"]))
def test_a_generated_request_is_never_read_otherwise_than_by_gunicorn(method, target, version, headers, body, length):
    lines = [b" ".join((method, target, version)), *(name + sep + value for name, sep, value in headers)]
    if length != "none":
        lines.append(b"Content-Length: %d" % (len(body) + (length == "off by one")))
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    environ = ours(data)  # never raises, whatever the bytes
    if environ is not None:
        assert_gunicorn_agrees(data, environ)


def test_the_reply_is_what_gunicorn_writes_for_the_same_answer():
    body = b'{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}'
    now = time.time()
    reply = early_shed.response_bytes(body, now=now)
    head, _, sent = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert sent == body
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert [line.split(b": ", 1)[0] for line in lines[1:]] == [b"Server", b"Date", b"Connection", b"Content-Type",
                                                               b"Content-Length"]
    assert lines[1] == b"Server: gunicorn" and lines[3] == b"Connection: keep-alive"
    from gunicorn.util import http_date

    assert lines[2] == b"Date: " + http_date(int(now)).encode()
    assert lines[5] == b"Content-Length: %d" % len(body)
    assert b"Connection: close" in early_shed.response_bytes(body, now=now, keep_alive=False)


# --- under real gunicorn -----------------------------------------------------------------------------

# Every callback is stale (waited longer than 1 µs), so each one is shed; the rule would refuse all.
ALL_STALE = """
server: {{shed_after_ms: 0.001, shed_target_ms: 0}}
recording: {{path: {db}, flush_interval_seconds: 0.05}}
rules:
  - use: tests.rulekit:Decide
    name: refuse-all
    config: {{outcome: refuse, info: decided}}
"""
OK = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}


def raw_exchange(url: str, requests_bytes: list[bytes], *, timeout: float = 5) -> tuple[bytes, bool]:
    """Send each request on one connection, reading its reply before the next; (all replies, closed?)."""
    host, port = url.removeprefix("http://").split(":")
    replies = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        for data in requests_bytes:
            sock.sendall(data)
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += sock.recv(65536)
            head, _, rest = reply.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(rest) < length:
                rest += sock.recv(65536)
            replies += head + b"\r\n\r\n" + rest
        sock.settimeout(0.5)
        try:
            closed = sock.recv(1) == b""
        except (TimeoutError, socket.timeout):
            closed = False
        except ConnectionResetError:
            closed = True
    return replies, closed


def signed(name: str = "C2C.CallbackBeforeSendMsg", *, extra_headers: tuple[bytes, ...] = (),
           head_version: bytes = b"HTTP/1.1") -> bytes:
    from urllib.parse import urlencode

    body = json.dumps(sample(name)).encode()
    target = b"/callback?" + urlencode(callback_query(name, APP_ID, token=TOKEN)).encode()
    return request(b"POST " + target + b" " + head_version, headers=extra_headers, body=body)


@pytest.mark.integration
@pytest.mark.parametrize("access_log", ["off", "on"], ids=["early", "through gunicorn (access log on)"])
def test_stale_callbacks_get_the_same_answer_early_or_through_gunicorn(serve, tmp_path, access_log):
    db = tmp_path / "rec.sqlite"
    server = serve(ALL_STALE.format(db=json.dumps(str(db))), workers=1, threads=2,
                   env={"IMHOOK_ACCESS_LOG": "" if access_log == "off" else str(tmp_path / "access.log")})
    # Two on one connection: the connection is kept; then ones the early path leaves to gunicorn.
    replies, closed = raw_exchange(server.url, [signed(), signed("Sns.CallbackPrevFriendAdd")])
    assert not closed
    first, second = replies.split(b"HTTP/1.1 ")[1:]
    for reply in (first, second):
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"200 OK\r\nServer: gunicorn\r\nDate: ")
        assert head.endswith(b"Connection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode())
    assert json.loads(first.partition(b"\r\n\r\n")[2]) == OK  # the rule would have refused it
    friends = json.loads(second.partition(b"\r\n\r\n")[2])
    assert friends == TencentPlatform().render_fail_open({"CallbackCommand": "Sns.CallbackPrevFriendAdd"},
                                                         json.dumps(sample("Sns.CallbackPrevFriendAdd")).encode())
    # Connection: close and HTTP/1.0 go through gunicorn, shed there all the same, then closed.
    for odd in (signed(extra_headers=(b"Connection: close",)), signed(head_version=b"HTTP/1.0")):
        replies, closed = raw_exchange(server.url, [odd])
        assert replies.split(b"\r\n")[0] in (b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK") and closed
        assert json.loads(replies.partition(b"\r\n\r\n")[2]) == OK
    # A wrong Sign is never shed: the app answers 401, early path or not.
    bad = signed().replace(b"Sign=", b"Sign=00", 1)
    replies, closed = raw_exchange(server.url, [bad])
    assert replies.startswith(b"HTTP/1.1 401 ") and not closed

    metrics = requests.get(server.url + "/metrics", timeout=5).text
    assert server.stop() == 0
    shed_line = [line for line in server.log().splitlines() if "requests shed (answered without the app)" in line]
    early = 2 if access_log == "off" else 0  # the two plain ones; the others went through gunicorn
    assert shed_line and f" 4 requests shed (answered without the app), {early} of them from their bytes" \
        in shed_line[0], shed_line
    assert 'outcome="shed"' in metrics
    store = Store(db, create=False)
    try:
        records = list(store.records())
    finally:
        store.close()
    assert [r.outcome for r in records].count("shed") == 4 and len(records) == 5  # and the 401, rejected
    assert all(r.reply is not None and r.elapsed_ms > 0 for r in records if r.outcome == "shed")


@pytest.mark.integration
def test_a_stale_netease_callback_is_shed_from_its_bytes_too(serve, tmp_path):
    from .helpers import netease_headers

    db = tmp_path / "rec.sqlite"
    server = serve(ALL_STALE.format(db=json.dumps(str(db))), workers=1, threads=2, env={"IMHOOK_ACCESS_LOG": ""})
    body = json.dumps({"eventType": 1, "fromAccount": "a", "to": "b", "msgType": "TEXT", "body": "hi"}).encode()

    def netease(headers: dict) -> bytes:
        lines = [b"POST /netease/callback HTTP/1.1", b"Host: x", b"Content-Type: application/json",
                 *(f"{name}: {value}".encode() for name, value in headers.items()),
                 b"Content-Length: %d" % len(body)]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    replies, closed = raw_exchange(server.url, [netease(netease_headers(body)), netease(netease_headers(body))])
    assert not closed
    for reply in replies.split(b"HTTP/1.1 ")[1:]:
        head, _, sent = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"200 OK\r\nServer: gunicorn\r\n")
        assert json.loads(sent) == {"errCode": 0, "responseCode": 200}  # the rule would have refused it
    wrong = netease({**netease_headers(body), "CheckSum": "0" * 40})
    replies, closed = raw_exchange(server.url, [wrong])
    assert replies.startswith(b"HTTP/1.1 401 ") and not closed  # never shed: the app rejects it
    assert server.stop() == 0
    exits = [line for line in server.log().splitlines() if "requests shed (answered without the app)" in line]
    assert exits and " 2 requests shed (answered without the app), 2 of them from their bytes" in exits[0], exits
    store = Store(db, create=False)
    try:
        outcomes = sorted(r.outcome for r in store.records())
    finally:
        store.close()
    assert outcomes == ["rejected", "shed", "shed"]
