"""imhook's gunicorn worker: gthread, with a read stage in the event loop and load shedding.

gunicorn's gthread worker gives each new connection to a thread, which then waits up to 5 s for the
first byte and, once a byte came, reads the rest with blocking calls for as long as the client
takes. So a few dozen connections that send nothing, or a header byte every half second, hold
every thread: authentic callbacks wait behind them, and are then shed (answered fail-open).

Here a connection reaches a thread only with one whole request in hand. The worker's event loop
reads every connection without blocking into a buffer of its own (receiver/framing.py says when the
bytes hold one request, or why they must be refused), and only then hands exactly those bytes to
gunicorn's parser and a thread. A request must arrive whole within REQUEST_READ_SECONDS of its
first byte (else 408); a connection may sit idle before its first byte for gunicorn's `keepalive`.
Oversized requests are refused from the event loop, in the JSON error envelope, without reading
their body (413, 414, 431); whatever gunicorn's parser refuses is answered the same way
(`handle_error`). Memory is bounded: at most `worker_connections` connections, each buffering at
most one request (head limit + server.max_body_bytes), and past MAX_BUFFERED_BYTES in all a
connection holding more than SMALL_REQUEST_BYTES is not read until the total falls again. A full
worker closes its longest-idle connection to accept a new one, so idle sockets cannot lock it out.

A worker that holds more than its share of the keep-alive connections closes the excess
(`Connection: close` on a reply each), so the kernel can hand the client's next ones to another
worker (receiver/balance.py). A worker listens only once it has loaded the app, and an old one stops
listening only once its successor listens (receiver/handover.py).

A thread that takes a request asks the Shedder (receiver/shedding.py) whether it waited too long:
counted from the kernel's stamp of its arrival (receiver/arrival.py), since the event loop may have
read it late. A stale plain callback is answered from its bytes (receiver/early_shed.py), without
gunicorn's parser; any other goes gunicorn's way, and the Shedder wrapped around the app sheds it.

Without TLS, the PROXY protocol or HTTP/2 cleartext (none of which imhook's config turns on) the
read stage is on; with any of them the worker reads as gthread does (terminate TLS at the proxy).

    gunicorn --config python:receiver.gunicorn_conf          # worker_class = ImhookWorker

gunicorn imports this module in the master, before `receiver/ops/hooks.py` sets up metrics: keep its
imports to gunicorn, the standard library and imhook's pure modules (Flask, the core and
prometheus_client load in the worker).
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections import deque
from concurrent import futures
from functools import cached_property

from gunicorn import http, util
from gunicorn.workers.gthread import TConn, ThreadWorker

from . import balance, early_shed, edge
from .framing import Limits
from .handover import Handover
from .read_stage import (  # noqa: F401  (the read stage's limits, as the tests and benchmarks know them)
    MAX_BUFFERED_BYTES, MAX_HEAD_BYTES, REQUEST_READ_SECONDS, ReadStage, count_refusal,
)
from .shedding import Shedder
from .threadnames import name_this_thread
from .worker_table import TABLE

log = logging.getLogger("imhook.worker")

WRITE_TIMEOUT_SECONDS = 2.0  # a thread's send to a client that does not read: the IM waits 2 s at most
# How much longer than the read stage's own note a request may have waited, by its kernel stamp:
# beyond the IM's budget, a stamp says more about the system clock having stepped than about the wait.
MAX_WAIT_BEFORE_READ_SECONDS = 2.0
# The balancer writes each worker's open connections into the workers' shared table (made when the
# master imports this module to find the worker class, so every worker it forks shares it).
CONNECTION_TABLE = TABLE if balance.enabled() else None


def client_left(sock) -> bool:
    """Whether the client closed the connection (or it failed) while its request waited in the queue.

    A client that gives up on a reply can only close the connection (HTTP/1.1 has no other way to
    cancel; whether the IM does so after its 2 s is not documented). Its request may still be in the
    worker's queue, and deciding (or shedding) it then only takes CPU from the requests still waited
    for: past saturation that is much of the queue. One non-blocking peek. A client that
    half-closes after sending counts as gone too, as nginx treats it (499)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def more_to_read(conn) -> bool:
    """Whether bytes after the current request wait on this connection (read or not yet read).

    A poll with no wait first: the thread has given the socket a timeout for the reply's send, and
    a recv on such a socket waits up to that timeout for bytes, MSG_DONTWAIT or not."""
    framer = getattr(conn, "framer", None)
    if framer is not None and framer.buffer:
        return True
    try:
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        if not poller.poll(0):
            return False
        return bool(conn.sock.recv(1, socket.MSG_PEEK))  # readable: bytes, or b"" when the client left
    except OSError:  # the connection failed: closing takes nothing from it
        return False


