"""The durable outbox: one SQLite file (WAL) shared by every worker of one imhook.

A row per (event, target). The request thread only INSERTs (sub-millisecond, no network), so
forwarding never delays the IM's reply; the sender reads heads of conversations and marks rows.

A row the sender cannot even attempt (an error of its own, not of the downstream) is marked
`quarantined`: it no longer blocks its conversation, and `imhook recordings quarantine --outbox`
lists it and, with `--import`, makes it pending again. An event that could not be written here at
all is kept in the file `<outbox>.quarantine.jsonl` (observer.py), re-imported the same way.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PENDING, DELIVERED, DEAD, QUARANTINED = "pending", "delivered", "dead", "quarantined"
QUARANTINE_SUFFIX = ".quarantine.jsonl"


def quarantine_path(outbox: str | Path) -> Path:
    """The file of events that could not be written to the outbox, beside it."""
    outbox = Path(outbox)
    return outbox.with_name(outbox.name + QUARANTINE_SUFFIX)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    dedupe TEXT NOT NULL,
    conversation TEXT NOT NULL,
    command TEXT NOT NULL,
    app_id TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    done_at REAL,
    UNIQUE (target, dedupe)
);
CREATE INDEX IF NOT EXISTS outbox_heads ON outbox (status, target, conversation, id);
"""

# The head of a conversation: the oldest row still pending for that (target, conversation).
# A failing head blocks later rows of its own conversation only.
_HEADS = """
SELECT id, target, dedupe, conversation, command, app_id, body, attempts, created_at
FROM outbox AS o
WHERE status = 'pending' AND next_at <= ? AND target IN ({targets})
  AND id = (SELECT MIN(id) FROM outbox AS p
            WHERE p.status = 'pending' AND p.target = o.target AND p.conversation = o.conversation)
ORDER BY id LIMIT ?
"""


@dataclass(frozen=True)
class Row:
    id: int
    target: str
    dedupe: str
    conversation: str
    command: str
    app_id: str
    body: bytes
    attempts: int
    created_at: float


