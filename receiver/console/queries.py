"""The console's reads over the recording store, SQLite or PostgreSQL, each served by an index.

Every list is newest first (`received_at DESC`) under at most one equality filter that an index
orders (store.py `_SEARCH_INDEXES`, migration 0003): user, rule, command or outcome, else the time
index. The other filters are checked on the rows that index yields. SQLite chooses among indexes
without statistics, so the chosen one is made explicit by writing the others as `+column` (which no
index serves); PostgreSQL's planner has statistics and is left alone.

A SQLite file of schema 4 keeps its users in two tables of their own (recording/user_index.py): the
rows sorted by (user, received_at) and the newest minute's, not sorted yet. A search by user is then
a UNION ALL of the two, merged newest first (SQLite takes the sorted table's rows as its key yields
them and stops at the page's last row), and only the page's records are read whole.

A text is not indexed (a message body is a blob, maybe hashed): a text search reads at most
`console.text_search_rows` of the newest rows the other filters select, and says so when it stopped
there. Pages go back in time with `until`, the time of the last row shown.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ImhookError
from ..recording import user_index
from ..recording.privacy import hash_id, hash_text
from ..recording.record import Problem, Record
from ..recording.store import _COLUMNS, _decode, _text

PAGE_SIZE = 50
CHART_MINUTES = 30
STATEMENT_TIMEOUT_MS = 5_000  # PostgreSQL: a console query never holds a connection longer
# Most selective first: the first filter present picks the index (SQLite).
_INDEX_ORDER = ("user", "rule", "command", "outcome")


class StoreMissing(ImhookError):
    """Nothing recorded yet where the config says, or the store cannot be read now."""


@dataclass(frozen=True)
class Search:
    """What the person asked for; empty means "any"."""

    since: float | None = None
    until: float | None = None
    command: str = ""
    user: str = ""
    rule: str = ""
    outcome: str = ""
    text: str = ""

    @property
    def active(self) -> bool:
        return any((self.since, self.until, self.command, self.user, self.rule, self.outcome, self.text))


@dataclass
class Page:
    records: list[Record | Problem]
    more: bool  # an older page exists (`until` = the last row's time)
    scanned_limit: bool = False  # a text search stopped at text_search_rows


@dataclass(frozen=True)
class Dialect:
    mark: str
    user_column: str
    hints: bool  # SQLite: steer the index with `+column`
    minute: str  # integer minute of received_at
    contains: str  # body contains a byte string
    # Order the text search's outer query again. SQLite streams the ordered subquery as it is, and an
    # outer ORDER BY would make it read the whole bound before the first row even when the text is
    # common; PostgreSQL knows the order is kept and streams either way.
    reorder_outer: bool
    user_tables: bool = False  # users found through user_index.py's two tables (SQLite, schema 4)


SQLITE = Dialect("?", "user", True, "CAST(received_at / 60 AS INTEGER)", "instr(body, ?) > 0", False)
SQLITE_USER_TABLES = replace(SQLITE, user_tables=True)
POSTGRES = Dialect("%s", '"user"', False, "floor(received_at / 60)::bigint", "position(%s::bytea in body) > 0",
                   True)
_RECORD_COLUMNS = ("id",) + _COLUMNS


@dataclass
class Query:
    sql: str
    args: list = field(default_factory=list)


def where(search: Search, dialect: Dialect, *, user_salt: bytes | None = None, users: str = "") -> Query:
    """The WHERE clause (with its leading " WHERE ") of every filter but the text. `users`: the alias
    of a user table joined to the records as `r` (then the user and the time are its columns)."""
    m, clauses, args = dialect.mark, [], []
    record = "r." if users else ""
    columns = {"user": f"{users}.user" if users else dialect.user_column, "rule": f"{record}rule",
               "command": f"{record}command", "outcome": f"{record}outcome"}
    values = {"user": search.user, "rule": search.rule, "command": search.command, "outcome": search.outcome}
    indexed = next((name for name in _INDEX_ORDER if values[name]), None)
    for name in _INDEX_ORDER:
        if not values[name]:
            continue
        column = columns[name] if (name == indexed or not dialect.hints) else f"+{columns[name]}"
        if name == "user" and user_salt:  # ids hashed when recorded: the typed id matches its hash too
            clauses.append(f"{column} IN ({m}, {m})")
            args += [values[name], hash_id(values[name], user_salt)]
        else:
            clauses.append(f"{column} = {m}")
            args.append(values[name])
    time_column = f"{users}.received_at" if users else "received_at"
    if search.since is not None:
        clauses.append(f"{time_column} >= {m}")
        args.append(search.since)
    if search.until is not None:
        clauses.append(f"{time_column} < {m}")
        args.append(search.until)
    return Query(" WHERE " + " AND ".join(clauses) if clauses else "", args)


def select(search: Search, dialect: Dialect, columns: str | None, *, user_salt: bytes | None = None,
           tail: str = "") -> Query:
    """SELECT `columns` (None: a record's) of the records `search` selects but for its text, then `tail`
    (ORDER BY, LIMIT...): from the records table, or on schema 4 with a user, from both user tables."""
    if not (search.user and dialect.user_tables):
        cols = columns or ", ".join(f'"{c}"' if c == "user" else c for c in _RECORD_COLUMNS)
        q = where(search, dialect, user_salt=user_salt)
        return Query(f"SELECT {cols} FROM recordings{q.sql}{tail}", q.args)
    # Named as in the records table: a compound's ORDER BY matches its columns by name, so it needs
    # the ones it orders by among them.
    names = [c.strip() for c in columns.split(",")] if columns else list(_RECORD_COLUMNS)
    names += [c for c in ("received_at", "id") if c not in names]
    # The user table's own time and id (the same values): the order its key yields, so no sort. A
    # CROSS JOIN, which SQLite never reorders, starts from the user table: else the newest rows'
    # arm was planned as a scan of every record in time order. No join when nothing of the record
    # is asked for or filtered on.
    own = ("received_at", "id", "user")
    cols = ", ".join(f"{'u' if c in own else 'r'}.{c} AS {c}" for c in names)
    joined = (search.rule or search.command or search.outcome or any(c not in own for c in names))
    join = " CROSS JOIN recordings AS r ON r.id = u.id" if joined else ""
    q = where(search, dialect, user_salt=user_salt, users="u")
    arms = [f"SELECT {cols} FROM {table} AS u{join}{q.sql}" for table in (user_index.SORTED, user_index.NEW)]
    return Query(" UNION ALL ".join(arms) + tail, q.args * 2)


def text_needles(text: str) -> list[bytes]:
    """How a text can appear in a stored body: as UTF-8, JSON-escaped (\\uXXXX), or (a whole text kept
    only as its hash, recording.store_text: false) as its hash."""
    needles = [text.encode("utf-8", "surrogatepass")]
    escaped = json.dumps(text)[1:-1].encode("ascii")
    if escaped not in needles:
        needles.append(escaped)
    needles.append(hash_text(text).encode("ascii"))
    return needles


def search_query(search: Search, dialect: Dialect, *, limit: int, scan_rows: int,
                 user_salt: bytes | None = None, columns: str | None = None) -> Query:
    """The SELECT of one page (`limit` rows) of `search`."""
    order = " ORDER BY received_at DESC, id DESC"
    if search.user and dialect.user_tables:
        return _user_search_query(search, dialect, limit=limit, scan_rows=scan_rows, user_salt=user_salt,
                                  columns=columns)
    if not search.text:
        return select(search, dialect, columns, user_salt=user_salt, tail=f"{order} LIMIT {int(limit)}")
    needles = text_needles(search.text)
    match = " OR ".join([dialect.contains] * len(needles))
    # The inner LIMIT bounds the rows whose body is read, whatever the text.
    inner = select(search, dialect, columns, user_salt=user_salt, tail=f"{order} LIMIT {int(scan_rows)}")
    outer_order = order if dialect.reorder_outer else ""
    return Query(f"SELECT * FROM ({inner.sql}) AS newest WHERE {match}{outer_order} LIMIT {int(limit)}",
                 inner.args + needles)


def _user_search_query(search: Search, dialect: Dialect, *, limit: int, scan_rows: int,
                       user_salt: bytes | None, columns: str | None) -> Query:
    """A page by user on schema 4: the newest keys (id, time) of both user tables, merged, and only
    then the page's records. The newest minute's rows are sorted by SQLite; sorting keys, not whole
    records (a busy user's minute may be thousands of rows), keeps that cheap. The page comes out in
    the keys' order (the CROSS JOIN keeps them outermost), as the text search below relies on too."""
    bound = scan_rows if search.text else limit
    keys = select(replace(search, text=""), dialect, "id, received_at", user_salt=user_salt,
                  tail=f" ORDER BY received_at DESC, id DESC LIMIT {int(bound)}")
    cols = ", ".join(f"r.{c}" for c in ([c.strip() for c in columns.split(",")] if columns else _RECORD_COLUMNS))
    page = f"SELECT {cols} FROM ({keys.sql}) AS page CROSS JOIN recordings AS r ON r.id = page.id"
    if not search.text:
        return Query(page, keys.args)
    needles = text_needles(search.text)
    match = " OR ".join([dialect.contains.replace("body", "r.body")] * len(needles))
    return Query(f"{page} WHERE {match} LIMIT {int(limit)}", keys.args + needles)


def chart_query(search: Search, dialect: Dialect, *, since: float, user_salt: bytes | None = None) -> Query:
    """(minute, outcome, count) since `since`, under the filters but the text and time range."""
    rows = select(replace(search, text="", since=since, until=None), dialect, "received_at, outcome",
                  user_salt=user_salt)
    return Query(f"SELECT {dialect.minute} AS minute, outcome, COUNT(*) FROM ({rows.sql}) AS chosen "
                 f"GROUP BY minute, outcome ORDER BY minute", rows.args)


class Reader:
    """Reads the store a recording section names: its SQLite file (read-only, a connection per
    thread) or its PostgreSQL database (a small pool, statements cut at STATEMENT_TIMEOUT_MS)."""

    def __init__(self, url: str | None, path: str | Path):
        self.url, self.path = url, Path(path)
        self.dialect = POSTGRES if url else SQLITE
        self._local = threading.local()
        self._pool = None
        self._pool_lock = threading.Lock()

    @property
    def where(self) -> str:
        from ..recording.pgstore import mask

        return mask(self.url) if self.url else str(self.path)

    @contextmanager
    def cursor(self) -> Iterator:
        if self.url:
            yield from self._pg_cursor()
        else:
            yield self._sqlite()

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if not self.path.is_file():
                raise StoreMissing(f"nothing recorded yet: no recordings database at {self.path}")
            try:
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5,
                                       check_same_thread=False)
                conn.text_factory = _text
                conn.execute("PRAGMA busy_timeout = 5000")
                if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'recordings'"
                                ).fetchone() is None:
                    raise StoreMissing(f"{self.path} holds no recordings table yet")
            except sqlite3.Error as exc:
                raise StoreMissing(f"cannot read {self.path}: {exc}") from None
            self._local.conn = conn
        return conn

    def _pg_cursor(self):
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout

        from ..recording.pgstore import mask

        with self._pool_lock:
            if self._pool is None:
                self._pool = ConnectionPool(self.url, min_size=1, max_size=4, open=True, timeout=5,
                                            kwargs={"connect_timeout": 5, "application_name": "imhook-console",
                                                    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
                                            name="imhook-console")
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreMissing(f"cannot read {self.where}: {mask(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)}") from None

    def _run(self, query: Query) -> list[tuple]:
        with self.cursor() as cur:
            try:
                return list(cur.execute(query.sql, query.args).fetchall())
            except sqlite3.Error as exc:
                raise StoreMissing(f"cannot read {self.path}: {exc}") from None

    def _dialect(self) -> Dialect:
        """The SQLite file's schema is asked each time: a writer may migrate it while the console runs."""
        if self.url:
            return POSTGRES
        try:
            return SQLITE_USER_TABLES if user_index.has_tables(self._sqlite()) else SQLITE
        except sqlite3.Error as exc:
            raise StoreMissing(f"cannot read {self.path}: {exc}") from None

    def search(self, search: Search, *, limit: int = PAGE_SIZE, scan_rows: int = 100_000,
               user_salt: bytes | None = None) -> Page:
        dialect = self._dialect()
        rows = self._run(search_query(search, dialect, limit=limit + 1, scan_rows=scan_rows,
                                      user_salt=user_salt))
        records = [_decode(tuple(row)) for row in rows[:limit]]
        scanned_limit = False
        if search.text and len(rows) <= limit:
            # Fewer matches than a page: did the text search stop at its bound, with older rows unread?
            probe = search_query(replace(search, text=""), dialect, limit=1, scan_rows=0, columns="id",
                                 user_salt=user_salt)
            probe.sql = probe.sql.replace(" LIMIT 1", f" LIMIT 1 OFFSET {int(scan_rows)}")
            scanned_limit = bool(self._run(probe))
        return Page(records, more=len(rows) > limit, scanned_limit=scanned_limit)

    def record(self, record_id: int) -> Record | Problem | None:
        cols = "id, " + ", ".join(f'"{c}"' if c == "user" else c for c in _COLUMNS)
        rows = self._run(Query(f"SELECT {cols} FROM recordings WHERE id = {self.dialect.mark}", [record_id]))
        return _decode(tuple(rows[0])) if rows else None

    def newest(self, since: float, *, limit: int) -> list[Record | Problem]:
        """For the playground's replay: the newest `limit` records since `since`, oldest first."""
        return list(reversed(self.search(Search(since=since), limit=limit).records))

    def per_minute(self, search: Search, *, now: float, minutes: int = CHART_MINUTES,
                   user_salt: bytes | None = None) -> dict[int, dict[str, int]]:
        """{minute: {outcome: count}} for the last `minutes` minutes."""
        start = (int(now // 60) - minutes + 1) * 60
        counts: dict[int, dict[str, int]] = {}
        for minute, outcome, n in self._run(chart_query(search, self._dialect(), since=start, user_salt=user_salt)):
            counts.setdefault(int(minute), {})[outcome or "?"] = n
        return counts

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None
