"""Load shedding: a callback that waited too long in the worker's queue is answered at once.

Past saturation every gthread worker queues requests, and the waits grow without bound: soon every
reply misses the IM's 2 s budget, and the IM lets each of those callbacks through anyway (PROTOCOL.md
§2). So a callback that waited too long in the worker's queue (below) is answered at once with the
platform's fail-open reply (`Platform.render_fail_open`: what `allow` renders), without the app and
its rules (or, per event kind with `server.shed_reply: on_error`, with the `chain.on_error` outcome,
what a failing chain would answer). That answer costs less than a decided one (~65 % over HTTP,
issue 16), so the queue drains and the requests behind it are decided in time. Shed requests are
still authenticated, recorded, logged, counted and forwarded, with outcome "shed" (`Receiver.shed`).

Which requests are stale: over `server.shed_after_ms` always, and over `server.shed_target_ms` while
the worker's queue stands (receiver/standing_queue.py, CoDel's test). The worker (receiver/worker.py)
wraps the app in a `Shedder`, asks it (`stale`) as a thread takes each request, and passes the wait
and the answer on to it.

gunicorn imports this module in the master, before `receiver/ops/hooks.py` sets up metrics: keep its
imports to the standard library and imhook's pure modules (Flask, the core and prometheus_client
load in the worker).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import RequestError
from .ops import ipallow
from .standing_queue import StandingQueue, decide, past_ceiling

log = logging.getLogger("imhook.worker")
OK_ENVELOPE = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}  # a bare app's every reply
JSON_TYPE = "application/json"


def should_shed(waited_seconds: float, shed_after_ms: float) -> bool:
    """Whether a request that waited this long passed the ceiling, `server.shed_after_ms` (0: never).
    Below it, the standing-queue test may shed it too (receiver/standing_queue.py)."""
    return past_ceiling(waited_seconds * 1000, shed_after_ms)


def request_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """The HTTP headers of a WSGI environ, by their usual names ("X-Request-Id")."""
    headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
               if key.startswith("HTTP_")}
    for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
        if environ.get(key):
            headers[name] = environ[key]
    return headers


class Shedder:
    """WSGI wrapper around the app: answers a stale callback request itself, passes the rest on.

    The worker notes how long the current thread's request waited (`waits.seconds`); a POST to a
    callback path that waited too long gets the fail-open reply, unless something makes it one the
    app must answer: a client outside `server.allow_ips`, a wrong SdkAppid or Sign, a body over
    `server.max_body_bytes` or without a length, or a body the platform cannot read cheaply. Those
    go to the app as usual, which rejects them and records them as rejected.
    """

    def __init__(self, app: Callable, paths: Iterable[str]):
        self.app = app
        extensions = getattr(app, "extensions", None)
        self.receiver = extensions.get("imhook") if isinstance(extensions, dict) else None  # None: a bare app
        self.waits = threading.local()
        self.queue = StandingQueue()  # one per worker: a Shedder wraps each worker's app once
        from . import jsonout
        from .app import NETEASE_PATHS, client_request_id, parse_query
        from .config import SHED_AFTER_MS, SHED_INTERVAL_MS, SHED_KINDS, SHED_TARGET_MS
        from .core import HttpRequest

        # NetEase's paths are shed too, by their own platform (authenticated with the body's MD5).
        self.platform_paths = dict(NETEASE_PATHS)
        self.paths = frozenset(paths) | frozenset(self.platform_paths)
        # (config, ceiling ms, target ms, interval s): see settings(); these defaults serve a bare app,
        # which has no imhook config.
        self._settings: tuple = (None, SHED_AFTER_MS, SHED_TARGET_MS, SHED_INTERVAL_MS / 1000)
        self.http_request, self.request_id, self.parse_query = HttpRequest, client_request_id, parse_query
        platform = self.receiver.platform if self.receiver is not None else None
        # Each before-command's event kind, as `server.shed_reply` names them ("message.send").
        self.kinds = {command: kind for kind in SHED_KINDS
                      for command in (platform.commands_for((kind,)) if platform is not None else ())}
        self.dumps = jsonout.dumps
        self.shed_count = 0
        self._count_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response):
        waits = self.waits
        waited = getattr(waits, "seconds", 0.0)
        stale = getattr(waits, "stale", None)  # decided by the worker as a thread took the request
        if stale is None:  # called without imhook's worker (tests): decide here
            stale = bool(waited) and self.stale(waited)
        reply = self.reply_for(environ, waited) if stale else None
        if reply is not None:
            body = self.dumps(reply)
            start_response("200 OK", [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)

    def reply_for(self, environ: dict[str, Any], waited: float) -> dict[str, Any] | None:
        """A stale request's fail-open reply, reported as shed; None: the app answers it (not a POST
        to a callback path, or something the app must reject, or a failure here). Both ways of
        shedding ask this: the WSGI wrapper above and the worker's from the bytes (early_shed.py)."""
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in self.paths:
            return None
        try:
            return self.shed(environ, waited)
        except Exception:  # a bug here must not cost the reply: the app still answers
            log.exception("load shedding failed; the request is decided as usual")
            return None

    def settings(self) -> tuple:
        """(config, ceiling ms, target ms, interval s) from the receiver's current config, so a reload
        applies to the next request; read once per config object (a reload swaps in a new one)."""
        cached = self._settings
        if self.receiver is None:
            return cached
        config = self.receiver.config
        if cached[0] is not config:
            server = config.server
            cached = self._settings = (config, server["shed_after_ms"], server["shed_target_ms"],
                                       server["shed_interval_ms"] / 1000)
        return cached

    def stale(self, waited: float, now: float | None = None) -> bool:
        """Note a request's wait in the queue (s) and say whether it is answered without the app.
        Called once per request, as a thread takes it: each call is one observation of the queue."""
        _, ceiling_ms, target_ms, interval_s = self.settings()
        return decide(self.queue, waited * 1000, time.monotonic() if now is None else now,
                      ceiling_ms=ceiling_ms, target_ms=target_ms, interval_s=interval_s)

    def shed(self, environ: dict[str, Any], waited: float) -> dict[str, Any] | None:
        """The fail-open reply for this request, reported to the receiver; None: the app answers it."""
        receiver = self.receiver
        if receiver is None:
            self._count()
            return OK_ENVELOPE  # the bare app answers this to everything; its body is drained unread
        config = receiver.config
        server = config.server
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return None
        if not 0 <= length <= server["max_body_bytes"]:
            return None  # chunked or too large: the app answers (413) as usual
        if server["allow_ips"] and self._refused(environ, server):
            return None
        platform_name = self.platform_paths.get(environ.get("PATH_INFO"), "")
        if platform_name:
            return self.shed_platform(environ, platform_name, length, waited)
        query = self.parse_query(environ.get("QUERY_STRING", ""))
        headers = request_headers(environ)
        try:
            receiver.platform.authenticate(query, headers, app_id=config.app_id, tokens=config.tokens,
                                           window=config.auth["window_seconds"], now=receiver.clock())
        except RequestError:
            return None  # the app rejects it, and records why
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # should the app answer after all, it reads the body
        reply = self.shed_reply(query, body, headers, waited)
        if reply is None:
            return None
        receiver.shed(self.http_request(
            method="POST", query=query, body=body, headers=headers, remote_addr=environ.get("REMOTE_ADDR", ""),
            request_id=self.request_id(headers.get("X-Request-Id")),
        ), reply, waited_ms=waited * 1000)
        self._count()
        return reply

    def shed_platform(self, environ: dict[str, Any], name: str, length: int, waited: float) -> dict[str, Any] | None:
        """`shed` for a platform that authenticates in headers over the body (NetEase)."""
        receiver = self.receiver
        config = receiver.config
        request = self.http_request(method="POST", query={}, body=b"", platform=name)
        platform = receiver.platform_for(request)
        credentials = platform.credentials(config) if platform is not None else None
        if credentials is None:
            return None  # not configured: the app answers 404
        app_key, secrets, window = credentials
        headers = request_headers(environ)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # should the app answer after all, it reads the body
        try:
            platform.authenticate({}, headers, app_id=app_key, tokens=secrets, window=window, now=receiver.clock(),
                                  body=body)
        except RequestError:
            return None  # the app rejects it, and records why
        # Parsed, though no rule runs: the command is in the body, and recording and forwarding need it.
        try:
            callback = platform.from_http({}, body, headers=headers, app_id=app_key, tokens=(), window=window,
                                          max_body=config.server["max_body_bytes"], now=receiver.clock())
        except RequestError:
            return None  # the app rejects it, and records why
        from .verdict import Verdict

        policy, outcome = config.server["shed_reply"], config.chain["on_error"]
        if not (callback.is_before and policy.get(callback.action, policy.get("default", "allow")) == "on_error"):
            outcome = "allow"
        reply = platform.render(callback, Verdict(outcome, rule="shed",
                                                  reason=f"shed after {waited * 1000:.0f} ms in the queue"))
        receiver.shed(self.http_request(
            method="POST", query={}, body=body, headers=headers, remote_addr=environ.get("REMOTE_ADDR", ""),
            request_id=self.request_id(headers.get("X-Request-Id")), platform=name,
        ), reply, waited_ms=waited * 1000, callback=callback)
        self._count()
        return reply

    def shed_reply(self, query: Mapping[str, str], body: bytes, headers: Mapping[str, str],
                   waited: float) -> dict[str, Any] | None:
        """What a shed request is answered: `allow` (the fail-open reply, nothing parsed) or, where
        `server.shed_reply` says `on_error` for its kind, the chain's `on_error` outcome rendered
        for it (the callback is parsed, no rule runs). None: the app answers it."""
        receiver = self.receiver
        config = receiver.config
        kind = self.kinds.get(query.get("CallbackCommand", ""))
        policy = config.server["shed_reply"]
        outcome = config.chain["on_error"]
        if kind is None or policy.get(kind, policy.get("default", "allow")) != "on_error" or outcome == "allow":
            return receiver.platform.render_fail_open(query, body)
        from .verdict import Verdict

        try:
            callback = receiver.platform.from_http(
                query, body, headers=headers, app_id=config.app_id, tokens=(),  # Sign checked above
                window=config.auth["window_seconds"], max_body=config.server["max_body_bytes"],
                now=receiver.clock())
        except RequestError:
            return None  # the app rejects it, and records why
        verdict = Verdict(outcome, rule="shed", reason=f"shed after {waited * 1000:.0f} ms in the queue")
        return receiver.platform.render(callback, verdict)

    @staticmethod
    def _refused(environ: Mapping[str, Any], server: Mapping[str, Any]) -> bool:
        return ipallow.check(environ.get("REMOTE_ADDR", ""), environ.get("HTTP_X_FORWARDED_FOR"),
                             allow=tuple(server["allow_ips"]), trusted_proxies=server["trusted_proxies"]) is not None

    def _count(self) -> None:
        with self._count_lock:
            self.shed_count += 1
