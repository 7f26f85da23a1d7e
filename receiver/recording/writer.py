"""The recorder: a Receiver observer that only enqueues, and a writer thread that batches inserts.

The reply path pays for one `put_nowait` (and, for a rejected request, a counter check). A full
queue never blocks a reply: the callback goes unrecorded, is counted and logged. On a normal
shutdown gunicorn's `worker_exit` hook (and atexit, as a fallback) drains the queue to disk.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core import Outcome
from .capture import record_from_outcome
from .privacy import Policy
from .store import Store

log = logging.getLogger("imhook.recording")

RETENTION_EVERY_SECONDS = 3600.0
OVERFLOW_LOG_EVERY_SECONDS = 10.0
WRITE_RETRIES = (0.2, 0.5, 1.0)
ACTIVE: list["Recorder"] = []  # recorders of this process, for the gunicorn hooks and stats()
_INHERITED: list[Store] = []  # connections inherited across fork(): must never be used or closed
_WAKE = object()  # put by close() so a writer waiting on an empty queue stops waiting


class Recorder:
    """Record every Outcome it is given into a Store, off the reply path."""

    def __init__(self, path: str | Path, policy: Policy = Policy(), *, queue_size: int = 10_000,
                 batch_size: int = 200, flush_interval: float = 0.5, retention_days: float | None = None,
                 max_rejected_per_minute: int = 60, max_rejected_body_bytes: int = 4096,
                 clock: Callable[[], float] = time.time, start: bool = True):
        self.path = Path(path)
        self.policy = policy
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.retention_days = retention_days or None  # 0 / None: keep everything
        self.max_rejected_per_minute, self.max_rejected_body_bytes = max_rejected_per_minute, max_rejected_body_bytes
        self.clock = clock
        self.store = Store(self.path)  # opened here so a bad path stops start-up, not the first write
        self._queue: queue.Queue[Outcome] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.overflow_total = self.written_total = self.failed_total = self.rejected_skipped_total = 0
        self._rejected_minute, self._rejected_in_minute = -1, 0
        self._unlogged_overflow, self._overflow_logged_at = 0, float("-inf")
        self._next_prune = 0.0
        self._closed = False
        if start:
            self.start()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], env: Mapping[str, str] | None = None, **kwargs) -> "Recorder":
        return cls(
            settings["path"], Policy.from_settings(settings, os.environ if env is None else env),
            queue_size=settings["queue_size"], batch_size=settings["batch_size"],
            flush_interval=settings["flush_interval_seconds"], retention_days=settings["retention_days"],
            max_rejected_per_minute=settings["max_rejected_per_minute"],
            max_rejected_body_bytes=settings["max_rejected_body_bytes"], **kwargs,
        )

    # --- the reply path -------------------------------------------------------------------------

    def __call__(self, outcome: Outcome) -> None:
        """Observer: enqueue and return at once."""
        if outcome.error is not None and not self._admit_rejected(outcome.received_at):
            return
        if self._stop.is_set():
            self._lost(1, "recorder already closed")
            return
        try:
            self._queue.put_nowait(outcome)
        except queue.Full:
            self._overflowed()

    def _admit_rejected(self, now: float) -> bool:
        # A flood of bad requests must not fill the disk: at most N rejected records per minute.
        minute = int(now // 60)
        with self._lock:
            if minute != self._rejected_minute:
                if self._rejected_minute >= 0 and self._rejected_in_minute > self.max_rejected_per_minute:
                    log.warning("recording: %d rejected requests over the limit of %d/minute were not recorded",
                                self._rejected_in_minute - self.max_rejected_per_minute,
                                self.max_rejected_per_minute)
                self._rejected_minute, self._rejected_in_minute = minute, 0
            self._rejected_in_minute += 1
            if self._rejected_in_minute <= self.max_rejected_per_minute:
                return True
            self.rejected_skipped_total += 1
            first_over = self._rejected_in_minute == self.max_rejected_per_minute + 1
        if first_over:
            log.warning("recording: over %d rejected requests this minute; the rest of them are counted, "
                        "not recorded", self.max_rejected_per_minute)
        return False

    def _overflowed(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.overflow_total += 1
            self._unlogged_overflow += 1
            if now - self._overflow_logged_at < OVERFLOW_LOG_EVERY_SECONDS:
                return
            count, self._unlogged_overflow, self._overflow_logged_at = self._unlogged_overflow, 0, now
        log.warning("recording queue full (%d places): %d callbacks not recorded (%d in total); raise "
                    "recording.queue_size or check the disk", self._queue.maxsize, count, self.overflow_total)

    def _lost(self, count: int, why: str) -> None:
        with self._lock:
            self.failed_total += count
        log.error("recording: %d callbacks not recorded: %s", count, why)

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> "Recorder":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="imhook-recorder", daemon=True)
            self._thread.start()
            ACTIVE.append(self)
        return self

    def close(self, timeout: float = 15.0) -> bool:
        """Write everything queued, then stop; True if the queue was drained. Safe to call twice."""
        if self._closed:
            return True
        self._stop.set()
        thread = self._thread
        if thread is None and self._queue.qsize():
            self._lost(self._queue.qsize(), "the recorder was closed without ever being started")
        try:
            self._queue.put_nowait(_WAKE)  # a full queue means the writer is not waiting anyway
        except queue.Full:
            pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():  # leave the store to the thread still using it
                self._lost(self._queue.qsize(), f"the writer did not finish within {timeout:g} s")
                return False
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        if self in ACTIVE:
            ACTIVE.remove(self)
        self.store.close()
        return True

    def after_fork(self) -> None:
        """In a forked child (preloaded app): the parent's thread and connection do not exist here."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        # SQLite forbids touching a connection inherited across fork(), closing included: keep the
        # parent's object referenced (never closed) and open a fresh one.
        _INHERITED.append(self.store)
        self.store = Store(self.path)
        self._queue = queue.Queue(maxsize=self._queue.maxsize)
        self._stop, self._lock, self._thread = threading.Event(), threading.Lock(), None
        if self in ACTIVE:
            ACTIVE.remove(self)
        self.start()

    def stats(self) -> dict[str, int]:
        return {"queue_depth": self._queue.qsize(), "overflow_total": self.overflow_total,
                "written_total": self.written_total, "failed_total": self.failed_total,
                "rejected_skipped_total": self.rejected_skipped_total}

    # --- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._prune_if_due()
            batch = self._next_batch()
            if batch:
                self._write(batch)
            elif self._stop.is_set() and self._queue.empty():
                return

    def _next_batch(self) -> list[Outcome]:
        """Wait up to flush_interval for a first item, then gather more for at most that long."""
        try:
            if self._stop.is_set():
                batch = [self._queue.get_nowait()]
            else:
                batch = [self._queue.get(timeout=self.flush_interval)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size:
            try:
                if self._stop.is_set():  # shutting down: take what is there, do not wait
                    batch.append(self._queue.get_nowait())
                else:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return [item for item in batch if item is not _WAKE]

    def _write(self, outcomes: list[Outcome]) -> None:
        records = []
        for outcome in outcomes:
            try:
                records.append(record_from_outcome(outcome, self.policy,
                                                   max_rejected_body=self.max_rejected_body_bytes))
            except Exception:  # a bug in one record must not lose the batch
                log.exception("recording: cannot record a %s callback", outcome.command)
                with self._lock:
                    self.failed_total += 1
        for pause in WRITE_RETRIES + (None,):
            try:
                self.written_total += self.store.insert(records)
                return
            except sqlite3.Error as exc:
                if pause is None:
                    self._lost(len(records), f"write to {self.path} failed: {exc}")
                    return
                log.warning("recording: write to %s failed (%s); retrying in %g s", self.path, exc, pause)
                time.sleep(pause)

    def _prune_if_due(self) -> None:
        now = time.monotonic()
        if self.retention_days is None or now < self._next_prune:
            return
        self._next_prune = now + RETENTION_EVERY_SECONDS
        try:
            deleted = self.store.delete_older_than(self.clock() - self.retention_days * 86400)
        except sqlite3.Error as exc:
            log.warning("recording: retention pass on %s failed: %s", self.path, exc)
            return
        if deleted:
            log.info("recording: deleted %d records older than %g days", deleted, self.retention_days)


def stats() -> dict[str, int]:
    """Counters summed over this process's recorders (for metrics)."""
    total = {"queue_depth": 0, "overflow_total": 0, "written_total": 0, "failed_total": 0,
             "rejected_skipped_total": 0}
    for recorder in list(ACTIVE):
        for key, value in recorder.stats().items():
            total[key] += value
    return total