class Outbox:
    """Thread-safe access to the outbox file: one connection per thread, short transactions.

    With a PostgreSQL outbox (pgoutbox.py) the same file is each instance's spool: events wait here
    while the database cannot take them, and `pending` / `remove` move them on.
    """

    shared = False  # one sender per host, elected by a lock file (sender.py)

    def __init__(self, path: str | Path, *, busy_timeout: float = 1.0, clock=time.time):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.clock = clock
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._create()

    def _create(self) -> None:
        # Workers start together; switching to WAL may report "locked" without waiting on the
        # busy handler, so retry for as long as the busy timeout would have waited.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                db = self._connect()
                db.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")
                return
            except sqlite3.OperationalError as exc:
                self.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            # WAL: readers never block the writer. synchronous=NORMAL survives a killed process
            # (what the worker-kill test does); only a power cut may lose the last commits.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def add(self, targets: Iterable[str], *, dedupe: str, conversation: str, command: str, app_id: str,
            body: bytes) -> list[str]:
        """Insert one row per target in one transaction; return the targets whose row is new.

        A duplicate (same target and dedupe key) is ignored: that is how a callback the IM sends
        twice is delivered once.
        """
        now = self.clock()
        db = self._connect()
        added = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for target in targets:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO outbox (target, dedupe, conversation, command, app_id, body,"
                    " created_at, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (target, dedupe, conversation, command, app_id, body, now, now))
                if cursor.rowcount:
                    added.append(target)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return added

    def heads(self, targets: Iterable[str], limit: int) -> list[Row]:
        """Due heads of conversations for these targets, oldest first."""
        names = list(targets)
        if not names:
            return []
        sql = _HEADS.format(targets=",".join("?" * len(names)))
        cursor = self._connect().execute(sql, (self.clock(), *names, limit))
        return [Row(*r) for r in cursor.fetchall()]

    def claim(self, targets: Iterable[str], limit: int) -> list[Row]:
        """The rows to send now: the due heads (the leader lock already makes this sender the only one)."""
        return self.heads(targets, limit)

    def has_pending(self) -> bool:
        return self._connect().execute("SELECT 1 FROM outbox WHERE status = 'pending' LIMIT 1").fetchone() is not None

    def pending(self, limit: int) -> list[Row]:
        """The oldest pending rows, in the order they were added (the spool's order)."""
        cursor = self._connect().execute(
            "SELECT id, target, dedupe, conversation, command, app_id, body, attempts, created_at FROM outbox"
            " WHERE status = 'pending' ORDER BY id LIMIT ?", (limit,))
        return [Row(*r) for r in cursor.fetchall()]

    def remove(self, row_ids: Iterable[int]) -> None:
        """Forget rows (moved to the shared outbox) in one transaction."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in row_ids])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def delivered(self, row_id: int) -> None:
        self._finish(row_id, DELIVERED, "")

    def dead(self, row_id: int, error: str) -> None:
        self._finish(row_id, DEAD, error)

    def quarantine(self, row_id: int, error: str) -> None:
        """Set a row aside: not sent, not blocking its conversation, until released."""
        self._connect().execute("UPDATE outbox SET status = ?, last_error = ? WHERE id = ?",
                                (QUARANTINED, error[:500], row_id))

    def quarantined(self) -> list[tuple[int, str, str, str, float]]:
        """(id, target, command, last_error, created_at) of the quarantined rows, oldest first."""
        return self._connect().execute(
            "SELECT id, target, command, last_error, created_at FROM outbox WHERE status = ? ORDER BY id",
            (QUARANTINED,)).fetchall()

    def release_quarantined(self) -> int:
        """Make every quarantined row pending again (after a fix); return how many."""
        return self._connect().execute("UPDATE outbox SET status = ?, next_at = ? WHERE status = ?",
                                       (PENDING, self.clock(), QUARANTINED)).rowcount

    def retry_later(self, row_id: int, delay: float, error: str) -> None:
        self._connect().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
            (self.clock() + delay, error[:500], row_id))

    def _finish(self, row_id: int, status: str, error: str) -> None:
        self._connect().execute(
            "UPDATE outbox SET status = ?, attempts = attempts + 1, done_at = ?, last_error = ? WHERE id = ?",
            (status, self.clock(), error[:500], row_id))

    def next_due(self, targets: Iterable[str]) -> float | None:
        """When the earliest pending row becomes due (None: nothing pending)."""
        names = list(targets)
        if not names:
            return None
        row = self._connect().execute(
            f"SELECT MIN(next_at) FROM outbox WHERE status = 'pending' AND target IN ({','.join('?' * len(names))})",
            names).fetchone()
        return row[0]

    def backlog(self) -> dict[str, tuple[int, float]]:
        """{target: (pending rows, age in seconds of the oldest)} for metrics."""
        now = self.clock()
        cursor = self._connect().execute(
            "SELECT target, COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending' GROUP BY target")
        return {target: (count, max(0.0, now - oldest)) for target, count, oldest in cursor.fetchall()}

    def counts(self) -> dict[str, int]:
        """{status: rows}: for tests and `imhook` operators poking at the file."""
        cursor = self._connect().execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return dict(cursor.fetchall())

    def purge(self, older_than_seconds: float, chunk: int = 1000) -> int:
        """Forget delivered rows older than this; they were kept only to drop late duplicates.

        In chunks, so the write lock is never held long enough to delay a request's INSERT.
        """
        cutoff, deleted = self.clock() - older_than_seconds, 0
        while True:
            cursor = self._connect().execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'delivered'"
                " AND done_at < ? LIMIT ?)", (cutoff, chunk))
            deleted += cursor.rowcount
            if cursor.rowcount < chunk:
                return deleted

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
