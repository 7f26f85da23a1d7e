"""Where a served worker's CPU goes, thread by thread: what in-process timing cannot see.

    python benchmarks/served_threads.py [--only bare,default,production] [--rounds 3] [--seconds 10] [--syscalls]
                                        [--tree-b DIR | --set-b JSON]

Starts the servers of benchmarks/http.py (same gunicorn settings, same mix, wrk at 16 connections,
the Python generator without wrk), then loads them in turn, round after round. Over each run it
reads every worker thread's CPU time and context switches from /proc and prints them per answered
request, grouped by the thread's OS name (receiver/threadnames.py names imhook's threads):

- event loop: the worker's main thread (gthread's poller and imhook's read stage, receiver/worker.py);
- requests: the `imhook-req` pool (gunicorn's parser, Flask, the app);
- recorder: the recording writer; other: the flushers, the watchdog, the trimmer.

`kernel` is the part of the CPU spent in the kernel (system time: system calls, futex waits, the
network stack); the rest is user space. `vcsw` are voluntary context switches (a thread waited: for the GIL, a lock, I/O), `ivcsw`
involuntary ones (the kernel took the core away). The bare app runs on the same worker class, so
"requests" minus bare's "requests" is imhook's own work on the request threads when served; compare
it with benchmarks/wsgi_cpu.py's in-process figure to see what only serving adds (issue 16).

`--syscalls` then loads each server once more with `strace -c -f` attached to every worker and
prints the system calls per answered request, by name, side by side: which calls a server makes
that another does not (a journal write, SQLite's page writes, GIL hand-offs as `futex`). strace
stops the traced threads at every call, so that run's CPU is not reported, and the `futex` count
runs high (slowed threads wait for the GIL more often); the other counts are the calls the code makes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import httpbench, loadgen, traffic  # noqa: E402
from benchmarks.common import ServerSpec, child_pids, machine, start_server  # noqa: E402

GROUPS = ("event loop", "requests", "recorder", "other")
# (pid, tid) -> (group, jiffies, of which system, vcsw, ivcsw)
Sample = dict[tuple[int, int], tuple[str, int, int, int, int]]
TICKS = os.sysconf("SC_CLK_TCK")


def group_of(pid: int, tid: int, name: str) -> str:
    if tid == pid:
        return "event loop"
    if name.startswith("imhook-req"):
        return "requests"
    if name.startswith("imhook-recorder"):
        return "recorder"
    return "other"


def sample(pids: list[int]) -> Sample:
    found: Sample = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in map(int, tids):
            base = f"/proc/{pid}/task/{tid}"
            try:
                name = Path(base, "comm").read_text().strip()
                stat = Path(base, "stat").read_text().rsplit(")", 1)[1].split()
                status = Path(base, "status").read_text()
            except OSError:
                continue  # the thread ended meanwhile
            switches = dict(line.split(":\t") for line in status.splitlines()
                            if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")))
            found[(pid, tid)] = (group_of(pid, tid, name), int(stat[11]) + int(stat[12]), int(stat[12]),
                                 int(switches["voluntary_ctxt_switches"]), int(switches["nonvoluntary_ctxt_switches"]))
    return found


def per_request(before: Sample, after: Sample, requests: int) -> dict[str, tuple[float, float, float, float]]:
    """Group -> (CPU µs, voluntary switches, involuntary switches, of the CPU µs in the kernel) per request."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for key, (group, jiffies, system, vcsw, ivcsw) in after.items():
        _, then_jiffies, then_system, then_vcsw, then_ivcsw = before.get(key, (group, 0, 0, 0, 0))
        totals[group][0] += (jiffies - then_jiffies) / TICKS * 1e6
        totals[group][1] += vcsw - then_vcsw
        totals[group][2] += ivcsw - then_ivcsw
        totals[group][3] += (system - then_system) / TICKS * 1e6
    return {group: tuple(value / requests for value in totals[group]) for group in GROUPS}


def load(server, requests, workdir: Path, args) -> tuple[int, float]:
    if args.wrk:
        script = loadgen.write_wrk_files(workdir, requests)
        result = loadgen.run_wrk(server.url + "/callback", script, connections=args.connections, seconds=args.seconds)
    else:
        result = loadgen.closed_loop(server.host, server.port, requests, connections=args.connections,
                                     seconds=args.seconds)
    if result.errors:
        raise RuntimeError(f"{server.spec.name}: {result.errors} errors under load")
    return result.requests, result.rps


