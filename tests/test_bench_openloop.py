"""The C open-loop generator (benchmarks/openloop.c): its schedule is fixed, and a request's latency
counts from its due time, also when it had to wait for one of the pool's connections (no coordinated
omission). Against a tiny local server that answers each request after a fixed delay."""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time

import pytest

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import openloop  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                                reason="no C compiler: the benchmarks fall back to the Python generator")

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
CLOSING = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def slow_server(delay: float, reply: bytes = REPLY):
    """A loopback server answering each request (one per recv) after `delay` s, one thread per connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve(conn):
        with conn:
            while conn.recv(65536):
                time.sleep(delay)
                conn.sendall(reply)
                if b"close" in reply:
                    return

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, accepted


def raw(port: int) -> bytes:
    return f"POST /callback HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 2\r\n\r\n{{}}".encode()


def test_every_request_is_sent_on_schedule_and_answered():
    listener, accepted = slow_server(0.0)
    with listener:
        port = listener.getsockname()[1]
        result = openloop.run("127.0.0.1", port, [raw(port)], rate=200, seconds=1, max_connections=8, timeout=5)
    assert (result.scheduled, result.requests, result.errors, result.non_2xx) == (200, 200, 0, 0)
    assert result.send_seconds == pytest.approx(199 / 200, abs=0.001)
    assert result.max < 500 and result.over_2s == 0
    assert 1 <= result.peak_connections <= 8 and len(accepted) == result.peak_connections


def test_waiting_for_a_connection_counts_as_latency():
    # One connection, 50 ms per reply, 40 requests due over 0.4 s: the server can answer them only
    # 2 s in all, so the last one is answered ~1.6 s after its due time. A closed-loop client would
    # report 50 ms for every one of them.
    listener, _ = slow_server(0.05)
    with listener:
        port = listener.getsockname()[1]
        result = openloop.run("127.0.0.1", port, [raw(port)], rate=100, seconds=0.4, max_connections=1, timeout=5)
    assert result.requests == 40 and result.errors == 0
    assert 1400 < result.max < 2500, result
    assert result.p50 > 500, result


def test_requests_past_the_timeout_are_counted_as_timeouts_and_over_2s():
    listener, _ = slow_server(0.5)
    with listener:
        port = listener.getsockname()[1]
        result = openloop.run("127.0.0.1", port, [raw(port)], rate=20, seconds=0.5, max_connections=1, timeout=0.8)
    # 10 due over 0.5 s, one connection answering after 0.5 s each: the first is answered, the second
    # is still in flight 0.8 s after its due time, and the rest wait for the connection past theirs.
    assert result.requests + result.timeouts + result.socket_errors == 10, result
    assert result.timeouts >= 6 and result.over_2s >= result.timeouts


def test_a_closed_connection_is_replaced_and_its_reply_counted():
    listener, accepted = slow_server(0.0, CLOSING)
    with listener:
        port = listener.getsockname()[1]
        result = openloop.run("127.0.0.1", port, [raw(port)], rate=50, seconds=0.4, max_connections=4, timeout=5)
    assert result.requests == 20 and result.non_2xx == 20 and result.socket_errors == 0
    assert len(accepted) == 20  # each reply said "Connection: close": a new connection for the next


def test_without_gcc_the_message_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(openloop.tempfile, "gettempdir", lambda: str(tmp_path))  # no binary built yet
    monkeypatch.setattr(openloop.shutil, "which", lambda name: None)
    with pytest.raises(openloop.Unavailable, match="needs gcc"):
        openloop.binary()
