"""The outbox in PostgreSQL: one outbox for every imhook instance, every instance's senders claim.

Claims. A sender claims the due head of a conversation (its oldest pending row for a target) for
one delivery attempt, in one statement: `SELECT ... FOR UPDATE SKIP LOCKED` picks heads nobody
holds, and the same statement writes `claimed_by` and `lease_until` (now + forwarding.lease_seconds,
on the database's clock, so the instances' clocks do not matter). A row whose lease is running is
no one else's; a conversation's later rows are not heads while it is pending, so a conversation is
sent in order and one event at a time across all instances. A sender that dies holding a claim
stops renewing nothing: its lease lapses and another sender claims the row. That is the only
repeat: an instance that dies between sending and marking; the X-Imhook-Event-Id header (the same
for every attempt: events.event_id) lets the downstream drop it. lease_seconds is longer than any
target's timeout_seconds (settings.py), so a live sender marks its row before its lease lapses.

The reply path never waits for the database (promise 1). The Enqueuer's `add` writes straight to
PostgreSQL only while it answers: with a short statement and pool timeout (ENQUEUE_TIMEOUT_SECONDS),
and only while the instance's spool is empty. Any failure opens a breaker for a backoff (1 s
doubling to 8 s): meanwhile, and until the spool is drained, events go to the spool, the SQLite
outbox file of outbox.py (forwarding.spool, a local INSERT, crash-safe like today's outbox), and
the sender moves them to PostgreSQL in their order (`relay`) before it claims. A spool kept while
anything waits in it keeps an instance's events in order; across instances, heads are ordered by
receive time and claimed forwarding.settle_seconds after it, so an event relayed late from a spool
still goes before the later events of its conversation (docs/operations.md, "Order across instances").
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from ...recording import pgschema
from ...recording.locations import store_url
from ...recording.pgstore import StoreUnavailable, _pg_text, mask
from .outbox import DEAD, DELIVERED, QUARANTINED, Outbox, Row

log = logging.getLogger("imhook.forward")

DEFAULT_OUTBOX_ENV = "IMHOOK_OUTBOX_DSN"
ENQUEUE_TIMEOUT_SECONDS = 0.25  # the most a reply waits on the database, once per breaker period
SENDER_STATEMENT_MS = 10_000  # a claim or a mark stuck longer is cancelled
CONNECT_TIMEOUT_SECONDS = 5
RETRY_SECONDS, RETRY_MAX_SECONDS = 1.0, 8.0  # the breaker after a failure: doubling, capped
RELAY_BATCH = 500  # spooled rows moved per transaction
SETTLE_SECONDS = 1.0  # default of forwarding.settle_seconds
# A dedupe or conversation key longer than this is stored as its digest: PostgreSQL's btree index
# takes at most ~2,700 bytes a row, and the sender (a GroupId or MsgKey of a million characters)
# must not make an event that no instance can ever store. The digest is as stable as the key.
KEY_MAX_BYTES = 512
_NOW = "COALESCE(%(now)s::float8, extract(epoch FROM clock_timestamp()))"
_COLUMNS = "id, target, dedupe, conversation, command, app_id, body, attempts, created_at"
_INSERT = ("INSERT INTO outbox (target, dedupe, conversation, command, app_id, body, created_at, next_at) "
           "VALUES (%s, %s, %s, %s, %s, %s, {now}, {now}) ON CONFLICT (target, dedupe) DO NOTHING RETURNING target")

# Heads nobody holds, locked as they are picked (SKIP LOCKED: a head another sender is claiming
# this instant is left to it), claimed in the same statement. `status = 'pending'` and the lease
# are checked again on the locked row, so a head delivered or claimed meanwhile is not taken. A head
# is the oldest pending event of its conversation by the time an instance received it (an event
# spooled during an outage is relayed late but keeps its place), taken only `settle` seconds after
# it was received (time for the spools of instances that just got the database back to move) and
# only while no other event of its conversation is claimed.
_CLAIM = f"""
WITH clock AS (SELECT {_NOW} AS now),
heads AS (SELECT DISTINCT ON (target, conversation) id FROM outbox
          WHERE status = 'pending' AND target = ANY(%(targets)s) ORDER BY target, conversation, created_at, id),
