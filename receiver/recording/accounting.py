"""What the Recorder (writer.py) counts and logs when a callback cannot take the usual path.

A mixin of writer.Recorder, kept apart so the writer's module is about writing: rejected requests
over their per-minute limit, a full queue, a full journal, a store that is away, a journal that
cannot be written, records lost. Each is counted, and logged at most every
OVERFLOW_LOG_EVERY_SECONDS so a flood does not become a flood of log lines.
"""

from __future__ import annotations

import logging
import time

from .pgstore import StoreUnavailable

log = logging.getLogger("imhook.recording")

OVERFLOW_LOG_EVERY_SECONDS = 10.0


class Accounting:
    """The Recorder's counters and rate-limited complaints."""

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

    def _overflowed(self, *, kept: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self.overflow_total += 1
            self.journal_spilled_total += kept
            self._unlogged_overflow += 1
            if now - self._overflow_logged_at < OVERFLOW_LOG_EVERY_SECONDS:
                return
            count, self._unlogged_overflow, self._overflow_logged_at = self._unlogged_overflow, 0, now
        fate = "kept in the journal, stored later" if kept else "not recorded"
        log.warning("recording queue full (%d places): %d callbacks %s (%d in total); raise "
                    "recording.queue_size or check the disk", self._queue.maxsize, count, fate, self.overflow_total)

    def _journal_full(self, *, queued: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self.journal_full_total += 1
            self.failed_total += not queued
            self._unlogged_full += 1
            if now - self._full_logged_at < OVERFLOW_LOG_EVERY_SECONDS:
                return
            count, self._unlogged_full, self._full_logged_at = self._unlogged_full, 0, now
        log.error("recording: the journal in %s holds %d bytes (recording.journal_max_bytes = %d) and the "
                  "store %s has not taken them: %d callbacks not journaled (queued in memory, lost if the "
                  "queue is full or the worker dies; %d in total)", self.journal_dir, self.journal.bytes,
                  self.journal.max_bytes, self.where, count, self.journal_full_total)

    def _store_down(self, exc: BaseException, what: str) -> bool:
        """Log that the store is unavailable at most every OVERFLOW_LOG_EVERY_SECONDS; True if it is
        (a StoreUnavailable: PostgreSQL down), so the caller logs nothing more."""
        if not isinstance(exc, StoreUnavailable):
            return False
        now = time.monotonic()
        if now - self._down_logged_at >= OVERFLOW_LOG_EVERY_SECONDS:
            self._down_logged_at = now
            waiting = self.journal.bytes if self.journal is not None else 0
            log.error("recording: %s: %s; records wait in the journal %s (%d bytes) and are stored when it "
                      "is back", what, exc, self.journal_dir, waiting)
        return True

    def _journal_failed(self, exc: OSError) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._journal_error_logged_at < OVERFLOW_LOG_EVERY_SECONDS:
                return
            self._journal_error_logged_at = now
        log.error("recording: cannot append to the journal in %s (%s): callbacks are queued in memory only, "
                  "and lost if this worker dies", self.journal_dir, exc)

    def _lost(self, count: int, why: str) -> None:
        with self._lock:
            self.failed_total += count
        log.error("recording: %d callbacks not recorded: %s", count, why)
