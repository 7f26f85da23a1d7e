"""The embedded recordings store: one SQLite file in WAL mode, shared by every worker.

Each writer holds its own connection; writes are short IMMEDIATE transactions of one batch, and a
busy timeout lets the workers take turns on the write lock instead of failing. A live record
carries a unique `key` (see journal.py), so writing it a second time, from a journal, is a no-op.

Text follows the policy of receiver/jsonout.py: the body is a BLOB of the raw bytes; every TEXT
column is written through `jsonout.storable` (a lone surrogate becomes its `\\udXXX` escape) or,
for the JSON columns, `jsonout.dumps`. Text read back that is not UTF-8 (a file written by other
tools) is decoded with the same escapes rather than failing the whole read.
"""

from __future__ import annotations

import functools
import json
from itertools import chain
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import jsonout
from ..errors import ConfigError
from . import user_index
from .record import Problem, Record

SCHEMA_VERSION = 4  # 2: the `key` column; 3: the console's search indexes; 4: user_index.py
READABLE_VERSIONS = (1, 2, 3, 4)  # readers need no `key`: an older file is read as it is
BUSY_TIMEOUT_MS = 5000
# The writer's per-row cost is mostly pages: every page a commit touched is written to the WAL, then
# copied into the file by a checkpoint. Rows go in time order; the user index, which took each row
# on another page once the file was big, is now filled a minute at a time (user_index.py). Measured
# on a 1.5M-row file (benchmarks/RESULTS.md, issue 16 step 7), with the 1000-row batches the writer
# now makes, and that index still per row:
# - CACHE_KIB: SQLite's default 2 MB cache is smaller than one batch's dirty pages, so it spilled
#   them to the WAL mid-transaction and read them back; 8 MB per connection holds them.
# - WAL_AUTOCHECKPOINT_BYTES: a page changed by several commits between two checkpoints is copied
#   once; the WAL may grow to ~40 MB (10,000 pages of 4 KB; SQLite's default 1,000 pages: ~4 MB).
# With both and 1000-row batches, 10.9 KB written and 6.8 write/read calls per row; 16.5 KB and 9.6
# with SQLite's defaults and 200-row batches.
# - PAGE_SIZE, for new files (an existing file keeps its own): rows of ~2 KB left a quarter of each
#   4 KB page empty, and a batch's rows, in time order, fill whole pages. 16 KB pages were worse
#   while the user index took each row on a page of its own (step 15); without it, on a 500,000-row
#   file, 5.3 KB written in 0.53 write calls and 2.5 KB read in 0.15 read calls a row, against 5.7 KB
#   in 2.12 and 3.2 KB in 0.78 with 4 KB pages (benchmarks/store_pages.py, issue 16 step 17).
CACHE_KIB = 8 * 1024
WAL_AUTOCHECKPOINT_BYTES = 10_000 * 4096
PAGE_SIZE = 16 * 1024
SQLITE_MAGIC = b"SQLite format 3\x00"

_DDL = """
CREATE TABLE IF NOT EXISTS recordings (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    command TEXT NOT NULL,
    user TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    rule TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    status INTEGER,
    rejected INTEGER NOT NULL DEFAULT 0,
    elapsed_ms REAL NOT NULL DEFAULT 0,
    query TEXT NOT NULL,
    body BLOB,
    body_truncated INTEGER NOT NULL DEFAULT 0,
    reply TEXT,
    trace TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'live',
    redacted TEXT NOT NULL DEFAULT '',
    key TEXT
);
CREATE INDEX IF NOT EXISTS recordings_time ON recordings (received_at);
CREATE INDEX IF NOT EXISTS recordings_command ON recordings (command, received_at);
"""
# NULL keys (imported and older records) never collide in a UNIQUE index.
_KEY_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS recordings_key ON recordings (key)"
# The web console (receiver/console/queries.py) lists records newest first under one equality filter:
# each of these serves one filter in that order without a sort (and the time index the rest).
# The user: user_index.py's tables (schema 4), whose migration from 3 reads the index 3 made.
_SEARCH_INDEXES = (
    "CREATE INDEX IF NOT EXISTS recordings_outcome_time ON recordings (outcome, received_at)",
    "CREATE INDEX IF NOT EXISTS recordings_rule_time ON recordings (rule, received_at)",
)
_SCHEMA_3 = _SEARCH_INDEXES + ("CREATE INDEX IF NOT EXISTS recordings_user_time ON recordings (user, received_at)",)
_MIGRATIONS = {1: ("ALTER TABLE recordings ADD COLUMN key TEXT", _KEY_INDEX) + _SCHEMA_3 + user_index.MIGRATE,
               2: _SCHEMA_3 + user_index.MIGRATE, 3: user_index.MIGRATE}
_CREATE = (tuple(statement for statement in _DDL.split(";") if statement.strip()) + (_KEY_INDEX,) + _SEARCH_INDEXES
           + user_index.CREATE)
