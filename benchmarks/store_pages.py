"""The SQLite recording writer's I/O per row once the file is big: bytes written, write and read calls.

    python benchmarks/store_pages.py [--rows 1500000] [--insert 9000] [--smoke] [--each-index]

The production mix's records (built as the reply path builds them) fill a recordings file of
`--rows` rows in one bulk transaction, with users spread over 5,000 accounts as the benchmark
traffic has them. Then, on copies of that file, `--insert` more rows go in as the writer puts them
(`Store.insert`, one transaction per batch) under each variant, and this process's `/proc/self/io`
counters give per row: bytes passed to write(2), write calls, bytes read, read calls. These are
counts, not timings: on a shared machine they repeat where CPU time does not. The CPU time is
printed too, for what it is worth.

Variants: the shipped settings (store.py's cache and checkpoint, its 16 KB pages for a new file,
`batch_size` 1000); the same on a file of SQLite's 4 KB pages, as files made before issue 16 step 17
are (such a file is filled too: at step 15, with schema 3's per-row user index, 16 KB pages made a
big file's rows dearer; step 17 shipped them); SQLite's defaults with 200-row batches
(before issue 16 step 7); each change alone, batches of 2,500 and 5,000 among them; schema 3's
(user, received_at) index on the table, kept row by row (before issue 16 step 16); and no user index
at all, to show what the index costs. The shipped schema's user index (receiver/recording/user_index.py)
sorts the inserted rows into its table after the last batch, as a writer does every minute; that
is counted in with the inserts.

`--each-index` prices the table's other indexes instead: the shipped settings, then each index
dropped in turn, and the rule index kept only for rows with a rule.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import parts  # noqa: E402

USERS = 5000
SQLITE_DEFAULTS = ("PRAGMA cache_size = -2000", "PRAGMA wal_autocheckpoint = 1000")
SCHEMA_3 = ("DROP TRIGGER recordings_user_new", "DROP TRIGGER recordings_user_gone",
            "CREATE INDEX recordings_user_time ON recordings (user, received_at)")
VARIANTS = {  # name: (batch rows, statements run on the connection first, page size of the file)
    "shipped (16 KB pages, batch 1000, store.py's cache and checkpoint)": (1000, (), None),
    "4 KB pages (before issue 16 step 17)": (1000, (), 4096),  # Store sets the same 40 MB of WAL
    "before: SQLite's defaults, batch 200": (200, SQLITE_DEFAULTS, 4096),
    "SQLite's defaults, batch 1000": (1000, SQLITE_DEFAULTS, 4096),
    "shipped, batch 200": (200, (), None),
    "shipped, batch 2500": (2500, (), None),
    "shipped, batch 5000": (5000, (), None),
    "schema 3: the user index kept per row": (1000, SCHEMA_3, 4096),
    "shipped, without any user index": (1000, ("DROP TRIGGER recordings_user_new",), None),
}
# --each-index: what each of the table's indexes costs a row, priced by dropping it (issue 16 step 18).
INDEX_VARIANTS = {
    "shipped": (1000, (), None),
    **{f"without {index}": (1000, (f"DROP INDEX {index}",), None)
       for index in ("recordings_time", "recordings_command", "recordings_outcome_time", "recordings_rule_time",
                     "recordings_key")},
    "recordings_rule_time only where rule != ''": (1000, (
        "DROP INDEX recordings_rule_time",
        "CREATE INDEX recordings_rule_time ON recordings (rule, received_at) WHERE rule != ''"), None),
    "shipped, again": (1000, (), None),
}


def mix_rows(count: int, start: float, rng: random.Random, key_prefix: str) -> list[tuple]:
    """`count` rows of the production mix, received one ms apart from `start`, users spread."""
    from receiver.recording.store import _row

    rows = []
    for i in range(count):
        record = RECORDS[i % len(RECORDS)]
        row = _row(record, f"{key_prefix}:{i + 1}")
        rows.append((start + i / 1000, row[1], f"user{rng.randrange(USERS)}") + row[3:])
    return rows


def io_counters() -> tuple[int, int, int, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["wchar"]), int(fields["syscw"]), int(fields["rchar"]), int(fields["syscr"])


def fill(path: Path, rows: int, rng: random.Random, page_size: int | None, first: float = 1.7e9) -> None:
    """`rows` rows of the mix, received one ms apart from `first`."""
    import sqlite3

    from receiver.recording.store import _INSERT, Store

    if page_size is not None:  # set on the empty file before Store turns WAL on (it would pick its own)
        with sqlite3.connect(path) as conn:
            conn.execute(f"PRAGMA page_size = {page_size}")
            conn.execute("VACUUM")
    store = Store(path)
    store.conn.execute("PRAGMA synchronous = OFF")  # the filling is not measured
    store.conn.execute("BEGIN")
    for start in range(0, rows, 10_000):
        store.conn.executemany(_INSERT, mix_rows(min(10_000, rows - start), first + start / 1000, rng,
                                                 f"fill-{start}"))
    store.conn.execute("COMMIT")
    while store.index_users():  # a file that has been recording a while: its users sorted
        pass
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def measure(source: Path, workdir: Path, rows: list[tuple], batch: int, statements: tuple[str, ...]) -> tuple:
    from receiver.recording.store import Store, _insert_rows, statement_sizes

    path = workdir / "copy.sqlite"
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy(source, path)
    store = Store(path)
    for statement in statements:
        store.conn.execute(statement)
    before, cpu = io_counters(), time.process_time()
    for start in range(0, len(rows), batch):  # Store.insert's statements, rows already made
        chunk = rows[start:start + batch]
        store.conn.execute("BEGIN IMMEDIATE")
        first = 0
        for size in statement_sizes(len(chunk)):
            store.conn.execute(_insert_rows(size), [value for row in chunk[first:first + size] for value in row])
            first += size
        store.conn.execute("COMMIT")
    while store.index_users():  # what the writer does every minute (nothing to do on schema 3)
        pass
    after, cpu = io_counters(), time.process_time() - cpu
    store.close()
    return tuple((a - b) / len(rows) for a, b in zip(after, before)) + (cpu / len(rows) * 1e6,)


def load_records() -> None:
    """RECORDS: the production mix's records, built as the reply path builds them."""
    global RECORDS
    cwd, environ = os.getcwd(), dict(os.environ)  # build_app works in a directory of its own, with its env
    app, _, environs, appdir = parts.build_app("production", {"recording": {"enabled": False},
                                                              "logging": {"callbacks": False}}, 3000)
    from receiver.recording.capture import record_from_outcome
    from receiver.recording.privacy import Policy

    outcomes: list = []
    app.extensions["imhook"].observers.append(outcomes.append)
    for item in environs:
        parts.send(app, item)
    RECORDS = [record_from_outcome(o, Policy(), max_rejected_body=4096) for o in outcomes]
    parts.clean_up(app, appdir)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_500_000, help="rows in the file before measuring")
    parser.add_argument("--insert", type=int, default=9000, help="rows inserted per variant")
    parser.add_argument("--smoke", action="store_true", help="a small file, a few batches (the CI run)")
    parser.add_argument("--each-index", action="store_true",
                        help="instead of the variants above: the shipped settings with each index of the table dropped")
    args = parser.parse_args(argv)
    variants = INDEX_VARIANTS if args.each_index else VARIANTS
    if args.smoke:
        args.rows, args.insert = 3000, 2000

    load_records()

    rng = random.Random(20261206)
    workdir = Path(tempfile.mkdtemp(prefix="imhook-store-pages-"))
    try:
        sources = {}
        for page_size in dict.fromkeys(page for _, _, page in variants.values()):
            source = sources[page_size] = workdir / f"filled-{page_size or 'shipped'}.sqlite"
            started = time.monotonic()
            fill(source, args.rows, random.Random(20261206), page_size)
            print(f"filled {source.name}: {args.rows:,} rows, {source.stat().st_size / 1e6:,.0f} MB "
                  f"in {time.monotonic() - started:.0f} s", flush=True)
        print(f"then {args.insert:,} rows per variant", flush=True)
        rows = mix_rows(args.insert, 1.7e9 + args.rows / 1000 + 1, rng, f"{os.getpid()}-bench")
        for name, (batch, statements, page_size) in variants.items():
            wchar, syscw, rchar, syscr, cpu = measure(sources[page_size], workdir, rows, batch, statements)
            print(f"RESULT {name:50s} per row: written {wchar:7,.0f} B in {syscw:4.2f} calls, read "
                  f"{rchar:7,.0f} B in {syscr:4.2f} calls; CPU {cpu:5.1f} us", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


RECORDS: list = []

if __name__ == "__main__":
    sys.exit(main())
