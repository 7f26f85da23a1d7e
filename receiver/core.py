"""The sans-I/O pipeline: HTTP request in, reply out: from_http → Callback → Decision → reply.

No sockets and no Flask here: the web adapter (app.py), explain and replay all call `handle`.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.chain import Chain, Decision, result_name

from .config import Config
from .errors import MethodNotAllowed, NotFound, RequestError
from .lazy import lazy
from .model import Callback, filled
from .platforms import Platforms

log = logging.getLogger("imhook.core")


@dataclass(frozen=True)
class HttpRequest:
    method: str
    query: Mapping[str, str]
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str = ""
    request_id: str = ""
    platform: str = ""  # "" the default (Tencent); "netease", "netease.copy": named by the path

    @classmethod
    def of(cls, method: str, query: Mapping[str, str], body: bytes, headers: Mapping[str, str],
           remote_addr: str, request_id: str, platform: str) -> "HttpRequest":
        """HttpRequest(...) with every field given, at a third of the cost: the web adapter makes
        one per callback (receiver/model.py `filled`)."""
        return filled(cls, method=method, query=query, body=body, headers=headers, remote_addr=remote_addr,
                      request_id=request_id, platform=platform)


@dataclass
class Outcome:
    """Everything about one handled request: what to send back and why."""

    status: int
    reply: dict[str, Any]
    request: HttpRequest
    received_at: float
    callback: Callback | None = None
    decision: Decision | None = None
    error: RequestError | None = None
    elapsed_ms: float = 0.0
    shed: bool = False  # answered without the rules: it waited too long (receiver/worker.py)

    # Cached: the recorder, the callback log and the metrics each ask, once per callback. An
    # Outcome is complete when it is made (nothing sets callback, error, decision or shed later).
    @lazy
    def command(self) -> str:
        if self.callback is not None:
            return self.callback.command
        return str(self.request.query.get("CallbackCommand", ""))

    @lazy
    def outcome_name(self) -> str:
        """allow / refuse / drop / rewrite / refuse_some / notify / rejected / shed."""
        if self.shed:
            return "shed"
        if self.error is not None:
            return "rejected"
        if self.callback is None or not self.callback.is_before or self.decision is None:
            return "notify"
        return result_name(self.decision.verdict)


Observer = Callable[[Outcome], None]


class RequestIds:
    """Unique request ids as cheap as a counter: a random 64-bit prefix per process, then a count.

    uuid4 reads the kernel's random source on every call (~3 µs, a system call per callback); 32 hex
    digits like these are as unique across workers and restarts. The prefix is drawn again in a
    forked child, whose counter would otherwise repeat its parent's: by an at-fork hook, not by
    asking os.getpid() per id (a system call on every callback, twice).
    """

    def __init__(self) -> None:
        self._renew()
        mine = weakref.ref(self)  # the hook must not keep a discarded instance alive
        os.register_at_fork(after_in_child=lambda: (ids := mine()) is not None and ids._renew())

    def _renew(self) -> None:
        self._prefix, self._count = secrets.token_hex(8), itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"


new_request_id = RequestIds()


class Receiver:
    """Answers callbacks with the current config and chain; both can be swapped while serving."""

    def __init__(self, config: Config, chain: Chain, *, platform=None, clock: Callable[[], float] = time.time):
        self.platform = platform or Platforms()
        self.clock = clock
        self.observers: list[Observer] = []
        self._lock = threading.Lock()
        self._state = (config, chain)

    @property
    def config(self) -> Config:
        return self._state[0]

    @property
    def chain(self) -> Chain:
        return self._state[1]

    def swap(self, config: Config, chain: Chain) -> None:
        """Replace config and chain atomically; requests in flight finish with the old ones."""
        with self._lock:
            old_chain = self._state[1]
            self._state = (config, chain)
        # Let in-flight decisions finish before the old rules close their resources.
        threading.Timer(5.0, old_chain.close).start()

    def handle(self, request: HttpRequest, *, trusted: bool = False) -> Outcome:
        """Answer one HTTP request; never raises for any input.

        `trusted` skips the app-id and signature checks: for replaying recordings offline and for
        `imhook explain`, which run the very same path otherwise.
        """
        config, chain = self._state
        received_at = self.clock()
        started = time.perf_counter()
        platform = self.platform_for(request)
        try:
            if platform is None or (not trusted and platform.credentials(config) is None):
                raise NotFound(f"platform {request.platform[:40]!r} is not configured on this receiver")
            if request.method != "POST":
                raise MethodNotAllowed(f"method {request.method} not allowed; the IM posts callbacks")
            callback = self.parse(request, config, received_at, trusted=trusted, platform=platform)
        except RequestError as exc:
            outcome = Outcome(exc.status, (platform or self.platform).render_error(exc.status, exc.message),
                              request, received_at, error=exc)
        else:
            decision = chain.decide(callback)
            reply = platform.render(callback, decision.verdict)
            outcome = Outcome(200, reply, request, received_at, callback=callback, decision=decision)
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        self._notify(outcome)
        return outcome

    def shed(self, request: HttpRequest, reply: dict[str, Any], *, waited_ms: float = 0.0,
             callback: Callback | None = None) -> Outcome:
        """Report a request answered with the fail-open `reply`, without the rules (load shedding).

        The observers record, log, count and forward it with outcome "shed"; its elapsed_ms is how
        long it waited in the worker's queue before that answer. `callback`: the request as parsed,
        when the shedder parsed it (a NetEase request names its command only in the body).
        """
        outcome = Outcome(200, reply, request, self.clock(), callback=callback, elapsed_ms=waited_ms, shed=True)
        self._notify(outcome)
        return outcome

    def platform_for(self, request: HttpRequest):
        """The platform that parses `request`: the one its path named, else the default; None: unknown."""
        member = getattr(self.platform, "member", None)
        if member is None:  # a single platform
            return self.platform if not request.platform or request.platform == self.platform.name else None
        return member(request.platform)

    def parse(self, request: HttpRequest, config: Config, now: float, *, trusted: bool = False,
              platform=None) -> Callback:
        platform = platform or self.platform
        app_id, tokens, window = platform.credentials(config) or ("", (), 0.0)
        if trusted:
            # A recording is replayed under whatever app id it was sent to.
            app_id, tokens = str(request.query.get("SdkAppid") or app_id), ()
        return platform.from_http(
            request.query, request.body, headers=request.headers, app_id=app_id, tokens=tokens,
            window=window, max_body=config.server["max_body_bytes"], now=now,
        )

    def _notify(self, outcome: Outcome) -> None:
        for observer in self.observers:
            try:
                observer(outcome)
            except Exception:  # an observer (recording, metrics) must never break a reply
                log.exception("observer %r failed", observer)
