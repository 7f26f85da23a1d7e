"""The shared PostgreSQL outbox against the real server: claims, order, leases, the spool.

Two PgOutbox objects on one scratch database stand for two instances' senders (each has its own
claimant id and pools). A sender "dies mid-claim" by claiming and then never marking: its lease
lapses on the fake clock and the other sender takes the row.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import psycopg
import pytest

from receiver.errors import ConfigError
from receiver.ops.forward import pgoutbox
from receiver.ops.forward.events import Target
from receiver.ops.forward.outbox import Outbox
from receiver.ops.forward.pgoutbox import PgOutbox, outbox_url
from receiver.ops.forward.sender import Forwarder, Result

from .pgfixtures import create_database, drop_database, make_available, make_unavailable, pg_database, pg_server  # noqa: F401

LEASE = 30.0


@dataclass
class Clock:
    now: float = 2_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pg_outbox_url(pg_database):
    _, url = pg_database
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE outbox")
    return url


@pytest.fixture
def make(pg_outbox_url, tmp_path):
    made = []

    def make(name: str = "a", clock=None, url: str | None = None, stats=None, settle: float = 0.0) -> PgOutbox:
        box = PgOutbox(url or pg_outbox_url, Outbox(tmp_path / f"spool-{name}.sqlite3"), lease_seconds=LEASE,
                       settle_seconds=settle, clock=clock, stats=stats)
        box.front.wait(timeout=5)
        made.append(box)
        return box

    yield make
    for box in made:
        box.close()


def add(box, conversation: str, seq: int, target: str = "t") -> list[str]:
    body = f'{{"GroupId": "{conversation}", "MsgSeq": {seq}}}'.encode()
    return box.add([target], dedupe=f"{conversation}|{seq}", conversation=f"group:{conversation}",
                   command="Group.CallbackAfterSendMsg", app_id="1400000000", body=body)


def test_the_migration_brings_the_outbox_table(pg_outbox_url):
    with psycopg.connect(pg_outbox_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM imhook_schema_migrations ORDER BY version")]
    assert names[:2] == ["records", "outbox"]


def test_a_claimed_head_is_nobody_elses_and_its_conversation_waits(make):
    clock = Clock()
    a, b = make("a", clock), make("b", clock)
    for seq in (1, 2):
        assert add(a, "g1", seq) == ["t"]
    assert add(b, "g1", 1) == []  # the same event through another instance: one row
    add(b, "g2", 1)
    got_a = a.claim(["t"], limit=10)
    assert [r.dedupe for r in got_a] == ["g1|1", "g2|1"]
    assert b.claim(["t"], limit=10) == []  # both heads held; g1|2 is not a head while g1|1 is pending
    a.delivered(got_a[0].id)
    assert [r.dedupe for r in b.claim(["t"], limit=10)] == ["g1|2"]


def test_a_sender_that_stops_renewing_hands_its_claims_over_after_the_lease(make):
    clock = Clock()
    dying, other = make("dying", clock), make("other", clock)
    add(dying, "g1", 1)
    (row,) = dying.claim(["t"], limit=10)  # ...and never marks it
    clock.now += LEASE - 0.5
    assert other.claim(["t"], limit=10) == []  # just under the lease: still the dying sender's
    clock.now += 1.0
    (taken,) = other.claim(["t"], limit=10)  # just over: the other sender's
    assert taken.id == row.id
    dying.retry_later(row.id, 5.0, "late")  # a sender whose lease lapsed cannot undo the new claim
    assert other.claim(["t"], limit=10) == []
    other.delivered(taken.id)
    assert other.counts() == {"delivered": 1}


def test_an_event_spooled_on_another_instance_keeps_its_place_in_its_conversation(make, tmp_path):
    clock = Clock()
    a, b = make("a", clock, settle=1.0), make("b", clock, settle=1.0)
    b.spool.clock = clock
    b._closed_until = float("inf")  # b cannot reach the database just now: its event is spooled
    add(b, "g1", 25)
    clock.now += 0.5
    add(a, "g1", 26)  # a received the next event and wrote it straight to the database
    clock.now += 0.1
    assert a.claim(["t"], limit=5) == []  # not yet settled: b's spool may still hold an earlier one
    assert b.relay() == 1
    clock.now += 1.0
    (first,) = a.claim(["t"], limit=5)
    assert first.dedupe == "g1|25" and b.claim(["t"], limit=5) == []  # 26 waits while 25 is out
    a.delivered(first.id)
    assert [r.dedupe for r in b.claim(["t"], limit=5)] == ["g1|26"]


def test_two_live_senders_deliver_each_event_once_in_order_per_conversation(make):
    boxes = [make("a"), make("b")]
    for seq in range(1, 16):
        for conversation in ("g1", "g2", "g3", "g4"):
            add(boxes[seq % 2], conversation, seq)
    delivered: list[tuple[str, str]] = []
    in_flight: set[str] = set()
    overlap = []
    lock = threading.Lock()

    def sender(box):
        idle = 0
        while idle < 3:
            rows = box.claim(["t"], limit=2)
            idle = 0 if rows else idle + 1
            for row in rows:
                with lock:
                    if row.conversation in in_flight:
                        overlap.append(row.dedupe)
                    in_flight.add(row.conversation)
                time.sleep(0.001)  # "sending": the other sender runs meanwhile
                with lock:
                    delivered.append((row.conversation, row.dedupe))
                    in_flight.discard(row.conversation)
                box.delivered(row.id)

    threads = [threading.Thread(target=sender, args=(box,)) for box in boxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not overlap  # one conversation is never in flight on two senders at once
    assert sorted(d for _, d in delivered) == sorted({d for _, d in delivered})  # once each
    assert len(delivered) == 60
    per = defaultdict(list)
    for conversation, dedupe in delivered:
        per[conversation].append(int(dedupe.split("|")[1]))
    assert all(seqs == list(range(1, 16)) for seqs in per.values()), dict(per)


def test_the_forwarder_sends_from_the_shared_outbox_without_a_lock_file(make, tmp_path):
    box = make("a")
    add(box, "g1", 1)
    add(box, "g1", 2)
    got = []
    settings = {"concurrency": 2, "poll_seconds": 0.1, "keep_delivered_hours": 1.0, "lease_seconds": LEASE,
                "retry": {"base_seconds": 1.0, "cap_seconds": 8.0, "max_attempts": 0}}
    forwarder = Forwarder(box, [Target("t", "http://t", ("*",), 1.0)], settings,
                          deliver=lambda target, row: got.append(row.dedupe) or Result(True))
    assert forwarder.lock is None
    while forwarder.step() == 0.0:
        pass
    assert got == ["g1|1", "g1|2"] and box.counts() == {"delivered": 2}
    assert not list(tmp_path.glob("*.lock"))


def test_text_postgresql_cannot_hold_is_escaped_not_refused(make):
    box = make("a")
    assert box.add(["t"], dedupe="d\x00", conversation="group:\x00", command="C", app_id="1", body=b"\x00") == ["t"]
    (row,) = box.claim(["t"], limit=1)
    assert row.conversation == "group:\\u0000" and row.body == b"\x00"


class Stats:
    def __init__(self):
        self.counts = Counter()

    def count(self, what, target, kind="", n=1):
        self.counts[(what, target)] += n


@pytest.fixture
def away_database(pg_server):
    name = f"imhook_test_outbox_away_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_database(name)
    yield name, url
    drop_database(name)


def test_with_the_database_away_events_wait_in_the_spool_and_follow_in_order(make, away_database):
    name, url = away_database
    stats = Stats()
    box = make("a", url=url, stats=stats)
    add(box, "g1", 1)  # straight to the database
    make_unavailable(name)
    try:
        started = time.monotonic()
        for seq in (2, 3):
            assert add(box, "g1", seq) == ["t"]
        # The figure the task names: the reply path never waits long on a database that is away.
        assert time.monotonic() - started < 2 * pgoutbox.ENQUEUE_TIMEOUT_SECONDS + 0.5
        assert box.problem() and "unavailable" in box.problem() and "***" not in url
        assert box.claim(["t"], limit=5) == []  # the sender cannot reach it either: nothing, no error
        assert [r.dedupe for r in box.spool.pending(10)] == ["g1|2", "g1|3"]
        assert stats.counts == {("spooled", "t"): 2}  # counted: imhook_forward_spooled_total
    finally:
        make_available(name)
    box._closed_until = 0.0  # the breaker's backoff is over
    add(box, "g1", 4)  # the spool is not empty: this one queues behind the spooled ones
    assert [r.dedupe for r in box.spool.pending(10)] == ["g1|2", "g1|3", "g1|4"]
    deadline, order = time.monotonic() + 15, []
    while len(order) < 4 and time.monotonic() < deadline:
        for row in box.claim(["t"], limit=5):
            order.append(row.dedupe)
            box.delivered(row.id)
        time.sleep(0.1)
    assert order == ["g1|1", "g1|2", "g1|3", "g1|4"]
    assert box.problem() is None and not box.spool.has_pending()


@pytest.mark.parametrize("settings, env, expected", [
    ({"outbox": "/x/imhook-outbox.sqlite3"}, {}, None),
    ({"outbox": "postgresql://u:secret@h/db"}, {}, "postgresql://u:secret@h/db"),
    ({"outbox": "/x/o.sqlite3"}, {"IMHOOK_OUTBOX_DSN": "postgresql://h/e"}, "postgresql://h/e"),
    ({"outbox": "/x/o.sqlite3", "outbox_env": "MY_DSN"}, {"MY_DSN": "postgres://h/m"}, "postgres://h/m"),
])
def test_the_outbox_url_comes_from_the_config_or_the_environment(settings, env, expected):
    assert outbox_url(settings, env) == expected


def test_a_dsn_variable_that_is_not_a_url_is_a_config_error_without_its_value():
    with pytest.raises(ConfigError) as caught:
        outbox_url({"outbox": "o.sqlite3"}, {"IMHOOK_OUTBOX_DSN": "host=h password=hunter2"})
    assert "$IMHOOK_OUTBOX_DSN" in str(caught.value) and "hunter2" not in str(caught.value)


def test_an_outbox_file_gives_the_url(tmp_path):
    secret = tmp_path / "dsn"
    secret.write_text("postgresql://u:pw@h/db\n")
    assert outbox_url({"outbox": "o.sqlite3", "outbox_file": str(secret)}, {}) == "postgresql://u:pw@h/db"


def forwarding(**settings) -> dict:
    from receiver.ops.settings import ForwardingSection

    return ForwardingSection().load({"targets": [{"url": "http://d/e", "timeout_seconds": 5}], **settings})


@pytest.mark.parametrize("lease, ok", [(5, False), (5.01, True), (0.5, False), (3600, True), (3600.5, False)])
def test_lease_seconds_outlasts_every_target_timeout_and_stays_in_range(lease, ok):
    from marshmallow import ValidationError

    if ok:
        assert forwarding(lease_seconds=lease)["lease_seconds"] == lease
    else:
        with pytest.raises(ValidationError) as caught:
            forwarding(lease_seconds=lease)
        assert "lease_seconds" in caught.value.messages


def test_the_lease_defaults_to_30_seconds():
    assert forwarding()["lease_seconds"] == 30.0


def test_an_outbox_url_is_not_taken_for_a_path(tmp_path):
    from receiver.config import parse_config

    text = ("app_id: '1400000000'\nrules: []\nforwarding:\n  outbox: postgresql://u:pw@h/db\n"
            "  targets: [{url: 'http://d/e'}]\n")
    config = parse_config(text, "t.yaml", {"IMHOOK_APP_ID": "1400000000"}, base_dir=tmp_path)
    assert config.forwarding["outbox"] == "postgresql://u:pw@h/db"
    assert config.forwarding["spool"] == str(tmp_path / "imhook-outbox-spool.sqlite3")


def test_start_stops_on_an_outbox_database_behind_the_schema_naming_db_upgrade(pg_server):
    from receiver.errors import ImhookError

    name = f"imhook_test_outbox_behind_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_database(name, upgrade=False).replace("postgres@", "postgres:pw@")
    try:
        with pytest.raises(ImhookError) as caught:
            pgoutbox.check_at_start({"targets": [{}], "outbox": url}, env={})
    finally:
        drop_database(name)
    assert "imhook db upgrade" in str(caught.value) and ":***@" in str(caught.value) and "pw@" not in str(caught.value)
    pgoutbox.check_at_start({"targets": [{}], "outbox": "imhook-outbox.sqlite3"}, env={})  # SQLite: nothing to check


@pytest.mark.parametrize("group, msg_key", [
    ("g" * 10**6, "k"),  # a million-character GroupId: the conversation key is its digest
    ("g", "k" * 10**6),  # and MsgKey: the dedupe key is
    ("g\ud800", "k\x00"),  # a lone surrogate, a NUL
    ("g" * (pgoutbox.KEY_MAX_BYTES - 6), "k"),  # "group:" + this: just at the limit, stored as is
])
def test_hostile_keys_are_stored_claimed_and_recognised_again(make, group, msg_key):
    from receiver.ops.forward import events

    box = make("a")
    body = {"GroupId": group, "MsgKey": msg_key}
    keys = {"dedupe": events.dedupe_key("Group.CallbackAfterSendMsg", body),
            "conversation": events.conversation_key(body)}
    raw = b'{"GroupId": "..."}'
    assert box.add(["t"], **keys, command="Group.CallbackAfterSendMsg", app_id="1", body=raw) == ["t"]
    assert box.add(["t"], **keys, command="Group.CallbackAfterSendMsg", app_id="1", body=raw) == []  # a repeat
    (row,) = box.claim(["t"], limit=5)
    assert row.body == raw and len(row.conversation.encode()) <= pgoutbox.KEY_MAX_BYTES
    if len(keys["conversation"].encode()) <= pgoutbox.KEY_MAX_BYTES and "\x00" not in keys["conversation"]:
        assert row.conversation == keys["conversation"]


def test_the_sender_waits_for_what_time_releases_and_polls_for_the_rest(make):
    clock = Clock()
    a, b = make("a", clock, settle=1.0), make("b", clock, settle=1.0)
    add(a, "g1", 1)
    assert a.claim(["t"], limit=5) == [] and a.next_due(["t"]) == pytest.approx(clock.now + 1.0)  # settling
    clock.now += 1.0
    add(a, "g1", 2)
    (head,) = a.claim(["t"], limit=5)
    # b: g1|1 is a's until the lease lapses; g1|2 settles in 1 s but waits behind g1|1 after that
    assert b.claim(["t"], limit=5) == [] and b.next_due(["t"]) == pytest.approx(clock.now + 1.0)
    clock.now += 1.0
    assert b.next_due(["t"]) == pytest.approx(clock.now + LEASE - 1.0)  # not "now": no spinning


def test_a_database_that_hangs_costs_a_reply_at_most_the_enqueue_timeout_and_the_event_is_spooled(
        make, pg_outbox_url):
    box = make("a")
    add(box, "g1", 1)  # the pool's connection is open
    with psycopg.connect(pg_outbox_url) as blocker:
        blocker.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")  # every INSERT waits behind it
        started = time.monotonic()
        assert add(box, "g1", 2) == ["t"]
        waited = time.monotonic() - started
        assert add(box, "g1", 3) == ["t"]  # the breaker is open: straight to the spool
        assert time.monotonic() - started - waited < pgoutbox.ENQUEUE_TIMEOUT_SECONDS
    assert waited < pgoutbox.ENQUEUE_TIMEOUT_SECONDS + 0.5  # the task's figure: never near the IM's 2 s
    assert [r.dedupe for r in box.spool.pending(10)] == ["g1|2", "g1|3"]


def test_db_upgrade_finds_the_outbox_database_of_a_config_without_a_recordings_database(pg_server, tmp_path):
    from click.testing import CliRunner

    from receiver.cli import main

    name = f"imhook_test_outbox_upgrade_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_database(name, upgrade=False)
    config = tmp_path / "imhook.yaml"
    config.write_text("app_id: '1400000000'\nrules: []\nrecording: {enabled: false}\n"
                      f"forwarding:\n  outbox: {url.replace('postgres@', 'postgres:pw@')}\n"
                      "  targets: [{url: 'http://d/e'}]\n", encoding="utf-8")
    try:
        result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)],
                                    env={"IMHOOK_RECORDING_DSN": "", "IMHOOK_OUTBOX_DSN": ""})
        with psycopg.connect(url) as conn:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        drop_database(name)
    assert result.exit_code == 0, result.output
    assert "applied 0002_outbox" in result.output and "pw@" not in result.output and ":***@" in result.output
    assert {"outbox", "recordings"} <= tables


def test_the_quarantine_command_lists_and_releases_the_shared_outbox_rows(make, pg_outbox_url):
    from click.testing import CliRunner

    from receiver.cli import main

    box = make("a", Clock())
    add(box, "g1", 1)
    add(box, "g2", 1)
    [head, _] = box.claim(["t"], 2)
    box.quarantine(head.id, "no header can carry this")
    secret_url = pg_outbox_url.replace("postgres@", "postgres:pw@")
    env = {"IMHOOK_RECORDING_DSN": "", "IMHOOK_OUTBOX_DSN": ""}

    listed = CliRunner().invoke(main, ["recordings", "quarantine", "--db", "none.sqlite", "--outbox", secret_url],
                                env=env)
    assert listed.exit_code == 0, listed.output
    assert ":***@" in listed.output and "pw@" not in listed.output
    assert "1 quarantined rows" in listed.output
    assert f"row {head.id} Group.CallbackAfterSendMsg to t: no header can carry this" in listed.output

    released = CliRunner().invoke(main, ["recordings", "quarantine", "--db", "none.sqlite", "--outbox", secret_url,
                                         "--import"], env=env)
    assert released.exit_code == 0, released.output
    assert "1 quarantined rows pending again" in released.output
    with psycopg.connect(pg_outbox_url) as conn:
        assert conn.execute("SELECT status, claimed_by FROM outbox WHERE id = %s", (head.id,)).fetchone() == \
            ("pending", None)
    assert pgoutbox.quarantined_rows(pg_outbox_url) == []


def test_the_quarantine_command_names_an_outbox_it_cannot_reach_in_one_line(tmp_path):
    from click.testing import CliRunner

    from receiver.cli import main

    result = CliRunner().invoke(main, ["recordings", "quarantine", "--db", str(tmp_path / "none.sqlite"), "--outbox",
                                       "postgresql://postgres:pw@127.0.0.1:1/nowhere"],
                                env={"IMHOOK_RECORDING_DSN": "", "IMHOOK_OUTBOX_DSN": ""})
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "the outbox postgresql://postgres:***@127.0.0.1:1/nowhere" in result.output and "pw" not in result.output


def test_a_delivery_that_outlasts_the_lease_keeps_its_claim(pg_outbox_url, tmp_path):
    """The sender renews the claims it is still sending every third of the lease: another
    instance's sender does not take (and send again) an event whose delivery is merely slow."""
    lease = 1.0
    a, b = (PgOutbox(pg_outbox_url, Outbox(tmp_path / f"spool-{n}.sqlite3"), lease_seconds=lease, settle_seconds=0.0)
            for n in ("a", "b"))
    try:
        add(a, "g1", 1)
        sending, sent = threading.Event(), []

        def slow(target, row):
            sending.set()
            time.sleep(3 * lease)  # a downstream trickling its answer
            sent.append(row.dedupe)
            return Result(True)

        settings = {"concurrency": 1, "poll_seconds": 0.1, "keep_delivered_hours": 1.0, "lease_seconds": lease,
                    "retry": {"base_seconds": 1.0, "cap_seconds": 8.0, "max_attempts": 0}}
        forwarder = Forwarder(a, [Target("t", "http://t", ("*",), 1.0)], settings, deliver=slow)
        stepping = threading.Thread(target=forwarder.step)
        stepping.start()
        assert sending.wait(5)
        taken = []
        while stepping.is_alive():
            taken += b.claim(["t"], limit=1)
            time.sleep(0.1)
        stepping.join()
        assert sent == ["g1|1"] and taken == []
        assert a.counts() == {"delivered": 1}
    finally:
        a.close()
        b.close()