_COLUMNS = ("received_at", "command", "user", "outcome", "rule", "reason", "status", "rejected", "elapsed_ms",
            "query", "body", "body_truncated", "reply", "trace", "error", "request_id", "source", "redacted")
# OR IGNORE: a record whose key is already stored (written before, now re-read from a journal).
_INSERT = (f"INSERT OR IGNORE INTO recordings ({', '.join(_COLUMNS)}, key) "
           f"VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})")
# Many rows per statement, not executemany: the sqlite3 module lets go of the GIL around every
# statement step, so executemany hands the GIL back and forth once per row, and the worker's request
# threads wait on each hand-off. 64 rows x 19 values stays far below SQLite's 32,766 parameters.
ROWS_PER_STATEMENT = 64


def statement_sizes(count: int) -> list[int]:
    """How many rows each INSERT of a batch of `count` carries: ROWS_PER_STATEMENT while that many
    are left, then the rest by powers of two (100 -> 64, 32, 4).

    Only these 7 sizes: the sqlite3 module keeps every statement it has prepared (up to 128 per
    connection), and a prepared INSERT of n rows holds ~2.2 KB per row. With one statement per
    batch size, as before, a worker's heap grew by ~13 MB as rarer batch sizes turned up over hours
    of traffic (benchmarks/RESULTS.md, the soak); now the statements of a connection hold ~0.3 MB.
    """
    sizes = [ROWS_PER_STATEMENT] * (count // ROWS_PER_STATEMENT)
    rest, size = count % ROWS_PER_STATEMENT, ROWS_PER_STATEMENT
    while rest:
        size //= 2
        if rest >= size:
            sizes.append(size)
            rest -= size
    return sizes


@functools.lru_cache(maxsize=16)
def _insert_rows(count: int) -> str:
    row = f"({', '.join('?' * (len(_COLUMNS) + 1))})"
    return _INSERT.partition(" VALUES ")[0] + " VALUES " + ", ".join([row] * count)


@dataclass(frozen=True)
class Filters:
    """Which records to read. Empty values mean "any"."""

    commands: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    user: str = ""
    include_rejected: bool = True

    def sql(self, *, mark: str = "?", user_column: str = "user", user_tables: bool = False) -> tuple[str, list]:
        """The WHERE clause and its arguments; `mark` and `user_column` as the database spells them
        (PostgreSQL: "%s" and '"user"'); `user_tables`: a SQLite file of schema 4 finds a user's ids
        in user_index.py's tables (the records table has no index on the user)."""
        clauses, args = [], []
        if self.commands:
            clauses.append(f"command IN ({', '.join([mark] * len(self.commands))})")
            args.extend(self.commands)
        if self.since is not None:
            clauses.append(f"received_at >= {mark}")
            args.append(self.since)
        if self.until is not None:
            clauses.append(f"received_at < {mark}")
            args.append(self.until)
        if self.user and user_tables:
            clauses.append(f"id IN (SELECT id FROM {user_index.SORTED} WHERE user = {mark} "
                           f"UNION ALL SELECT id FROM {user_index.NEW} WHERE user = {mark})")
            args += [jsonout.storable(self.user)] * 2
        elif self.user:
            clauses.append(f"{user_column} = {mark}")
            args.append(jsonout.storable(self.user).replace("\x00", "\\u0000") if mark != "?"
                        else jsonout.storable(self.user))  # as it was stored
        if not self.include_rejected:
            clauses.append("rejected = 0")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def match(self, record: Record) -> bool:
        """The same test in Python, for sources that are not SQLite."""
        return ((not self.commands or record.command in self.commands)
                and (self.since is None or record.received_at >= self.since)
                and (self.until is None or record.received_at < self.until)
                and (not self.user or record.user == self.user)
                and (self.include_rejected or not record.rejected))


def is_sqlite_file(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


class Store:
    """A connection to a recordings file. Not shared between threads: one per writer or reader."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        self.migrated_from: int | None = None  # the schema version this open brought to SCHEMA_VERSION
        if not create and not self.path.exists():
            raise ConfigError(f"no recordings database at {self.path}")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                        check_same_thread=False)
            self.conn.text_factory = _text
            self._prepare(create)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open recordings database {self.path}: {exc}") from None

    def _prepare(self, create: bool) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable across a process crash
        self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        version = self._version()
        if create and version == 0:  # takes effect only while the file is empty (a new one)
            self.conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_BYTES // page_size}")
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {version} is newer than this imhook's {SCHEMA_VERSION}")
        if version == SCHEMA_VERSION:
            return
        if not create:
            if version in READABLE_VERSIONS:
                return
            raise sqlite3.DatabaseError("not an imhook recordings database (no recordings schema)")
        # Several workers may start at once: switching to WAL can report "locked" without waiting on
        # the busy handler, so retry for as long as the busy timeout would have waited.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self._create_or_migrate()
                return
            except sqlite3.OperationalError as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def _create_or_migrate(self) -> None:
        # One transaction, so the schema and its version appear together; the version is read again
        # inside it because another worker may have done the work meanwhile.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._version()
            steps = _CREATE if version == 0 else _MIGRATIONS.get(version, ())
            for statement in steps:
                self.conn.execute(statement)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        if 0 < version < SCHEMA_VERSION:
            self.migrated_from = version

    def close(self) -> None:
        self.conn.close()

    def reset(self) -> None:
        """After a writer thread died inside a batch: that batch was not stored, end its transaction."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def problem(self) -> str | None:
        """Why the store is failing, when it knows without I/O (the PostgreSQL store does); here None."""
        return None

    @property
    def where(self) -> str:
        return str(self.path)

    def insert(self, records: Iterable[Record], keys: Iterable[str | None] | None = None) -> int:
        """Insert records in one short transaction; return how many are new.

        `keys` (one per record) make the insert idempotent: a record whose key is already stored
        is skipped. Records without a key are always added.
        """
        records = list(records)
        if not records:
            return 0
        keys = [None] * len(records) if keys is None else list(keys)
        rows = [_row(record, key) for record, key in zip(records, keys, strict=True)]
        inserted = 0  # each statement's own rows: total_changes would count the triggers' rows too
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            start = 0
            for size in statement_sizes(len(rows)):
                chunk = rows[start:start + size]
                start += size
                inserted += self.conn.execute(_insert_rows(size), list(chain.from_iterable(chunk))).rowcount
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return inserted

    def index_users(self, max_rows: int = user_index.CATCH_UP_ROWS) -> int:
        """Sort the rows recorded since the last call into the user index (user_index.py); return how
        many. A writer calls it every minute or so; a count of `max_rows` means more are waiting."""
        return user_index.catch_up(self.conn, max_rows)

    def count(self, filters: Filters = Filters()) -> int:
        where, args = filters.sql(user_tables=user_index.has_tables(self.conn))
        return self.conn.execute(f"SELECT COUNT(*) FROM recordings{where}", args).fetchone()[0]

    def records(self, filters: Filters = Filters()) -> Iterator[Record | Problem]:
        """Stream records in id order; a row that cannot be decoded comes out as a Problem."""
        where, args = filters.sql(user_tables=user_index.has_tables(self.conn))
        cursor = self.conn.execute(f"SELECT id, {', '.join(_COLUMNS)} FROM recordings{where} ORDER BY id", args)
        while rows := cursor.fetchmany(500):
            for row in rows:
                yield _decode(row)

    def delete_older_than(self, cutoff: float, *, chunk: int = 5000) -> int:
        """Delete records received before `cutoff`, a chunk per transaction so writers are not held up."""
        deleted = 0
        while True:
            self.conn.execute("BEGIN IMMEDIATE")
            n = self.conn.execute("DELETE FROM recordings WHERE id IN (SELECT id FROM recordings "
                                  "WHERE received_at < ? LIMIT ?)", (cutoff, chunk)).rowcount
            self.conn.execute("COMMIT")
            deleted += n
            if n < chunk:
                return deleted

    def summary(self) -> list[tuple[str, str, int]]:
        """(command, outcome, count) for `imhook recordings stats`."""
        return self.conn.execute("SELECT command, outcome, COUNT(*) FROM recordings GROUP BY command, outcome "
                                 "ORDER BY command, outcome").fetchall()


_dump = jsonout.dumps_str  # a row has three of these


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _row(r: Record, key: str | None) -> tuple:
    dump = _dump
    texts = command, user, outcome, rule, reason, error, request_id, source, redacted = (
        r.command, r.user, r.outcome, r.rule, r.reason, r.error, r.request_id, r.source, ",".join(r.redacted))
    if not "".join(texts).isascii():  # one test for the common case instead of nine calls of storable
        command, user, outcome, rule, reason, error, request_id, source, redacted = map(jsonout.storable, texts)
    return (r.received_at, command, user, outcome, rule, reason, r.status, int(r.rejected), r.elapsed_ms,
            dump(r.query), bytes(r.body), int(r.body_truncated), None if r.reply is None else dump(r.reply),
            dump(r.trace), error, request_id, source, redacted, key)


def _decode(row: tuple) -> Record | Problem:
    (id_, received_at, command, user, outcome, rule, reason, status, rejected, elapsed_ms, query, body,
     truncated, reply, trace, error, request_id, source, redacted) = row
    try:
        if body is None:
            raise ValueError("the body is missing")
        return Record(
            id=id_, received_at=received_at, command=command, user=user, outcome=outcome, rule=rule,
            reason=reason, status=status, rejected=bool(rejected), elapsed_ms=elapsed_ms, query=json.loads(query),
            body=bytes(body), body_truncated=bool(truncated), reply=None if reply is None else json.loads(reply),
            trace=json.loads(trace), error=error, request_id=request_id, source=source,
            redacted=tuple(x for x in redacted.split(",") if x),
        )
    except (ValueError, TypeError) as exc:
        return Problem(f"#{id_}", f"corrupt row: {exc}")
