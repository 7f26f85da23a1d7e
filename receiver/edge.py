"""What the HTTP edge answers and logs before (or instead of) the app: JSON errors, safe log lines.

gunicorn answers a request it cannot parse with an HTML page and logs the offending request line,
query string included; imhook's query carries `Sign`, which does not cover the body, so a log line
holding it lets its reader post any body for `auth.window_seconds`. Here: the JSON error envelope
for every refusal at the edge (the platform's `render_error` shape, as the app answers), and log
values that never carry a query string and are cut to a bounded length.

Imported by gunicorn in the master (through receiver/worker.py and receiver/gunicorn_conf.py): only
gunicorn and the standard library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from gunicorn import glogging
from gunicorn.http import errors as http_errors

# Longest value of a request header, path or client-supplied id written to any log line.
MAX_LOGGED_VALUE_CHARS = 256
REASONS = {400: "Bad Request", 403: "Forbidden", 408: "Request Timeout", 413: "Content Too Large",
           414: "URI Too Long", 417: "Expectation Failed", 431: "Request Header Fields Too Large",
           500: "Internal Server Error"}

# gunicorn's parse errors → (status, what the client is told). The text never quotes the request:
# the request line holds the query, and with it Sign. Transfer codings gunicorn cannot decode get
# 400, not gunicorn's 501: the request is at fault, and imhook answers no input with a 5xx.
PARSE_ERRORS: dict[type[Exception], tuple[int, str]] = {
    http_errors.LimitRequestLine: (414, "request line too long"),
    http_errors.LimitRequestHeaders: (431, "request header too large"),
    http_errors.InvalidRequestLine: (400, "malformed request line"),
    http_errors.InvalidRequestMethod: (400, "invalid method"),
    http_errors.InvalidHTTPVersion: (400, "unsupported HTTP version"),
    http_errors.InvalidHeaderName: (400, "malformed header name"),
    http_errors.InvalidHeader: (400, "malformed or conflicting header"),
    http_errors.ObsoleteFolding: (400, "obsolete header line folding"),
    http_errors.UnsupportedTransferCoding: (400, "unsupported transfer coding"),
    http_errors.InvalidChunkSize: (400, "malformed chunked body"),
    http_errors.ChunkMissingTerminator: (400, "malformed chunked body"),
    http_errors.InvalidChunkExtension: (400, "malformed chunked body"),
    http_errors.InvalidSchemeHeaders: (400, "conflicting scheme headers"),
    http_errors.InvalidProxyLine: (400, "malformed PROXY line"),
    http_errors.ForbiddenProxyRequest: (403, "PROXY line not allowed from this address"),
    http_errors.ExpectationFailed: (417, "unsupported expectation"),
}
ErrorRenderer = Callable[[int, str], dict[str, Any]]


def render_error(status: int, message: str) -> dict[str, Any]:
    """The error envelope of the Tencent platform (`TencentPlatform.render_error`), for a worker
    whose app has no imhook receiver to ask."""
    return {"ActionStatus": "FAIL", "ErrorCode": status, "ErrorInfo": message}


def parse_error_status(exc: BaseException) -> tuple[int, str] | None:
    """(status, message) for a gunicorn parse error; None for anything else (a bug: 500)."""
    for kind in type(exc).__mro__:
        if kind in PARSE_ERRORS:
            return PARSE_ERRORS[kind]
    return None


def error_response(status: int, message: str, render: ErrorRenderer = render_error) -> bytes:
    """A whole HTTP/1.1 response carrying the JSON error envelope; the connection closes after it."""
    body = json.dumps(render(status, message), ensure_ascii=False, separators=(",", ":")).encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode("latin-1") + body


# Query parameters that authenticate a callback, wherever they turn up in a value to be logged.
_SECRET_PARAMS = re.compile(r"(?i)((?:^|[?&;\s])(?:sign|requesttime|usersig|token)=)[^&;\s\"']*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def loggable(value: Any, limit: int = MAX_LOGGED_VALUE_CHARS) -> str:
    """A client-supplied value as it may be logged: no Sign, no control characters, cut to `limit`."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > 4 * limit:  # cut first: the patterns below then never scan an 8 KB header
        text = text[:4 * limit]
    text = _CONTROL.sub("?", _SECRET_PARAMS.sub(r"\1<redacted>", text))
    return text if len(text) <= limit else text[:limit] + f"...(cut at {limit} chars)"


# Atoms of gunicorn's access-log format that hold the query string (and so Sign).
_QUERY_ATOMS = frozenset({"q", "{query_string}e", "{raw_uri}e", "{request_uri}e"})


class AccessLogger(glogging.Logger):
    """gunicorn's logger, whose access line never holds a query string or an over-long value.

    `%(r)s` (the request line) becomes method, path and protocol; `%(q)s` and the environ atoms of
    the raw URI are blanked; every other atom (headers such as X-Request-Id included) is passed
    through `loggable`. So even an operator's own `access_log_format` cannot leak `Sign`.
    """

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = f"{environ.get('REQUEST_METHOD', '-')} {environ.get('PATH_INFO', '-')} " \
                     f"{environ.get('SERVER_PROTOCOL', '-')}"
        for key, value in atoms.items():
            if key in _QUERY_ATOMS:
                atoms[key] = "-"
            elif isinstance(value, str):
                atoms[key] = loggable(value)
        return atoms
