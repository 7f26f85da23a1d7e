"""The HTTP edge under real gunicorn: every limit answered in the JSON envelope, nothing secret logged.

Each limit is tried just under and just over: the body (Content-Length and chunked), the request
line, one header line, the head in all; then malformed requests, a request that never finishes,
the access log (off by default; with it on, no query), and a run of signed and bad requests after
which the server's whole output must not hold Sign.
"""

from __future__ import annotations

import json
import re
import socket
import time
from urllib.parse import urlencode

import pytest

from receiver.app import MAX_REQUEST_ID_CHARS
from receiver.client import callback_query
from receiver.worker import MAX_HEAD_BYTES, REQUEST_READ_SECONDS

from .helpers import APP_ID, TOKEN, start_server

MAX_BODY = 4096
LINE_LIMIT = FIELD_LIMIT = 8190  # receiver/gunicorn_conf.py
CONFIG = f"""
server: {{max_body_bytes: {MAX_BODY}}}
recording: {{enabled: false}}
rules:
  - use: tests.rulekit:Decide
    config: {{outcome: allow}}
"""
COMMAND = "C2C.CallbackBeforeSendMsg"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("edges"), CONFIG, workers=1, threads=2)
    yield server
    server.stop()


def exchange(server, data: bytes, *, timeout: float = 10) -> tuple[int, dict | str, bytes]:
    """Send raw bytes, read until imhook closes: (status, JSON body, raw reply)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:  # refused before all was sent: the reply is still there to read
            pass
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body), raw
    except ValueError:
        return status, body.decode("latin-1"), raw


def signed_target(path: str = "/callback", **extra: str) -> str:
    return path + "?" + urlencode({**callback_query(COMMAND, APP_ID, token=TOKEN), **extra})


def callback_body(size: int) -> bytes:
    """A valid callback body of exactly `size` bytes (padded in a field the schema keeps)."""
    body = {"CallbackCommand": COMMAND, "From_Account": "a", "To_Account": "b", "MsgBody": [], "Pad": ""}
    bare = len(json.dumps(body).encode())
    body["Pad"] = "p" * (size - bare)
    return json.dumps(body).encode()


def post(target: str, body: bytes, *, headers: bytes = b"") -> bytes:
    return (f"POST {target} HTTP/1.1\r\nHost: imhook\r\nConnection: close\r\n".encode() + headers
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def post_chunked(target: str, body: bytes, size: int = 1000) -> bytes:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size))
    return (f"POST {target} HTTP/1.1\r\nHost: imhook\r\nConnection: close\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"


def get(target: str, *, headers: bytes = b"") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: imhook\r\nConnection: close\r\n".encode() + headers + b"\r\n"


def line_of(length: int) -> str:
    """A GET target whose request line ("GET <target> HTTP/1.1") is exactly `length` bytes."""
    return "/healthz?pad=" + "q" * (length - len("GET /healthz?pad= HTTP/1.1"))


def header_of(length: int) -> bytes:
    """One header line of exactly `length` bytes, CRLF excluded."""
    return b"X-Pad: " + b"h" * (length - len("X-Pad: ")) + b"\r\n"


# gunicorn counts a header line with its CRLF against limit_request_field_size.
# (case, request, status)
LIMITS = [
    ("body at the limit", lambda: post(signed_target(), callback_body(MAX_BODY)), 200),
    ("body one over", lambda: post(signed_target(), callback_body(MAX_BODY + 1)), 413),
    ("chunked body at the limit", lambda: post_chunked(signed_target(), callback_body(MAX_BODY)), 200),
    ("chunked body one over", lambda: post_chunked(signed_target(), callback_body(MAX_BODY + 1)), 413),
    ("chunked body far over", lambda: post_chunked(signed_target(), b"x" * 200_000), 413),
    ("request line at the limit", lambda: get(line_of(LINE_LIMIT)), 200),
    ("request line one over", lambda: get(line_of(LINE_LIMIT + 1)), 414),
    ("header line at the limit", lambda: get("/healthz", headers=header_of(FIELD_LIMIT - 2)), 200),
    ("header line one over", lambda: get("/healthz", headers=header_of(FIELD_LIMIT - 1)), 431),
    ("head over the total", lambda: get("/healthz", headers=header_of(8000) * (MAX_HEAD_BYTES // 8000 + 1)), 431),
    ("malformed request line", lambda: b"NOT HTTP AT ALL\r\n\r\n", 400),
    ("bare LF", lambda: b"GET /healthz HTTP/1.1\nHost: imhook\n\n", 400),
    ("header without a colon", lambda: get("/healthz", headers=b"Broken header\r\n"), 400),
    ("malformed chunk size", lambda: post_chunked(signed_target(), b"{}")[:-10] + b"zz\r\n{}\r\n0\r\n\r\n", 400),
    ("transfer coding imhook cannot read", lambda: get("/healthz", headers=b"Transfer-Encoding: gzip\r\n"), 400),
    ("length and chunked at once", lambda: post_chunked(signed_target(), b"{}").replace(
        b"Transfer-Encoding", b"Content-Length: 2\r\nTransfer-Encoding"), 400),
]


@pytest.mark.integration
@pytest.mark.parametrize("case, request_bytes, status", LIMITS, ids=[c[0] for c in LIMITS])
def test_each_limit_is_answered_in_the_json_envelope(server, case, request_bytes, status):
    got, body, raw = exchange(server, request_bytes())
    assert got == status, raw[:300]
    assert isinstance(body, dict), raw[:300]
    assert b"Content-Type: application/json" in raw.split(b"\r\n\r\n")[0]
    if status >= 400:
        assert body["ActionStatus"] == "FAIL" and body["ErrorCode"] == status


@pytest.mark.integration
def test_a_request_that_never_finishes_gets_408(server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=REQUEST_READ_SECONDS + 5) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /callback HTTP/1.1\r\nHost: imhook\r\nContent-Length: 100\r\n\r\n{")
        raw = sock.recv(65536)
        waited = time.monotonic() - started
    assert raw.startswith(b"HTTP/1.1 408 ") and b'"ErrorCode":408' in raw
    assert REQUEST_READ_SECONDS - 0.1 < waited < REQUEST_READ_SECONDS + 2.5


@pytest.mark.integration
def test_expect_continue_and_pipelined_requests_are_served(server):
    body = callback_body(100)
    status, reply, raw = exchange(server, post(signed_target(), body, headers=b"Expect: 100-continue\r\n"))
    assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\n") and b"HTTP/1.1 200 OK" in raw
    assert raw.count(b" 100 Continue") == 1  # not a second one from gunicorn after the body
    # A client that waits for the 100 before it sends the body (curl does, for bodies over 1 KB).
    request = post(signed_target(), body, headers=b"Expect: 100-continue\r\n")
    head = request[:request.index(b"\r\n\r\n") + 4]
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(request[len(head):])
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 200 OK") and b"100 Continue" not in rest
    pipelined = get("/healthz").replace(b"Connection: close\r\n", b"") * 2 + get("/healthz")
    _, _, raw = exchange(server, pipelined)
    assert raw.count(b"HTTP/1.1 200 OK") == 3


def callback_lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if '"logger":"imhook.callback"' in line]


# (X-Request-Id sent, what is logged: "same", "cut" or "fresh")
REQUEST_IDS = [
    ("abc-123", "same"),
    ("a" * MAX_REQUEST_ID_CHARS, "same"),
    ("a" * (MAX_REQUEST_ID_CHARS + 1), "cut"),
    ("r" * 8000, "cut"),
    ("has spaces and \"quotes\"", "fresh"),
    ("\u00e9t\u00e9", "fresh"),
]


@pytest.mark.integration
@pytest.mark.parametrize("sent, logged", REQUEST_IDS)
def test_a_client_request_id_is_checked_and_cut_before_it_is_logged(server, sent, logged):
    _, reply, _ = exchange(server, post(signed_target(), callback_body(200),
                                        headers=b"X-Request-Id: " + sent.encode("utf-8") + b"\r\n"))
    assert reply["ActionStatus"] == "OK"
    time.sleep(0.8)  # the callback log is written in batches, at most 0.5 s late
    request_id = callback_lines(server.log())[-1]["request_id"]
    expected = {"same": sent, "cut": sent[:MAX_REQUEST_ID_CHARS]}.get(logged)
    if expected is not None:
        assert request_id == expected
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)


# --- logs: no Sign, gunicorn's access log off unless asked, and then without the query -----------

def signed_and_bad_requests() -> list[bytes]:
    """Requests that reach every logger: decided, rejected, refused at the edge, malformed."""
    body = callback_body(300)
    target = signed_target()
    return [
        post(target, body),
        post(target, b"{oops"),
        post(signed_target(SdkAppid="1"), body),
        post(target, callback_body(MAX_BODY + 10)),
        post_chunked(target, b"x" * (MAX_BODY + 10)),
        post(target, body, headers=b"X-Request-Id: " + target.encode() + b"\r\n"),
        get(target),
        f"POST {target} HTTP/1.1 junk\r\n\r\n".encode(),
        f"GET {target} HTTP/1.1\r\nBroken header\r\n\r\n".encode(),
        f"GET {target} HTTP/1.1\r\nHost: imhook\r\n".encode() + header_of(FIELD_LIMIT),
        f"GET {target}{'q' * LINE_LIMIT} HTTP/1.1\r\n\r\n".encode(),
    ]


def run_requests(server) -> str:
    """Send them all; the Sign they carried."""
    sign = callback_query(COMMAND, APP_ID, token=TOKEN)["Sign"]
    for request in signed_and_bad_requests():
        exchange(server, request)
    time.sleep(0.8)
    return sign


@pytest.mark.integration
def test_gunicorn_access_log_is_off_by_default_and_nothing_logs_sign(tmp_path):
    server = start_server(tmp_path, CONFIG, workers=1, threads=2, env={"IMHOOK_ACCESS_LOG": ""})
    try:
        sign = run_requests(server)
    finally:
        server.stop()
    output = server.log()
    assert callback_lines(output)  # the JSON callback log is the access log
    assert not (tmp_path / "access.log").exists()
    assert '"GET /' not in output and '"POST /' not in output  # no access line on stderr either
    assert sign not in output and not re.search(r"(?i)(sign|requesttime)=[0-9a-f]", output)
    assert "Traceback" not in output


@pytest.mark.integration
def test_with_the_access_log_on_its_lines_carry_the_path_without_the_query(tmp_path):
    server = start_server(tmp_path, CONFIG, workers=1, threads=2)  # helpers: IMHOOK_ACCESS_LOG=<file>
    try:
        sign = run_requests(server)
    finally:
        server.stop()
    access = (tmp_path / "access.log").read_text()
    assert '"POST /callback HTTP/1.1" 200' in access
    for text in (access, server.log()):
        assert sign not in text and not re.search(r"(?i)(sign|requesttime)=[0-9a-f]", text)
    assert not re.search(r'"(GET|POST) [^ "]*\?', access)  # the request's own query: never
    assert max(len(line) for line in access.splitlines()) < 600  # the 8 KB X-Request-Id was cut


def edge_refusals(server) -> dict[str, float]:
    import requests

    text = requests.get(server.url + "/metrics", timeout=5).text
    return {m[0]: float(m[1]) for m in re.findall(r'^imhook_edge_refusals_total\{status="(\d+)"\} (\S+)$', text, re.M)}


@pytest.mark.integration
def test_requests_refused_before_the_app_are_counted_by_status(server):
    before = edge_refusals(server)
    for request_bytes, status in [(LIMITS[1][1], 413), (LIMITS[6][1], 414), (LIMITS[8][1], 431),
                                  (LIMITS[10][1], 400), (LIMITS[10][1], 400)]:
        assert exchange(server, request_bytes())[0] == status
    after = edge_refusals(server)
    grown = {status: after.get(status, 0) - before.get(status, 0) for status in after}
    assert {k: v for k, v in grown.items() if v} == {"413": 1, "414": 1, "431": 1, "400": 2}


@pytest.mark.integration
@pytest.mark.parametrize("request_bytes, status", [
    (lambda: post("/netease/callback", b"x" * (MAX_BODY + 1)), 413),
    (lambda: post_chunked("/netease/callback", b"x" * (MAX_BODY + 1)), 413),
    (lambda: post("/netease/callback", b"{}", headers=header_of(8000) * (MAX_HEAD_BYTES // 8000 + 1)), 431),
], ids=["length", "chunked", "head"])
def test_a_refusal_on_a_netease_path_is_in_netease_shape(server, request_bytes, status):
    """The worker answers before the app, in the envelope of the IM whose path was asked."""
    got, body, raw = exchange(server, request_bytes())
    assert got == status, raw[:300]
    assert body["errCode"] == 1 and body["responseCode"] == status and "ActionStatus" not in body, body
