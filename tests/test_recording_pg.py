"""The PostgreSQL recordings store, against the real server: schema, text policy, idempotence,
filters, a database that goes away and comes back, and the command line."""

from __future__ import annotations

import json
import logging
import os
import secrets
import time

import psycopg
import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.errors import ImhookError
from receiver.recording import pgschema
from receiver.recording.journal import Journal
from receiver.recording.locations import store_url
from receiver.recording.pgstore import PgStore, StoreUnavailable, mask
from receiver.recording.record import Record
from receiver.recording.store import Filters, Store
from receiver.recording.writer import Recorder

from .pgfixtures import (create_database, drop_database, make_available, make_unavailable, pg_database,  # noqa: F401
                         pg_server, pg_url, url_for)

pytestmark = pytest.mark.postgres

BIG = 2**70
LONG = "长" * 10**6


def a_record(i: int = 0, **fields) -> Record:
    base = dict(received_at=1_700_000_000.0 + i, command="C2C.CallbackBeforeSendMsg", user=f"user{i % 3}",
                query={"SdkAppid": "1400000000", "n": str(i)}, body=json.dumps({"Text": f"hi {i}"}).encode(),
                status=200, reply={"ActionStatus": "OK", "ErrorCode": 0}, outcome="allow",
                trace=[{"rule": "r", "result": "allow"}], request_id=f"rid-{i}")
    return Record(**{**base, **fields})


def read_all(store, filters: Filters = Filters()) -> list[Record]:
    return [record for record in store.records(filters)]


def without_id(record: Record) -> dict:
    data = record.to_json()
    data.pop("id", None)
    return data


# --- the schema ------------------------------------------------------------------------------------


def test_a_fresh_database_is_refused_until_db_upgrade_then_upgrade_is_idempotent(pg_server):
    name = f"imhook_test_{os.getpid()}_{secrets.token_hex(3)}_schema"
    url = create_database(name, upgrade=False)
    try:
        with psycopg.connect(url) as conn:
            assert pgschema.applied_version(conn) == 0
            with pytest.raises(ImhookError, match=r"has no imhook schema.*run `imhook db upgrade`"):
                pgschema.check(conn, mask(url))
        result = CliRunner().invoke(main, ["db", "upgrade", "--db", url])
        assert result.exit_code == 0, result.output
        assert "applied 0001_records" in result.output and f"schema version {pgschema.SCHEMA_VERSION}" in result.output
        again = CliRunner().invoke(main, ["db", "upgrade", "--db", url])
        assert again.exit_code == 0 and "already up to date" in again.output and "applied" not in again.output
        with psycopg.connect(url) as conn:
            pgschema.check(conn, mask(url))  # no error now
            rows = conn.execute("SELECT version, name FROM imhook_schema_migrations ORDER BY version").fetchall()
        assert rows == [(m.version, m.name) for m in pgschema.migrations()]
    finally:
        drop_database(name)


@pytest.mark.parametrize("version, expected", [
    (0, "has no imhook schema"),
    (pgschema.SCHEMA_VERSION - 1, "has no imhook schema" if pgschema.SCHEMA_VERSION == 1 else "is at schema version"),
    (pgschema.SCHEMA_VERSION, None),
    (pgschema.SCHEMA_VERSION + 1, "newer than this imhook"),
])
def test_schema_versions_just_under_at_and_over_the_codes(version, expected):
    why = pgschema.problem(version, "db")
    assert (why is None) if expected is None else (expected in why)


def test_start_up_stops_on_a_database_behind_the_schema_and_names_db_upgrade(pg_server, tmp_path):
    from receiver.reload import check_start_up

    name = f"imhook_test_{os.getpid()}_{secrets.token_hex(3)}_start"
    url = create_database(name, upgrade=False)
    config = tmp_path / "imhook.yaml"
    config.write_text(f"app_id: 1400000000\nrecording:\n  store: {url}\n", encoding="utf-8")
    try:
        with pytest.raises(ImhookError, match=r"run `imhook db upgrade`"):
            check_start_up(config)
        with psycopg.connect(url) as conn:
            pgschema.upgrade(conn)
        _, chain = check_start_up(config)  # at the schema: starts
        chain.close()
    finally:
        drop_database(name)


