"""The user index of schema 4 (receiver/recording/user_index.py): rows go to a small table of new rows
by trigger and are sorted into the user table a minute at a time; a search by user reads both."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from receiver.console.queries import Reader, Search
from receiver.recording import user_index
from receiver.recording.record import Record
from receiver.recording.store import SCHEMA_VERSION, Store
from receiver.recording.writer import Recorder


def rec(i: int, user: str, *, at: float | None = None, outcome: str = "allow") -> Record:
    return Record(received_at=1000.0 + i if at is None else at, command="C2C.CallbackAfterSendMsg", query={},
                  body=b'{"n":%d}' % i, user=user, outcome=outcome)


def index_rows(db: Path) -> tuple[list, list]:
    with sqlite3.connect(db) as conn:
        return (conn.execute(f"SELECT user, received_at, id FROM {user_index.SORTED}").fetchall(),
                conn.execute(f"SELECT id, user, received_at FROM {user_index.NEW} ORDER BY id").fetchall())


def found(db: Path, search: Search, **kwargs) -> list[float]:
    reader = Reader(None, db)
    try:
        return [r.received_at for r in reader.search(search, **kwargs).records]
    finally:
        reader.close()


def test_new_rows_wait_in_their_table_until_sorted_in_chunks(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    assert store.insert([rec(i, f"u{i % 3}") for i in range(10)]) == 10  # the trigger's rows not counted
    sorted_rows, new = index_rows(store.path)
    assert sorted_rows == [] and [row[0] for row in new] == list(range(1, 11))
    assert store.index_users(4) == 4 and store.index_users(4) == 4 and store.index_users(4) == 2
    assert store.index_users() == 0
    sorted_rows, new = index_rows(store.path)
    assert new == [] and sorted_rows == sorted((f"u{(i - 1) % 3}", 999.0 + i, i) for i in range(1, 11))
    store.close()


@pytest.mark.parametrize("sorted_first", [True, False])
def test_deleting_a_record_takes_it_out_of_the_index_whether_sorted_or_not(tmp_path, sorted_first):
    store = Store(tmp_path / "r.sqlite")
    store.insert([rec(i, "old" if i < 5 else "young") for i in range(8)])
    if sorted_first:
        store.index_users()
    assert store.delete_older_than(1005.0) == 5
    store.index_users()
    sorted_rows, new = index_rows(store.path)
    assert new == [] and [row[:2] for row in sorted_rows] == [("young", 1005.0), ("young", 1006.0), ("young", 1007.0)]
    store.close()


@pytest.mark.parametrize("sorted_rows", [0, 3, 6, 9])
def test_a_user_search_merges_both_tables_newest_first_page_by_page(tmp_path, sorted_rows):
    db = tmp_path / "r.sqlite"
    store = Store(db)
    store.insert([rec(i, "alice" if i % 2 else "bob", outcome="refuse" if i % 4 == 1 else "allow") for i in range(18)])
    store.index_users(sorted_rows)
    if sorted_rows:  # rows recorded after a sort land in the unsorted table again: both hold old and new
        store.insert([rec(i, "alice", at=1000.5 + i) for i in (0, 16)])
    store.close()
    alice = sorted([1001.0 + 2 * n for n in range(9)] + ([1000.5, 1016.5] if sorted_rows else []), reverse=True)
    assert found(db, Search(user="alice"), limit=50) == alice
    assert found(db, Search(user="alice"), limit=3) == alice[:3]
    assert found(db, Search(user="alice", until=alice[2]), limit=3) == alice[3:6]  # the next page
    assert found(db, Search(user="alice", outcome="refuse"), limit=50) == [1017.0, 1013.0, 1009.0, 1005.0, 1001.0]
    assert found(db, Search(user="alice", since=1004.0, until=1010.0), limit=50) == [1009.0, 1007.0, 1005.0]
    assert found(db, Search(user="nobody"), limit=50) == []
    minutes = Reader(None, db).per_minute(Search(user="alice"), now=1100.0)
    assert sum(n for counts in minutes.values() for n in counts.values()) == len(alice)


def schema_3_file(db: Path, users: list[str], start: float = 1000.0) -> None:
    """A file as imhook wrote it at schema 3 (its index on the table, no user tables), one row per user."""
    Store(db).close()
    conn = sqlite3.connect(db)
    for statement in ("DROP TRIGGER recordings_user_new", "DROP TRIGGER recordings_user_gone",
                      f"DROP TABLE {user_index.SORTED}", f"DROP TABLE {user_index.NEW}",
                      "CREATE INDEX recordings_user_time ON recordings (user, received_at)", "PRAGMA user_version = 3"):
        conn.execute(statement)
    conn.executemany("INSERT INTO recordings (received_at, command, user, query, body) "
                     "VALUES (?, 'C', ?, '{}', x'7b7d')", [(start + i, user) for i, user in enumerate(users)])
    conn.commit()
    conn.close()


def test_a_schema_3_file_is_migrated_its_users_sorted_and_its_old_index_dropped(tmp_path):
    db = tmp_path / "r.sqlite"
    schema_3_file(db, [f"u{i % 2}" for i in range(6)])
    assert found(db, Search(user="u1"), limit=50) == [1005.0, 1003.0, 1001.0]  # through the old index
    Store(db).close()  # the writer's open migrates
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "recordings_user_time" not in indexes
    sorted_rows, new = index_rows(db)
    assert new == [] and len(sorted_rows) == 6
    assert found(db, Search(user="u1"), limit=50) == [1005.0, 1003.0, 1001.0]


def test_the_writer_sorts_new_rows_on_its_own(tmp_path):
    recorder = Recorder(tmp_path / "r.sqlite", flush_interval=0.02, index_users_seconds=0.05, journal=False)
    try:
        store = Store(tmp_path / "r.sqlite")
        store.insert([rec(i, "carol") for i in range(3)])
        deadline = time.monotonic() + 10
        while index_rows(store.path)[1] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert index_rows(store.path) == ([("carol", 1000.0 + i, i + 1) for i in range(3)], [])
        store.close()
    finally:
        recorder.close()


def test_an_import_into_a_file_leaves_its_users_sorted(tmp_path):
    from receiver.recording.sources import import_records

    result = import_records(iter([rec(i, f"u{i % 4}") for i in range(7)]), tmp_path / "imported.sqlite")
    assert result.imported == 7
    sorted_rows, new = index_rows(tmp_path / "imported.sqlite")
    assert new == [] and len(sorted_rows) == 7


@pytest.mark.integration
def test_a_served_instance_migrates_its_file_once_in_the_master_and_finds_old_and_new_rows(serve, tmp_path):
    from receiver.client import post_callback

    from .helpers import APP_ID, ROOT, TOKEN
    from .test_recording import message
    from .test_recording_rules import rules_yaml

    db = tmp_path / "rec.sqlite"
    start = time.time() - 60  # inside the retention window
    schema_3_file(db, ["alice", "bob", "alice"], start)
    config = rules_yaml(recording=f"recording:\n  path: {str(db)!r}\n  flush_interval_seconds: 0.05\n")
    server = serve(config, workers=2, env={"PYTHONPATH": str(ROOT)})
    assert post_callback(server.callback_url, json.dumps(message("hi", user="alice")).encode(), app_id=APP_ID,
                         token=TOKEN, timeout=10).ok
    assert server.stop() == 0
    log = server.log()
    assert log.count("brought from schema 3 to 4") == 1, log
    assert log.index("brought from schema 3 to 4") < log.index("Booting worker"), log
    alice = found(db, Search(user="alice"), limit=50)
    assert alice[1:] == [start + 2, start] and alice[0] > start + 50  # the new one first, then the old


def test_replay_and_export_filters_find_a_users_rows_in_both_tables(tmp_path):
    from receiver.recording.store import Filters

    store = Store(tmp_path / "r.sqlite")
    store.insert([rec(i, "dan" if i % 3 == 0 else "eve") for i in range(9)])
    store.index_users(5)  # dan's first two sorted, his third still new
    plan = " ".join(row[3] for row in store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM recordings" + Filters(user="dan").sql(user_tables=True)[0], ["dan"] * 2))
    assert "PRIMARY KEY (user=?)" in plan, plan
    assert [r.received_at for r in store.records(Filters(user="dan"))] == [1000.0, 1003.0, 1006.0]
    assert store.count(Filters(user="eve", since=1004.0)) == 4  # 1004, 1005, 1007, 1008
    store.close()


def test_a_sort_that_fails_is_logged_counted_and_tried_again(tmp_path, caplog):
    recorder = Recorder(tmp_path / "r.sqlite", flush_interval=0.02, index_users_seconds=0.05, journal=False,
                        start=False)
    tries = []

    def locked(max_rows: int = 0) -> int:
        tries.append(max_rows)
        raise sqlite3.OperationalError("database is locked")

    recorder.store.index_users = locked
    with caplog.at_level("WARNING", logger="imhook.recording"):
        recorder.start()
        deadline = time.monotonic() + 10
        while len(tries) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        recorder.close()
    assert len(tries) >= 2 and recorder.stats()["user_index_failures_total"] == len(tries)
    assert "sorting new rows into the user index of" in caplog.text and "database is locked" in caplog.text


@pytest.mark.integration
@pytest.mark.parametrize("newer, says", [(False, "file is not a database"), (True, "schema version 9 is newer")])
def test_a_recordings_file_imhook_cannot_use_stops_the_master_in_one_line(tmp_path, newer, says):
    import os
    import subprocess
    import sys

    from .helpers import APP_ID, ROOT, TOKEN, free_port
    from .test_recording_rules import rules_yaml

    db = tmp_path / "rec.sqlite"
    if newer:
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA user_version = 9")
        conn.close()
    else:
        db.write_bytes(b"not a database at all " * 100)
    config = tmp_path / "imhook.yaml"
    config.write_text(rules_yaml(recording=f"recording:\n  path: {str(db)!r}\n"), encoding="utf-8")
    env = {**os.environ, "IMHOOK_CONFIG": str(config), "IMHOOK_APP_ID": APP_ID, "IMHOOK_TOKEN": TOKEN,
           "IMHOOK_BIND": f"127.0.0.1:{free_port()}", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "python:receiver.gunicorn_conf"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    line = config.read_text(encoding="utf-8").splitlines().index(f"  path: {str(db)!r}") + 1
    assert f"imhook: {config}:{line}: recording.path: cannot open recordings database {db}" in run.stderr, run.stderr
    assert says in run.stderr, run.stderr
    assert "Traceback" not in run.stdout + run.stderr and "Booting worker" not in run.stdout + run.stderr
