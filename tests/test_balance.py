"""receiver/balance.py: a worker over its share of the keep-alive connections closes one now and then.

The table and the decision in-process (several Balancers on one table stand for the workers), then
real gunicorn with two workers: 12 connections held on one worker and 4 on the other even out to
8/8 while every request is answered, a pipelined request is never left unanswered by a close, and
with IMHOOK_BALANCE_CONNECTIONS=0 nothing is closed.
"""

from __future__ import annotations

import collections
import os
import socket
import time
from pathlib import Path

import pytest

from receiver import balance
from receiver.balance import CHECK_SECONDS, STALE_SECONDS, Balancer
from receiver.worker_table import WorkerTable

from .helpers import start_server
from .test_ops_gunicorn import total
from .test_ops_support import worker_pids


def workers(*connections: int, now: float = 100.0) -> list[Balancer]:
    """Balancers on one table, each having written its row with these connections at `now`."""
    table = WorkerTable()
    found = [Balancer(table, slot) for slot in range(len(connections))]
    for balancer, count in zip(found, connections):
        balancer.tick(count, now)
    return found


@pytest.mark.parametrize("split, closes", [
    ((12, 4), (4, 0)),  # fair share 8
    ((9, 7), (1, 0)),
    ((8, 8), (0, 0)),
    ((9, 8), (0, 0)),  # 17 over 2: 9 is the share, rounded up
    ((0, 16), (0, 8)),
    ((5, 5, 6), (0, 0, 0)),
    ((1, 1, 10), (0, 0, 6)),
    ((0, 0), (0, 0)),
])
def test_a_worker_over_its_share_closes_the_excess(split, closes):
    found = workers(*split)
    for balancer in found:  # each weighs the rows of all (the first ticked before the others wrote)
        balancer.tick(split[found.index(balancer)], 100.0 + CHECK_SECONDS)
    assert tuple(b.to_close for b in found) == closes


def test_closes_are_weighed_once_per_check():
    over, _ = workers(11, 5)
    over.tick(11, 100.0 + CHECK_SECONDS)
    assert [over.take_close() for _ in range(4)] == [True, True, True, False]
    over.tick(11, 100.0 + CHECK_SECONDS * 1.5)  # before the next check: not weighed again
    assert not over.take_close()
    over.tick(8, 100.0 + CHECK_SECONDS * 2)  # fewer now (13 in all: 7 is the share): one over
    assert over.take_close() and not over.take_close() and over.closed == 4


def test_a_worker_alone_never_closes():
    (alone,) = workers(500)
    alone.tick(500, 101.0)
    assert not alone.to_close


def test_a_worker_that_stopped_writing_does_not_count():
    over, silent = workers(12, 4)
    over.tick(12, 100.0 + STALE_SECONDS + 0.5)  # the other's row is older than STALE_SECONDS: alone
    assert not over.to_close
    silent.tick(4, 100.0 + STALE_SECONDS + 0.6)
    over.tick(12, 100.0 + STALE_SECONDS + 0.7)
    assert over.to_close == 4


def test_a_stopped_worker_leaves_the_table():
    over, stopping = workers(12, 4)
    stopping.forget()
    over.tick(12, 100.0 + CHECK_SECONDS)
    assert not over.to_close


def test_a_worker_that_stops_serving_leaves_the_table_for_good():
    stopping, other = workers(12, 4)
    stopping.tick(12, 100.0 + CHECK_SECONDS)
    assert stopping.to_close == 4
    stopping.stop()  # its connections are leaving; it no longer closes any to even things out
    assert not stopping.take_close()
    stopping.tick(12, 100.0 + CHECK_SECONDS * 3)  # its loop still calls tick: nothing is written
    other.tick(4, 100.0 + CHECK_SECONDS * 3)
    assert not other.to_close and not stopping.to_close


def test_without_a_table_nothing_happens():
    balancer = Balancer(None, 3)
    balancer.tick(1000, 5.0)
    assert not balancer.take_close()


def test_rows_wrap_around_the_table():
    table = WorkerTable()
    high, low = Balancer(table, balance.SLOTS + 1), Balancer(table, 2)  # gunicorn's ages grow past SLOTS
    high.tick(12, 50.0)
    low.tick(4, 50.0)
    assert table.fair_share(50.0, STALE_SECONDS) == (8, 2)


