"""Recording stores side by side: SQLite (`recording.path`) and PostgreSQL (`recording.store`).

    python benchmarks/stores.py [--smoke] [--pg-url URL] [--rounds N] [--seconds S] [--records N] [...]

Both stores in the same run, alternating, so a disturbance on a shared machine hits them alike:

1. **Writer**: records/s from the queue into each store, in-process. A Recorder is built as a
   worker builds it (the config's recording settings, journal on), the mix's records are journaled
   and queued as the reply path does, then the writer thread is started and timed until it has
   stored them all and retired its journal (`Recorder.close`), while a thread beside it (a stand-in
   for a reply thread) notes how long the writer kept it waiting for the GIL at most. With 1 writer
   (one worker) and with `--writers` processes at once (one instance: each worker has its own).
   Then each store's `insert` alone, a batch of `batch_size` at a time: the thread CPU per batch.
2. **Replies**: two gunicorn servers with configs/production.yaml (recording on), one per store,
   each first checked to answer the whole mix exactly as the in-process core does; then closed-loop
   runs at `--connections` (16) alternating between them (the order flipped each round), the
   median of `--rounds` reported with the range. The issue's target: PostgreSQL's reply p99 within
   10 % of SQLite's (the median of the paired per-round ratios). After the servers stop, each
   store's rows are counted against the replies the load generator saw: nothing answered is lost.
   The database's CPU per reply (its backends, read from /proc) is reported beside the servers'.
   `--db-nice 19` is a labelled variant, never the plain figure: the scratch database's backends
   are reniced before each PostgreSQL round, so on a small machine they yield the cores to the
   imhook workers roughly as a database on another host would (production's topology).

The PostgreSQL database is a scratch one (`imhook_bench_<pid>`), created on the server named by
`--pg-url` (an admin URL; default $IMHOOK_BENCH_PG_URL, else $IMHOOK_TEST_PG_URL, else the local
server), brought to the schema as `imhook db upgrade` does, and dropped at the end. `--smoke` runs
everything briefly at low volume (what tests/test_bench_smoke_stores.py runs).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(1, str(HERE.parent))  # receiver/ and rules/ from this checkout (benchmarks/ stays first)

import httpbench  # noqa: E402
import loadgen  # noqa: E402
import traffic  # noqa: E402
from common import LoadResult, machine, start_server  # noqa: E402
from results import Run  # noqa: E402
from scratchdb import ScratchDatabase, backend_seconds, renice_backends  # noqa: E402

STORES = ("sqlite", "postgresql")
TARGET_P99_RATIO = 1.10  # issue 14: reply p99 with PostgreSQL within 10 % of SQLite's
LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STORE_ENV = "IMHOOK_RECORDING_DSN"  # would override recording.store (receiver/recording/locations.py)


# --- 1. the writer, in-process ---------------------------------------------------------------------

def mix_records(production: Path, bodies: traffic.Traffic, count: int) -> tuple[list, dict]:
    """`count` records of the mix (cycled), as the reply path builds them from each outcome."""
    from receiver.core import HttpRequest
    from receiver.recording.capture import record_from_outcome
    from receiver.recording.privacy import Policy

    receiver = httpbench.reference_receiver(production)
    settings = receiver.config.recording
    policy = Policy.from_settings(settings, os.environ)
    records = []
    for path, body in bodies.requests(loadgen.wall_clock()):
        outcome = receiver.handle(HttpRequest("POST", dict(parse_qsl(urlsplit(path).query)), body))
        records.append(record_from_outcome(outcome, policy, max_rejected_body=settings["max_rejected_body_bytes"]))
    receiver.chain.close()
    return [records[i % len(records)] for i in range(count)], dict(settings)


def _one_writer(settings: dict, records: list, barrier, results) -> None:
    """In a child process: queue the records as the reply path does, then time the writer draining them."""
    from receiver.recording.writer import Recorder

    recorder = Recorder.from_settings({**settings, "queue_size": len(records) + 1}, env={}, start=False)
    for record in records:
        recorder.keep(record)  # journal line + queue, exactly the reply path with the journal on
    barrier.wait()
    ticker = StallTicker()
    started, cpu = time.time(), time.process_time()
    recorder.start()
    recorder.close(timeout=600)
    ended, cpu = time.time(), time.process_time() - cpu
    results.put((started, ended, cpu, recorder.stats()["written_total"], ticker.stop()))


class StallTicker(threading.Thread):
    """A stand-in for a reply thread beside the writer: how late its 1 ms sleeps wake up.

    The writer shares the GIL with the reply threads; a store call that holds it for long (Python
    or C code that does not let go) delays every reply in the worker by that much, which is what
    shows in the reply p99 and max. The longest delay is the figure to watch.
    """

    TICK_SECONDS = 0.001

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.late: list[float] = []
        self._done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._done.is_set():
            started = time.perf_counter()
            time.sleep(self.TICK_SECONDS)
            self.late.append(time.perf_counter() - started - self.TICK_SECONDS)

    def stop(self) -> float:
        """The longest delay, in ms."""
        self._done.set()
        self.join()
        return max(self.late, default=0.0) * 1000


def writer_round(settings: dict, records: list, writers: int) -> tuple[float, float, int, float]:
    """(records/s, writer CPU µs per record, records stored, longest stall of a thread beside the
    writer in ms) for `writers` processes at once."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(writers), context.Queue()
    children = [context.Process(target=_one_writer, args=(settings, records, barrier, results))
                for _ in range(writers)]
    for child in children:
        child.start()
    done = []
    while len(done) < writers:
        try:
            done.append(results.get(timeout=1))
        except queue.Empty:
            failed = [child.exitcode for child in children if child.exitcode not in (None, 0)]
            if failed:  # its traceback is on stderr already
                raise RuntimeError(f"a writer process failed (exit {failed[0]})") from None
    for child in children:
        child.join()
    span = max(end for _, end, _, _, _ in done) - min(start for start, _, _, _, _ in done)
    stored = sum(n for _, _, _, n, _ in done)
    return stored / span, sum(cpu for _, _, cpu, _, _ in done) / stored * 1e6, stored, max(s for *_, s in done)


