"""The console's user search, indexed a minute at a time instead of a row at a time (schema 4).

An index on (user, received_at) in the recordings table put every new row at the end of its user's
range: with thousands of users writing, each row of a batch dirtied a page of its own once the file
was big, and the writer wrote ~6 KB more and read ~4 KB more a row on a 500,000-row file than without
it (benchmarks/RESULTS.md, issue 16 steps 15 and 16). So rows are indexed in two steps:

- a trigger copies each new row's (id, user, received_at) into `recordings_by_user_new`, a small
  table in id order: an append, in the same transaction as the row itself, by whichever program
  inserts (the writer, a journal import, `imhook recordings import`);
- every minute or so a writer moves what is there into `recordings_by_user`, keyed (user,
  received_at, id), sorted by user first (`catch_up`): a user's rows of that minute share a page.

A search by user reads both tables (receiver/console/queries.py): the sorted one through its key,
the new rows by scanning them (a minute's worth). A trigger on delete takes a row out of both, so
retention and the sorted table never disagree, whoever deletes.
"""

from __future__ import annotations

import sqlite3

SORTED, NEW = "recordings_by_user", "recordings_by_user_new"
CATCH_UP_ROWS = 100_000  # at most this many new rows sorted in one transaction (~0.3 s on a fast host)

CREATE = (
    f"CREATE TABLE IF NOT EXISTS {SORTED} (user TEXT NOT NULL, received_at REAL NOT NULL, id INTEGER NOT NULL, "
    "PRIMARY KEY (user, received_at, id)) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {NEW} (id INTEGER PRIMARY KEY, user TEXT NOT NULL, received_at REAL NOT NULL)",
    f"CREATE TRIGGER IF NOT EXISTS recordings_user_new AFTER INSERT ON recordings BEGIN "
    f"INSERT INTO {NEW} (id, user, received_at) VALUES (new.id, new.user, new.received_at); END",
    f"CREATE TRIGGER IF NOT EXISTS recordings_user_gone AFTER DELETE ON recordings BEGIN "
    f"DELETE FROM {SORTED} WHERE user = old.user AND received_at = old.received_at AND id = old.id; "
    f"DELETE FROM {NEW} WHERE id = old.id; END",
)
# From schema 3: the rows already stored go to the sorted table in one ordered pass over the old
# index (it covers user, received_at and the id), then that index goes.
MIGRATE = CREATE + (
    f"INSERT OR IGNORE INTO {SORTED} (user, received_at, id) "
    "SELECT user, received_at, id FROM recordings ORDER BY user, received_at, id",
    f"DELETE FROM {NEW}",  # every row is sorted now
    "DROP INDEX IF EXISTS recordings_user_time",
    "DROP INDEX IF EXISTS recordings_user",
)


def catch_up(conn: sqlite3.Connection, max_rows: int = CATCH_UP_ROWS) -> int:
    """Move up to `max_rows` of the oldest new rows into the sorted table, in one IMMEDIATE
    transaction on `conn` (autocommit mode); return how many were moved."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        last = conn.execute(f"SELECT id FROM {NEW} ORDER BY id LIMIT 1 OFFSET ?", (max_rows - 1,)).fetchone()
        bound, args = ("", ()) if last is None else (" WHERE id <= ?", (last[0],))
        moved = conn.execute(f"INSERT OR IGNORE INTO {SORTED} (user, received_at, id) SELECT user, received_at, id "
                             f"FROM {NEW}{bound} ORDER BY user, received_at, id", args).rowcount
        conn.execute(f"DELETE FROM {NEW}{bound}", args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return moved


def pending(conn: sqlite3.Connection) -> int:
    """How many rows wait to be sorted (for tests and the benchmarks)."""
    return conn.execute(f"SELECT COUNT(*) FROM {NEW}").fetchone()[0]


def has_tables(conn: sqlite3.Connection) -> bool:
    """Whether this file is indexed this way (schema 4), or by the older index on the table."""
    return conn.execute("PRAGMA user_version").fetchone()[0] >= 4
