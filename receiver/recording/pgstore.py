"""The shared recordings store: PostgreSQL, so several imhook instances record into one database.

It answers to the same calls as the SQLite Store (store.py): insert, count, records, summary,
delete_older_than, close. The writer (writer.py) and the journal (journal.py) use it unchanged;
what differs is how failure looks:

- The database down, unreachable, refusing connections, too slow (statement timeout) or without
  the table is *the store unavailable*: it raises StoreUnavailable, a sqlite3.OperationalError,
  because that is what the pipeline (writer, journal, quarantine) already treats as "keep the
  records in the journal and try again later". After a failure the store does not try again for a
  short backoff (RETRY_SECONDS doubling to RETRY_MAX_SECONDS), failing at once meanwhile, so a
  down database costs the writer no time and the log no flood.
- A value PostgreSQL refuses (psycopg.DataError) is the record's fault: it propagates, and the
  quarantine takes that record (quarantine.store_or_set_aside).

Rows are the SQLite store's rows (store._row), with one more step for PostgreSQL TEXT, which cannot
hold NUL: a NUL in a text column is written as the six characters `\\u0000`, as a lone surrogate is
written `\\udXXX` (receiver/jsonout.py). The JSON columns never hold a raw NUL (JSON escapes it)
and the body is BYTEA: the raw bytes, NUL included, come back exactly.

The URL may hold a password: it is shown only through `mask`, never logged as given.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ..errors import ImhookError
from . import pgschema
from .locations import URL_SCHEMES
from .record import Problem, Record
from .store import _COLUMNS, Filters, _decode, _row

log = logging.getLogger("imhook.recording")

CONNECT_TIMEOUT_SECONDS = 5  # a database that does not answer: the writer's turn waits this long at most
POOL_WAIT_SECONDS = 2.0  # for the pool's connection (it may be reconnecting in the background)
RECONNECT_SECONDS = 10.0  # the pool's background reconnection gives up after this, then starts afresh
STATEMENT_TIMEOUT_MS = 30_000  # a batch insert or a retention chunk stuck longer is cancelled
RETRY_SECONDS = 1.0  # after a failure: fail at once for this long, doubling...
RETRY_MAX_SECONDS = 8.0  # ...up to this, until a try succeeds
READ_BATCH = 500  # rows per round trip of the server-side cursor

_QUOTED = tuple(f'"{name}"' for name in _COLUMNS)
_TEXT_NUL = "\x00"


class StoreUnavailable(sqlite3.OperationalError, ImhookError):
    """The PostgreSQL store cannot be used now (down, unreachable, too slow, no schema).

    A sqlite3.OperationalError on purpose: the writer, the journal and the quarantine already mean
    "the database, not the record: keep everything, retry later" by that class. An ImhookError too,
    so a command that loses the database midway ends in one line (exit 2), not a traceback.
    """


def is_url(spec: str | None) -> bool:
    return bool(spec) and str(spec).startswith(URL_SCHEMES)


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*(@)")
_KEYWORD_PASSWORD = re.compile(r"((?<![?&\w])password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)


def mask(text: str) -> str:
    """`text` with any password in a connection URL or `password=` pair shown as ***."""
    text = _URL_PASSWORD.sub(r"\1***\2", text)
    text = _QUERY_PASSWORD.sub(r"\1***", text)
    return _KEYWORD_PASSWORD.sub(r"\1***", text)


def _pg_text(value):
    return value.replace(_TEXT_NUL, "\\u0000") if isinstance(value, str) and _TEXT_NUL in value else value


def _pg_row(record: Record, key: str | None) -> tuple:
    row = _row(record, key)
    for at in _TEXT_AT:  # a NUL is rare: the row is rebuilt only when one is there
        value = row[at]
        if value is not None and _TEXT_NUL in value:
            return tuple(_pg_text(value) for value in row)
    return row


_STAGED = f"{', '.join(_QUOTED)}, key"
# The types of _STAGED's columns (migrations/postgresql/0001_records.sql), for COPY's binary format:
# psycopg's C code writes each value as the server stores it, so neither side formats or parses
# text (a BYTEA body in text format is hex-escaped byte by byte on both ends).
_TYPES = ("float8", "text", "text", "text", "text", "text", "int4", "int4", "float8", "text", "bytea", "int4",
          "text", "text", "text", "text", "text", "text", "text")
_TEXT_AT = tuple(at for at, name in enumerate(_TYPES) if name == "text")
COPY_RECORDINGS = f"COPY recordings ({_STAGED}) FROM STDIN (FORMAT BINARY)".encode("ascii")
# Column types from the table itself, no constraints or defaults; emptied at each commit.
CREATE_STAGING = (f"CREATE TEMP TABLE IF NOT EXISTS recordings_staged ON COMMIT DELETE ROWS AS "
                  f"SELECT {_STAGED} FROM recordings WITH NO DATA").encode("ascii")
COPY_STAGING = f"COPY recordings_staged ({_STAGED}) FROM STDIN (FORMAT BINARY)".encode("ascii")
INSERT_STAGED = (f"INSERT INTO recordings ({_STAGED}) SELECT {_STAGED} FROM recordings_staged "
                 "ON CONFLICT (key) DO NOTHING").encode("ascii")


def _copy(cur, statement: bytes, rows: list[tuple]) -> None:
    with cur.copy(statement) as copy:
        copy.set_types(_TYPES)
        for row in rows:
            copy.write_row(row)


def _connect_kwargs() -> dict:
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "imhook",
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"}


def connect(url: str):
    """One connection (for the command line); ImhookError naming the masked URL if it fails."""
    import psycopg

    try:
        return psycopg.connect(url, **_connect_kwargs())
    except psycopg.Error as exc:
        why = " ".join(mask(str(exc)).split())  # libpq's message spans lines: one line here
        raise ImhookError(f"cannot connect to the recordings database {mask(url)}: {why}") from None


class PgStore:
    """A PostgreSQL recordings store. `pooled` (the writer): a one-connection psycopg_pool that
    reconnects in the background; otherwise (the command line) one connection, opened now, with
    the schema version checked."""

    def __init__(self, url: str, *, pooled: bool = True):
        self.url, self.where = url, mask(url)
        self.last_error: str | None = None
        self.replays_total = 0  # batches that held a key stored already (the slower path)
        self.down_since: float | None = None  # epoch seconds of the first failure in a row
        self._retry_at, self._backoff = 0.0, RETRY_SECONDS
        self._conn = self.pool = None
        if pooled:
            from psycopg_pool import ConnectionPool

            self.pool = ConnectionPool(url, min_size=1, max_size=1, open=False, timeout=POOL_WAIT_SECONDS,
                                       kwargs=_connect_kwargs(), check=ConnectionPool.check_connection,
                                       reconnect_timeout=RECONNECT_SECONDS, num_workers=1,
                                       name="imhook-recording")
            self.pool.open(wait=False)  # a database down at start must not stop the workers
        else:
            self._conn = connect(url)
            try:
                pgschema.check(self._conn, self.where)
                self._conn.rollback()
            except BaseException:
                self._conn.close()
                raise

    # --- connections and failures ------------------------------------------------------------------

    @contextmanager
    def _connection(self):
        import psycopg

        if self._conn is not None:  # the command line: one connection, errors as they are
            with self._translate(psycopg):
                with self._conn.transaction():
                    yield self._conn
            return
        now = time.monotonic()
        if self.down_since is not None and now < self._retry_at:
            raise StoreUnavailable(f"{self.where} unavailable: {self.last_error}")
        with self._translate(psycopg):
            with self.pool.connection() as conn:
                yield conn
        if self.down_since is not None:
            log.warning("recording: %s is available again", self.where)
        self.down_since, self.last_error, self._backoff = None, None, RETRY_SECONDS

    @contextmanager
    def _translate(self, psycopg):
        from psycopg_pool import PoolTimeout

        try:
            yield
        except psycopg.DataError:
            raise  # this record's value: the quarantine takes it
        except (psycopg.Error, PoolTimeout) as exc:
            why = mask(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            if isinstance(exc, PoolTimeout):
                why = f"no connection within {POOL_WAIT_SECONDS:g} s ({why})"
            self._failed(why)
            raise StoreUnavailable(f"{self.where} unavailable: {why}") from None

    def _failed(self, why: str) -> None:
        self.last_error = why
        if self.down_since is None:
            self.down_since = time.time()
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RETRY_MAX_SECONDS)

    def problem(self) -> str | None:
        """Why the store failed last, while it has not succeeded since (for /readyz); no I/O."""
        if self.down_since is None:
            return None
        return f"{self.where} unavailable for {time.time() - self.down_since:.0f} s: {self.last_error}"

    def reset(self) -> None:
        """After a writer died mid-batch: the pool's connection context already rolled back."""

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close(timeout=CONNECT_TIMEOUT_SECONDS)
        if self._conn is not None:
            self._conn.close()

    # --- the Store calls -----------------------------------------------------------------------------

    def insert(self, records: Iterable[Record], keys: Iterable[str | None] | None = None) -> int:
        """Insert in one transaction, skipping keys already stored; return how many are new."""
        records = list(records)
        if not records:
            return 0
        keys = [None] * len(records) if keys is None else list(keys)
        from psycopg.errors import UniqueViolation

        rows = [_pg_row(record, key) for record, key in zip(records, keys, strict=True)]
        with self._connection() as conn:
            # COPY straight into the table: rows travel in COPY's binary stream (formatted in
            # psycopg's C code, without the GIL-holding per-row Python of bound parameters) and the
            # server inserts them in bulk. A key stored already (a journal replayed twice) fails the
            # whole COPY on the unique index; then, and only then, the batch goes again through a
            # staging table and INSERT … ON CONFLICT DO NOTHING, which skips what is stored.
            # Two transactions, not a savepoint inside one: the common case pays no SAVEPOINT
            # round trips or subtransaction (with the command line's connection they are savepoints).
            try:
                with conn.transaction(), conn.cursor() as cur:
                    _copy(cur, COPY_RECORDINGS, rows)
                return len(rows)
            except UniqueViolation:
                self.replays_total += 1
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(CREATE_STAGING)
                _copy(cur, COPY_STAGING, rows)
                cur.execute(INSERT_STAGED)
                return cur.rowcount  # those not skipped as already stored

    def index_users(self, max_rows: int = 0) -> int:
        """Nothing to do: PostgreSQL keeps its (user, received_at) index per row (pgschema.py)."""
        return 0

    def count(self, filters: Filters = Filters()) -> int:
        where, args = filters.sql(mark="%s", user_column='"user"')
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM recordings{where}".encode(), args)
            return cur.fetchone()[0]

    def records(self, filters: Filters = Filters()) -> Iterator[Record | Problem]:
        """Stream in id order through a server-side cursor: READ_BATCH rows in memory at a time."""
        where, args = filters.sql(mark="%s", user_column='"user"')
        query = f"SELECT id, {', '.join(_QUOTED)} FROM recordings{where} ORDER BY id".encode()
        with self._connection() as conn, conn.cursor(name="imhook_records") as cur:
            cur.itersize = READ_BATCH
            cur.execute(query, args)
            for row in cur:
                yield _decode(row)

    def delete_older_than(self, cutoff: float, *, chunk: int = 5000) -> int:
        """Delete records received before `cutoff`, a chunk per transaction (writers are not held up)."""
        deleted = 0
        while True:
            with self._connection() as conn, conn.cursor() as cur:
                cur.execute(b"DELETE FROM recordings WHERE id IN (SELECT id FROM recordings "
                            b"WHERE received_at < %s ORDER BY id LIMIT %s)", (cutoff, chunk))
                n = cur.rowcount
            deleted += n
            if n < chunk:
                return deleted

    def summary(self) -> list[tuple[str, str, int]]:
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(b"SELECT command, outcome, COUNT(*) FROM recordings GROUP BY command, outcome "
                        b"ORDER BY command, outcome")
            return [tuple(row) for row in cur.fetchall()]
