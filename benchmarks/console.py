"""The web console's searches over a store of 1,000,000 records (target: each under 500 ms).

    flock /tmp/imhook-bench.lock python benchmarks/console.py [--records N] [--rounds N] [--pg-url URL]

A store is filled by bulk insert (one transaction, the schema of receiver/recording/store.py) with a
week of traffic ending now: mostly C2C and group messages from 20,000 users (a few much busier than
the rest), 90 % allowed, the rest refused, rewritten, dropped, shed or rejected by four rules, plus
ten messages holding a rare word. Then every query the console makes (receiver/console/queries.py)
is timed as the console runs it: the newest page under each filter, text searches (common, rare,
absent: the last reads its whole bound, `console.text_search_rows`), the live chart, one record.

The newest `--unsorted` rows (default 100,000) are left where a writer leaves the rows of the last
minute between two sorts of the user table (receiver/recording/user_index.py): a search by user reads
them one by one.

Baseline, in the same run: a copy of the SQLite file without the console's indexes (schema 2, as
before them), the queries alternating between the two files round by round; a query the baseline
cannot answer in --baseline-cap seconds is cut there (shown as ">cap"). With --pg-url (an admin URL;
default $IMHOOK_BENCH_PG_URL) the same data is copied into a scratch PostgreSQL database at the
current schema and timed too. Each cell: median (min-max) in ms over --rounds rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver.console.queries import Reader, Search  # noqa: E402
from receiver.recording import user_index  # noqa: E402
from receiver.recording.store import _COLUMNS, Store  # noqa: E402

DAYS = 7
RARE = "zeppelinquartz"
COMMANDS = ["C2C.CallbackBeforeSendMsg"] * 6 + ["Group.CallbackBeforeSendMsg"] * 3 + ["Group.CallbackAfterSendMsg"]
OUTCOMES = [("allow", "")] * 900 + [("refuse", "sensitive_words")] * 40 + [("refuse", "contact_info")] * 10 + \
    [("rewrite", "sensitive_words")] * 20 + [("drop", "links")] * 10 + [("refuse", "rate_limit")] * 10 + \
    [("shed", "")] * 5 + [("rejected", "")] * 5
WORDS = ("hello there see you at lunch tomorrow the meeting moved to three call me later thanks a lot "
         "good morning how are you 你好 明天 见面 谢谢 周末 愉快").split()


def _body(command: str, user: str, text: str) -> bytes:
    to = '"To_Account":"peer"' if command.startswith("C2C") else '"GroupId":"@TGS#group1"'
    return (f'{{"CallbackCommand":"{command}","From_Account":"{user}",{to},"MsgRandom":1,'
            f'"MsgBody":[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":"{text}"}}}}]}}').encode()


def rows(count: int, seed: int = 7):
    """(row, ...) in the store's column order, times spread over the last DAYS days."""
    rng = random.Random(seed)
    now = time.time()
    start = now - DAYS * 86400
    rare_at = set(rng.sample(range(count), min(10, count)))
    for i in range(count):
        received = start + (now - start) * i / count
        command = rng.choice(COMMANDS)
        user = f"user{int(rng.paretovariate(1.2)) % 20000}"
        outcome, rule = rng.choice(OUTCOMES)
        if not command.endswith("BeforeSendMsg"):
            outcome, rule = "notify", ""
        text = " ".join(rng.choices(WORDS, k=6)) + (f" {RARE}" if i in rare_at else "")
        yield (received, command, user, outcome, rule, f"matched by {rule}" if rule else "",
               200 if outcome != "rejected" else 401, int(outcome == "rejected"), 0.4, '{"SdkAppid":"1400000000"}',
               _body(command, user, text), 0, '{"ActionStatus":"OK","ErrorCode":0}', "[]", "", f"r{i}", "live",
               "", None)


def fill_sqlite(path: Path, count: int, unsorted: int = 0) -> float:
    Store(path).close()  # the schema as the recorder creates it
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    sql = f"INSERT INTO recordings ({', '.join(_COLUMNS)}, key) VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})"
    conn.executemany(sql, rows(count))
    conn.execute("COMMIT")
    conn.close()
    store = Store(path)
    # The users sorted, as a writer sorts them every minute, but for the newest `unsorted` rows: the
    # rows since the last sort, which a search by user reads one by one.
    while (waiting := user_index.pending(store.conn) - unsorted) > 0:
        store.index_users(min(waiting, user_index.CATCH_UP_ROWS))
    store.close()
    return time.perf_counter() - started


def baseline_copy(path: Path, to: Path) -> None:
    shutil.copy(path, to)
    conn = sqlite3.connect(to, isolation_level=None)
    for statement in ("DROP INDEX recordings_outcome_time", "DROP INDEX recordings_rule_time",
                      "DROP TRIGGER recordings_user_new", "DROP TRIGGER recordings_user_gone",
                      f"DROP TABLE {user_index.SORTED}", f"DROP TABLE {user_index.NEW}"):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("VACUUM")
    conn.close()


def fill_pg(url: str, count: int) -> float:
    import psycopg

    started = time.perf_counter()
    quoted = ", ".join(f'"{c}"' for c in _COLUMNS)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY recordings ({quoted}, key) FROM STDIN".encode()) as copy:
            for row in rows(count):
                copy.write_row(row)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE recordings")
    return time.perf_counter() - started


