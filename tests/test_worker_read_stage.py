"""The worker's read stage on real loopback sockets, driven a poll at a time without gunicorn's arbiter.

What the end-to-end tests cannot show cheaply: a request reaches a thread only whole, the
buffered total stays under its budget (a big request waits unread until memory frees), a full
worker makes room by closing its longest-idle connection, and deadlines answer 408 or close.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque

import pytest
from gunicorn.config import Config

from receiver import edge, read_stage, worker as worker_module
from receiver.shedding import should_shed
from receiver.worker import ImhookWorker


class Harness:
    """An ImhookWorker with a listener and a poller, whose thread pool only collects what it gets."""

    def __init__(self, worker_connections: int = 100):
        worker = ImhookWorker.__new__(ImhookWorker)  # no arbiter, no app: only the read stage
        worker.cfg, worker.alive, worker.preread = Config(), True, True
        worker.poller = selectors.DefaultSelector()
        worker.nr_conns, worker.worker_connections = 0, worker_connections
        worker.reading, worker.lingering, worker.paused, worker.buffered = {}, {}, deque(), 0
        worker.pending_conns = deque()
        worker.render_error = edge.render_error
        worker.abandoned = 0
        worker.sheds_early = False  # a stale request goes gunicorn's usual way (the early one: test_early_shed.py)
        self.dispatched: list = []
        worker.enqueue_req = self.dispatched.append  # what a thread would be given
        self.worker = worker
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.clients: list[socket.socket] = []

    def connect(self) -> socket.socket:
        client = socket.create_connection(self.listener.getsockname(), timeout=2)
        self.clients.append(client)
        selectors.DefaultSelector().register(self.listener, selectors.EVENT_READ)
        self.pump()  # accept it
        return client

    def pump(self, rounds: int = 5) -> None:
        for _ in range(rounds):
            readable = selectors.DefaultSelector()
            readable.register(self.listener, selectors.EVENT_READ)
            if readable.select(0.02):
                self.worker.accept(self.listener)
            for key, _ in self.worker.poller.select(0.02):
                key.data(key.fileobj)

    def conn_of(self, client: socket.socket):
        port = client.getsockname()[1]
        return next(c for c in list(self.worker.reading) + self.dispatched + list(self.worker.lingering)
                    if c.client[1] == port)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.listener.close()


@pytest.fixture
def harness():
    made: list[Harness] = []

    def make(**kwargs) -> Harness:
        made.append(Harness(**kwargs))
        return made[-1]

    yield make
    for h in made:
        h.close()


def closed(client: socket.socket) -> bool:
    client.settimeout(1)
    try:
        return client.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_request_reaches_a_thread_only_whole_and_alone(harness):
    h = harness()
    client = h.connect()
    request = b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n{}  "
    for i in range(0, len(request), 7):
        assert not h.dispatched
        client.sendall(request[i:i + 7])
        h.pump(2)
    client.sendall(b"GET /next")  # pipelined: stays with the connection for the next round
    h.pump(2)
    [conn] = h.dispatched
    assert conn.request_bytes == request and conn.data_ready


def test_past_the_budget_a_big_request_waits_unread_until_memory_frees(harness, monkeypatch):
    monkeypatch.setattr(read_stage, "SMALL_REQUEST_BYTES", 100)
    h = harness()
    monkeypatch.setattr(h.worker, "budget", lambda: 2000)
    head = b"POST /callback HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"
    big, other = h.connect(), h.connect()
    big.sendall(head + b"b" * 1200)
    other.sendall(head + b"o" * 900)
    h.pump()
    assert h.worker.buffered >= 2000
    big.sendall(b"b" * 500)
    h.pump()
    big_conn = h.conn_of(big)
    assert big_conn in h.worker.paused and len(big_conn.framer.buffer) == len(head) + 1200  # not read
    small = h.connect()  # a connection holding little is still read
    small.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
    h.pump()
    assert [c.client[1] for c in h.dispatched] == [small.getsockname()[1]]
    other.close()  # its buffer is freed: the big one is read again
    h.pump()
    assert big_conn not in h.worker.paused and len(big_conn.framer.buffer) == len(head) + 1700
    assert h.worker.buffered == sum(c.held for c in list(h.worker.reading) + h.dispatched)


def test_a_full_worker_closes_its_longest_idle_connection_not_one_mid_request(harness):
    h = harness(worker_connections=3)
    started, idle_oldest, idle_newer = h.connect(), h.connect(), h.connect()
    assert closed(started)  # the third connection filled the worker: the oldest idle one made room
    h = harness(worker_connections=3)
    started = h.connect()
    started.sendall(b"GET / HT")
    h.pump()
    idle_oldest, idle_newer = h.connect(), h.connect()
    assert closed(idle_oldest)
    assert h.conn_of(started) in h.worker.reading and h.worker.nr_conns == 2


def test_a_request_past_its_deadline_gets_408_and_an_idle_connection_is_closed(harness):
    h = harness()
    slow, idle = h.connect(), h.connect()
    slow.sendall(b"POST /callback HTTP/1.1\r\nContent-")
    h.pump()
    h.conn_of(slow).read_until = 0.0
    h.conn_of(idle).idle_until = 0.0
    h.worker.murder_pending()
    slow.settimeout(1)
    reply = slow.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408 ") and reply.endswith(b'"ErrorCode":408,"ErrorInfo":"request not '
                                                                  b'received within 5 s"}')
    assert closed(idle)
    assert h.worker.nr_conns == 1 and h.worker.reading == {}  # the slow one lingers, draining


def test_an_oversized_body_is_refused_without_reading_it(harness):
    h = harness()
    client = h.connect()
    client.sendall(b"POST /callback HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n" + b"x" * 1000)
    h.pump()
    client.settimeout(1)
    assert client.recv(4096).startswith(b"HTTP/1.1 413 ")
    assert not h.dispatched and h.worker.buffered == 0


def test_a_request_whose_client_left_while_queued_is_not_decided(harness, monkeypatch):
    # The IM gives up after 2 s and closes the connection; its request may still wait in the queue.
    h = harness()
    request = b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    waiting, gone = h.connect(), h.connect()
    for client in (waiting, gone):
        client.sendall(request)
    h.pump(2)
    assert len(h.dispatched) == 2
    left, stays = h.conn_of(gone), h.conn_of(waiting)
    gone.close()
    h.worker.shedder = StaleAfter(100)
    for conn in (left, stays):
        conn.queued_at = time.monotonic() - 0.5  # both waited past shed_after_ms
    decided = []
    monkeypatch.setattr(worker_module.ThreadWorker, "handle", lambda self, conn: decided.append(conn) or True)
    assert h.worker.handle(left) is False  # closed, never parsed nor given to the app
    assert h.worker.handle(stays) is True
    assert decided == [stays] and h.worker.abandoned == 1


def test_a_fresh_request_from_a_client_that_half_closed_is_still_decided(harness, monkeypatch):
    # Sending the request, then shutting down its own side is legal HTTP/1.1 (it reads EOF, like a
    # client that left): only a request stale enough to be shed anyway may be dropped for it.
    h = harness()
    client = h.connect()
    client.sendall(b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    client.shutdown(socket.SHUT_WR)
    h.pump(2)
    (conn,) = h.dispatched
    h.worker.shedder = StaleAfter(100)
    conn.queued_at = time.monotonic()
    decided = []
    monkeypatch.setattr(worker_module.ThreadWorker, "handle", lambda self, conn: decided.append(conn) or True)
    assert h.worker.handle(conn) is True
    assert decided == [conn] and h.worker.abandoned == 0


def test_a_request_the_loop_read_late_counts_its_wait_from_its_arrival(harness, monkeypatch):
    # The event loop shares the GIL with the request threads: when they are busy it reads late,
    # and the request's wait began when its bytes reached the host (the kernel's stamp), not then.
    h = harness()
    client = h.connect()
    sent = time.time()
    client.sendall(b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    time.sleep(0.3)  # the loop is busy elsewhere
    h.pump(2)
    (conn,) = h.dispatched
    assert conn.stamped and sent - 0.01 <= conn.arrived_at <= sent + 0.1
    h.worker.shedder = StaleAfter(100)
    monkeypatch.setattr(worker_module.ThreadWorker, "handle", lambda self, conn: True)
    h.worker.handle(conn)  # taken at once from the queue, yet 0.3 s after it arrived
    assert conn.queue_wait >= 0.29 and conn.stale


SMALL_POST = b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


def queued(h: Harness, request: bytes):
    """Send `request` on a new connection and let the read stage hand it on: its connection."""
    client = h.connect()
    client.sendall(request)
    h.pump(2)
    (conn,) = h.dispatched
    return conn


def test_a_stamp_from_a_stepped_clock_is_believed_only_so_far(harness, monkeypatch):
    h = harness()
    conn = queued(h, SMALL_POST)
    conn.arrived_at -= 3600  # as if the system clock had stepped an hour forward meanwhile
    h.worker.shedder = StaleAfter(100)
    monkeypatch.setattr(worker_module.ThreadWorker, "handle", lambda self, conn: True)
    h.worker.handle(conn)
    assert 2.0 <= conn.queue_wait < 2.5  # the read stage's own note plus MAX_WAIT_BEFORE_READ_SECONDS
    conn.arrived_at += 7200  # stepped back: the stamp is in the future; the read stage's note stands
    h.worker.handle(conn)
    assert 0 <= conn.queue_wait < 0.5


def test_recv_stamped_gives_the_bytes_and_when_they_arrived():
    from receiver import arrival

    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()) as client:
        server, _ = listener.accept()
        with server:
            assert arrival.stamp_arrivals(server)
            sent = time.time()
            client.sendall(b"hello")
            time.sleep(0.2)
            data, stamp = arrival.recv_stamped(server, 100)
            assert data == b"hello" and sent - 0.01 <= stamp <= sent + 0.1


def test_a_stale_request_the_shedder_declined_goes_to_the_app_without_asking_it_again(harness, monkeypatch):
    # A wrong Sign under overload: the Shedder authenticates it once, on the early path, and
    # declines; gunicorn's path must then take it straight to the app, not to the Shedder again.
    h = harness()
    conn = queued(h, SMALL_POST)
    asked = []

    class Declines(StaleAfter):
        def reply_for(self, environ, waited):
            asked.append(environ["PATH_INFO"])
            return None

    h.worker.shedder = Declines(0.001)
    h.worker.sheds_early = True
    conn.queued_at = time.monotonic() - 0.5
    decided = []
    monkeypatch.setattr(worker_module.ThreadWorker, "handle", lambda self, conn: decided.append(conn.stale) or True)
    assert h.worker.handle(conn) is True
    assert asked == ["/callback"] and decided == [False]  # asked once; then not stale for the Shedder


class StaleAfter:
    """The shedder's decision by its ceiling alone, without an app behind it."""

    def __init__(self, milliseconds: float):
        self.milliseconds = milliseconds

    def stale(self, waited: float, now: float) -> bool:
        return should_shed(waited, self.milliseconds)


def test_client_left_tells_a_closed_connection_from_a_quiet_or_busy_one():
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        quiet, busy, gone = (socket.create_connection(listener.getsockname()) for _ in range(3))
        served = [listener.accept()[0] for _ in range(3)]
        busy.sendall(b"GET /next")  # a pipelined request is not a departure
        gone.close()
        for client in (quiet, busy):
            client.settimeout(1)
        import time

        time.sleep(0.05)
        assert [worker_module.client_left(s) for s in served] == [False, False, True]
        for s in (*served, quiet, busy):
            s.close()
