"""Soak: does imhook stay flat under steady load for a long time? (issue 16)

    python benchmarks/soak.py [--minutes 30] [--fraction 0.7] [--rate R] [--smoke]

Starts imhook with benchmarks/configs/production.yaml (recording on, the shipped gunicorn
settings), finds its saturation rate with closed-loop runs at 16 connections (or takes --rate),
then sends the callback mix at `--fraction` of that rate, open loop, for `--minutes`, in chunks of
`--chunk-seconds` (20; each chunk signed afresh: imhook refuses a RequestTime older than 60 s). After
every chunk it samples each worker's RSS and the size of the working directory (recordings,
journals, logs). It reports, per chunk and in the end:

- errors: non-2xx replies, socket errors, time-outs and replies later than the IM's 2 s;
- each worker's RSS growth over the second half of the run (the target: under 2 MB over the last
  15 minutes of a 30-minute soak) — a worker restarted meanwhile is reported as such;
- disk growth per 10,000 callbacks (everything under the working directory).

`--smoke` runs a few seconds at a low rate: what the test suite runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import heaptrace
import loadgen
from common import CpuMeter, start_server
from httpbench import fresh, imhook_spec, production_setup

MB = 1024 * 1024


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's children (its workers), sorted."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def rss_bytes(pid: int) -> int:
    return rss_parts(pid).get("VmRSS", 0)


RSS_KINDS = ("RssAnon", "RssFile", "RssShmem")  # what VmRSS is made of (proc(5))


def rss_parts(pid: int) -> dict[str, int]:
    """VmRSS and its parts in bytes: anonymous memory (the heaps), file-backed pages (code,
    mapped files) and shared memory (SQLite's WAL index, prometheus_client's multiprocess files)."""
    parts = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "VmRSS" or name in RSS_KINDS:
            parts[name] = int(value.split()[0]) * 1024
    return parts


def trend_per_15_min(points: list[tuple[float, int]]) -> float | None:
    """The least-squares slope of (seconds, bytes), in bytes per 15 minutes: unlike first-to-last,
    not moved by where the last sample falls in malloc_trim's saw-tooth (receiver/heap.py)."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if not spread:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 900


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def saturation(server, bodies, workdir: Path, rounds: int, seconds: float) -> float:
    """Median closed-loop throughput at 16 connections (wrk when installed)."""
    rates = []
    for _ in range(rounds):
        requests = fresh(bodies)
        if loadgen.wrk_available():
            script = loadgen.write_wrk_files(workdir, requests)
            result = loadgen.run_wrk(server.url + "/callback", script, connections=16, seconds=seconds)
        else:
            result = loadgen.closed_loop(server.host, server.port, requests, connections=16, seconds=seconds)
        rates.append(result.rps)
        print(f"  saturation run: {result.rps:,.0f} req/s, p99 {result.p99:.1f} ms", flush=True)
    return sorted(rates)[len(rates) // 2]


def growth(samples: list[tuple[float, dict[int, int]]], since: float) -> dict[int, int | None]:
    """Each worker's RSS at the end minus its RSS at the first sample at or after `since` seconds;
    None for a worker that was not there at that sample (it was restarted meanwhile)."""
    later = [s for s in samples if s[0] >= since] or samples[-1:]
    first, last = later[0][1], samples[-1][1]
    return {pid: (rss - first[pid] if pid in first else None) for pid, rss in last.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--fraction", type=float, default=0.7, help="of the saturation rate")
    parser.add_argument("--rate", type=float, default=0.0, help="callbacks/s; 0: measure saturation first")
    parser.add_argument("--chunk-seconds", type=float, default=20.0,
                        help="signed afresh per chunk: keep it well under auth.window_seconds (60 s)")
    parser.add_argument("--words", type=int, default=20_000)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--smoke", action="store_true", help="a few seconds at 50 callbacks/s")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument("--trace", type=Path, metavar="DIR",
                        help="sample each worker's heap into DIR (benchmarks/heaptrace.py) and report its growth")
    parser.add_argument("--tracemalloc", action="store_true", help="with --trace: tracemalloc snapshots too (slow)")
    parser.add_argument("--generator", choices=("auto", "c", "python"), default="auto",
                        help="open-loop generator: benchmarks/openloop.c (built with gcc), asyncio, or auto")
    args = parser.parse_args(argv)
    if args.smoke:
        args.minutes, args.chunk_seconds, args.rate = 0.1, 2.0, args.rate or 50.0
        args.words, args.callbacks = 2000, 200

    from receiver.gunicorn_conf import threads, workers

    workdir = Path(tempfile.mkdtemp(prefix="imhook-soak-"))
    try:
        config, bodies = production_setup(workdir, args.words, args.callbacks)
        spec = imhook_spec("production", config)
        if args.trace:
            spec.gunicorn_config = "python:benchmarks.configs.gunicorn_traced"
            spec.env.update({"IMHOOK_TRACE_DIR": str(args.trace.resolve()),
                             "IMHOOK_TRACEMALLOC": "1" if args.tracemalloc else "0",
                             "IMHOOK_TRACE_EVERY": str(args.chunk_seconds)})
        server = start_server(spec, workdir, workers=workers, threads=threads)
        try:
            rate = args.rate or args.fraction * saturation(server, bodies, workdir, 3, 10.0)
            print(f"soak: {args.minutes:g} min at {rate:,.0f} callbacks/s, {workers} workers x {threads} threads, "
                  f"production config, recording on; working directory {workdir}", flush=True)
            before_disk, sent = disk_bytes(workdir), 0
            totals = {"requests": 0, "non_2xx": 0, "socket_errors": 0, "timeouts": 0, "over_2s": 0, "max_ms": 0.0}
            samples: list[tuple[float, dict[int, int]]] = []
            kind_samples: list[tuple[float, dict[int, dict[str, int]]]] = []
            rows = []
            start = time.monotonic()
            while time.monotonic() - start < args.minutes * 60:
                meter = CpuMeter(server.process.pid)
                result = loadgen.open_loop(server.host, server.port, fresh(bodies), rate=rate,
                                           seconds=args.chunk_seconds, generator=args.generator)
                cpu_server, _, cpu_others = meter.stop()
                elapsed = time.monotonic() - start
                parts = {pid: rss_parts(pid) for pid in worker_pids(server.process.pid)}
                rss = {pid: p.get("VmRSS", 0) for pid, p in parts.items()}
                samples.append((elapsed, rss))
                kind_samples.append((elapsed, parts))
                sent += result.requests
                for key in ("requests", "non_2xx", "socket_errors", "timeouts", "over_2s"):
                    totals[key] += getattr(result, key)
                totals["max_ms"] = max(totals["max_ms"], result.max)
                disk = disk_bytes(workdir) - before_disk
                rows.append({"t": round(elapsed), "requests": result.requests, "p99_ms": result.p99,
                             "max_ms": result.max, "errors": result.errors, "over_2s": result.over_2s,
                             "rss_mb": {pid: round(v / MB, 1) for pid, v in rss.items()},
                             "rss_parts_mb": {pid: {k: round(v / MB, 2) for k, v in p.items()}
                                              for pid, p in parts.items()},
                             "disk_mb": round(disk / MB, 1), "cpu_server": round(cpu_server, 2),
                             "cpu_others": round(cpu_others, 2)})
                print(f"  t={elapsed:6.0f}s  {result.rps:7,.0f} req/s  p99 {result.p99:6.1f} ms  max "
                      f"{result.max:7.1f} ms  errors {result.errors}  over 2 s {result.over_2s}  RSS "
                      + " ".join(f"{v / MB:.1f}" for v in rss.values())
                      + f" MB  disk +{disk / MB:.1f} MB  cores server {cpu_server:.2f} others {cpu_others:.2f}",
                      flush=True)
        finally:
            server.stop()
        total_s = samples[-1][0]
        half = growth(samples, total_s / 2)
        disk = disk_bytes(workdir) - before_disk
        errors = totals["non_2xx"] + totals["socket_errors"] + totals["timeouts"]
        print(f"RESULT soak {total_s / 60:.1f} min, {sent:,} callbacks at {rate:,.0f}/s: errors {errors}, "
              f"over 2 s {totals['over_2s']}, max {totals['max_ms']:.1f} ms")
        print("RESULT rss growth over the second half (from t=%.0fs): %s" % (total_s / 2, ", ".join(
            f"worker {pid} {'restarted' if g is None else f'{g / MB:+.2f} MB'}" for pid, g in half.items())))
        second_half = [s for s in kind_samples if s[0] >= total_s / 2]
        for pid in half:
            slopes = []
            for kind in ("VmRSS",) + RSS_KINDS:
                slope = trend_per_15_min([(t, p[pid][kind]) for t, p in second_half if kind in p.get(pid, {})])
                first_last = [p[pid][kind] for _, p in second_half if kind in p.get(pid, {})]
                if slope is not None and first_last:
                    slopes.append(f"{kind} {(first_last[-1] - first_last[0]) / MB:+.2f} (trend {slope / MB:+.2f})")
            if slopes:
                print(f"RESULT rss parts over the second half, worker {pid}, MB first-to-last (least-squares "
                      f"trend per 15 min): " + ", ".join(slopes))
        print(f"RESULT disk {disk / MB:.1f} MB for {sent:,} callbacks: "
              f"{disk / max(sent, 1) * 10_000 / MB:.2f} MB per 10,000 callbacks")
        if args.trace:
            for line in heaptrace.report(args.trace, total_s / 2):
                print("RESULT heap " + line)
        if args.json:
            args.json.write_text(json.dumps({"rate": rate, "totals": totals, "rows": rows}, indent=1))
        flat = all(g is not None and g < 2 * MB for g in half.values())
        return 0 if errors == 0 and totals["over_2s"] == 0 and (flat or args.smoke) else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