def count_rebalanced() -> None:
    """Count a connection closed to even out the workers' split (receiver/balance.py)."""
    try:
        from .ops import metrics

        metrics.REBALANCED.inc()
    except Exception:  # counting must never cost the worker
        log.debug("could not count a rebalanced connection", exc_info=True)


def count_abandoned() -> None:
    """Count a queued request dropped because its client left, so overload shows in /metrics."""
    try:
        from .ops import metrics

        metrics.ABANDONED.inc()
    except Exception:  # counting must never cost the worker
        log.debug("could not count an abandoned request", exc_info=True)


class ImhookWorker(Handover, ReadStage, ThreadWorker):
    """gunicorn's gthread worker that reads requests in its event loop (ReadStage, receiver/read_stage.py)
    and sheds stale ones."""

    shedder: Shedder
    _limits: tuple | None = None  # (config, Limits, budget): see limits()
    render_netease_error = None  # set when the app serves NetEase: its paths answer in its shape

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        # The read stage frames plain HTTP/1.x only; anything else is read as gthread does.
        self.preread = (not cfg.is_ssl and getattr(cfg, "protocol", "http") == "http"
                        and getattr(cfg, "proxy_protocol", "off") in ("off", None, False)
                        and getattr(cfg, "http2_cleartext", "off") == "off")
        self.reading: dict[TConn, None] = {}  # connections whose request is still coming in
        self.lingering: dict[TConn, None] = {}  # answered with an error, draining before close
        self.paused: deque[TConn] = deque()  # reading, but not read while over the budget
        self.buffered = 0
        self.abandoned = 0  # requests whose client left while they waited in the queue (not decided)
        self.shed_early_count = 0  # of the shed ones, answered by shed_early
        self._early_lock = threading.Lock()
        self.render_error = edge.render_error
        self.balancer = balance.Balancer(CONNECTION_TABLE, self.age)

    # --- set-up -------------------------------------------------------------------------------------

    def get_thread_pool(self):
        # gthread's pool, with threads `top -H` can tell apart (receiver/threadnames.py).
        return futures.ThreadPoolExecutor(max_workers=self.cfg.threads, thread_name_prefix="imhook-req",
                                          initializer=name_this_thread)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        from .app import CALLBACK_PATHS  # imhook's app is loaded by now (a bare app: loaded here, once)

        self.shedder = Shedder(self.wsgi, CALLBACK_PATHS)
        self.wsgi = self.shedder
        if self.shedder.receiver is not None:
            platform = self.shedder.receiver.platform
            self.render_error = platform.render_error
            netease = platform.member("netease") if hasattr(platform, "member") else None
            if netease is not None:
                self.render_netease_error = netease.render_error

    def renderer_for(self, target: bytes | str):
        """The error envelope of the IM whose path a request named (NetEase's under /netease/)."""
        prefix = b"/netease/" if isinstance(target, bytes) else "/netease/"
        if self.render_netease_error is not None and target.startswith(prefix):
            return self.render_netease_error
        return self.render_error

    def limits(self) -> Limits:
        """Read when a request starts, so a reload's server.max_body_bytes applies to the next one.

        Made once per config object (a reload swaps in a new one) and kept with its budget: this is
        asked several times per request, and gunicorn's `cfg.x` is a lookup through its settings
        table (~3 % of a worker's CPU when it was made afresh each time, issue 16)."""
        receiver = getattr(getattr(self, "shedder", None), "receiver", None)
        config = receiver.config if receiver is not None else None
        cached = self._limits
        if cached is not None and cached[0] is config:
            return cached[1]
        body = config.server["max_body_bytes"] if config is not None else 1 << 20
        limits = Limits(request_line=self.cfg.limit_request_line or 8190, head=MAX_HEAD_BYTES, body=body)
        self._limits = (config, limits, max(MAX_BUFFERED_BYTES, 2 * (MAX_HEAD_BYTES + body)))
        return limits

    @cached_property
    def keepalive_seconds(self) -> float:
        return self.cfg.keepalive  # fixed for a worker: a HUP starts new ones

    def budget(self) -> int:
        self.limits()  # refreshed if the config changed
        return self._limits[2]

    def notify(self) -> None:
        super().notify()  # the loop calls it every turn, at least once a second
        if self.alive:
            self.balancer.tick(self.nr_conns)
        else:  # stopping: its connections are leaving, the others' shares no longer count them
            self.balancer.stop()

    def close_to_balance(self, conn) -> bool:
        """Whether this reply closes its connection, so the client's next one may go to a worker
        with fewer (receiver/balance.py); counted when it does.

        Never a connection with more bytes after this request (a pipelined request, in the read
        stage's buffer or still in the kernel's): after "Connection: close" it would go unanswered.
        Nor without the read stage (TLS, PROXY protocol), whose parser may hold such bytes unseen."""
        if self.balancer.to_close <= 0 or not self.preread or more_to_read(conn):
            return False
        if not self.balancer.take_close():
            return False
        count_rebalanced()
        return True

    # --- the thread: one whole request ------------------------------------------------------------

    def enqueue_req(self, conn) -> None:
        conn.queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn):
        # The wait that counts ends when a thread takes the connection (without the read stage it
        # may still wait for its client's bytes after that). It starts when the read stage found
        # the request whole, or earlier by the kernel's stamp: when the loop itself read late.
        now = time.monotonic()
        conn.queue_wait = wait = now - getattr(conn, "queued_at", now)
        arrived_at = getattr(conn, "arrived_at", None)
        if arrived_at is not None:  # the kernel's stamp also counts the wait before the loop read it
            conn.queue_wait = max(wait, min(time.time() - arrived_at, wait + MAX_WAIT_BEFORE_READ_SECONDS))
        # Asked once per request, here: each answer is also one observation of the queue's waits.
        shedder = getattr(self, "shedder", None)
        conn.stale = shedder.stale(conn.queue_wait, now) if shedder is not None else False
        data = getattr(conn, "request_bytes", None)
        if data is not None:
            conn.request_bytes = None
            if self._abandoned(conn):  # nobody waits for this reply any more: do not decide it
                return False
            if conn.stale and self.sheds_early:
                kept = self.shed_early(conn, data)
                if kept is not None:
                    return kept
            # A parser over exactly this request's bytes: it never reads the socket, so it never
            # waits for a client; pipelined bytes stay in the framer for the next round.
            conn.parser = http.get_parser(self.cfg, [data], conn.client)
        return super().handle(conn)

    @cached_property
    def sheds_early(self) -> bool:
        """Whether a stale request may be shed from its bytes (receiver/early_shed.py): not with
        request hooks or an access log, which only gunicorn's path runs, nor under a SCRIPT_NAME."""
        from gunicorn.config import PostRequest, PreRequest

        cfg = self.cfg
        return (cfg.pre_request is PreRequest.default and cfg.post_request is PostRequest.default
                and not cfg.accesslog and not cfg.env.get("SCRIPT_NAME")
                and not os.environ.get("SCRIPT_NAME"))

    @cached_property
    def field_limits(self) -> tuple[int, int]:
        return early_shed.field_limits(self.cfg)

    def shed_early(self, conn, data: bytes) -> bool | None:
        """Answer a stale plain callback from its bytes, without gunicorn's parser; True: keep the
        connection, False: close it, None: not shed here (the usual path answers it)."""
        environ = early_shed.environ_of(data, conn.client, self.field_limits)
        if environ is None:
            return None  # not plain: gunicorn's path reads it, and the Shedder around the app sheds it
        reply = self.shedder.reply_for(environ, conn.queue_wait)
        if reply is None:
            # The Shedder has judged it (the app must answer: a wrong Sign, a client not allowed...):
            # gunicorn's path takes it to the app without asking the Shedder, and authenticating, twice.
            conn.stale = False
            return None
        with self._early_lock:  # request threads: each counts
            self.nr += 1
            self.shed_early_count += 1
        keep = (self.alive and bool(self.cfg.keepalive) and len(self.keepalived_conns) < self.max_keepalived
                and not self.close_to_balance(conn))
        if self.nr >= self.max_requests and self.alive:  # as gunicorn counts its requests
            self.log.info("Autorestarting worker after current request.")
            self.alive = keep = False
        try:
            conn.sock.settimeout(WRITE_TIMEOUT_SECONDS)  # blocking, for a client that does not read
            conn.sock.sendall(early_shed.response_bytes(self.shedder.dumps(reply), now=time.time(),
                                                        keep_alive=keep))
        except OSError:  # the client left or does not read (a timeout): nothing more to send it
            return False
        return keep

    def _abandoned(self, conn) -> bool:
        """A request that waited long enough to be shed, and whose client has left: dropped, counted.

        Only a stale one: a client that half-closes after sending (legal, if odd) reads EOF too, and
        its fresh request must still be decided. A stale one would only have been shed (answered
        without the rules), so nothing the rules would have decided is lost."""
        if not getattr(conn, "stale", False) or not client_left(conn.sock):
            return False
        self.abandoned += 1
        count_abandoned()
        return True

    def handle_request(self, req, conn):
        conn.sock.settimeout(WRITE_TIMEOUT_SECONDS)  # the reply's send, to a client that may not read
        if getattr(conn, "sent_continue", False):
            req._expected_100_continue = False  # the read stage sent it already, before the body
        if self.close_to_balance(conn):
            req.must_close = True  # gunicorn then answers with "Connection: close" and closes it
        waits = self.shedder.waits
        waits.seconds = getattr(conn, "queue_wait", 0.0)
        waits.stale = getattr(conn, "stale", False)
        try:
            return super().handle_request(req, conn)
        except TimeoutError:
            self.log.warning("A client did not read its reply within %g s; connection closed",
                             WRITE_TIMEOUT_SECONDS)
            return False
        finally:
            waits.seconds, waits.stale = 0.0, None

    def handle_error(self, req, client, addr, exc) -> None:
        """gunicorn's error answer, in imhook's JSON envelope; the log line never quotes the request
        (its line holds the query, and with it Sign)."""
        addr = addr or ("", -1)
        known = edge.parse_error_status(exc)
        if known is None:
            self.log.exception("Error handling request to %s", edge.loggable(getattr(req, "path", "(none read)")))
            status, message = 500, "internal error"
        else:
            status, message = known
            self.log.warning("Invalid request from ip=%s: %s (%s)", edge.loggable(addr[0]), message,
                             type(exc).__name__)
        count_refusal(status)
        try:
            render = self.renderer_for(getattr(req, "path", None) or "")
            util.write_nonblock(client, edge.error_response(status, message, render))
        except Exception:
            self.log.debug("Failed to send error message.")

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.balancer.forget()
            if self.balancer.closed:
                self.log.info("imhook worker %s: %d connections closed to even out the workers' split",
                              self.pid, self.balancer.closed)
            # benchmarks/httpbench.py reads this line; /metrics counts shed callbacks too.
            self.log.info("imhook worker %s: %d requests shed (answered without the app), %d of them from their "
                          "bytes, before gunicorn's parser", self.pid,
                          getattr(getattr(self, "shedder", None), "shed_count", 0), self.shed_early_count)
            if self.abandoned:
                self.log.info("imhook worker %s: %d requests not decided: their client left while they "
                              "were queued", self.pid, self.abandoned)