# --- the text policy and the row format ---------------------------------------------------------------


HOSTILE = {
    "lone surrogate": dict(user="a\ud800b", reason="x\udfffy", query={"q": "\ud800"},
                           body='{"Text":"\\ud800"}'.encode(), reply={"Text": "\udc00"}),
    "NUL": dict(user="nul\x00user", reason="r\x00", request_id="id\x00", query={"q": "a\x00b"},
                body=b'{"Text":"a\x00b"}\x00', reply={"ErrorInfo": "\x00"}),
    "10^6 characters": dict(reason=LONG, query={"q": LONG}, body=LONG.encode(), reply={"ErrorInfo": LONG}),
    "2**70": dict(query={"n": BIG}, reply={"ErrorCode": 0, "Big": BIG, "Neg": -BIG},
                  trace=[{"rule": "r", "n": BIG}]),
}


@pytest.mark.parametrize("fields", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_reads_back_from_postgresql_as_from_sqlite(pg_url, tmp_path, fields):
    record = a_record(1, **fields)
    pg, lite = PgStore(pg_url, pooled=False), Store(tmp_path / "rec.sqlite")
    try:
        assert pg.insert([record], ["k1"]) == lite.insert([record], ["k1"]) == 1
        [from_pg], [from_lite] = read_all(pg), read_all(lite)
    finally:
        pg.close()
        lite.close()
    assert from_pg.body == record.body  # BYTEA: the raw bytes, NUL included
    assert from_pg.query == record.query and from_pg.reply == record.reply  # JSON columns: exact
    expected = without_id(from_lite)
    # PostgreSQL TEXT holds no NUL: in a plain text column it is the six characters \u0000.
    for column in ("user", "reason", "request_id", "error", "rule", "command", "outcome", "source"):
        expected[column] = expected[column].replace("\x00", "\\u0000")
    assert without_id(from_pg) == expected


def test_a_nul_in_a_text_column_is_stored_as_its_escape_and_found_by_it(pg_url):
    store = PgStore(pg_url, pooled=False)
    try:
        store.insert([a_record(1, user="a\x00b"), a_record(2, user="ab")], ["k1", "k2"])
        [found] = read_all(store, Filters(user="a\x00b"))
        assert found.user == "a\\u0000b" and found.request_id == "rid-1"
    finally:
        store.close()


def test_a_record_replayed_twice_is_stored_once(pg_url):
    store = PgStore(pg_url, pooled=False)
    try:
        records = [a_record(i) for i in range(5)]
        keys = [f"tok:{i}" for i in range(5)]
        assert store.insert(records, keys) == 5
        assert store.insert(records[2:] + [a_record(9)], keys[2:] + ["tok:9"]) == 1
        assert store.insert([a_record(20), a_record(20)]) == 2  # no key: always added
        assert store.count() == 8
    finally:
        store.close()


def test_the_writers_store_copies_fresh_batches_straight_in_and_replays_through_the_fallback(pg_url):
    """The pooled store (the writer's): a batch of new keys goes by one COPY into the table; a batch
    holding a stored key (a journal replayed) fails that COPY as a whole and goes again through the
    staging table with ON CONFLICT, in a fresh transaction: each key stored once, nothing half-done."""
    store = PgStore(pg_url)
    try:
        records, keys = [a_record(i) for i in range(6)], [f"fb:{i}" for i in range(6)]
        assert store.insert(records[:3], keys[:3]) == 3
        with store.pool.connection() as conn:  # the fast path never made the staging table
            assert conn.execute("SELECT to_regclass('pg_temp.recordings_staged')").fetchone() == (None,)
        assert store.replays_total == 0
        # Two stored keys among new ones, and one new key twice in the batch itself.
        assert store.insert(records[1:] + [a_record(6)], keys[1:] + ["fb:5"]) == 3
        assert store.replays_total == 1
        assert store.insert([a_record(7)], ["fb:7"]) == 1 and store.replays_total == 1  # fast again
        stored = read_all(store)
        assert sorted(r.request_id for r in stored) == [f"rid-{i}" for i in (0, 1, 2, 3, 4, 5, 7)]
        with store.pool.connection() as conn:
            assert conn.execute("SELECT key, COUNT(*) FROM recordings GROUP BY key HAVING COUNT(*) > 1"
                                ).fetchall() == []
        assert store.problem() is None  # a replay is not the database failing
    finally:
        store.close()


FILTERS = [Filters(), Filters(commands=("C2C.CallbackBeforeSendMsg",)), Filters(commands=("State.StateChange", "x")),
           Filters(since=1_700_000_003.0), Filters(until=1_700_000_003.0), Filters(since=1_700_000_002.0,
           until=1_700_000_005.0), Filters(user="user1"), Filters(include_rejected=False),
           Filters(commands=("State.StateChange",), user="user2", include_rejected=False)]


@pytest.mark.parametrize("filters", FILTERS)
def test_filters_select_in_postgresql_what_they_select_in_sqlite(pg_url, tmp_path, filters):
    records = [a_record(i, command="State.StateChange" if i % 2 else "C2C.CallbackBeforeSendMsg",
                        rejected=i % 4 == 0) for i in range(10)]
    pg, lite = PgStore(pg_url, pooled=False), Store(tmp_path / "rec.sqlite")
    try:
        pg.insert(records)
        lite.insert(records)
        assert pg.count(filters) == lite.count(filters)
        assert [r.request_id for r in read_all(pg, filters)] == [r.request_id for r in read_all(lite, filters)]
        assert pg.summary() == lite.summary()
    finally:
        pg.close()
        lite.close()


def test_records_stream_through_a_server_side_cursor(pg_url):
    store = PgStore(pg_url, pooled=False)
    try:
        store.insert([a_record(i) for i in range(1200)])
        stream = store.records()
        first = next(stream)
        # The rest stays in the server: an open cursor, READ_BATCH rows fetched so far.
        cursors = store._conn.execute("SELECT name FROM pg_cursors").fetchall()
        assert ("imhook_records",) in cursors and first.request_id == "rid-0"
        assert sum(1 for _ in stream) == 1199
    finally:
        store.close()


def test_retention_deletes_only_older_records_in_chunks(pg_url):
    store = PgStore(pg_url, pooled=False)
    try:
        store.insert([a_record(i) for i in range(12)])
        assert store.delete_older_than(1_700_000_007.0, chunk=3) == 7
        assert sorted(r.request_id for r in read_all(store)) == sorted(f"rid-{i}" for i in range(7, 12))
    finally:
        store.close()


# --- the writer: off the reply path, nothing lost ---------------------------------------------------------


def recorder_for(url: str, tmp_path, **kwargs) -> Recorder:
    return Recorder(tmp_path / "unused.sqlite", store=url, journal_dir=tmp_path / "journal", flush_interval=0.05,
                    rotate_seconds=0.2, stall_seconds=1, **kwargs)


def stored_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT request_id FROM recordings ORDER BY request_id")]


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def own_database(pg_server):
    """A scratch database this test may make unavailable (the shared server keeps running)."""
    name = f"imhook_test_{os.getpid()}_down"
    url = create_database(name)
    yield name, url
    drop_database(name)


def test_the_database_away_records_wait_in_the_journal_and_are_stored_once_when_back(own_database, tmp_path,
                                                                                    caplog):
    name, url = own_database
    secret_url = url.replace("postgres@", "postgres:s3cret-pw@")  # trust auth: any password is accepted
    recorder = recorder_for(secret_url, tmp_path)
    try:
        def record(i: int) -> None:
            recorder.keep(a_record(i, received_at=time.time()))

        for i in range(20):
            record(i)
        assert wait_for(lambda: len(stored_ids(url)) == 20)

        make_unavailable(name)
        slowest = 0.0
        for i in range(20, 200):
            started = time.perf_counter()
            record(i)
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.01)
        assert slowest < 0.05  # the reply path only appends to the journal
        # /readyz's reason: not drained (the stall machinery), and why: the database.
        assert wait_for(lambda: "unavailable" in (recorder.health() or ""), timeout=20), recorder.health()
        reason = recorder.health()
        assert "has not drained" in reason and "unavailable" in reason and "s3cret-pw" not in reason
        assert "***" in reason

        make_available(name)
        assert wait_for(lambda: len(stored_ids(url)) == 200, timeout=40), len(stored_ids(url))
        assert stored_ids(url) == sorted(f"rid-{i}" for i in range(200))  # each exactly once
        assert wait_for(lambda: recorder.health() is None, timeout=10)
    finally:
        make_available(name)
        recorder.close()
    assert "s3cret-pw" not in caplog.text


