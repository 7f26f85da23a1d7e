"""The console over the PostgreSQL store: the same searches select the same records as over SQLite,
through the indexes of migration 0003. Against the real local server (skips without one; fails under CI=true)."""

from __future__ import annotations

import time

import pytest

from .consolekit import message
from .pgfixtures import pg_database, pg_server, pg_url  # noqa: F401

pytestmark = pytest.mark.postgres


def _records(now: float):
    from receiver.recording.record import Record

    out = []
    for i in range(40):
        text = "hello badword" if i % 7 == 0 else f"message {i} lunch" if i % 3 == 0 else f"message {i}"
        refused = i % 7 == 0
        body = message(text, user=f"user{i % 4}")
        out.append(Record(received_at=now - 600 + i * 10, command="C2C.CallbackBeforeSendMsg" if i % 5 else
                          "Group.CallbackBeforeSendMsg", query={"SdkAppid": "1400000000"},
                          body=__import__("json").dumps(body).encode(), status=200, reply={"ErrorCode": int(refused)},
                          outcome="refuse" if refused else "shed" if i == 11 else "allow",
                          rule="bad_words" if refused else "", user=f"user{i % 4}"))
    return out


SEARCHES = [
    {}, {"outcome": "refuse"}, {"outcome": "shed"}, {"rule": "bad_words"}, {"user": "user2"},
    {"command": "Group.CallbackBeforeSendMsg"}, {"text": "lunch"}, {"text": "badword", "user": "user0"},
    {"user": "user1", "outcome": "allow"}, {"since_ago": 400}, {"until_ago": 400, "outcome": "allow"},
]


@pytest.mark.parametrize("fields", SEARCHES, ids=[str(s) for s in SEARCHES])
def test_searches_select_in_postgresql_what_they_select_in_sqlite(pg_url, tmp_path, fields):  # noqa: F811
    from receiver.console.queries import Reader, Search
    from receiver.recording.pgstore import PgStore
    from receiver.recording.store import Store

    now = time.time()
    records = _records(now)
    sqlite = Store(tmp_path / "rec.sqlite")
    sqlite.insert(records)
    sqlite.close()
    pg = PgStore(pg_url, pooled=False)
    pg.insert(records)
    pg.close()
    fields = dict(fields)
    if "since_ago" in fields:
        fields["since"] = now - fields.pop("since_ago")
    if "until_ago" in fields:
        fields["until"] = now - fields.pop("until_ago")
    search = Search(**fields)
    lite_reader, pg_reader = Reader(None, tmp_path / "rec.sqlite"), Reader(pg_url, tmp_path / "unused")
    try:
        lite = lite_reader.search(search, limit=10, scan_rows=1000)
        pgsql = pg_reader.search(search, limit=10, scan_rows=1000)
        assert [r.received_at for r in pgsql.records] == [r.received_at for r in lite.records]
        assert pgsql.more == lite.more
        assert lite.records, "a search that finds nothing tests little"
        assert pg_reader.per_minute(search, now=now) == lite_reader.per_minute(search, now=now)
        first = lite.records[0] if lite.records else None
        if first is not None:
            pg_first = pg_reader.record(pgsql.records[0].id)
            assert (pg_first.body, pg_first.outcome, pg_first.user) == (first.body, first.outcome, first.user)
    finally:
        lite_reader.close()
        pg_reader.close()


def test_the_console_indexes_serve_its_searches_in_postgresql(pg_url):  # noqa: F811
    import psycopg

    from receiver.console.queries import POSTGRES, Search, search_query

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # a table this small would be scanned otherwise
        for fields, index in (({"outcome": "refuse"}, "recordings_outcome_time"),
                              ({"rule": "r"}, "recordings_rule_time"), ({"user": "u"}, "recordings_user_time")):
            q = search_query(Search(**fields), POSTGRES, limit=51, scan_rows=1000)
            plan = "\n".join(row[0] for row in conn.execute(("EXPLAIN " + q.sql).encode(), q.args))
            assert index in plan, plan