# A row of `strace -c`'s table: % time, seconds, usecs/call, calls, [errors,] syscall.
STRACE_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", re.MULTILINE)


def syscalls(server, requests, workdir: Path, args) -> dict[str, float]:
    """System call name -> calls per answered request over one load run, every worker traced."""
    out = workdir / f"strace-{server.spec.name}.txt"
    command = ["strace", "-c", "-f", "-o", str(out)]
    for pid in child_pids(server.process.pid):
        command += ["-p", str(pid)]
    tracer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached to every thread before the load starts
    try:
        answered, _ = load(server, requests, workdir, args)
    finally:
        tracer.send_signal(signal.SIGINT)  # detach and write the table
        tracer.wait(30)
    return {name: int(calls) / answered for calls, name in STRACE_ROW.findall(out.read_text()) if name != "total"}


def print_syscalls(counts: dict[str, dict[str, float]]) -> None:
    names = list(counts)
    calls = sorted({call for table in counts.values() for call in table},
                   key=lambda call: -max(table.get(call, 0.0) for table in counts.values()))
    print("SYSCALLS per answered request (strace -c -f on every worker; futex runs high under strace)")
    print("  " + " " * 16 + "".join(f"{name:>14s}" for name in names))
    for call in calls:
        if max(table.get(call, 0.0) for table in counts.values()) >= 0.01:
            print(f"  {call:16s}" + "".join(f"{counts[name].get(call, 0.0):14.2f}" for name in names))