def test_an_instance_restarted_while_the_database_is_away_stores_its_journal_when_it_is_back(own_database,
                                                                                            tmp_path):
    name, url = own_database
    make_unavailable(name)
    recorder = recorder_for(url, tmp_path)
    for i in range(30):
        recorder.keep(a_record(i, received_at=time.time()))
    recorder.close(timeout=10)  # the database is away: the journal files stay for the next start
    assert list((tmp_path / "journal").glob("*.jsonl"))
    make_available(name)
    again = recorder_for(url, tmp_path)  # the same journal_dir: what the last one left is imported
    try:
        assert wait_for(lambda: len(stored_ids(url)) == 30), len(stored_ids(url))
        assert stored_ids(url) == sorted(f"rid-{i}" for i in range(30))
    finally:
        again.close()


def test_the_journal_stops_at_its_bound_while_the_database_is_away_and_counts_what_it_did_not_keep(
        own_database, tmp_path):
    name, url = own_database
    make_unavailable(name)
    bound = 1024**2
    recorder = recorder_for(url, tmp_path, journal_max_bytes=bound, queue_size=50)
    try:
        big = "x" * 20_000
        for i in range(200):  # ~4 MB of lines against a 1 MiB bound
            recorder.keep(a_record(i, reason=big))
        on_disk = sum(p.stat().st_size for p in (tmp_path / "journal").iterdir())
        assert on_disk <= bound + 30_000  # one line past the bound at most
        assert recorder.journal_full_total > 0 and recorder.stats()["journal_full_total"] == recorder.journal_full_total
    finally:
        make_available(name)
        recorder.close()