@pytest.mark.parametrize("value, on", [(None, True), ("1", True), ("0", False), ("off", False), (" No ", False)])
def test_it_can_be_turned_off(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv("IMHOOK_BALANCE_CONNECTIONS", raising=False)
    else:
        monkeypatch.setenv("IMHOOK_BALANCE_CONNECTIONS", value)
    assert balance.enabled() is on


# --- real gunicorn -------------------------------------------------------------------------------

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: imhook\r\n\r\n"


def serving_worker(sock: socket.socket, port: int, pids: list[int]) -> int | None:
    """Which worker holds the server side of this client socket: /proc/net/tcp gives the socket's
    inode by its addresses, /proc/PID/fd which worker holds that inode."""
    client_port = sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and int(fields[2].split(":")[1], 16) == client_port:
            inode = f"socket:[{fields[9]}]"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == inode:
                    return pid
            except OSError:
                continue
    return None


def exchange(sock: socket.socket, pipelined: int = 1) -> tuple[int, bool]:
    """Send `pipelined` requests at once and read their replies; (the last status, whether the last
    reply said Connection: close). No reply before the last may say it."""
    sock.sendall(REQUEST * pipelined)
    data = b""
    for index in range(pipelined):
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection without reply {index + 1} of {pipelined}"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = {name.strip().lower(): value.strip()
                  for name, _, value in (line.partition(":") for line in lines[1:])}
        while len(data) < int(fields.get("content-length", 0)):
            data += sock.recv(65536)
        data = data[int(fields.get("content-length", 0)):]
        close = fields.get("connection", "").lower() == "close"
        assert not close or index == pipelined - 1, "a reply said close with a pipelined request after it"
    return int(lines[0].split()[1]), close


def held_unevenly(port: int, pids: list[int], counts: tuple[int, int]) -> tuple[list[socket.socket], int]:
    """Open connections until the first worker holds counts[0] of them and the other counts[1];
    (them, how many replies on the way said Connection: close)."""
    wanted = dict(zip(pids, counts))
    held: list[socket.socket] = []
    closes = 0
    for _ in range(200):
        if not any(wanted.values()):
            return held, closes
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        _, closed = exchange(sock)  # accepted and served: the server side exists in some worker
        closes += closed
        owner = None if closed else serving_worker(sock, port, pids)
        if wanted.get(owner):
            wanted[owner] -= 1
            held.append(sock)
        else:
            sock.close()
    pytest.fail(f"could not place the connections {counts} over the workers {pids}")


@pytest.fixture
def two_workers(tmp_path, request):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux's /proc to tell which worker holds a connection")
    server = start_server(tmp_path, "app_id: null\n", workers=2, threads=2, env=request.param)
    try:
        pids = []
        for _ in range(100):
            pids = worker_pids(server.process.pid)
            if len(pids) == 2:
                break
            time.sleep(0.05)
        assert len(pids) == 2, pids
        yield server, int(server.url.rsplit(":", 1)[1]), pids
    finally:
        server.stop()


def drive(port: int, pids: list[int], held: list[socket.socket], seconds: float, pipelined: int = 1):
    """Requests round the connections for `seconds`, opening a new one for each that was closed;
    (closes seen, every status, the split at the end). No exchange may stall: the IM waits 2 s."""
    closes, statuses = 0, collections.Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for index, sock in enumerate(held):
            started = time.monotonic()
            status, close = exchange(sock, pipelined)
            assert time.monotonic() - started < 1.0, "a reply stalled"
            statuses[status] += 1
            if close:
                closes += 1
                sock.close()
                held[index] = socket.create_connection(("127.0.0.1", port), timeout=5)
    split = collections.Counter(serving_worker(sock, port, pids) for sock in held)
    return closes, statuses, split


def from_uneven(port: int, pids: list[int], seconds: float, pipelined: int = 1):
    """Hold 12 connections on one worker and 4 on the other, then drive them (see drive());
    (closes while placing them, closes while driving, every status, the split at the end)."""
    held, placing = held_unevenly(port, pids, (12, 4))
    try:
        return (placing, *drive(port, pids, held, seconds, pipelined))
    finally:
        for sock in held:
            sock.close()


@pytest.mark.integration
@pytest.mark.parametrize("two_workers", [{}], indirect=True)
def test_an_uneven_split_evens_out_and_every_request_is_answered(two_workers):
    server, port, pids = two_workers
    placing, closes, statuses, split = from_uneven(port, pids, 3.0)
    assert set(statuses) == {200} and statuses[200] > 16
    assert closes >= 4
    assert sorted(split.values()) in ([8, 8], [7, 9]), split
    assert total(server.url, "imhook_connections_rebalanced_total") == closes + placing
    server.stop()
    assert "connections closed to even out the workers' split" in server.log()


@pytest.mark.integration
@pytest.mark.parametrize("two_workers", [{}], indirect=True)
def test_a_pipelined_request_is_answered_before_any_close(two_workers):
    _, port, pids = two_workers
    _, closes, statuses, split = from_uneven(port, pids, 3.0, pipelined=3)  # exchange() checks the order
    assert set(statuses) == {200} and closes >= 4
    assert sorted(split.values()) in ([8, 8], [7, 9]), split


@pytest.mark.integration
@pytest.mark.parametrize("two_workers", [{"IMHOOK_BALANCE_CONNECTIONS": "0"}], indirect=True)
def test_switched_off_nothing_is_closed(two_workers):
    _, port, pids = two_workers
    placing, closes, statuses, split = from_uneven(port, pids, 1.5)
    assert set(statuses) == {200} and closes == placing == 0
    assert sorted(split.values()) == [4, 12]
