"""Restarts under load: is every callback answered in time while workers start and stop? (issue 16)

    python benchmarks/restarts.py [--rate 600] [--seconds 24] [--rounds 2] [--tree-b DIR] [--smoke]

Starts imhook with benchmarks/configs/production.yaml (its 20,000 words take about a second to load
in each worker) and sends the callback mix open loop at `--rate` for `--seconds`. A sixth of the way
in, the master gets a HUP (new workers load, the old ones stop); half-way, the oldest worker gets a
SIGTERM (the master starts another). It reports, per server and round: callbacks, errors (non-2xx,
socket errors, time-outs), replies later than the IM's 2 s, p99 and max latency (from each
callback's due time), callbacks shed (answered without the rules, from the workers' exit lines)
and how long the workers took to load (their "accepting connections" lines).

`--tree-b DIR` runs the same, alternating round by round, on another checkout's code (as http.py's
`--tree-b`): the pair is what RESULTS.md quotes. `--smoke` runs a few seconds at a low rate.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import loadgen
from common import start_server
from httpbench import fresh, imhook_spec, production_b_config, production_setup, tree_b_spec

SHED_LINE = re.compile(r"imhook worker \d+: (\d+) requests shed")
LOADED_LINE = re.compile(r"accepting connections, ([\d.]+) s after it started")


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def started_at(pid: int) -> int:
    """When the process started, in clock ticks since boot (proc(5), /proc/PID/stat field 22)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def events(server, seconds: float, log: list[str]) -> None:
    """HUP the master a sixth of the way in, SIGTERM the oldest worker half-way."""
    start = time.monotonic()
    time.sleep(seconds / 6)
    server.process.send_signal(signal.SIGHUP)
    log.append(f"HUP at {time.monotonic() - start:.1f} s")
    time.sleep(max(0.0, seconds / 2 - (time.monotonic() - start)))
    pids = worker_pids(server.process.pid)
    if pids:
        oldest = min(pids, key=started_at)
        os.kill(oldest, signal.SIGTERM)
        log.append(f"SIGTERM worker {oldest} at {time.monotonic() - start:.1f} s")


def one_round(spec, workdir: Path, bodies, args, workers: int, threads: int) -> dict:
    server = start_server(spec, workdir, workers=workers, threads=threads)
    happened: list[str] = []
    try:
        loadgen.open_loop(server.host, server.port, fresh(bodies), rate=args.rate, seconds=2.0)  # warm
        thread = threading.Thread(target=events, args=(server, args.seconds, happened))
        thread.start()
        result = loadgen.open_loop(server.host, server.port, fresh(bodies), rate=args.rate, seconds=args.seconds)
        thread.join()
    finally:
        server.stop()
    text = server.log_path.read_text(errors="replace")
    shed = sum(int(n) for n in SHED_LINE.findall(text))
    loads = [float(s) for s in LOADED_LINE.findall(text)]
    return {"result": result, "shed": shed, "loads": loads, "events": happened}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=600.0, help="callbacks/s, open loop")
    parser.add_argument("--seconds", type=float, default=24.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--words", type=int, default=20_000)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--tree-b", type=Path, metavar="DIR", help="also run another checkout's code, alternating")
    parser.add_argument("--smoke", action="store_true", help="a few seconds at 50 callbacks/s")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rate, args.seconds, args.rounds, args.words, args.callbacks = 50.0, 6.0, 1, 2000, 200

    from receiver.gunicorn_conf import threads, workers

    workdir = Path(tempfile.mkdtemp(prefix="imhook-restarts-"))
    try:
        config, bodies = production_setup(workdir, args.words, args.callbacks)
        specs = {"production": imhook_spec("production", config)}
        if args.tree_b is not None:
            specs["production-b"] = tree_b_spec("production-b", args.tree_b, production_b_config(workdir, {}))
        print(f"restarts: {args.rate:,.0f} callbacks/s for {args.seconds:g} s, a HUP at 1/6, a worker's "
              f"SIGTERM at 1/2; {workers} workers x {threads} threads, production config", flush=True)
        for round_number in range(1, args.rounds + 1):
            for name, spec in specs.items():
                found = one_round(spec, workdir / f"{name}-{round_number}", bodies, args, workers, threads)
                r = found["result"]
                loads = ", ".join(f"{s:.2f}" for s in found["loads"]) or "not said"
                print(f"RESULT {name:<13} round {round_number}: {r.requests:,} callbacks, errors {r.errors} "
                      f"(non-2xx {r.non_2xx}, socket {r.socket_errors}, time-outs {r.timeouts}), over 2 s "
                      f"{r.over_2s}, p99 {r.p99:.1f} ms, max {r.max:.1f} ms, shed {found['shed']}; "
                      f"workers loaded in {loads} s; {'; '.join(found['events'])}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
