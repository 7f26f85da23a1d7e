"""The event-loop half of imhook's worker (receiver/worker.py): the read stage.

The worker's event loop reads every connection without blocking into a buffer of its own until the
bytes hold one whole request (receiver/framing.py), and only then hands exactly those bytes to a
thread: a client that sends nothing, or a byte a second, costs a buffer, never a thread. From here
it also refuses what is over a size limit or too slow (413, 414, 431, 408, in the JSON envelope,
then a drain before closing), keeps the buffered total under a budget, makes room for a new
connection by closing the longest-idle one, and takes back a kept-alive connection after its reply.
Why, and the limits: receiver/worker.py's docstring. `ReadStage` is a mixin of that worker: it
uses the worker's `limits()`, `budget()`, `keepalive_seconds`, `renderer_for` and `enqueue_req`.

gunicorn imports this module in the master (through receiver/worker.py): keep its imports to
gunicorn, the standard library and imhook's pure modules.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import time
from functools import partial

from gunicorn import util
from gunicorn.workers.gthread import TConn

from . import arrival, edge
from .framing import Framer, Refusal

log = logging.getLogger("imhook.worker")

REQUEST_READ_SECONDS = 5.0  # from a request's first byte to its last; the IM sends each at once
MAX_HEAD_BYTES = 32 * 1024  # request line and headers together (one header: limit_request_field_size)
READ_CHUNK_BYTES = 64 * 1024  # one recv() of the event loop
SMALL_REQUEST_BYTES = 64 * 1024  # a connection holding less is always read, whatever the total
MAX_BUFFERED_BYTES = 64 * 1024 * 1024  # a worker's buffered requests, beyond which big ones wait
LINGER_SECONDS = 2.0  # after an error reply, how long unread request bytes are drained before closing
LINGER_MAX_BYTES = 256 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def receive(conn) -> bytes | None:
    """What a readable socket holds: b"" when the client left (or the socket failed), None when
    there was nothing to read after all. Sets `conn.stamp`: when those bytes reached the host
    (receiver/arrival.py), or None."""
    try:
        if getattr(conn, "stamped", False):
            data, conn.stamp = arrival.recv_stamped(conn.sock, READ_CHUNK_BYTES)
            return data
        return conn.sock.recv(READ_CHUNK_BYTES)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def count_refusal(status: int) -> None:
    """Count a request the worker answered itself, so a flood of them shows in /metrics."""
    try:
        from .ops import metrics  # loaded with the app by now; never in the master (see above)

        metrics.EDGE_REFUSED.labels(status=str(status)).inc()
    except Exception:  # counting must never cost the answer
        log.debug("could not count an edge refusal", exc_info=True)


class ReadStage:
    """The worker's event loop: accept, read each connection until one request is whole, hand it on."""

    def accept(self, listener) -> None:
        if not self.preread:
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        conn.held = 0
        conn.stamp = None
        conn.stamped = arrival.stamp_arrivals(client_sock)
        if self.nr_conns >= self.worker_connections:
            self.drop_oldest_idle()
        self.start_reading(conn, b"")

    def drop_oldest_idle(self) -> None:
        """Full: close the connection idle longest (no byte of a request yet), so that idle sockets
        cannot keep the worker from accepting; a connection mid-request keeps its place until its
        deadline. Closing an idle connection is always allowed (RFC 9112 §9.5), as at keepalive's end."""
        for conn in self.reading:  # in the order they began waiting: the oldest first
            if not conn.framer.started:
                self.drop(conn)
                return

    def start_reading(self, conn: TConn, leftover: bytes) -> None:
        """Wait for (the rest of) the next request on `conn`; `leftover`: bytes already read."""
        now = time.monotonic()
        conn.framer = Framer(self.limits(), leftover)
        conn.idle_until = now + self.keepalive_seconds if self.alive else now + 2.0
        conn.read_until = now + REQUEST_READ_SECONDS
        conn.sent_continue = False
        self.reading[conn] = None
        if leftover and self.advance(conn, conn.framer.feed()):
            return
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_readable, conn))

    def on_readable(self, conn: TConn, _sock) -> None:
        if conn.held >= SMALL_REQUEST_BYTES and self.buffered >= self.budget():
            try:
                gone = conn.sock.recv(1, socket.MSG_PEEK) == b""
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                gone = True
            if gone:  # a client that left frees its buffer now, not at its deadline
                self.drop(conn)
                return
            self.unregister(conn)
            self.paused.append(conn)
            return
        data = receive(conn)
        if data is None:
            return
        if not data:  # the client left, mid-request or not: nobody to answer
            self.drop(conn)
            return
        if not conn.framer.started:
            conn.read_until = time.monotonic() + REQUEST_READ_SECONDS
        conn.held += len(data)
        self.buffered += len(data)
        self.advance(conn, conn.framer.feed(data))

    def advance(self, conn: TConn, verdict: int | Refusal | None) -> bool:
        """Act on the framer's verdict; True when the connection left the read stage."""
        if verdict is None:
            if conn.framer.expects_continue and conn.framer.head_complete and not conn.sent_continue:
                conn.sent_continue = True  # the client waits for it before it sends the body
                self.send_now(conn, CONTINUE)
            return False
        self.reading.pop(conn, None)
        self.unregister(conn)
        if isinstance(verdict, Refusal):
            self.refuse(conn, verdict.status, verdict.message)
            return True
        conn.request_bytes = conn.framer.take(verdict)
        conn.arrived_at = getattr(conn, "stamp", None)  # the read that made it whole (pipelined: an earlier one)
        conn.data_ready = True  # gthread's handle() must not wait for bytes: they are all here
        self.enqueue_req(conn)
        return True

    def refuse(self, conn: TConn, status: int, message: str) -> None:
        """Answer an error in the JSON envelope from the event loop, then close (after a drain)."""
        conn.framer.buffer.clear()  # never read again: its memory is free at once, not after the drain
        self.release(conn)
        log.warning("request refused before the app: %s %s", status, message,
                    extra={"status": status, "client": edge.loggable(conn.client[0] if conn.client else "")})
        count_refusal(status)
        if self.send_now(conn, edge.error_response(status, message, self.renderer_for(conn.framer.target))):
            self.linger(conn)

    def send_now(self, conn: TConn, data: bytes) -> bool:
        try:
            conn.sock.send(data)  # small, into an empty send buffer: never blocks, never partial
        except OSError:
            self.drop(conn)
            return False
        return True

    def linger(self, conn: TConn) -> None:
        """Half-close and drain what the client still sends, so it reads the reply instead of a
        reset (RFC 9112 §9.6); gunicorn does this blocking, in the event loop, for up to 2 s."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.drop(conn)
            return
        conn.linger_until = time.monotonic() + LINGER_SECONDS
        conn.drained = 0
        self.lingering[conn] = None
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_lingering, conn))

    def on_lingering(self, conn: TConn, _sock) -> None:
        data = receive(conn)
        if data is None:
            return
        conn.drained += len(data)
        if not data or conn.drained > LINGER_MAX_BYTES:
            self.drop(conn)

    def unregister(self, conn: TConn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass  # not registered (paused, or on its way to a thread)

    def release(self, conn: TConn, keep: int = 0) -> None:
        """Count `conn` as holding `keep` bytes now, and read paused connections the budget allows."""
        self.buffered -= conn.held - keep
        conn.held = keep
        budget = self.budget()
        while self.paused and self.buffered < budget:
            paused = self.paused.popleft()
            if paused in self.reading:
                self.poller.register(paused.sock, selectors.EVENT_READ, partial(self.on_readable, paused))

    def drop(self, conn: TConn) -> None:
        self.unregister(conn)
        self.reading.pop(conn, None)
        self.lingering.pop(conn, None)
        if conn in self.paused:
            self.paused.remove(conn)
        self.nr_conns -= 1
        self.release(conn)
        util.close(conn.sock)

    def murder_pending(self) -> None:
        """Once a second (gthread's loop): refuse requests past their deadline, close idle and
        drained connections."""
        super().murder_pending()
        now = time.monotonic()
        for conn in list(self.reading):
            if conn.framer.started and now >= conn.read_until:
                self.reading.pop(conn, None)
                self.unregister(conn)
                if conn in self.paused:
                    self.paused.remove(conn)
                self.refuse(conn, 408, f"request not received within {REQUEST_READ_SECONDS:g} s")
            elif not conn.framer.started and now >= conn.idle_until:
                self.drop(conn)
        for conn in [c for c in self.lingering if now >= c.linger_until]:
            self.drop(conn)

    def _cap_keepalive(self, deadline) -> None:
        # Stopping: connections that have not begun a request close soon, as kept-alive ones do.
        super()._cap_keepalive(deadline)
        for conn in self.reading:
            conn.idle_until = min(conn.idle_until, deadline)

    def finish_request(self, conn, fs) -> None:
        """Back on the event loop: read the next request of a kept-alive connection, else close."""
        if not self.preread:
            return super().finish_request(conn, fs)
        try:
            keep = bool(not fs.cancelled() and fs.result())
        except Exception:
            keep = False
        leftover = bytes(conn.framer.buffer)
        self.release(conn, keep=len(leftover))
        if keep:
            try:
                conn.sock.setblocking(False)
                self.start_reading(conn, leftover)
                return
            except (OSError, ValueError):
                pass
        self.release(conn)
        self.linger(conn)
