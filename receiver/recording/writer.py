"""The recorder: a Receiver observer that journals and enqueues, and a writer thread that batches inserts.

The reply path turns the outcome into a Record (privacy applied), appends its line to this
process's journal (journal.py: one os.write, no fsync) and puts it on a bounded queue. The writer
thread inserts queued records in batches and, every few seconds, rotates the journal and deletes
the files it has caught up with. So a worker killed at any instant loses nothing it answered: its
journal is imported by the next worker that starts or rotates. A full queue never blocks a reply:
the record stays in the journal and is stored when its file is retired (counted, logged). On a
normal shutdown gunicorn's `worker_exit` hook (and atexit, as a fallback) drains the queue to disk.

With `journal: false` the reply path only enqueues (the record is built on the writer thread), and
a full queue or a killed worker loses records, as before the journal existed.

The writer thread is supervised (health.py, receiver/watchdog.py): a record the store refuses goes to the quarantine
(quarantine.py) and the thread goes on; an error in a turn is logged and the next turn runs; a
thread that died anyway is restarted; a pipeline that has not drained for `stall_seconds` makes
/readyz answer 503 (`health`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import watchdog
from ..core import Outcome
from ..errors import ConfigError
from ..jsonout import storable
from ..threadnames import name_this_thread
from . import user_index
from .accounting import Accounting
from .capture import record_from_outcome
from .health import Supervised
from .inbox import Inbox, Queued
from .journal import Journal, JournalClosed, recover
from .locations import JOURNAL_MAX_BYTES, quarantine_path, store_url
from .locations import journal_dir as settings_journal_dir
from .pgstore import PgStore, StoreUnavailable
from .privacy import Policy
from .quarantine import Quarantine, store_or_set_aside
from .record import Record, encode
from .store import Store

log = logging.getLogger("imhook.recording")

RETENTION_EVERY_SECONDS = 3600.0
# The user index (user_index.py): a minute of rows sorted at once shares its pages among each user's
# rows; with several workers each writer's turn comes at its own time, so rows wait less than this.
INDEX_USERS_EVERY_SECONDS = 60.0
ROTATE_EVERY_SECONDS = 5.0  # journal rotation, and the search for journals of dead processes
WRITE_RETRIES = (0.2, 0.5, 1.0)
STALL_SECONDS = 30.0  # default of recording.stall_seconds: undrained this long, /readyz says 503
ERROR_PAUSE_SECONDS = 1.0  # after a turn of the writer failed: no hot loop on a lasting fault
ACTIVE: list["Recorder"] = []  # recorders of this process, for the gunicorn hooks and stats()
_INHERITED: list[Store] = []  # connections inherited across fork(): must never be used or closed


class Recorder(Accounting, Supervised):
    """Record every Outcome it is given into a Store; only the journal line is written on the reply path."""

    def __init__(self, path: str | Path, policy: Policy = Policy(), *, queue_size: int = 10_000,
                 batch_size: int = 1000, flush_interval: float = 0.5, retention_days: float | None = None,
                 max_rejected_per_minute: int = 60, max_rejected_body_bytes: int = 4096,
                 journal: bool = True, journal_dir: str | Path | None = None,
                 rotate_seconds: float = ROTATE_EVERY_SECONDS, stall_seconds: float = STALL_SECONDS,
                 quarantine_max_bytes: int | None = None, store: str | None = None,
                 journal_max_bytes: int | None = JOURNAL_MAX_BYTES,
                 index_users_seconds: float = INDEX_USERS_EVERY_SECONDS,
                 clock: Callable[[], float] = time.time, start: bool = True):
        self.path = Path(path)
        self.store_url = store  # a postgresql:// URL (pgstore.py), or None: the SQLite file at `path`
        self.policy = policy
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.retention_days = retention_days or None  # 0 / None: keep everything
        self.max_rejected_per_minute, self.max_rejected_body_bytes = max_rejected_per_minute, max_rejected_body_bytes
        self.clock = clock
        self.store = self._open_store()  # opened here so a bad path stops start-up, not the first write
        self.where = self.store.where  # for logs: a URL's password masked
        self.stall_seconds = stall_seconds
        # Beside the database by default (beside the config with PostgreSQL); removed again when the
        # last worker leaves it empty.
        self._default_journal_dir = Path(settings_journal_dir({"path": str(self.path)}, store)
                                         or self.path.with_name(self.path.name + ".journal"))
        self.journal_dir = Path(journal_dir) if journal_dir else self._default_journal_dir
        self.journal_max_bytes = journal_max_bytes
        self.quarantine = Quarantine(quarantine_path(self.path, store, self.journal_dir), **(
            {"max_bytes": quarantine_max_bytes} if quarantine_max_bytes is not None else {}))
        self.rotate_seconds = rotate_seconds
        try:
            self.journal = self._open_journal() if journal else None
        except ConfigError:
            self.store.close()
            raise
        self._queue = Inbox(queue_size)
        self._stop, self._batch_due = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.overflow_total = self.written_total = self.failed_total = self.rejected_skipped_total = 0
        self.journal_spilled_total = self.journal_recovered_total = self.journal_full_total = 0
        self.quarantined_total = self.writer_restarts_total = self.writer_errors_total = 0
        self._beat = time.monotonic()  # the writer's last turn: a stuck writer
        self._in_hand: float | None = None  # received_at of the oldest record of the batch being written
        self._in_hand_count = 0
        self._recover_failing_since: float | None = None  # journals of dead workers not importable since
        self._stall_logged = False
        self._processed = 0  # highest journal seq the writer has stored (or handed back to the journal)
        self._next_rotation = 0.0  # set when the writer starts
        self._journal_error_logged_at = float("-inf")
        self._rejected_minute, self._rejected_in_minute = -1, 0
        self._unlogged_overflow, self._overflow_logged_at = 0, float("-inf")
        self._unlogged_full, self._full_logged_at = 0, float("-inf")
        self._down_logged_at = float("-inf")
        self._next_prune = 0.0
        self.index_users_seconds = index_users_seconds
        self._next_index_users = 0.0  # set when the writer starts
        self.user_index_failures_total = 0
        self._closed = False
        if start:
            self.start()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], env: Mapping[str, str] | None = None, **kwargs) -> "Recorder":
        url = store_url(settings, os.environ if env is None else env)
        return cls(
            settings["path"], Policy.from_settings(settings, os.environ if env is None else env),
            queue_size=settings["queue_size"], batch_size=settings["batch_size"],
            flush_interval=settings["flush_interval_seconds"], retention_days=settings["retention_days"],
            max_rejected_per_minute=settings["max_rejected_per_minute"],
            max_rejected_body_bytes=settings["max_rejected_body_bytes"],
            journal=settings["journal"], journal_dir=settings_journal_dir(settings, url),
            stall_seconds=settings.get("stall_seconds", STALL_SECONDS), store=url,
            journal_max_bytes=settings.get("journal_max_bytes", JOURNAL_MAX_BYTES), **kwargs,
        )

    def _open_store(self) -> Store | PgStore:
        return Store(self.path) if self.store_url is None else PgStore(self.store_url)

    # --- the reply path -------------------------------------------------------------------------

    def __call__(self, outcome: Outcome) -> None:
        """Observer: journal and enqueue, never wait on the writer."""
        if outcome.error is not None and not self._admit_rejected(outcome.received_at):
            return
        if self._stop.is_set():
            self._lost(1, "recorder already closed")
            return
        if self.journal is None:
            if not self._queue.put((0, None, outcome)):
                self._overflowed(kept=False)
            self._wake_if_batch_full()
            return
        record = self._record(outcome)
        if record is not None:
            self.keep(record)

    def keep(self, record: Record) -> None:
        """Journal and enqueue a record (the reply path, with the journal on)."""
        if self.journal.full:  # the database has been away for long: the disk stops here
            self._journal_full(queued=self._queue.put((0, None, record)))
            self._wake_if_batch_full()
            return
        self._journal_and_enqueue(record, encode(record))

    def _journal_and_enqueue(self, record: Record, line: bytes) -> None:
        journal, full = self.journal, False
        with journal.lock:  # seq order = queue order, and a rotation falls between two; no I/O inside
            try:
                seq, key, file = journal.reserve()
            except JournalClosed:  # closed since the check above: the writer has finished
                seq = None
            else:
                if self._queue.put((seq, key, record)):
                    journal.queued(seq)
                else:
                    full = True
                    journal.spilled(seq)
        if seq is None:
            self._lost(1, "recorder already closed")
            return
        try:
            journal.write(file, seq, key, line)  # before the reply goes out: a kill now loses nothing
        except OSError as exc:  # disk full, folder removed: the queue still has it, unless it was full
            self._journal_failed(exc)
            if full:
                self._lost(1, f"the queue was full and the journal cannot be written: {exc}")
                return
        self._wake_if_batch_full()
        if full:
            self._overflowed(kept=True)

    def _wake_if_batch_full(self) -> None:
        if len(self._queue) >= self.batch_size:
            self._batch_due.set()

    def _record(self, outcome: Outcome) -> Record | None:
        try:
            return record_from_outcome(outcome, self.policy, max_rejected_body=self.max_rejected_body_bytes)
        except Exception:  # a bug in one record must not lose the others
            log.exception("recording: cannot record a %s callback", outcome.command)
            with self._lock:
                self.failed_total += 1
            return None

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> "Recorder":
        if self._thread is None:
            self._beat = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="imhook-recorder", daemon=True)
            self._thread.start()
            ACTIVE.append(self)
            watchdog.watch(self)
        return self

    def close(self, timeout: float = 15.0) -> bool:
        """Write everything queued, then stop; True if the queue was drained. Safe to call twice."""
        if self._closed:
            return True
        self._stop.set()
        self._batch_due.set()
        with self._lock:  # not mid-restart (health.restart_if_dead): a thread made but not started yet
            thread = self._thread
        if thread is None:
            self._close_unstarted()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():  # leave the store to the thread still using it
                self._lost(len(self._queue), f"the writer did not finish within {timeout:g} s"
                           + (f" (they are in the journal {self.journal_dir}, stored at the next start)"
                              if self.journal else ""))
                return False
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        if self in ACTIVE:
            ACTIVE.remove(self)
        watchdog.unwatch(self)
        self.store.close()
        return True

    def _close_unstarted(self) -> None:
        waiting = len(self._queue)
        if self.journal is None:
            if waiting:
                self._lost(waiting, "the recorder was closed without ever being started")
            return
        self.journal.abandon()  # unlocked: the next recorder to start stores what it holds
        if waiting:
            log.warning("recording: closed without ever being started; %d callbacks stay in the journal %s "
                        "and are stored when a recorder next starts", waiting, self.journal_dir)

    def after_fork(self) -> None:
        """In a forked child (preloaded app): the parent's thread, connection and journal are not ours."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        # SQLite forbids touching a connection inherited across fork(), closing included: keep the
        # parent's object referenced (never closed) and open a fresh one.
        _INHERITED.append(self.store)
        self.store = self._open_store()
        if self.journal is not None:
            self.journal.forget()  # our copies of the parent's descriptors; its files stay its own
            self.journal = self._open_journal()
        self._processed = 0
        self._queue = Inbox(self._queue.maxsize)
        self._stop, self._batch_due, self._lock = threading.Event(), threading.Event(), threading.Lock()
        self._thread = None
        if self in ACTIVE:
            ACTIVE.remove(self)
        self.start()

    def stats(self) -> dict[str, int]:
        return {"queue_depth": len(self._queue), "overflow_total": self.overflow_total,
                "written_total": self.written_total,
                "failed_total": self.failed_total + (self.journal.lost_total if self.journal else 0),
                "rejected_skipped_total": self.rejected_skipped_total,
                "journal_spilled_total": self.journal_spilled_total,
                "journal_recovered_total": self.journal_recovered_total,
                "journal_full_total": self.journal_full_total,
                "quarantined_total": self.quarantined_total + (self.journal.quarantined_total if self.journal else 0),
                "writer_restarts_total": self.writer_restarts_total,
                "user_index_failures_total": self.user_index_failures_total,
                "undrained_seconds": int(self.undrained_seconds())}

    def _open_journal(self) -> Journal:
        try:
            return Journal(self.journal_dir, remove_folder=self.journal_dir == self._default_journal_dir,
                           quarantine=self.quarantine, max_bytes=self.journal_max_bytes)
        except OSError as exc:
            raise ConfigError(f"cannot open the recording journal in {self.journal_dir}: {exc}") from None

    # --- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        name_this_thread()
        self._recover()  # journals left by workers that died, before this one adds its own rows
        self._next_rotation = time.monotonic() + self.rotate_seconds
        # Spread over the first interval: workers started together take turns at the index.
        self._next_index_users = time.monotonic() + self.index_users_seconds * (0.5 + (os.getpid() % 100) / 200)
        while True:
            self._beat = time.monotonic()
            try:
                done = self._turn()
            except Exception:  # a bug in one turn must not end recording: log, count, pause, go on
                self.writer_errors_total += 1
                log.exception("recording: a turn of the writer failed (%d so far); going on", self.writer_errors_total)
                self._stop.wait(ERROR_PAUSE_SECONDS)
                done = self._stop.is_set() and not self._queue
            if done:
                break
        if self.journal is not None:
            self._close_journal()

    def _turn(self) -> bool:
        """One round: prune, write a batch, tend the journal; True when closed and drained."""
        self._prune_if_due()
        batch = self._next_batch()
        if batch:
            self._write(batch)
        if self.journal is not None:
            self._tend_journal()
        self._index_users_if_due()
        return not batch and self._stop.is_set() and not self._queue

    def _next_batch(self) -> list[Queued]:
        """What is queued, after letting a batch fill for at most flush_interval."""
        if not self._stop.is_set() and len(self._queue) < self.batch_size:
            # Sleep while the batch fills instead of waking for every record: each wake-up costs
            # the reply threads a GIL hand-off. A full batch or close() cuts the wait short.
            self._batch_due.wait(self.flush_interval)
        self._batch_due.clear()
        return self._queue.take(self.batch_size)

    def _write(self, batch: list[Queued]) -> None:
        self._in_hand, self._in_hand_count = min(item.received_at for _, _, item in batch), len(batch)
        try:
            self._write_batch(batch)
        except Exception as exc:  # a bug: the journal keeps the batch, stored (or set aside) when its file retires
            self._write_failed([seq for seq, _, _ in batch], exc)
            self._processed = max(self._processed, *(seq for seq, _, _ in batch))
            raise  # the turn logs it and the writer goes on
        finally:
            self._in_hand, self._in_hand_count = None, 0

    def _write_batch(self, batch: list[Queued]) -> None:
        records, keys, seqs = [], [], []
        for seq, key, item in batch:
            record = self._record(item) if isinstance(item, Outcome) else item
            if record is not None:
                records.append(record)
                keys.append(key)
                seqs.append(seq)
        for pause in WRITE_RETRIES + (None,):
            try:
                inserted, _ = store_or_set_aside(self.store, records, keys, self.quarantine, where="writer",
                                                 on_set_aside=self._set_aside)
                self.written_total += inserted
                break
            except (sqlite3.Error, OSError) as exc:  # the database, or the quarantine file, is unavailable
                # PostgreSQL down: retrying within a second is no use; the journal keeps what it holds.
                unavailable = isinstance(exc, StoreUnavailable) and all(seqs)
                if pause is None or unavailable:
                    self._write_failed(seqs, exc)
                    break
                log.warning("recording: write to %s failed (%s); retrying in %g s", self.where, exc, pause)
                time.sleep(pause)
        self._processed = max(self._processed, *(seq for seq, _, _ in batch))

    def _set_aside(self, record: Record, exc: BaseException, kept: bool) -> None:
        with self._lock:
            if kept:
                self.quarantined_total += 1
            else:
                self.failed_total += 1
        fate = f"kept in the quarantine {self.quarantine.path}" if kept else "LOST: the quarantine is full"
        log.error("recording: a %s record (request %s) cannot be stored; %s: %s: %s", record.command,
                  storable(record.request_id) or "-", fate, type(exc).__name__, storable(str(exc)[:200]))

    def _write_failed(self, seqs: list[int], exc: Exception) -> None:
        journaled = [seq for seq in seqs if seq]
        if journaled:  # the journal still has them: retried when their file is retired
            self.journal.failed(journaled)
            if not self._store_down(exc, "cannot write"):
                log.error("recording: write to %s failed (%s); %d records stay in the journal and are retried "
                          "within %g s", self.where, exc, len(journaled), self.rotate_seconds)
        if len(journaled) < len(seqs):
            self._lost(len(seqs) - len(journaled), f"write to {self.where} failed: {exc}")

    # --- the journal, on the writer thread ----------------------------------------------------------

    def _tend_journal(self) -> None:
        """Rotate every few seconds, delete what is stored, import the journals of dead workers."""
        try:
            now = time.monotonic()
            if now >= self._next_rotation:
                self._next_rotation = now + self.rotate_seconds
                self.journal.rotate()
                self._recover()
            if self.journal.retired:
                self.written_total += self.journal.retire(self.store, self._processed)
        except (OSError, sqlite3.Error) as exc:  # the files stay; the next turn tries again
            if not self._store_down(exc, "journal upkeep"):
                log.warning("recording: journal upkeep in %s failed: %s", self.journal_dir, exc)
        except Exception:  # a bug here must not stop the writer
            log.exception("recording: journal upkeep in %s failed", self.journal_dir)

    def _recover(self) -> None:
        if self.journal is None:
            return
        try:
            found = recover(self.journal_dir, self.store, quarantine=self.quarantine)
        except Exception as exc:  # the database or disk, or a bug: the files stay for the next try
            # Until an import succeeds, those records count as undrained (health.py): never silent.
            self._recover_failing_since = self._recover_failing_since or self.clock()
            bug = not isinstance(exc, (OSError, sqlite3.Error))
            if self._store_down(exc, "importing the journals of dead workers"):
                return
            log.warning("recording: importing the journals left in %s failed (tried again later): %s: %s",
                        self.journal_dir, type(exc).__name__, exc, exc_info=bug)
            return
        self._recover_failing_since = None
        self.journal_recovered_total += sum(result.inserted for result in found.values())
        self.quarantined_total += sum(result.quarantined for result in found.values())
        self.failed_total += sum(result.lost for result in found.values())

    def _close_journal(self) -> None:
        self._recover()  # a worker that died just before the shutdown
        try:
            self.written_total += self.journal.close(self.store, self._processed)
        except (OSError, sqlite3.Error) as exc:
            log.error("recording: the journal in %s is kept (stored at the next start): %s", self.journal_dir, exc)
        except Exception:
            log.exception("recording: the journal in %s is kept (stored at the next start)", self.journal_dir)

    def _index_users_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_index_users or self._stop.is_set():
            return
        try:
            moved = self.store.index_users()
        except sqlite3.Error as exc:  # rows stay where a search still finds them; tried again next time
            self._next_index_users = now + self.index_users_seconds
            self.user_index_failures_total += 1
            log.warning("recording: sorting new rows into the user index of %s failed: %s", self.where, exc)
            return
        # A full chunk: more wait (a file from before schema 4, a long stop): the next turn goes on.
        full = moved >= user_index.CATCH_UP_ROWS
        self._next_index_users = now + (0 if full else self.index_users_seconds)

    def _prune_if_due(self) -> None:
        now = time.monotonic()
        if self.retention_days is None or now < self._next_prune:
            return
        self._next_prune = now + RETENTION_EVERY_SECONDS
        try:
            deleted = self.store.delete_older_than(self.clock() - self.retention_days * 86400)
        except sqlite3.Error as exc:
            log.warning("recording: retention pass on %s failed: %s", self.where, exc)
            return
        if deleted:
            log.info("recording: deleted %d records older than %g days", deleted, self.retention_days)


def stats() -> dict[str, int]:
    """Counters summed over this process's recorders (for metrics)."""
    total = {"queue_depth": 0, "overflow_total": 0, "written_total": 0, "failed_total": 0,
             "rejected_skipped_total": 0, "journal_spilled_total": 0, "journal_recovered_total": 0,
             "journal_full_total": 0,
             "quarantined_total": 0, "writer_restarts_total": 0, "user_index_failures_total": 0,
             "undrained_seconds": 0}
    for recorder in list(ACTIVE):
        for key, value in recorder.stats().items():
            total[key] = max(total[key], value) if key == "undrained_seconds" else total[key] + value
    return total