def writer_phase(args, settings: dict, records: list, db: ScratchDatabase, workdir: Path) -> dict:
    """Alternating rounds of each store, one writer and `--writers`:
    {(store, writers): [(records/s, writer µs/record, longest stall ms, disk bytes/record)]}."""
    figures: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
    for round_ in range(args.rounds):
        for writers in sorted({1, args.writers}):
            for store in (STORES if round_ % 2 == 0 else STORES[::-1]):
                folder = workdir / f"writer-{store}-{writers}-{round_}"
                folder.mkdir()
                db.empty()
                mine = {**settings, "path": str(folder / "recordings.sqlite"), "journal_dir": str(folder / "journal"),
                        "store": db.url if store == "postgresql" else None, "retention_days": None,
                        # The records were made before the round: "undrained for N s" would be their age.
                        "stall_seconds": 86400.0}
                rate, cpu, stored, stall = writer_round(mine, records, writers)
                expected = len(records) * writers
                if stored != expected:
                    raise RuntimeError(f"{store}: the writers stored {stored} records of {expected}")
                disk = (db.bytes() if store == "postgresql" else
                        sum(f.stat().st_size for f in folder.glob("recordings.sqlite*"))) / stored
                figures.setdefault((store, writers), []).append((rate, cpu, stall, disk))
                print(f"  round {round_ + 1}: {store:<10} {writers} writer(s) {rate:9,.0f} records/s  "
                      f"writer CPU {cpu:5.1f} us/record  longest stall beside it {stall:5.1f} ms  "
                      f"disk {disk:,.0f} bytes/record", flush=True)
                shutil.rmtree(folder, ignore_errors=True)
    for (store, writers), runs in sorted(figures.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rates, stalls = [run[0] for run in runs], [run[2] for run in runs]
        print(f"  RESULT writer {store:<10} writers={writers} {statistics.median(rates):9,.0f} records/s "
              f"(range {min(rates):,.0f}-{max(rates):,.0f} over {len(rates)} rounds)  writer CPU "
              f"{statistics.median(run[1] for run in runs):.1f} us/record  longest stall beside it "
              f"{statistics.median(stalls):.1f} ms ({min(stalls):.1f}-{max(stalls):.1f})  disk "
              f"{statistics.median(run[3] for run in runs):,.0f} bytes/record", flush=True)
    return figures


def insert_phase(args, settings: dict, records: list, db: ScratchDatabase, workdir: Path) -> None:
    """Each store's `insert` alone, one batch of `batch_size` records at a time, alternating: the
    inserting thread's CPU per batch (what the writer takes from the reply threads) and wall time."""
    from receiver.recording.pgstore import PgStore
    from receiver.recording.store import Store

    batch, batches = records[:settings["batch_size"]], max(3, args.rounds * 4)
    cpu: dict[str, list[float]] = {store: [] for store in STORES}
    wall: dict[str, list[float]] = {store: [] for store in STORES}
    db.empty()
    stores = {"sqlite": Store(workdir / "insert.sqlite"), "postgresql": PgStore(db.url)}
    try:
        for n in range(batches + 1):
            for name in (STORES if n % 2 == 0 else STORES[::-1]):
                keys = [f"insert-{n}-{i}" for i in range(len(batch))]
                started, thread = time.perf_counter(), time.thread_time()
                stores[name].insert(batch, keys)
                if n:  # the first batch opens the connection and warms the caches
                    cpu[name].append((time.thread_time() - thread) * 1000)
                    wall[name].append((time.perf_counter() - started) * 1000)
    finally:
        for store in stores.values():
            store.close()
    for name in STORES:
        print(f"  RESULT insert {name:<10} batch of {len(batch)}: thread CPU {statistics.median(cpu[name]):.1f} ms "
              f"({min(cpu[name]):.1f}-{max(cpu[name]):.1f}), wall {statistics.median(wall[name]):.1f} ms "
              f"({min(wall[name]):.1f}-{max(wall[name]):.1f}) over {batches} batches", flush=True)


# --- 2. reply latency over HTTP ----------------------------------------------------------------------

def server_configs(args, words, db: ScratchDatabase, workdir: Path) -> dict[str, Path]:
    """configs/production.yaml (plus --set) for each store, each in its own folder beside the word list."""
    overrides = json.loads(args.set)
    configs = {}
    for store in STORES:
        folder = workdir / store
        folder.mkdir()
        traffic.write_word_file(folder / "bench-words.txt", words)
        recording = {**overrides.get("recording", {}), "store": db.url if store == "postgresql" else None}
        path = folder / "production.yaml"
        path.write_text(httpbench.production_config({**overrides, "recording": recording}), encoding="utf-8")
        configs[store] = path
    return configs


def replies_phase(args, bodies, configs: dict[str, Path], db: ScratchDatabase, workdir: Path) -> dict:
    """Start both servers, check them, run the alternating rounds; then count each store's rows."""
    servers, answered = {}, dict.fromkeys(STORES, 0)
    rounds: dict[str, list[LoadResult]] = {store: [] for store in STORES}
    db_cpu: dict[str, list[float]] = {store: [] for store in STORES}  # PostgreSQL backends, µs per reply
    try:
        for store in STORES:
            spec = httpbench.imhook_spec(store, configs[store])
            servers[store] = start_server(spec, workdir / store, workers=args.workers, threads=args.threads)
            print(f"[{store}] imhook, configs/production.yaml, recording into {store}", flush=True)
        for store in STORES:
            run = Run(store, store)
            httpbench.check_replies(run, servers[store], httpbench.fresh(bodies),
                                    httpbench.reference_receiver(configs[store]))
            answered[store] += run.checked
            print(f"  {store}: checked {run.checked} callbacks, {len(run.wrong)} wrong", flush=True)
            if run.wrong:
                raise RuntimeError(f"{store}: wrong replies, e.g. {run.wrong[0]}")
        phase = lambda store, seconds: httpbench.closed_phase(  # noqa: E731
            servers[store], bodies, workdir, args, connections=args.connections, seconds=seconds)
        for store in STORES:  # warm-up: imports, caches, the first pages of each database
            answered[store] += phase(store, args.warmup).requests
        for round_ in range(args.rounds):
            for store in (STORES if round_ % 2 == 0 else STORES[::-1]):
                if args.db_nice and store == "postgresql":  # each round: the pool may have reconnected
                    reniced = renice_backends(db.name, args.db_nice)
                    if not reniced:
                        raise RuntimeError(f"--db-nice: no backend of {db.name} could be reniced")
                database = backend_seconds(db.name)
                result = phase(store, args.seconds)
                database = backend_seconds(db.name) - database  # the SQLite rounds: ~0 (retention only)
                rounds[store].append(result)
                db_cpu[store].append(database / max(result.requests, 1) * 1e6)
                answered[store] += result.requests
                print(f"  round {round_ + 1}: {store:<10} {result.rps:7,.0f} req/s  p50 {result.p50:6.2f}  "
                      f"p99 {result.p99:6.2f}  max {result.max:7.1f} ms  errors {result.errors}  "
                      f"server CPU {result.cpu_us_per_request:,.0f} us/req, database {db_cpu[store][-1]:,.0f} "
                      f"us/req  (others used {result.cpu_others - database / result.seconds:.2f} cores)",
                      flush=True)
    finally:
        for store, server in servers.items():
            if server.stop() not in (0, None):  # SIGTERM: each worker stores what it holds first
                print(f"  {store}: gunicorn exited with {server.process.returncode}:\n{server.log_tail()}")
    stored = {"sqlite": sqlite_rows(workdir / "sqlite"), "postgresql": db.count()}
    for store in STORES:
        verdict = "ok" if stored[store] >= answered[store] else "MISSING RECORDS"
        print(f"  RESULT stored {store:<10} {stored[store]:,} records for {answered[store]:,} replies seen "
              f"by the load generator: {verdict}", flush=True)
    return {"rounds": rounds, "stored": stored, "answered": answered, "db_cpu": db_cpu}


def sqlite_rows(folder: Path) -> int:
    with sqlite3.connect(folder / "bench-recordings.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]


def summarize_replies(rounds: dict[str, list[LoadResult]], db_cpu: dict[str, list[float]], variant: str = "") -> float:
    """Print each store's medians and ranges, and the paired p99 ratio; return that ratio."""
    for store in STORES:
        runs = rounds[store]
        line = [f"  RESULT replies {store:<10} c={runs[0].connections}"]
        for label, values, unit in (("req/s", [r.rps for r in runs], ""), ("p50", [r.p50 for r in runs], " ms"),
                                    ("p99", [r.p99 for r in runs], " ms"), ("max", [r.max for r in runs], " ms"),
                                    ("server CPU", [r.cpu_us_per_request for r in runs], " us/req")):
            digits = ",.0f" if label in ("req/s", "server CPU") else ".2f"
            line.append(f"{label} {statistics.median(values):{digits}}{unit} "
                        f"({min(values):{digits}}-{max(values):{digits}})")
        line.append(f"database CPU {statistics.median(db_cpu[store]):,.0f} us/req")
        errors = sum(r.errors for r in runs)
        print("  ".join(line) + f"  errors {errors}  over {len(runs)} rounds", flush=True)
    ratios = [pg.p99 / max(lite.p99, 1e-9) for lite, pg in zip(rounds["sqlite"], rounds["postgresql"])]
    rps = [pg.rps / max(lite.rps, 1e-9) for lite, pg in zip(rounds["sqlite"], rounds["postgresql"])]
    ratio = statistics.median(ratios)
    print(f"  RESULT paired{variant} postgresql/sqlite p99 {ratio:.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}), "
          f"req/s {statistics.median(rps):.2f}x (range {min(rps):.2f}-{max(rps):.2f}); target p99 <= "
          f"{TARGET_P99_RATIO:.2f}x: {'PASS' if ratio <= TARGET_P99_RATIO else 'MISS'}", flush=True)
    return ratio


# --- the run -----------------------------------------------------------------------------------------

def parse_args(argv):
    from receiver.gunicorn_conf import threads, workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="everything briefly, at low volume (the CI run)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the p99 target is missed")
    parser.add_argument("--pg-url", default=os.environ.get("IMHOOK_BENCH_PG_URL")
                        or os.environ.get("IMHOOK_TEST_PG_URL") or LOCAL_ADMIN_URL,
                        help="an admin URL of the PostgreSQL server to create the scratch database on")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per store (both phases)")
    parser.add_argument("--records", type=int, default=20_000, help="records per writer per round")
    parser.add_argument("--writers", type=int, default=workers, help="writers at once (one per gunicorn worker)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each closed-loop run")
    parser.add_argument("--warmup", type=float, default=3.0, help="a closed-loop run per server first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=workers)
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--words", type=int, default=20_000)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--only", default="writer,replies", help="writer, replies or both")
    parser.add_argument("--set", default="{}", help="JSON merged into both servers' config")
    parser.add_argument("--python-generator", action="store_true", help="use the Python generator, not wrk")
    parser.add_argument("--db-nice", type=int, default=0, metavar="N",
                        help="a labelled variant, not the plain figure: renice the scratch database's backends to N "
                             "(e.g. 19) before each PostgreSQL round, so they yield the cores to the imhook workers "
                             "as a database on another host would")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.records, args.seconds, args.warmup = 2, 300, 1.0, 1.0
        args.words, args.callbacks = min(args.words, 2000), min(args.callbacks, 200)
    args.wrk = loadgen.wrk_available() and not args.python_generator
    args.wait_quiet, args.quiet_cores = 0.0, 0.25  # httpbench.measured's options: no waiting here
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.pop(STORE_ENV, None)  # it would send the SQLite server's records to PostgreSQL too
    try:
        import psycopg

        psycopg.connect(args.pg_url, connect_timeout=5).close()
    except Exception as exc:  # noqa: BLE001 (no psycopg, or no server: say which, in one line)
        from receiver.recording.pgstore import mask

        print(f"no PostgreSQL at {mask(args.pg_url)}: {' '.join(mask(str(exc)).split())}", file=sys.stderr)
        return 2
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()))
    print(f"load: {'wrk ' + loadgen.wrk_version() if args.wrk else 'Python closed-loop generator'}; "
          f"gunicorn {args.workers} workers x {args.threads} threads; {args.rounds} alternating rounds")
    workdir = Path(tempfile.mkdtemp(prefix="imhook-bench-stores-"))
    ratio = None
    try:
        with ScratchDatabase(args.pg_url) as db:
            print(f"scratch database {db.name}", flush=True)
            words = traffic.make_words(httpbench.SEED, args.words)
            bodies = traffic.Traffic.build(httpbench.SEED, words, args.callbacks, loadgen.wall_clock())
            configs = server_configs(args, words, db, workdir)
            if "writer" in args.only:
                records, settings = mix_records(configs["sqlite"], bodies, args.records)
                print(f"\n1. writer: {len(records):,} records per writer per round, queued and journaled "
                      f"first, then timed from the writer's start until all are stored", flush=True)
                writer_phase(args, settings, records, db, workdir)
                print(f"\n1b. insert: each store's insert alone, a batch of "
                      f"{min(settings['batch_size'], len(records))} at a time",
                      flush=True)
                insert_phase(args, settings, records, db, workdir)
            if "replies" in args.only:
                print(f"\n2. replies: closed loop, {args.connections} connections, {args.seconds:g} s per run"
                      + (f"; VARIANT: the database's backends at nice {args.db_nice}, not the plain same-machine "
                         f"figure" if args.db_nice else ""), flush=True)
                db.empty()  # the writer phase's rows: the count afterwards is the servers' alone
                replies = replies_phase(args, bodies, configs, db, workdir)
                ratio = summarize_replies(replies["rounds"], replies["db_cpu"],
                                          f" (VARIANT: database at nice {args.db_nice})" if args.db_nice else "")
                if any(replies["stored"][s] < replies["answered"][s] for s in STORES):
                    print("FAILED: a store holds fewer records than replies were seen")
                    return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if args.strict and ratio is not None and ratio > TARGET_P99_RATIO else 0


if __name__ == "__main__":
    sys.exit(main())
