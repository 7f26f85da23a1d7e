"""The sender: one thread per imhook (elected by a lock file) posts outbox rows downstream.

Every gunicorn worker starts a Forwarder; only the one holding an exclusive `flock` on
`<outbox>.lock` sends, so two workers never send the same row. The kernel drops the lock when
its holder dies (even by SIGKILL), and another worker takes over within `poll_seconds`.

The thread is supervised (receiver/watchdog.py calls `supervise`): a row whose sending fails with
an error of its own (not the downstream's) is quarantined (outbox.py) instead of blocking its
conversation for ever; a thread that died, or that has made no progress for `stall_seconds` (a
delivery hanging past every timeout), is replaced by a new thread with a new pool, and the old one
ends when it returns. The replacement may send again what the old thread had in flight: delivery
is at least once, and the event id header lets the downstream drop a repeat.

With a PostgreSQL outbox (pgoutbox.py, `outbox.shared`) there is no lock file: every worker of
every instance sends, each claiming the heads it sends for `forwarding.lease_seconds`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from pathlib import Path

import requests

from ... import watchdog
from ...jsonout import storable
from ...threadnames import name_this_thread
from . import events
from .events import Target
from .outbox import Outbox, Row

log = logging.getLogger("imhook.forward")
PURGE_EVERY_SECONDS = 60.0
STALL_SECONDS = 120.0  # default of forwarding.stall_seconds: no progress this long, the sender is replaced


@dataclass(frozen=True)
class Result:
    """What one delivery attempt came to: delivered, retry later, or give up."""

    ok: bool
    permanent: bool = False
    error: str = ""
    kind: str = ""  # for metrics: "connect", "timeout", "http_5xx", "http_4xx", ...


class LeaderLock:
    """An exclusive, non-blocking flock on a file; released by the kernel when the process dies."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


class Deliverer:
    """POST one row to one target, signed when the target has a secret."""

    def __init__(self, user_agent: str = "imhook-forwarder"):
        self.user_agent = user_agent
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def headers(self, target: Target, row: Row, timestamp: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": self.user_agent,
            events.TIMESTAMP_HEADER: timestamp,
            events.EVENT_ID_HEADER: events.event_id(row.dedupe),
            events.COMMAND_HEADER: row.command,
            events.APP_ID_HEADER: row.app_id,
            events.ATTEMPT_HEADER: str(row.attempts + 1),
        }
        if target.secret is not None:
            headers[events.SIGNATURE_HEADER] = events.sign(target.secret, timestamp, row.body)
        return headers

    def __call__(self, target: Target, row: Row) -> Result:
        headers = self.headers(target, row, str(int(time.time())))
        try:
            response = self._session().post(target.url, data=row.body, headers=headers,
                                            timeout=target.timeout, allow_redirects=False)
        except requests.Timeout:
            return Result(False, error=f"no answer within {target.timeout:g} s", kind="timeout")
        except requests.ConnectionError as exc:
            return Result(False, error=f"cannot connect: {type(exc).__name__}", kind="connect")
        except requests.RequestException as exc:
            return Result(False, error=f"{type(exc).__name__}", kind="other")
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return Result(True)
        permanent = events.is_permanent(status)
        return Result(False, permanent=permanent, error=f"HTTP {status}", kind=f"http_{status // 100}xx")