def test_the_journal_bound_just_under_and_over(tmp_path):
    journal = Journal(tmp_path / "j", max_bytes=100)
    journal.bytes = 99
    assert not journal.full
    journal.bytes = 100
    assert journal.full
    journal.abandon()


def test_an_unreachable_store_fails_fast_after_the_first_failure(tmp_path):
    store = PgStore("postgresql://postgres:pw@127.0.0.1:1/none")  # nothing listens on port 1
    try:
        with pytest.raises(StoreUnavailable, match=r"postgres:\*\*\*@127\.0\.0\.1:1/none unavailable"):
            store.insert([a_record(1)], ["k"])
        started = time.perf_counter()
        with pytest.raises(StoreUnavailable):
            store.insert([a_record(1)], ["k"])
        assert time.perf_counter() - started < 0.1  # the backoff: no new attempt yet
        assert "unavailable for" in store.problem()
    finally:
        store.close()


# --- config and the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("settings, env, expected", [
    ({"store": None}, {}, None),
    ({"store": "postgresql://a@h/d"}, {}, "postgresql://a@h/d"),
    ({"store": "postgresql://a@h/d"}, {"IMHOOK_RECORDING_DSN": "postgres://b@h/e"}, "postgres://b@h/e"),
    ({"store": None, "store_env": "MY_DSN"}, {"MY_DSN": "postgresql://c@h/f"}, "postgresql://c@h/f"),
], ids=["sqlite", "config", "env wins", "own env name"])
def test_the_store_url_comes_from_env_then_file_then_config(settings, env, expected):
    assert store_url({"store_env": "IMHOOK_RECORDING_DSN", **settings}, env) == expected


def test_the_store_url_can_come_from_a_file_whose_content_is_never_shown(tmp_path):
    secret = tmp_path / "dsn"
    secret.write_text("postgresql://u:pw@h/d\n", encoding="utf-8")
    assert store_url({"store_env": "X", "store_file": str(secret)}, {}) == "postgresql://u:pw@h/d"
    secret.write_text("mysql://u:hunter2@h/d\n", encoding="utf-8")
    with pytest.raises(ImhookError) as caught:
        store_url({"store_env": "X", "store_file": str(secret)}, {})
    assert "hunter2" not in str(caught.value)


