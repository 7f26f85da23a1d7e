"""The Flask adapter: reads the request, calls the sans-I/O core, writes the reply. Nothing else."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import parse_qsl

from flask import Flask, Response, request
from flask.sessions import NullSession, SessionInterface
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from . import jsonout, parts
from .ops.web import CALLBACK_GATE
from .core import HttpRequest, Receiver, new_request_id
from .flaskapp import ImhookFlask
from .reload import FileWatcher, Snapshot, build, initial_snapshot
from .platforms import NETEASE, NETEASE_COPY, Platforms

log = logging.getLogger("imhook.app")
CALLBACK_PATHS = ("/", "/callback")
# NetEase IM's third-party callbacks and its message copy feed (docs/netease.md); 404 until configured.
NETEASE_PATHS = {"/netease/callback": NETEASE, "/netease/copy": NETEASE_COPY}
# A proxy's X-Request-Id is kept (logged, recorded) when it looks like an id: at most this many
# characters, cut beyond; one with anything but these characters is replaced by a fresh id.
MAX_REQUEST_ID_CHARS = 64
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]+")


def create_app(config_file: str | Path | None = None, *, receiver: Receiver | None = None) -> Flask:
    """App factory: `gunicorn 'receiver.app:create_app()'`. Reads $IMHOOK_CONFIG by default."""
    snapshot: Snapshot | None = None
    if receiver is None:
        platform = Platforms()
        snapshot = initial_snapshot(Path(config_file) if config_file else None)
        config, chain = build(snapshot, platform)
        receiver = Receiver(config, chain, platform=platform)
        if not config.tokens:
            log.warning("no token configured: the Sign of callbacks is not checked")
    app = ImhookFlask("imhook")
    app.session_interface = NoSessions()
    # For the other views; the callback view reads its body with read_body, never cut silently.
    app.config["MAX_CONTENT_LENGTH"] = receiver.config.server["max_body_bytes"]
    app.extensions["imhook"] = receiver
    if snapshot is not None and receiver.config.reload["watch"]:
        app.extensions["imhook.watcher"] = FileWatcher(
            receiver, snapshot, receiver.config.reload["interval_seconds"]).start()

    for part in parts.modules("web"):  # recording, then metrics, logs, readiness, forwarding
        part.install(app, receiver)
    gate = app.extensions.get(CALLBACK_GATE)  # the allow-list (receiver/ops/web.py), when installed

    def callback(platform: str = ""):
        environ = request.environ  # read once: each `request.x` goes through a context-local proxy
        if gate is not None:
            refused = gate(environ)
            if refused is not None:
                return refused
        outcome = receiver.handle(HttpRequest.of(
            method=environ["REQUEST_METHOD"], query=parse_query(environ.get("QUERY_STRING", "")),
            body=read_body(environ, receiver.config.server["max_body_bytes"]), headers=request.headers,
            remote_addr=environ.get("REMOTE_ADDR") or "",
            request_id=client_request_id(environ.get("HTTP_X_REQUEST_ID")), platform=platform,
        ))
        return json_response(outcome.status, outcome.reply)

    for path in CALLBACK_PATHS:
        app.add_url_rule(path, endpoint=f"callback{path}", view_func=callback,
                         methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    for path, platform_name in NETEASE_PATHS.items():
        app.add_url_rule(path, endpoint=f"callback{path}", view_func=callback, defaults={"platform": platform_name},
                         methods=["GET", "POST", "PUT", "PATCH", "DELETE"])

    @app.get("/healthz")
    def healthz():
        return json_response(200, {"status": "ok"})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Routing errors and Werkzeug's own 413 still answer in JSON (PROTOCOL.md §2).
        return json_response(exc.code or 500, receiver.platform.render_error(exc.code or 500, exc.description
                                                                               or exc.name))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error")
        return json_response(500, receiver.platform.render_error(500, "internal error"))

    return app


class NoSessions(SessionInterface):
    """imhook keeps no session (no secret key, no cookie): every request shares one NullSession,
    instead of Flask looking for a signing key and making a new one for each callback."""

    _null = NullSession()

    def open_session(self, app, request):
        return self._null

    def save_session(self, app, session, response) -> None:
        return None


def read_body(environ: dict, limit: int) -> bytes:
    """The body, however it is framed, read to at most `limit` + 1 bytes: one byte over the limit is
    enough for the core to answer 413, and a chunked body is never cut silently to the limit.

    WSGI's input ends where the body ends (gunicorn sets wsgi.input_terminated), so read() without
    a length reads a chunked body whole; a Content-Length is honoured, never read past.
    """
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    want = limit + 1 if length < 0 else min(length, limit + 1)
    parts, size = [], 0
    while size < want:
        part = stream.read(want - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def client_request_id(value: str | None) -> str:
    """The request id to log, record and echo: the proxy's X-Request-Id when it looks like one
    (cut to MAX_REQUEST_ID_CHARS), else a fresh one. Never the client's bytes unchecked."""
    if value:
        value = value[:MAX_REQUEST_ID_CHARS]
        if _REQUEST_ID.fullmatch(value):
            return value
    return new_request_id()


