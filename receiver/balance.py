"""Keep-alive connections spread evenly over the workers: an over-full worker closes its excess.

The IM holds a few keep-alive connections to the callback URL and sends every callback over them.
Which worker serves a connection is settled once, when it is accepted: with `reuse_port` the kernel
picks by a hash of its addresses, so 16 connections split 8/8 in one run of five, and 5/11 or worse
in another (benchmarks/http.py reports the split). The worker with 11 or 12 then queues over twice
as long as the other while both are busy, and its callbacks make the p99 (issue 16: the rounds that
missed p99 < 25 ms were mostly such splits). Without `reuse_port` it is worse: whichever worker
woke first took every connection of a burst.

So the workers of one gunicorn master share a small table in memory (receiver/worker_table.py, made
in the master before the fork): each worker's open connections and when it last said so. A worker
that holds more than its fair share (the total over the live workers, rounded up) answers that many
requests with
`Connection: close`, then weighs again CHECK_SECONDS later; the client opens new connections,
which the kernel spreads over the workers again, and the split evens out within a few checks. Nothing is
lost: the reply is whole, and HTTP/1.1 clients open a new connection for the next request after
`Connection: close`. A worker that has not written its row for STALE_SECONDS (stuck, or gone)
does not count, so the others never wait on it. One worker alone never closes anything.

IMHOOK_BALANCE_CONNECTIONS=0 turns it off (docs/configuration.md).

Standard library only: gunicorn imports this module in the master (receiver/worker.py).
"""

from __future__ import annotations

import os
import time

from .worker_table import SLOTS, WorkerTable  # noqa: F401  (SLOTS: the rows a worker's age wraps around)

CHECK_SECONDS = 0.1  # how often a worker writes its row and weighs its share
STALE_SECONDS = 2.0  # a row older than this is not counted (a worker's loop writes at least once a second)


def enabled() -> bool:
    return os.environ.get("IMHOOK_BALANCE_CONNECTIONS", "1").strip().lower() not in ("0", "false", "no", "off")


class Balancer:
    """One worker's side: write its row, and say when a reply should close its connection."""

    def __init__(self, table: WorkerTable | None, slot: int) -> None:
        self.table = table
        self.slot = slot
        self._next_check = 0.0
        self.to_close = 0  # connections over this worker's share at the last check; each reply takes one
        self.closed = 0  # connections closed to even out the split

    def tick(self, connections: int, now: float | None = None) -> None:
        """Called from the worker's loop (often): at most every CHECK_SECONDS, write the row and
        decide whether the next reply closes its connection."""
        if self.table is None:
            return
        now = time.monotonic() if now is None else now
        if now < self._next_check:
            return
        self._next_check = now + CHECK_SECONDS
        self.table.write_connections(self.slot, connections, now)
        fair, live = self.table.fair_share(now, STALE_SECONDS)
        self.to_close = connections - fair if live > 1 and connections > fair else 0

    def take_close(self) -> bool:
        """Whether this reply should carry `Connection: close` (as many as the last check asked for)."""
        if self.to_close <= 0:
            return False
        self.to_close -= 1  # request threads race here: at worst one close more, which the next check evens
        self.closed += 1
        return True

    def stop(self) -> None:
        """A worker that stops serving: its row is forgotten and no longer written."""
        self.forget()
        self.table = None
        self.to_close = 0

    def forget(self) -> None:
        """A worker that stops: its row no longer counts."""
        if self.table is not None:
            self.table.forget_connections(self.slot)
