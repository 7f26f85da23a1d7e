"""receiver/framing.py: where one request ends, or why it is refused, from the bytes alone."""

from __future__ import annotations

import pytest

from receiver.framing import MAX_CHUNK_LINE_BYTES, MAX_CHUNKED_WIRE_FACTOR, Framer, Limits, Refusal

LIMITS = Limits(request_line=100, head=400, body=50)
HEAD = b"POST /callback HTTP/1.1\r\nHost: x\r\n"


def chunked(*chunks: bytes, trailer: bytes = b"") -> bytes:
    return HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailer + b"\r\n"


def with_length(body: bytes, declared: int | None = None) -> bytes:
    return HEAD + b"Content-Length: %d\r\n\r\n" % (len(body) if declared is None else declared) + body


WHOLE = -1  # the verdict is every byte given: one request, nothing after it
# (case, bytes, expected verdict: None = needs more, an int = the request's length, or a Refusal)
CASES = [
    ("no body", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", WHOLE),
    ("no headers at all", b"GET / HTTP/1.1\r\n\r\n", WHOLE),
    ("one empty line first", b"\r\nGET / HTTP/1.1\r\n\r\n", WHOLE),
    ("bare LF: gunicorn refuses", b"GET / HTTP/1.1\n", WHOLE),
    ("head incomplete", b"GET / HTTP/1.1\r\nHost: x\r\n", None),
    ("nothing yet", b"", None),
    ("request line at the limit", b"GET /" + b"a" * 86 + b" HTTP/1.1\r\n\r\n", WHOLE),
    ("request line one over", b"GET /" + b"a" * 87 + b" HTTP/1.1\r\n\r\n", Refusal(414, "")),
    ("request line over, no CRLF yet", b"GET /" + b"a" * 200, Refusal(414, "")),
    ("head at the limit", b"GET / HTTP/1.1\r\nX: " + b"a" * 377 + b"\r\n\r\n", WHOLE),
    ("head one over", b"GET / HTTP/1.1\r\nX: " + b"a" * 378 + b"\r\n\r\n", Refusal(431, "")),
    ("head over, no end yet", b"GET / HTTP/1.1\r\nX: " + b"a" * 500, Refusal(431, "")),
    ("body at the limit", with_length(b"b" * 50), len(with_length(b"b" * 50))),
    ("body one over", with_length(b"b" * 51), Refusal(413, "")),
    ("declared over, nothing sent", with_length(b"", declared=51), Refusal(413, "")),
    ("declared beyond 64 bits", HEAD + b"Content-Length: " + b"9" * 40 + b"\r\n\r\n", Refusal(413, "")),
    ("body incomplete", with_length(b"b" * 10, declared=20), None),
    ("length not a number: gunicorn refuses", HEAD + b"Content-Length: -1\r\n\r\n", WHOLE),
    ("two lengths: gunicorn refuses", HEAD + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n", WHOLE),
    ("chunked at the limit", chunked(b"c" * 25, b"c" * 25), len(chunked(b"c" * 25, b"c" * 25))),
    ("chunked one over", chunked(b"c" * 25, b"c" * 26), Refusal(413, "")),
    ("chunked over before the data", chunked(b"c" * 25)[:-5] + b"ffff\r\n", Refusal(413, "")),
    ("chunked with a trailer", chunked(b"abc", trailer=b"X-T: 1\r\n"), len(chunked(b"abc", trailer=b"X-T: 1\r\n"))),
    ("chunked with an extension", HEAD + b"Transfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\n\r\n", WHOLE),
    ("chunked, last chunk missing", chunked(b"abc")[:-5], None),
    ("chunked, trailers not ended", chunked(b"abc", trailer=b"X-T: 1\r\n")[:-2], None),
    ("chunk size not hex", HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", Refusal(400, "")),
    ("chunk size line too long", HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * (MAX_CHUNK_LINE_BYTES + 2),
     Refusal(400, "")),
    ("chunk without its CRLF", HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", Refusal(400, "")),
    ("gzip, chunked", HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", WHOLE),
    ("chunked and a length: gunicorn refuses", HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
     WHOLE),
    ("gzip alone: gunicorn refuses", HEAD + b"Transfer-Encoding: gzip\r\n\r\n", WHOLE),
]


@pytest.mark.parametrize("case, data, expected", CASES, ids=[c[0] for c in CASES])
def test_one_request_is_framed_or_refused(case, data, expected):
    verdict = Framer(LIMITS).feed(data)
    if isinstance(expected, Refusal):
        assert isinstance(verdict, Refusal) and verdict.status == expected.status, verdict
    else:
        assert verdict == (len(data) if expected == WHOLE else expected)


@pytest.mark.parametrize("case, data, expected", CASES, ids=[c[0] for c in CASES])
def test_a_byte_at_a_time_frames_the_same(case, data, expected):
    framer = Framer(LIMITS)
    verdict = None
    for i in range(len(data)):
        verdict = framer.feed(data[i:i + 1])
        if verdict is not None:
            break
    if isinstance(expected, Refusal):
        assert isinstance(verdict, Refusal) and verdict.status == expected.status
    else:
        assert verdict == (len(data) if expected == WHOLE else expected)


def test_pipelined_requests_are_taken_one_at_a_time():
    first, second = b"GET /a HTTP/1.1\r\n\r\n", with_length(b"{}")
    framer = Framer(LIMITS, first + second + b"GET /c")
    assert framer.take(framer.feed()) == first
    assert framer.take(framer.feed()) == second
    assert framer.feed() is None and bytes(framer.buffer) == b"GET /c"


def test_expect_continue_is_noticed_once_the_head_is_in():
    framer = Framer(LIMITS)
    assert framer.feed(HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n") is None
    assert framer.head_complete and framer.expects_continue


def test_a_chunked_body_of_tiny_chunks_is_bounded_on_the_wire_too():
    limits = Limits(request_line=100, head=400, body=1000)
    wire_limit = MAX_CHUNKED_WIRE_FACTOR * limits.body + MAX_CHUNK_LINE_BYTES  # 3024 bytes
    within = chunked(*[b"c"] * 500)  # 3000 bytes of chunks for 500 of payload
    over = chunked(*[b"c"] * 510)  # 3060 for 510: payload under the limit, wire over
    assert Framer(limits).feed(within) == len(within)
    assert len(within) - len(HEAD) - 30 < wire_limit < len(over) - len(HEAD) - 30
    verdict = Framer(limits).feed(over)
    assert isinstance(verdict, Refusal) and verdict.status == 413