def queries(now: float) -> list[tuple[str, callable]]:
    day = now - 86400
    return [
        ("newest page, no filter", lambda r: r.search(Search())),
        ("last hour", lambda r: r.search(Search(since=now - 3600))),
        ("command (group messages)", lambda r: r.search(Search(command="Group.CallbackBeforeSendMsg"))),
        ("outcome refuse", lambda r: r.search(Search(outcome="refuse"))),
        ("outcome shed (rare)", lambda r: r.search(Search(outcome="shed"))),
        ("outcome absent (refuse_some)", lambda r: r.search(Search(outcome="refuse_some"))),
        ("rule contact_info", lambda r: r.search(Search(rule="contact_info"))),
        ("user (busiest)", lambda r: r.search(Search(user="user1"))),
        ("user (quiet)", lambda r: r.search(Search(user="user19999"))),
        ("user + outcome refuse", lambda r: r.search(Search(user="user3", outcome="refuse"))),
        ("rule + outcome shed (none)", lambda r: r.search(Search(rule="sensitive_words", outcome="shed"))),
        ("command + outcome + 24 h", lambda r: r.search(Search(command="C2C.CallbackBeforeSendMsg",
                                                               outcome="rewrite", since=day))),
        ("page 10 back (until)", lambda r: r.search(Search(until=now - 10 * 3600))),
        ("text, common", lambda r: r.search(Search(text="lunch"))),
        ("text, rare (10 rows)", lambda r: r.search(Search(text=RARE))),
        ("text, absent (reads its bound)", lambda r: r.search(Search(text="nowhere-to-be-found"))),
        ("text + user", lambda r: r.search(Search(text="lunch", user="user5"))),
        ("live chart, 30 min", lambda r: r.per_minute(Search(), now=now)),
        ("live chart, outcome refuse", lambda r: r.per_minute(Search(outcome="refuse"), now=now)),
        ("one record by id", lambda r: r.record(123_456)),
    ]


def timed(reader: Reader, query, cap: float | None) -> float:
    """ms; with a cap, a query still running after `cap` s is interrupted and counted as cap."""
    timer = None
    if cap is not None and reader.url is None:
        conn = reader._sqlite()
        timer = threading.Timer(cap, conn.interrupt)
        timer.start()
    started = time.perf_counter()
    try:
        query(reader)
    except Exception as exc:  # noqa: BLE001 - an interrupted baseline query
        if "interrupt" not in str(exc):
            raise
        return cap * 1000
    finally:
        if timer:
            timer.cancel()
    return (time.perf_counter() - started) * 1000


def cell(samples: list[float], cap: float | None = None) -> str:
    if cap is not None and max(samples) >= cap * 1000:
        return f">{cap * 1000:.0f}"
    return f"{statistics.median(samples):.1f} ({min(samples):.1f}-{max(samples):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-cap", type=float, default=5.0)
    parser.add_argument("--pg-url", default=os.environ.get("IMHOOK_BENCH_PG_URL"))
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--unsorted", type=int, default=user_index.CATCH_UP_ROWS,
                        help="the newest rows left out of the sorted user table, as between two of a writer's "
                             "sorts (a minute of traffic; default: the most one sort takes)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="imhook-console-bench-"))
    readers: dict[str, Reader] = {}
    scratch = None
    try:
        path = folder / "recordings.sqlite"
        print(f"filling {path} with {args.records:,} records ...", file=sys.stderr)
        print(f"SQLite fill: {fill_sqlite(path, args.records, args.unsorted):.1f} s, {path.stat().st_size / 2**20:.0f} MiB",
              file=sys.stderr)
        readers["SQLite"] = Reader(None, path)
        if not args.no_baseline:
            baseline_copy(path, folder / "baseline.sqlite")
            readers["SQLite, no console indexes"] = Reader(None, folder / "baseline.sqlite")
        if args.pg_url:
            from benchmarks.scratchdb import ScratchDatabase

            scratch = ScratchDatabase(args.pg_url).__enter__()
            print(f"PostgreSQL fill: {fill_pg(scratch.url, args.records):.1f} s", file=sys.stderr)
            readers["PostgreSQL"] = Reader(scratch.url, path)
        now = time.time()
        table = queries(now)
        samples = {(name, label): [] for name, _ in table for label in readers}
        for round_ in range(args.rounds):
            order = list(readers) if round_ % 2 == 0 else list(reversed(readers))
            for name, query in table:
                for label in order:
                    cap = args.baseline_cap if "no console" in label else None
                    samples[(name, label)].append(timed(readers[label], query, cap))
        print(f"\n{args.records:,} records, {args.rounds} rounds; ms, median (min-max)\n")
        print("| query | " + " | ".join(readers) + " |")
        print("|---|" + "---|" * len(readers))
        worst = 0.0
        for name, _ in table:
            cells = []
            for label in readers:
                cap = args.baseline_cap if "no console" in label else None
                cells.append(cell(samples[(name, label)], cap))
                if cap is None:
                    worst = max(worst, max(samples[(name, label)]))
            print(f"| {name} | " + " | ".join(cells) + " |")
        print(f"\nslowest console query (indexed stores, any round): {worst:.1f} ms; target < 500 ms: "
              f"{'met' if worst < 500 else 'NOT met'}")
        return 0 if worst < 500 else 1
    finally:
        for reader in readers.values():
            reader.close()
        if scratch is not None:
            scratch.__exit__(None, None, None)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
