"""Shedding before gunicorn's parser: a stale callback answered from the request's own bytes.

Past saturation a worker sheds (answers fail-open, receiver/shedding.py) the callbacks that waited
too long in its queue. Shed through gunicorn, such a callback still cost ~65 % of a decided one over
HTTP: gunicorn's parser, its WSGI environ and its response object are most of every request's cost
(~210 µs of ~320 for the bare app, benchmarks/RESULTS.md, issue 16), and the Shedder's own work is
as cheap as the bare app's. So shedding could not keep up on a machine whose cores something else
was also using. The worker's read stage already holds each request whole and framed
(receiver/framing.py), so a stale one can be answered straight from those bytes: the Shedder gets
the few environ keys it reads, and the reply's bytes are written here, as gunicorn writes them.

Only a plain request takes this way: `POST <path> HTTP/1.1`, a path and query of printable ASCII
with nothing percent-encoded, one Content-Length matching the body, header names that are tokens
without `_`, values without control characters, each name once, and no Transfer-Encoding, Expect,
Upgrade or Connection other than keep-alive. Anything else (None here) goes the usual way through
gunicorn's parser, whose checks and error answers stay the only ones; so this path can only answer
a request gunicorn would have parsed to the same environ keys.

Sans-I/O: bytes in, a dict or bytes out. receiver/worker.py does the socket work.
"""

from __future__ import annotations

import io
import re
from typing import Any

from gunicorn import SERVER
from gunicorn.http.message import DEFAULT_MAX_HEADERFIELD_SIZE, MAX_HEADERS
from gunicorn.util import http_date

_TOKEN = re.compile(rb"[!#$%&'*+\-.^`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2, less "_" (gunicorn drops or refuses it)
_TARGET = re.compile(rb"/[\x21-\x7e]*")  # printable ASCII, no space; '%' and '#' are refused below
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")  # RFC 9110 §5.5: no control characters
# Headers whose presence means the request is not plain: their handling stays gunicorn's.
_NOT_PLAIN = frozenset({b"TRANSFER-ENCODING", b"EXPECT", b"UPGRADE", b"TE", b"TRAILER", b"HTTP2-SETTINGS"})


def field_limits(cfg) -> tuple[int, int]:
    """(most header fields, most bytes of one field with its CRLF) as gunicorn's parser applies
    limit_request_fields and limit_request_field_size: 0 (or too many fields) means its defaults."""
    fields, size = cfg.limit_request_fields, cfg.limit_request_field_size
    return (fields if 0 < fields <= MAX_HEADERS else MAX_HEADERS,
            size if size > 0 else DEFAULT_MAX_HEADERFIELD_SIZE)


def environ_of(data: bytes, client: Any, limits: tuple[int, int] = (100, DEFAULT_MAX_HEADERFIELD_SIZE)
               ) -> dict[str, Any] | None:
    """The WSGI keys the Shedder reads, for one whole plain request; None: not plain (see above).

    `limits`: `field_limits` of gunicorn's config, so a request its parser would refuse for its
    size is never answered here."""
    head_end = data.find(b"\r\n\r\n")
    if head_end <= 0:
        return None
    lines = data[:head_end].split(b"\r\n")
    max_fields, max_field_bytes = limits
    if len(lines) - 1 > max_fields:
        return None
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] != b"POST" or parts[2] != b"HTTP/1.1":
        return None
    target = parts[1]
    # "//x" would be read as a host by gunicorn's URL split; "%" and "#" need its unquoting rules.
    if not _TARGET.fullmatch(target) or target.startswith(b"//") or b"%" in target or b"#" in target:
        return None
    path, _, query = target.partition(b"?")
    environ: dict[str, Any] = {}
    length = None
    for line in lines[1:]:
        if len(line) + 2 > max_field_bytes:
            return None
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):  # also a folded line (starts with a space)
            return None
        value = value.strip(b" \t")
        if not _FIELD_VALUE.fullmatch(value):
            return None
        upper = name.upper()
        if upper in _NOT_PLAIN:
            return None
        if upper == b"CONNECTION" and value.lower() != b"keep-alive":
            return None
        if upper == b"CONTENT-LENGTH":
            if length is not None or not value.isdigit() or len(value) > 19:
                return None
            length = int(value)
            key = "CONTENT_LENGTH"
        elif upper == b"CONTENT-TYPE":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + upper.replace(b"-", b"_").decode("ascii")
        if key in environ:  # a repeated header: how to join it is gunicorn's business
            return None
        environ[key] = value.decode("latin-1")
    body = data[head_end + 4:]
    if length is None or length != len(body):
        return None
    environ.update({
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path.decode("ascii"),
        "QUERY_STRING": query.decode("ascii"),
        "REMOTE_ADDR": client[0] if isinstance(client, tuple) and client else "",
        "wsgi.input": io.BytesIO(body),
    })
    return environ


_date_cache: tuple[int, bytes] = (-1, b"")


def response_bytes(body: bytes, *, now: float, keep_alive: bool = True) -> bytes:
    """A 200 JSON reply as gunicorn sends it (the same status line and headers, in its order)."""
    global _date_cache
    second = int(now)
    cached = _date_cache
    if cached[0] != second:  # formatted once a second, as a log line's time is
        cached = _date_cache = (second, http_date(second).encode("ascii"))
    return b"".join((
        b"HTTP/1.1 200 OK\r\nServer: ", SERVER.encode("ascii"), b"\r\nDate: ", cached[1],
        b"\r\nConnection: ", b"keep-alive" if keep_alive else b"close",
        b"\r\nContent-Type: application/json\r\nContent-Length: ", str(len(body)).encode("ascii"),
        b"\r\n\r\n", body,
    ))
