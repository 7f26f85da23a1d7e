"""What the watchdog (receiver/watchdog.py) and /readyz see of a Recorder, and what they can do about it.

A mixin of writer.Recorder, kept apart so the writer's module is about writing: restart a writer
thread that died, and measure how long the oldest answered callback has waited to be stored.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("imhook.recording")


class Supervised:
    """The Recorder's health: `supervise` (watchdog, /readyz), `health`, `undrained_seconds`."""

    def supervise(self) -> str | None:
        """Restart a dead writer, log a change of health; return the health (watchdog, /readyz)."""
        self.restart_if_dead()
        reason = self.health()
        if reason and not self._stall_logged:
            log.error("recording: %s", reason)
        elif not reason and self._stall_logged:
            log.warning("recording: drained again")
        self._stall_logged = bool(reason)
        return reason

    def restart_if_dead(self) -> bool:
        """Start a new writer thread if the current one died (the watchdog, /readyz); True if it did."""
        with self._lock:
            thread = self._thread
            if thread is None or thread.is_alive() or self._closed or self._stop.is_set():
                return False
            self.writer_restarts_total += 1
            self.store.reset()  # it died inside a batch: that batch was not stored
            self._beat = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="imhook-recorder", daemon=True)
            self._thread.start()
        log.error("recording: the writer thread had died; restarted (%d restarts)", self.writer_restarts_total)
        return True

    def undrained_seconds(self) -> float:
        """Age of the oldest record not stored yet: being written, queued, only in a retired journal
        file, or in the journal of a dead worker that cannot be imported."""
        now, oldest = self.clock(), self._in_hand
        if self._recover_failing_since is not None:  # dead workers' journals wait to be imported
            oldest = self._recover_failing_since if oldest is None else min(oldest, self._recover_failing_since)
        try:
            head = self._queue.peek()
        except IndexError:
            head = None
        if head is not None:
            oldest = head[2].received_at if oldest is None else min(oldest, head[2].received_at)
        journal = self.journal
        if journal is not None and journal.retired:
            try:
                retired_at = journal.retired[0].retired_at
            except IndexError:
                retired_at = None
            if retired_at is not None:
                oldest = retired_at if oldest is None else min(oldest, retired_at)
        return 0.0 if oldest is None else max(0.0, now - oldest)

    def health(self) -> str | None:
        """None while records drain; else why not (for /readyz)."""
        if self._closed or self._thread is None:
            return None
        if not self._thread.is_alive() and not self._stop.is_set():
            return "the recording writer thread is dead"
        age = self.undrained_seconds()
        if age > self.stall_seconds:
            stuck = time.monotonic() - self._beat
            why = f"; the writer has not finished a turn for {stuck:.0f} s" if stuck > self.stall_seconds else ""
            store_problem = self.store.problem()  # e.g. PostgreSQL down: the records wait in the journal
            why += f"; {store_problem}" if store_problem else ""
            return (f"recording has not drained for {age:.0f} s (over recording.stall_seconds = "
                    f"{self.stall_seconds:g}): {self._in_hand_count} being written, {len(self._queue)} queued, "
                    f"{len(self.journal.retired) if self.journal else 0} journal files waiting{why}")
        return None