def prefill(path: Path, rows: int) -> None:
    """`rows` records of the mix in the recording file, as store_pages.py fills one (users spread
    over 5,000 accounts), before any server opens it: production's file (production-b gets a copy)."""
    import random
    import time as clock

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import store_pages  # noqa: E402  (this checkout's benchmark helpers)

    started = clock.monotonic()
    store_pages.load_records()
    # Received in the last rows/1000 seconds: older rows would fall to the recorder's retention
    # pass (7 days by default) as it starts, and the run would measure that deletion instead.
    store_pages.fill(path, rows, random.Random(20261207), None, first=clock.time() - rows / 1000 - 60)
    print(f"prefilled {path.name}: {rows:,} rows, {path.stat().st_size / 1e6:,.0f} MB in "
          f"{clock.monotonic() - started:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="bare,default,production", help="servers, of bare, default, production")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--words", type=int, default=20_000)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--set", default="{}", metavar="JSON", help="merged into the production config")
    parser.add_argument("--python-generator", action="store_true", help="the Python generator, not wrk")
    parser.add_argument("--smoke", action="store_true", help="one short round at a small word list")
    parser.add_argument("--tree-b", type=Path, metavar="DIR",
                        help="also run default and production on another checkout's code (default-b, production-b), "
                             "alternating with the others, as http.py --tree-b does")
    parser.add_argument("--set-b", metavar="JSON",
                        help="also run production with this JSON merged into its config as well (production-b), "
                             "alternating: a setting priced on the same code")
    parser.add_argument("--prefill", type=int, default=0, metavar="ROWS",
                        help="fill the production servers' recording file with this many rows of the mix first "
                             "(this checkout's schema), so the run measures a long-lived file, not a new one; "
                             "production-b gets a copy of its own")
    parser.add_argument("--syscalls", action="store_true",
                        help="then one more run per server under strace -c -f: system calls per answered request")
    args = parser.parse_args(argv)
    if args.syscalls and shutil.which("strace") is None:
        parser.error("--syscalls needs strace (Debian: apt-get install strace)")
    if args.set_b is not None and args.tree_b is not None:
        parser.error("--set-b and --tree-b both name production-b: give one")
    if args.smoke:
        args.rounds, args.seconds, args.words, args.callbacks = 1, 1.0, min(args.words, 2000), min(args.callbacks, 200)
    args.wrk = loadgen.wrk_available() and not args.python_generator
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()))
    print(f"load: {'wrk' if args.wrk else 'Python closed-loop generator'} at {args.connections} connections, "
          f"{args.seconds:g} s a run; per answered request, by thread group (receiver/threadnames.py)")
    workdir = Path(tempfile.mkdtemp(prefix="imhook-threads-"))
    servers = {}
    try:
        words = traffic.make_words(httpbench.SEED, args.words)
        traffic.write_word_file(workdir / "bench-words.txt", words)
        production = workdir / "production.yaml"
        production.write_text(httpbench.production_config(json.loads(args.set)), encoding="utf-8")
        bodies = traffic.Traffic.build(httpbench.SEED, words, args.callbacks, loadgen.wall_clock())
        if args.prefill:
            prefill(workdir / "bench-recordings.sqlite", args.prefill)  # configs/production.yaml's path
        specs = {"bare": ServerSpec("bare", "python:benchmarks.configs.gunicorn_bare"),
                 "default": httpbench.imhook_spec("default", httpbench.DEFAULT_CONFIG),
                 "production": httpbench.imhook_spec("production", production)}
        names = args.only.split(",")
        # production-b records into a file of its own (httpbench.production_b_config), a copy of
        # the prefilled one.
        if args.prefill and "production" in names and (args.set_b is not None or args.tree_b is not None):
            shutil.copyfile(workdir / "bench-recordings.sqlite", workdir / "bench-recordings-b.sqlite")
        overrides, set_b = json.loads(args.set), json.loads(args.set_b or "{}")
        production_b = httpbench.production_b_config(workdir, {
            **overrides, **set_b, "recording": {**overrides.get("recording", {}), **set_b.get("recording", {})}})
        if args.set_b is not None and "production" in names:
            names.append("production-b")
            specs["production-b"] = httpbench.imhook_spec("production-b", production_b)
        for name in ("default", "production") if args.tree_b is not None else ():
            if name in names:
                names.append(f"{name}-b")
                specs[f"{name}-b"] = httpbench.tree_b_spec(f"{name}-b", args.tree_b, production_b)
        from receiver.gunicorn_conf import threads, workers

        for name in names:
            servers[name] = start_server(specs[name], workdir / name, workers=workers, threads=threads)
        figures: dict[str, list[dict]] = defaultdict(list)
        for round_number in range(1, args.rounds + 1):
            for name in names:
                server = servers[name]
                pids = child_pids(server.process.pid)
                requests = httpbench.fresh(bodies)  # signed now: RequestTime must be recent
                before = sample(pids)
                answered, rps = load(server, requests, workdir, args)
                split = per_request(before, sample(pids), answered)
                figures[name].append(split)
                cells = "  ".join(f"{group} {split[group][0]:5.0f}" for group in GROUPS)
                total = sum(split[group][0] for group in GROUPS)
                kernel = sum(split[group][3] for group in GROUPS)
                switches = sum(split[group][1] for group in GROUPS), sum(split[group][2] for group in GROUPS)
                print(f"  round {round_number}: {name:10s} {rps:7,.0f} req/s  us/req: {cells}  total {total:5.0f}"
                      f" (kernel {kernel:3.0f})  switches/req: vcsw {switches[0]:.2f} ivcsw {switches[1]:.2f}")
        print("MEDIAN over rounds, us of CPU per answered request (range)")
        for name in names:
            cells = []
            for group in (*GROUPS, "total", "kernel"):
                values = [sum(r[g][0] for g in GROUPS) if group == "total" else
                          sum(r[g][3] for g in GROUPS) if group == "kernel" else r[group][0] for r in figures[name]]
                cells.append(f"{group} {statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})")
            print(f"  {name:10s} " + "  ".join(cells))
        if figures.get("production") and figures.get("production-b"):  # paired round by round
            differences = [sum(b[g][0] for g in GROUPS) - sum(a[g][0] for g in GROUPS)
                           for a, b in zip(figures["production"], figures["production-b"])]
            print(f"  production-b minus production, paired by round: median {statistics.median(differences):+.0f} us "
                  f"({min(differences):+.0f} to {max(differences):+.0f})")
        if args.syscalls:
            print_syscalls({name: syscalls(servers[name], httpbench.fresh(bodies), workdir, args) for name in names})
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
