"""Idle and trickling connections cannot starve authentic callbacks (receiver/worker.py's read stage).

Under real gunicorn with imhook's default 2 workers x 2 threads: 200 connections that send nothing
and 200 that send a header byte a second stay open (the trickling ones reconnect when imhook
closes them, as an attacker would), while signed callbacks are posted. Every callback must be
answered by the rules (a rewrite, which a shed reply never is), with p99 under 300 ms, but for the
few a stall of the host itself may shed (at most 1 %, each logged as shed).
"""

from __future__ import annotations

import json
import os
import select
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from receiver.client import post_callback
from receiver.shedding import OK_ENVELOPE

from .helpers import APP_ID, TOKEN, sample

IDLE = 200
TRICKLING = 200
# 12 s keeps CI short; IMHOOK_TRICKLE_SECONDS=30 runs the full 30 s.
TRICKLE_SECONDS = float(os.environ.get("IMHOOK_TRICKLE_SECONDS", "12"))
CLIENTS = 4  # two on kept-alive connections (as the IM), two opening a connection per callback
P99_BUDGET_MS = 300
SUFFIX = "!decided"
APPEND = f"""
rules:
  - use: tests.rulekit:Append
    name: append
    config: {{suffix: "{SUFFIX}"}}
"""
SLOW_HEAD = b"POST /callback?SdkAppid=1 HTTP/1.1\r\nHost: imhook\r\nX-Slow: " + b"a" * 200


class Trickler(threading.Thread):
    """Keeps `count` connections sending one header byte a second; reconnects the ones imhook closes."""

    def __init__(self, address: tuple[str, int], count: int):
        super().__init__(daemon=True)
        self.address, self.count = address, count
        self.socks: list[tuple[socket.socket, int]] = []
        self.closed_by_server = 0
        self.stop = threading.Event()

    def connect(self) -> tuple[socket.socket, int]:
        sock = socket.create_connection(self.address, timeout=5)
        sock.setblocking(False)
        return sock, 0

    def run(self) -> None:
        self.socks = [self.connect() for _ in range(self.count)]
        while not self.stop.wait(1.0):
            for i, (sock, sent) in enumerate(self.socks):
                readable, _, _ = select.select([sock], [], [], 0)
                try:
                    if readable:  # imhook answered (408) or closed it
                        raise ConnectionError
                    sock.send(SLOW_HEAD[sent % len(SLOW_HEAD):][:1])
                    self.socks[i] = (sock, sent + 1)
                except OSError:
                    sock.close()
                    self.closed_by_server += 1
                    self.socks[i] = self.connect()
        for sock, _ in self.socks:
            sock.close()


@pytest.mark.integration
def test_idle_and_trickling_connections_do_not_starve_signed_callbacks(serve):
    server = serve(APPEND, workers=2, threads=2)  # gunicorn_conf's defaults
    host, port = server.url.removeprefix("http://").split(":")
    address = (host, int(port))
    idle = [socket.create_connection(address, timeout=5) for _ in range(IDLE)]
    trickler = Trickler(address, TRICKLING)
    trickler.start()
    time.sleep(1.5)  # every slow connection accepted and trickling
    body = json.dumps(sample("C2C.CallbackBeforeSendMsg")).encode()
    latencies: list[float] = []
    not_decided: list = []
    deadline = time.monotonic() + TRICKLE_SECONDS

    def client(keep_alive: bool) -> None:
        session = requests.Session() if keep_alive else None
        while time.monotonic() < deadline:
            try:
                result = post_callback(server.callback_url, body, app_id=APP_ID, token=TOKEN, session=session,
                                       timeout=5)
            except requests.RequestException as exc:
                not_decided.append(repr(exc))
                continue
            latencies.append(result.elapsed_ms)
            texts = [e["MsgContent"]["Text"] for e in (result.reply.get("MsgBody") or [])] if result.ok else []
            if texts != ["red packet" + SUFFIX]:
                not_decided.append((result.status, result.reply))
            time.sleep(0.02)

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(client, [i % 2 == 0 for i in range(CLIENTS)]))
    finally:
        trickler.stop.set()
        trickler.join(10)
        for sock in idle:
            sock.close()
    assert len(latencies) > 100, (len(latencies), not_decided[:5])
    p50, p99 = statistics.quantiles(latencies, n=100)[49], statistics.quantiles(latencies, n=100)[98]
    print(f"\n{IDLE} idle + {TRICKLING} trickling connections for {TRICKLE_SECONDS:g} s: {len(latencies)} signed "
          f"callbacks, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms, "
          f"{trickler.closed_by_server} slow connections closed by imhook (shared 2-core machine: noisy)")
    shed = [result for result in not_decided if result == (200, OK_ENVELOPE)]
    assert len(shed) == len(not_decided), not_decided[:5]  # never an error or another reply
    # A shed callback is the worker's answer to a queue that stood (docs/operations.md, Load
    # shedding): a stall of the host itself can make one stand, with or without these connections
    # (2 of 1,130 callbacks once, in a CI run on a slow host where this test alone sheds none, even
    # beside two busy loops on both cores). Starved by the slow connections, most callbacks would be
    # shed or late: at most 1 % and the p99 below.
    assert len(shed) <= len(latencies) // 100, f"{len(shed)} of {len(latencies)} callbacks shed"
    assert p99 < P99_BUDGET_MS
    assert trickler.closed_by_server >= TRICKLING  # each slow request was cut off at the read deadline
    log = server.log()
    deadline = time.monotonic() + 5  # the callback lines reach the log within a flush interval
    while log.count('"outcome":"shed"') < len(shed) and time.monotonic() < deadline:
        time.sleep(0.1)
        log = server.log()
    assert "Traceback" not in log
    assert log.count('"outcome":"shed"') == len(shed)  # each one recorded and logged as shed


@pytest.mark.integration
def test_idle_connections_cannot_fill_a_worker(serve):
    """Past worker_connections the longest-idle connection makes room: the worker never stops accepting."""
    server = serve(APPEND, workers=1, threads=2, env={"IMHOOK_WORKER_CONNECTIONS": "50"})
    host, port = server.url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(150)]
    try:
        time.sleep(0.5)
        body = json.dumps(sample("C2C.CallbackBeforeSendMsg")).encode()
        results = [post_callback(server.callback_url, body, app_id=APP_ID, token=TOKEN, timeout=3) for _ in range(5)]
    finally:
        for sock in idle:
            sock.close()
    assert all(r.ok and r.reply["MsgBody"][0]["MsgContent"]["Text"] == "red packet" + SUFFIX for r in results)
    assert max(r.elapsed_ms for r in results) < 1000