picked AS (SELECT o.id FROM outbox AS o, clock
           WHERE o.id IN (SELECT id FROM heads) AND o.status = 'pending' AND o.next_at <= clock.now
             AND o.created_at <= clock.now - %(settle)s
             AND (o.lease_until IS NULL OR o.lease_until < clock.now)
             AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.status = 'pending' AND p.target = o.target
                             AND p.conversation = o.conversation AND p.lease_until >= clock.now)
           ORDER BY o.id LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED)
UPDATE outbox SET claimed_by = %(me)s, lease_until = (SELECT now FROM clock) + %(lease)s
FROM picked WHERE outbox.id = picked.id
RETURNING outbox.id, target, dedupe, conversation, command, app_id, body, attempts, created_at
"""


def _key(value: str) -> str:
    """A key as stored: itself with NUL escaped, or `sha256:<hex>` of it past KEY_MAX_BYTES."""
    import hashlib

    from ...jsonout import storable_bytes

    raw = storable_bytes(value)
    return _pg_text(value) if len(raw) <= KEY_MAX_BYTES else "sha256:" + hashlib.sha256(raw).hexdigest()


def _values(dedupe: str, conversation: str, command: str, app_id: str) -> tuple[str, str, str, str]:
    return _key(dedupe), _key(conversation), _pg_text(command), _pg_text(app_id)


def outbox_url(settings, env=None) -> str | None:
    """The PostgreSQL URL of the outbox (forwarding.outbox, outbox_env, outbox_file), else None: SQLite."""
    return store_url(settings, env, section="forwarding", keys=("outbox", "outbox_env", "outbox_file"),
                     default_env=DEFAULT_OUTBOX_ENV)


def check_at_start(forwarding: dict, env=None) -> None:
    """Before any worker starts: a PostgreSQL outbox must be at this imhook's schema version
    (ImhookError naming `imhook db upgrade`); one that cannot be reached is only logged."""
    if not forwarding or not forwarding.get("targets"):
        return
    url = outbox_url(forwarding, env)
    if url is not None:
        pgschema.check_reachable(url, part="forwarding", waiting="events wait in the spool")


@contextmanager
def _command_line(url: str):
    """One connection for `imhook recordings quarantine --outbox URL`, at this imhook's schema;
    any database error ends the command in one line naming the masked URL."""
    import psycopg

    from ...errors import ImhookError

    try:
        with psycopg.connect(url, **_kwargs(SENDER_STATEMENT_MS)) as conn:
            pgschema.check(conn, mask(url))
            yield conn
    except psycopg.Error as exc:
        why = " ".join(mask(str(exc)).split())
        raise ImhookError(f"the outbox {mask(url)}: {why}") from None


def quarantined_rows(url: str) -> list[tuple[int, str, str, str, float]]:
    """(id, target, command, last_error, created_at) of the rows the senders set aside, oldest first."""
    with _command_line(url) as conn:
        return conn.execute("SELECT id, target, command, last_error, created_at FROM outbox WHERE status = %s "
                            "ORDER BY id", (QUARANTINED,)).fetchall()


def release_quarantined(url: str) -> int:
    """Make every quarantined row pending again, due now (after a fix); return how many."""
    with _command_line(url) as conn:
        return conn.execute("UPDATE outbox SET status = 'pending', next_at = extract(epoch FROM clock_timestamp()), "
                            "claimed_by = NULL, lease_until = NULL WHERE status = %s", (QUARANTINED,)).rowcount


class PgOutbox:
    """The shared outbox: the Outbox calls the Enqueuer and the Forwarder make, on PostgreSQL."""

    shared = True  # every worker of every instance sends: no leader lock (sender.py)

    def __init__(self, url: str, spool: Outbox, *, lease_seconds: float, settle_seconds: float = SETTLE_SECONDS,
                 clock=None, pool_size: int = 4, stats=None):
        from psycopg_pool import ConnectionPool

        from .sender import LeaderLock

        self.url, self.where, self.spool = url, mask(url), spool
        self.path = spool.path  # the Enqueuer's quarantine file sits beside the spool
        self.lease_seconds, self.settle_seconds = lease_seconds, settle_seconds
        self.stats = stats  # receiver.ops.metrics.ForwardStats or None: counts "spooled"
        self._clock = clock  # None: the database's clock (tests pass one)
        self.me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._relay_lock = LeaderLock(Path(f"{spool.path}.relay.lock"))
        self._relay_mutex = threading.Lock()
        self.last_error: str | None = None
        self.down_since: float | None = None
        self._closed_until, self._backoff = 0.0, RETRY_SECONDS
        common = {"reconnect_timeout": 10.0, "num_workers": 1}
        # Two pools: a sender's long statement never holds the connection a reply is waiting for.
        # The reply's pool does not test a connection before lending it (a round trip per event):
        # one the database ended fails that event's INSERT, which goes to the spool like any failure.
        self.front = ConnectionPool(url, min_size=1, max_size=pool_size, open=False, timeout=ENQUEUE_TIMEOUT_SECONDS,
                                    name="imhook-outbox-enqueue", kwargs=_kwargs(int(ENQUEUE_TIMEOUT_SECONDS * 1000)),
                                    **common)
        self.front.open(wait=False)  # a database down at start must not stop the workers
        # The sender's one connection, opened again at its next call once lost: no pool backoff (1 s
        # doubling), so the spool moves within poll_seconds of the database coming back.
        self._back_conn = None
        self._back_lock = threading.Lock()

    @contextmanager
    def back(self):
        import psycopg

        with self._back_lock:
            if self._back_conn is None or self._back_conn.closed or self._back_conn.broken:
                self._back_conn = psycopg.connect(self.url, **_kwargs(SENDER_STATEMENT_MS))
            yield self._back_conn

    def clock(self) -> float:
        return self._clock() if self._clock else time.time()

    def _now(self) -> float | None:
        return self._clock() if self._clock else None

    # --- failures ---------------------------------------------------------------------------------------

    def _run(self, pool, sql: str, params, *, many: bool = False, fetch: bool = True):
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with pool() as conn, conn.transaction(), conn.cursor() as cur:  # one transaction
                if many:
                    cur.executemany(sql, params, returning=fetch)
                    rows = []
                    if fetch:
                        while True:
                            rows.extend(cur.fetchall())
                            if not cur.nextset():
                                break
                else:
                    cur.execute(sql, params)
                    rows = cur.fetchall() if fetch and cur.description else []
        except (psycopg.DataError, psycopg.errors.ProgramLimitExceeded):
            raise  # the event's value: its caller sets it aside
        except (psycopg.Error, PoolTimeout) as exc:
            text = str(exc).strip()
            why = mask(text.splitlines()[0] if text else type(exc).__name__)
            self._failed(why)
            raise StoreUnavailable(f"the outbox {self.where} unavailable: {why}") from None
        if self.down_since is not None:
            log.warning("forwarding: the outbox %s is available again", self.where)
        # Any success closes the breaker: the reply path may write straight again (once the spool is empty).
        self.down_since, self.last_error, self._backoff, self._closed_until = None, None, RETRY_SECONDS, 0.0
        return rows

    def _failed(self, why: str) -> None:
        if self.down_since is None:
            self.down_since = time.time()
            log.warning("forwarding: the outbox %s is unavailable (%s); new events wait in the spool %s",
                        self.where, why, self.spool.path)
        self.last_error = why
        self._closed_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RETRY_MAX_SECONDS)

    def problem(self) -> str | None:
        """Why forwarding is degraded (for /readyz): the database failing since when, and why."""
        if self.down_since is not None:
            return (f"the outbox {self.where} unavailable for {time.time() - self.down_since:.0f} s "
                    f"({self.last_error}); events wait in {self.spool.path}")
        return None

    # --- the Enqueuer's side --------------------------------------------------------------------------

    def add(self, targets: Iterable[str], *, dedupe: str, conversation: str, command: str, app_id: str,
            body: bytes) -> list[str]:
        """Straight to PostgreSQL while it answers and nothing is spooled; else to the spool."""
        targets = list(targets)
        if time.monotonic() >= self._closed_until and not self.spool.has_pending():
            sql = _INSERT.format(now=_NOW.replace("%(now)s", "%s"))
            now = self._now()
            params = [(target, *_values(dedupe, conversation, command, app_id), body, now, now) for target in targets]
            try:
                return [row[0] for row in self._run(self.front.connection, sql, params, many=True)]
            except StoreUnavailable:
                pass  # the event goes to the spool below; /readyz shows down_since
        added = self.spool.add(targets, dedupe=dedupe, conversation=conversation, command=command,
                               app_id=app_id, body=body)
        for target in added:
            if self.stats is not None:
                self.stats.count("spooled", target)
        return added

    # --- the sender's side ----------------------------------------------------------------------------

    def relay(self) -> int:
        """Move spooled rows to PostgreSQL in their order; return how many. One relay per instance."""
        moved = 0
        with self._relay_mutex:
            if not self.spool.has_pending() or not self._relay_lock.try_acquire():
                return 0
            try:
                while rows := self.spool.pending(RELAY_BATCH):
                    self._insert_spooled(rows)
                    self.spool.remove(row.id for row in rows)
                    moved += len(rows)
                    if len(rows) < RELAY_BATCH:
                        break
            finally:
                self._relay_lock.release()
        return moved

    def _insert_spooled(self, rows: list[Row]) -> None:
        import psycopg

        sql = (f"INSERT INTO outbox (target, dedupe, conversation, command, app_id, body, created_at, next_at) "
               f"VALUES (%s, %s, %s, %s, %s, %s, %s, {_NOW.replace('%(now)s', '%s')}) "
               f"ON CONFLICT (target, dedupe) DO NOTHING")
        params = [(r.target, *_values(r.dedupe, r.conversation, r.command, r.app_id), r.body,
                   r.created_at, self._now()) for r in rows]
        try:
            self._run(self.back, sql, params, many=True, fetch=False)
        except (psycopg.DataError, psycopg.errors.ProgramLimitExceeded):  # a row PostgreSQL refuses:
            for row, one in zip(rows, params):  # set it aside in the spool, move the rest
                try:
                    self._run(self.back, sql, [one], many=True, fetch=False)
                except (psycopg.DataError, psycopg.errors.ProgramLimitExceeded) as exc:
                    self.spool.quarantine(row.id, f"PostgreSQL refused it: {str(exc).strip()[:300]}")
                    log.error("forwarding: spooled row %d (%s) refused by %s; quarantined in %s",
                              row.id, row.command, self.where, self.spool.path)
            raise StoreUnavailable("retry the batch without the refused rows") from None

    def claim(self, targets: Iterable[str], limit: int) -> list[Row]:
        """Relay the spool, then claim up to `limit` due heads for this sender; [] when the database fails
        (the sender's thread is not the reply path: it tries at every round, the breaker is the Enqueuer's)."""
        try:
            self.relay()
            rows = self._run(self.back, _CLAIM, {"now": self._now(), "targets": list(targets), "limit": limit,
                                                 "me": self.me, "lease": self.lease_seconds,
                                                 "settle": self.settle_seconds})
        except StoreUnavailable:
            return []
        return sorted((Row(*r) for r in rows), key=lambda row: row.id)

    # Marks: a delivery is the truth whoever holds the claim now; the other marks only by the holder,
    # so a sender whose lease lapsed does not undo what the new holder decided.
    def delivered(self, row_id: int) -> None:
        self._mark("status = %(status)s, attempts = attempts + 1, done_at = {now}, last_error = ''",
                   row_id, status=DELIVERED, mine=False)

    def dead(self, row_id: int, error: str) -> None:
        self._mark("status = %(status)s, attempts = attempts + 1, done_at = {now}, last_error = %(error)s",
                   row_id, status=DEAD, error=error)

    def quarantine(self, row_id: int, error: str) -> None:
        self._mark("status = %(status)s, last_error = %(error)s", row_id, status=QUARANTINED, error=error)

    def renew(self, row_ids: list[int]) -> None:
        """Extend this sender's claims on rows it is still sending by another lease; a database that
        fails now is logged by the breaker, and the claims may lapse (the documented repeat)."""
        try:
            self._run(self.back, f"UPDATE outbox SET lease_until = {_NOW} + %(lease)s WHERE id = ANY(%(ids)s) "
                      "AND claimed_by = %(me)s AND status = 'pending'",
                      {"now": self._now(), "lease": self.lease_seconds, "ids": list(row_ids), "me": self.me},
                      fetch=False)
        except StoreUnavailable:
            pass

    def retry_later(self, row_id: int, delay: float, error: str) -> None:
        self._mark("attempts = attempts + 1, next_at = {now} + %(delay)s, last_error = %(error)s",
                   row_id, delay=delay, error=error)

    def _mark(self, assignments: str, row_id: int, *, mine: bool = True, **values) -> None:
        owner = " AND claimed_by = %(me)s" if mine else ""
        sql = (f"UPDATE outbox SET {assignments.format(now=_NOW)}, claimed_by = NULL, lease_until = NULL "
               f"WHERE id = %(id)s AND status = 'pending'{owner}")
        if "error" in values:
            values["error"] = _pg_text(values["error"][:500])
        self._run(self.back, sql, {"now": self._now(), "id": row_id, "me": self.me, **values}, fetch=False)

    def next_due(self, targets: Iterable[str]) -> float | None:
        """When a pending row next becomes claimable by time (its retry, its settling, a lease
        lapsing), on this host's clock; None: no such moment ahead (the sender polls).

        Rows due already but not claimed are held by another sender or behind their conversation's
        head: they become claimable by a mark, not by time, so they do not make the sender spin.
        """
        if self.spool.has_pending() and self.down_since is None:
            return self.clock()  # move it now
        try:
            rows = self._run(self.back, f"SELECT MIN(t) - {_NOW} FROM (SELECT GREATEST(next_at, created_at + "
                             "%(settle)s, COALESCE(lease_until, 0)) AS t FROM outbox WHERE status = 'pending' "
                             f"AND target = ANY(%(targets)s)) AS due WHERE t > {_NOW}",
                             {"now": self._now(), "targets": list(targets), "settle": self.settle_seconds})
        except StoreUnavailable:
            return None
        return None if rows[0][0] is None else self.clock() + rows[0][0]

    def backlog(self) -> dict[str, tuple[int, float]]:
        """{target: (pending rows, age of the oldest)}, the spool's included, for metrics."""
        merged = dict(self.spool.backlog())
        rows = self._run(self.back, f"SELECT target, COUNT(*), {_NOW} - MIN(created_at) FROM outbox "
                         "WHERE status = 'pending' GROUP BY target", {"now": self._now()})
        for target, count, age in rows:
            spooled, spooled_age = merged.get(target, (0, 0.0))
            merged[target] = (count + spooled, max(age, spooled_age, 0.0))
        return merged

    def counts(self) -> dict[str, int]:
        return dict(self._run(self.back, "SELECT status, COUNT(*) FROM outbox GROUP BY status", None))

    def purge(self, older_than_seconds: float, chunk: int = 1000) -> int:
        """Forget delivered rows older than this, a chunk per transaction (0 while the database fails)."""
        deleted = 0
        while True:
            try:
                rows = self._run(self.back, f"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = "
                                 f"'delivered' AND done_at < {_NOW} - %(age)s LIMIT %(chunk)s) RETURNING id",
                                 {"now": self._now(), "age": older_than_seconds, "chunk": chunk})
            except StoreUnavailable:
                return deleted
            deleted += len(rows)
            if len(rows) < chunk:
                return deleted

    def close(self) -> None:
        self.front.close(timeout=1.0)
        with self._back_lock:
            if self._back_conn is not None:
                self._back_conn.close()
        self.spool.close()


def _kwargs(statement_ms: int) -> dict:
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "imhook-outbox",
            "options": f"-c statement_timeout={statement_ms}", "autocommit": True}