class Forwarder:
    """Background thread: while leader, send due heads in parallel, mark them, repeat."""

    def __init__(self, outbox: Outbox, targets: Sequence[Target], settings: dict, *,
                 deliver: Callable[[Target, Row], Result] | None = None, stats=None):
        self.outbox = outbox
        self.targets = {t.name: t for t in targets}
        self.settings = settings
        self.retry = settings["retry"]
        if deliver is None:  # by the target's kind: HTTP here, brokers in brokers.py
            from .brokers import KindDeliverer

            deliver = KindDeliverer()
            deliver.check(targets)
        self.deliver = deliver
        self.stats = stats  # receiver.ops.metrics.ForwardStats or None
        # A shared outbox hands out claims itself: every sender sends, no leader to elect.
        self.lock = None if outbox.shared else LeaderLock(Path(f"{outbox.path}.lock"))
        self.stall_seconds = settings.get("stall_seconds", STALL_SECONDS)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._generation = 0  # a replaced thread sees a newer one and ends
        self._in_flight: set[int] = set()  # row ids being sent: a replacement thread leaves them alone
        self._pool, self._thread = self._new_thread()
        self._beat = time.monotonic()  # last progress: a round begun or a row finished
        self._stall_logged = False
        self._supervise_lock = threading.Lock()  # the watchdog and /readyz may both look at once
        self.restarts_total = 0
        self._last_purge = 0.0

    def _new_thread(self) -> tuple[ThreadPoolExecutor, threading.Thread]:
        pool = ThreadPoolExecutor(max_workers=self.settings["concurrency"], thread_name_prefix="imhook-forward",
                                  initializer=name_this_thread)
        thread = threading.Thread(target=self._run, args=(self._generation, pool), name="imhook-forwarder",
                                  daemon=True)
        return pool, thread

    def start(self) -> "Forwarder":
        self._beat = time.monotonic()
        self._thread.start()
        watchdog.watch(self)
        return self

    def supervise(self) -> str | None:
        """Replace a dead or stuck sender thread; return why it is not healthy (None: it is)."""
        with self._supervise_lock:
            return self._supervise()

    def _supervise(self) -> str | None:
        if self._stop.is_set() or self._thread.ident is None:  # stopped, or not started yet
            return None
        idle = time.monotonic() - self._beat
        if self._thread.is_alive() and idle <= self.stall_seconds:
            if self._stall_logged:
                log.warning("forwarding: the sender is making progress again")
                self._stall_logged = False
            return None
        why = ("the forward sender thread had died" if not self._thread.is_alive() else
               f"the forward sender made no progress for {idle:.0f} s (forwarding.stall_seconds = "
               f"{self.stall_seconds:g})")
        self._restart(why)
        return None if self._thread.is_alive() else why

    def _restart(self, why: str) -> None:
        old_pool = self._pool
        self._generation += 1
        self._pool, self._thread = self._new_thread()
        self._beat = time.monotonic()
        self._thread.start()
        old_pool.shutdown(wait=False, cancel_futures=True)  # its stuck thread ends when its call returns
        self.restarts_total += 1
        self._stall_logged = True
        self._count("sender_restart", "")
        log.error("forwarding: %s; replaced by a new thread (%d restarts)", why, self.restarts_total)

    def wake(self) -> None:
        """A row was just added in this process: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        watchdog.unwatch(self)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.lock is not None:
            self.lock.release()

    def _run(self, generation: int = 0, pool: ThreadPoolExecutor | None = None) -> None:
        poll = self.settings["poll_seconds"]
        while not self._stop.is_set() and generation == self._generation:
            self._beat = time.monotonic()
            try:
                wait = self.step(pool) if self.lock is None or self.lock.try_acquire() else poll
            except Exception:  # a broken file or a bug must not kill the thread for good
                if generation != self._generation:
                    return  # replaced meanwhile (its pool's futures were cancelled): end quietly
                log.exception("forwarder step failed")
                wait = poll
            self._wake.wait(wait)
            self._wake.clear()

    def step(self, pool: ThreadPoolExecutor | None = None) -> float:
        """Send one round of due heads; return how long to wait before the next round."""
        poll = self.settings["poll_seconds"]
        # A shared outbox's claims are leases that run while rows wait for a pool thread: claim no
        # more than the pool starts at once. The leader of a SQLite outbox may read ahead.
        batch = self.settings["concurrency"] * (1 if self.outbox.shared else 4)
        heads = self.outbox.claim(self.targets, limit=batch)
        rows = [row for row in heads if row.id not in self._in_flight]
        if rows:
            self._send_all(rows, pool or self._pool)
            return 0.0  # more may be due right away: the next rows of these conversations
        if heads:
            return poll  # all still in flight on a replaced thread: look again later, no busy loop
        self._purge()
        due = self.outbox.next_due(self.targets)
        return poll if due is None else min(poll, max(0.0, due - self.outbox.clock()))

    def _send_all(self, rows: list[Row], pool: ThreadPoolExecutor) -> None:
        """Send the rows in parallel. With a shared outbox, renew the claims of those still being sent
        every third of the lease: a delivery that outlasts the lease (a downstream trickling its
        answer past timeout_seconds) is not handed to another sender meanwhile."""
        futures = [pool.submit(self._send_or_set_aside, row) for row in rows]
        renew = getattr(self.outbox, "renew", None)
        while True:
            _, sending = wait_for(futures, timeout=None if renew is None else self.outbox.lease_seconds / 3)
            if not sending:
                break
            renew([row.id for row, future in zip(rows, futures) if future in sending])
        for future in futures:
            future.result()  # a bug in _send_or_set_aside surfaces in this round, as before

    def _send_or_set_aside(self, row: Row) -> None:
        """Send a row; one that fails for a reason of its own (not the downstream's) is quarantined."""
        self._in_flight.add(row.id)
        try:
            self._send(row)
        except Exception as exc:
            error = storable(f"{type(exc).__name__}: {str(exc)[:300]}")
            try:
                self.outbox.quarantine(row.id, error)
            except Exception:  # the outbox itself fails: the row stays pending, tried next round
                log.exception("forwarding: cannot send outbox row %d, nor set it aside", row.id)
                return
            self._count("quarantined", row.target)
            log.error("forwarding: outbox row %d (%s to %s) cannot be sent and was quarantined: %s",
                      row.id, row.command, row.target, error)
        finally:
            self._in_flight.discard(row.id)
            self._beat = time.monotonic()

    def _send(self, row: Row) -> None:
        target = self.targets[row.target]
        result = self.deliver(target, row)
        if result.ok:
            self.outbox.delivered(row.id)
            self._count("delivered", target.name)
            return
        self._count("failed", target.name, result.kind)
        attempts = row.attempts + 1
        if result.permanent or (self.retry["max_attempts"] and attempts >= self.retry["max_attempts"]):
            log.error("forwarding %s to %s gave up after %d attempts: %s",
                      row.command, target.name, attempts, result.error)
            self.outbox.dead(row.id, result.error)
            self._count("dead", target.name)
            return
        delay = events.backoff_seconds(attempts, self.retry["base_seconds"], self.retry["cap_seconds"])
        log.warning("forwarding %s to %s failed (attempt %d: %s); retry in %.1f s",
                    row.command, target.name, attempts, result.error, delay)
        self.outbox.retry_later(row.id, delay, result.error)

    def _count(self, what: str, target: str, kind: str = "") -> None:
        if self.stats is not None:
            self.stats.count(what, target, kind)

    def _purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge >= PURGE_EVERY_SECONDS:
            self._last_purge = now
            self.outbox.purge(self.settings["keep_delivered_hours"] * 3600)


# Forwarders running in this process, so gunicorn's worker_exit hook can stop them cleanly.
RUNNING: list[Forwarder] = []


def stop_all() -> None:
    while RUNNING:
        RUNNING.pop().stop()