def json_response(status: int, body: dict) -> Response:
    return JsonReply(jsonout.dumps(body), status)


class JsonReply(Response):
    """`Response(body, status=status, mimetype="application/json")`, the same object, made and sent
    at under half the cost: every callback answers with one, and Werkzeug's general path (parse the
    mimetype, look for a charset, then rework the headers for a Location, a HEAD or a 304 when it is
    sent) cost ~10 µs a reply for nothing any callback reply has (benchmarks/RESULTS.md, step 5).

    Anything unusual (a HEAD request, a status without a body, headers changed after it was made,
    a close callback) is sent by Werkzeug's own path; tests/test_json_reply.py compares both.
    """

    def __init__(self, body: bytes, status: int) -> None:  # noqa: super().__init__ on purpose not called
        # What Response.__init__ and set_data set for these arguments (werkzeug 3.x), directly. The
        # headers' list is filled as Headers(list) fills it, without Headers.extend's checks of
        # each pair (~3 µs a reply): these two names and values are known to be valid.
        headers = self.headers = Headers()
        headers._list = [_JSON_TYPE, ("Content-Length", str(len(body)))]
        self.status = status
        self.direct_passthrough = False
        self._on_close = []
        self.response = [body]

    def __call__(self, environ, start_response):
        headers = self.headers.to_wsgi_list()
        if (self._on_close or environ.get("REQUEST_METHOD") == "HEAD" or len(headers) != 2
                or self.status_code in _WITHOUT_BODY or self.status_code < 200
                or headers[0] != _JSON_TYPE or headers[1][0] != "Content-Length"
                or type(self.response) is not list or len(self.response) != 1
                or headers[1][1] != str(len(self.response[0]))):
            return super().__call__(environ, start_response)
        start_response(self.status, headers)
        return _Body(self.response)


class _Body(list):
    """The reply's one chunk, with the `close` servers and harnesses may call (PEP 3333): nothing to close."""

    def close(self) -> None:
        pass


_JSON_TYPE = ("Content-Type", "application/json")
_WITHOUT_BODY = (204, 304)  # Werkzeug sends these without a body (and 1xx, checked apart)


def parse_query(query_string: str) -> dict[str, str]:
    """The query parameters as Werkzeug's `request.args.to_dict()` has them (the first of each name
    wins, invalid UTF-8 stays percent-encoded), without a MultiDict per request."""
    query: dict[str, str] = {}
    # WSGI hands the query string over as Latin-1 text of the raw bytes (PEP 3333).
    raw = query_string.encode("latin-1").decode("utf-8", "replace")
    if "%" in raw or "+" in raw:
        pairs = parse_qsl(raw, keep_blank_values=True, errors="werkzeug.url_quote")
    else:  # the IM's usual query (ids, digits, a hex Sign): nothing to unquote, split it by hand
        pairs = (part.partition("=")[::2] for part in raw.split("&") if part)
    for name, value in pairs:
        query.setdefault(name, value)
    return query