def test_a_store_that_is_not_a_postgresql_url_is_a_config_error():
    from receiver.config import parse_config
    from receiver.errors import ConfigError

    with pytest.raises(ConfigError, match="postgresql://"):
        parse_config("recording:\n  store: mysql://u@h/d\n", "t.yaml", {}, require_app_id=False)


@pytest.mark.parametrize("text, shown", [
    ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u@h/db?password=secret&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
    ("host=h password=secret dbname=db", "host=h password=*** dbname=db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
])
def test_a_dsn_shown_anywhere_has_its_password_masked(text, shown):
    assert mask(text) == shown


def test_recordings_copy_moves_records_between_sqlite_jsonl_and_postgresql_idempotently(pg_url, tmp_path):
    lite, jsonl, back = tmp_path / "a.sqlite", tmp_path / "a.jsonl", tmp_path / "b.sqlite"
    store = Store(lite)
    store.insert([a_record(i, user="u\x00" if i == 1 else "u", query={"n": BIG}) for i in range(7)])
    store.close()
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(main, ["recordings", "copy", str(lite), pg_url])
        assert result.exit_code == 0, result.output
    assert "skipped 7 already present" in result.output
    assert len(stored_ids(pg_url)) == 7
    for _ in range(2):
        assert runner.invoke(main, ["recordings", "copy", pg_url, str(jsonl), "--since",
                                    "1700000002"]).exit_code == 0
    assert len(jsonl.read_text(encoding="utf-8").splitlines()) == 5
    assert runner.invoke(main, ["recordings", "copy", pg_url, str(back)]).exit_code == 0
    copied = Store(back, create=False)
    try:
        assert sorted(r.request_id for r in copied.records()) == [f"rid-{i}" for i in range(7)]
        assert all(r.query == {"n": BIG} for r in copied.records())
    finally:
        copied.close()
    stats = runner.invoke(main, ["recordings", "stats", "--db", pg_url])
    assert stats.exit_code == 0 and stats.output.split()[-1] == "7"


def test_without_db_the_commands_use_the_configs_store_else_its_path(pg_url, tmp_path):
    config = tmp_path / "imhook.yaml"
    config.write_text(f"recording:\n  store_env: NO_SUCH_VARIABLE\n  store: {pg_url}\n", encoding="utf-8")
    store = PgStore(pg_url, pooled=False)
    store.insert([a_record(1)])
    store.close()
    runner = CliRunner()
    from_store = runner.invoke(main, ["recordings", "stats", "--config", str(config)])
    assert from_store.exit_code == 0 and from_store.output.split()[-1] == "1", from_store.output
    upgraded = runner.invoke(main, ["db", "upgrade", "--config", str(config)])
    assert upgraded.exit_code == 0 and "already up to date" in upgraded.output
    config.write_text("recording:\n  store_env: NO_SUCH_VARIABLE\n", encoding="utf-8")
    from_path = runner.invoke(main, ["recordings", "stats", "--config", str(config)])
    assert from_path.exit_code == 2 and "imhook-recordings.sqlite (recording.path" in from_path.output
    no_store = runner.invoke(main, ["db", "upgrade", "--config", str(config)])
    assert no_store.exit_code == 2 and "no PostgreSQL store" in no_store.output


def test_commands_name_an_unreachable_database_in_one_line_with_the_password_masked():
    result = CliRunner().invoke(main, ["recordings", "stats", "--db", "postgresql://u:hunter2@127.0.0.1:1/x"])
    assert result.exit_code == 2
    assert "hunter2" not in result.output and "u:***@127.0.0.1:1/x" in result.output


def test_replay_reads_a_postgresql_source(pg_url):
    store = PgStore(pg_url, pooled=False)
    store.insert([a_record(i, reply=None, status=None, outcome="") for i in range(3)])
    store.close()
    result = CliRunner().invoke(main, ["replay", pg_url, "-q", "--show", "0"])
    assert result.exit_code == 0, result.output
    assert "3 in" in result.output
