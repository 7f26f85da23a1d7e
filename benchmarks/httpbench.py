"""HTTP benchmark (run it through benchmarks/http.py): is imhook fast enough for the IM's 2 s budget?

    python benchmarks/http.py [--smoke] [--strict] [--wait-quiet SECONDS] [--markdown FILE] [...]

Starts gunicorn servers on loopback, all with the same worker class and worker/thread counts
(imhook's receiver/gunicorn_conf.py values; the worker is imhook's, which sheds load past
saturation, receiver/worker.py): (a) a bare Flask app that parses the JSON body and answers OK
(benchmarks/bare_app.py), (b) imhook with receiver/default.yaml, (c) imhook with
benchmarks/configs/production.yaml (a generated 20,000-word list with every evasion handled,
contact masking, friend/group/message/signaling policies, rate limits, recording), and one
experiment on (c): every rule decided on the chain's thread pool. Each server is first checked to
answer every callback of the mix correctly (imhook: exactly what the sans-I/O core answers
in-process with the same config), then driven by wrk (closed loop, 16 connections in rounds
alternating between the servers, then 64) and by a constant-rate open-loop generator at twice its
saturation rate, which also reports how many requests were shed (answered at once with the
fail-open reply, `server.shed_after_ms`). `--smoke` runs the first three for about a second each
at low load and exits 0 when all of them answered correctly; it is what the test suite runs.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import loadgen
import traffic
from common import (WORKER_CLASS, CpuMeter, LoadResult, Server, ServerSpec, child_pids, connections_per_worker,
                    machine, quiet_cores, start_server)
from results import Run, markdown, report, summarize

HERE = Path(__file__).resolve().parent

DEFAULT_CONFIG = HERE.parent / "receiver" / "default.yaml"
PRODUCTION_CONFIG = HERE / "configs" / "production.yaml"
OK_ENVELOPE = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}
SEED = 20240601
NO_OVERLOAD = ("pooled",)  # only here to price the chain's thread hop
FLUSH_SECONDS = 1.0  # receiver/ops/metrics.py flushes each worker's counts this often
SHED_LOG = re.compile(r"(\d+) requests shed \(answered without the app\)")  # receiver/worker.py, at exit
ABANDONED_LOG = re.compile(r"(\d+) requests not decided: their client left")  # receiver/worker.py, at exit
SHED_METRIC = re.compile(r'^imhook_callbacks_total\{[^}]*outcome="shed"[^}]*\} (\S+)$', re.MULTILINE)


def production_config(overrides: dict) -> str:
    """configs/production.yaml, with `overrides` (from --set) merged in section by section."""
    text = PRODUCTION_CONFIG.read_text(encoding="utf-8")
    if not overrides:
        return text  # byte for byte the file in the repository
    import yaml

    doc = yaml.safe_load(text)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def production_setup(workdir: Path, words: int, callbacks: int) -> tuple[Path, traffic.Traffic]:
    """The production config and its word list written into `workdir`, and the mix to send it:
    what soak.py and restarts.py serve (config path, bodies)."""
    word_list = traffic.make_words(SEED, words)
    traffic.write_word_file(workdir / "bench-words.txt", word_list)
    config = workdir / "production.yaml"
    config.write_text(production_config({}), encoding="utf-8")
    return config, traffic.Traffic.build(SEED, word_list, callbacks, loadgen.wall_clock())


def production_b_config(workdir: Path, overrides: dict) -> Path:
    """`production-b.yaml` in `workdir`: the production config with `overrides`, recording into a file
    of its own (`bench-recordings-b.sqlite`). Another tree may keep another schema, and two servers on
    one file would each pay for the other's rows."""
    recording = {**overrides.get("recording", {})}
    recording.setdefault("path", str(workdir / "bench-recordings-b.sqlite"))
    config = workdir / "production-b.yaml"
    config.write_text(production_config({**overrides, "recording": recording}), encoding="utf-8")
    return config


def imhook_spec(name: str, config: Path, *args: str) -> ServerSpec:
    return ServerSpec(name, "python:receiver.gunicorn_conf", {
        "IMHOOK_CONFIG": str(config), "IMHOOK_APP_ID": traffic.APP_ID, "IMHOOK_TOKEN": traffic.TOKEN}, args)


def tree_b_spec(name: str, tree: Path, production: Path) -> ServerSpec:
    """`default-b` or `production-b`: that server on another checkout's code (`--tree-b`), whose
    receiver, rules and gunicorn_conf come first on PYTHONPATH. Its default server reads its own
    default.yaml: this checkout's may list keys the other does not know."""
    config = tree / "receiver" / "default.yaml" if name == "default-b" else production
    spec = imhook_spec(name, config)
    return ServerSpec(name, spec.gunicorn_config, {**spec.env, "PYTHONPATH": str(tree.resolve())})


def reference_receiver(config: Path):
    """The sans-I/O core built from the same config the server runs: what a correct reply is."""
    from receiver.config import load_config
    from receiver.core import Receiver
    from receiver.tencent.platform import TencentPlatform
    from rules.loader import build_chain

    cfg = load_config(config, {"IMHOOK_APP_ID": traffic.APP_ID, "IMHOOK_TOKEN": traffic.TOKEN})
    platform = TencentPlatform()
    return Receiver(cfg, build_chain(cfg, platform=platform), platform=platform)


def shed_so_far(server: Server) -> int | None:
    """Callbacks the server has shed so far, from its /metrics; None without metrics (the bare app)."""
    try:
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as reply:
            text = reply.read().decode("utf-8", "replace")
    except OSError:
        return None
    return sum(int(float(n)) for n in SHED_METRIC.findall(text))


def check_replies(run: Run, server: Server, requests, receiver) -> None:
    """Send every request once; each reply must be HTTP 200 JSON and the reply the core gives."""
    from receiver.core import HttpRequest

    replies = loadgen.fetch_all(server.host, server.port, requests)
    for (path, body), (status, reply_body) in zip(requests, replies):
        query = dict(parse_qsl(urlsplit(path).query))
        try:
            reply = json.loads(reply_body)
        except ValueError:
            reply = None
        if receiver is None:
            expected, outcome = OK_ENVELOPE, "ok"
        else:
            done = receiver.handle(HttpRequest("POST", query, body))
            expected, outcome = done.reply, done.outcome_name
        run.outcomes[outcome] = run.outcomes.get(outcome, 0) + 1
        if status != 200 or reply != expected:
            run.wrong.append(f"{query['CallbackCommand']}: HTTP {status} {reply_body[:200]!r}, "
                             f"expected {json.dumps(expected)[:200]}")
    run.checked = len(replies)


def fresh(bodies: traffic.Traffic) -> list[tuple[str, bytes]]:
    """The mix signed now: imhook refuses a RequestTime older than auth.window_seconds (60 s)."""
    return bodies.requests(loadgen.wall_clock())


def closed_phase(server: Server, bodies, workdir: Path, args, *, connections: int, seconds: float) -> LoadResult:
    def phase() -> LoadResult:
        requests = fresh(bodies)
        if args.wrk:
            script = loadgen.write_wrk_files(workdir, requests)
            return loadgen.run_wrk(server.url + "/callback", script, connections=connections, seconds=seconds)
        return loadgen.closed_loop(server.host, server.port, requests, connections=connections, seconds=seconds)

    return measured(server, phase, args)


def open_phase(server: Server, bodies, args, *, rate: float, seconds: float, max_connections: int) -> LoadResult:
    return measured(server, lambda: loadgen.open_loop(server.host, server.port, fresh(bodies), rate=rate,
                                                      seconds=seconds, max_connections=max_connections,
                                                      generator=args.open_generator), args)


def measured(server: Server, phase, args, attempts: int = 5) -> LoadResult:
    """Run a phase, noting the CPU used by the server, the generator and the rest of the (shared)
    machine; with --wait-quiet, wait for an idle machine first and redo a phase others disturbed."""
    for attempt in range(attempts):
        wait_quiet(args)
        meter = CpuMeter(server.process.pid)
        seen: list[tuple[int, ...]] = []
        # A second into the phase, every connection is open: which worker holds each (ss).
        probe = threading.Timer(1.0, lambda: seen.append(connections_per_worker(
            server.port, sorted(child_pids(server.process.pid)))))
        probe.start()
        result = phase()
        probe.cancel()
        result.cpu_server, result.cpu_generator, result.cpu_others = meter.stop()
        result.cpu_workers = meter.workers
        result.worker_connections = seen[0] if seen else ()
        if not args.wait_quiet or result.cpu_others <= args.quiet_cores or attempt == attempts - 1:
            return result
        print(f"  (phase disturbed: other processes used {result.cpu_others:.2f} cores; run again)", flush=True)
    raise AssertionError("unreachable")


def wait_quiet(args) -> None:
    """Wait (up to --wait-quiet s) until the shared machine is nearly idle."""
    deadline = time.monotonic() + args.wait_quiet
    while args.wait_quiet and quiet_cores(2.0) > args.quiet_cores and time.monotonic() < deadline:
        pass


def start_all(runs: list[Run], specs: dict[str, ServerSpec], workdir: Path, args) -> dict[str, Server]:
    """Start every server (idle ones cost nothing), so the timed runs can alternate between them."""
    servers: dict[str, Server] = {}
    for run in runs:
        servers[run.name] = start_server(specs[run.name], workdir / run.name, workers=args.workers,
                                         threads=args.threads, access_log=args.access_log)
        print(f"[{run.name}] {run.label}\n  {' '.join(servers[run.name].command[1:])}", flush=True)
    return servers


def check_all(runs: list[Run], servers: dict[str, Server], receivers: dict, bodies) -> None:
    for run in runs:
        check_replies(run, servers[run.name], fresh(bodies), receivers.get(run.name))
        mix = ", ".join(f"{k} {v}" for k, v in sorted(run.outcomes.items()))
        print(f"  {run.name}: checked {run.checked} callbacks, {len(run.wrong)} wrong; outcomes: {mix}", flush=True)
        for line in run.wrong[:5]:
            print(f"    WRONG {line}")


def load_all(runs: list[Run], servers: dict[str, Server], bodies, workdir: Path, args) -> None:
    """Closed-loop runs alternate between the servers, `--rounds` times, so a disturbance on the shared
    machine hits them alike; each server keeps its median run. Then 64 connections, then overload."""
    if args.smoke:
        for run in runs:
            server = servers[run.name]
            run.phases["c4"] = closed_phase(server, bodies, workdir, args, connections=4, seconds=1)
            report(run, "c4")
            run.phases["open"] = open_phase(server, bodies, args, rate=50, seconds=1, max_connections=16)
            report(run, "open")
        return
    key = f"c{args.connections}"
    for run in runs:  # warm-up: imports, caches, the first SQLite pages
        closed_phase(servers[run.name], bodies, workdir, args, connections=args.connections, seconds=3)
    shed_before = shed_counts(runs, servers)
    for round_ in range(args.rounds):
        for run in runs:
            result = closed_phase(servers[run.name], bodies, workdir, args, connections=args.connections,
                                  seconds=args.seconds)
            run.rounds.append(result)
            print(f"  round {round_ + 1}: {run.name:<10} {result.rps:8,.0f} req/s  p99 {result.p99:7.2f} ms  "
                  f"CPU/req {result.cpu_us_per_request:5,.0f} us  workers {worker_split(result)}  "
                  f"(others used {result.cpu_others:.2f} cores)", flush=True)
    note_shed(runs, servers, shed_before, f"{key} rounds")
    shed_before = shed_counts(runs, servers)
    for run in runs:
        # The median of the rounds in which every worker worked; all rounds if none did.
        usable = [r for r in run.rounds if not r.idle_worker] or run.rounds
        run.phases[key] = sorted(usable, key=lambda r: r.rps)[len(usable) // 2]
        report(run, key)
        run.phases["c64"] = closed_phase(servers[run.name], bodies, workdir, args, connections=64,
                                         seconds=args.seconds / 2)
        report(run, "c64")
    note_shed(runs, servers, shed_before, "c64")
    for run in runs:
        if run.name in NO_OVERLOAD or args.overload_seconds <= 0 or not (run.saturation or args.overload_rate):
            continue
        time.sleep(1)
        server = servers[run.name]
        shed_before = shed_so_far(server)
        rate = args.overload_rate or args.overload_factor * run.saturation
        run.phases["overload"] = open_phase(server, bodies, args, rate=rate,
                                            seconds=args.overload_seconds, max_connections=args.overload_connections)
        time.sleep(FLUSH_SECONDS + 0.5)  # the other workers' counts reach /metrics within a flush
        shed_after = shed_so_far(server)
        if shed_before is not None and shed_after is not None:
            run.shed_overload = shed_after - shed_before
        report(run, "overload")


def shed_counts(runs: list[Run], servers: dict[str, Server]) -> dict[str, int | None]:
    return {run.name: shed_so_far(servers[run.name]) for run in runs}


def note_shed(runs: list[Run], servers: dict[str, Server], before: dict[str, int | None], phase: str) -> None:
    """Print and keep how many callbacks each imhook server shed in a closed-loop phase: at c16 it must
    be none (or the CPU comparisons compare fail-open replies with decided ones)."""
    if not any(count is not None for count in before.values()):
        return
    time.sleep(FLUSH_SECONDS + 0.5)  # every worker's counts reach /metrics within a flush
    after = shed_counts(runs, servers)
    for run in runs:
        if before[run.name] is not None and after[run.name] is not None:
            run.shed_closed[phase] = after[run.name] - before[run.name]
            print(f"  {run.name}: {run.shed_closed[phase]:,} requests shed during the {phase}", flush=True)


def worker_split(result: LoadResult) -> str:
    """Each worker's share of the workers' CPU, flagged when one sat idle (see LoadResult.idle_worker)."""
    shares = "/".join(f"{100 * share:.0f}" for share in result.worker_shares) + " %"
    if result.worker_connections:
        shares += " (connections " + "/".join(map(str, result.worker_connections)) + ")"
    return shares + (" IDLE WORKER: not used for ratios" if result.idle_worker else "")


def chain_hop_cost(receiver, bodies, rounds: int) -> tuple[float, float]:
    """µs per before-send decision: the rules run on a thread pool, as `Chain.decide` runs a chain
    with a blocking rule (submit, wait for the result), and the same rules run inline."""
    from concurrent.futures import ThreadPoolExecutor

    from receiver.core import HttpRequest

    callbacks = []
    for path, body in bodies.requests(loadgen.wall_clock()):
        query = dict(parse_qsl(urlsplit(path).query))
        if query["CallbackCommand"].endswith("BeforeSendMsg"):
            callbacks.append(receiver.parse(HttpRequest("POST", query, body), receiver.config, time.time()))
    chain = receiver.chain
    deadline = receiver.config.chain["deadline_ms"] / 1000
    with ThreadPoolExecutor(max_workers=receiver.config.chain["threads"]) as pool:
        figures = []
        for decide in (lambda c: pool.submit(chain.run, c).result(timeout=deadline), chain.run):
            started = time.perf_counter()
            for i in range(rounds):
                decide(callbacks[i % len(callbacks)])
            figures.append((time.perf_counter() - started) / rounds * 1e6)
    return figures[0], figures[1]


def main(argv: list[str] | None = None) -> int:
    from receiver.gunicorn_conf import threads, workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="about a second per server at low load")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--seconds", type=float, default=10.0, help="each closed-loop run at --connections")
    parser.add_argument("--rounds", type=int, default=3, help="closed-loop runs per server, alternating")
    parser.add_argument("--overload-seconds", type=float, default=30.0, help="0: no open-loop overload run")
    parser.add_argument("--overload-factor", type=float, default=2.0,
                        help="the open-loop rate as a multiple of the server's closed-loop saturation rate")
    parser.add_argument("--overload-rate", type=float, default=0.0, metavar="REQ_PER_S",
                        help="the open-loop rate itself, instead of --overload-factor x this run's saturation "
                             "(on a shared machine a disturbed closed-loop round misstates saturation)")
    parser.add_argument("--overload-connections", type=int, default=256, help="open-loop pool size cap")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=workers)
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--words", type=int, default=20_000, help="size of the generated word list")
    parser.add_argument("--callbacks", type=int, default=3000, help="distinct callbacks in the mix")
    parser.add_argument("--python-generator", action="store_true", help="use the Python generator, not wrk")
    parser.add_argument("--open-generator", choices=("auto", "c", "python"), default="auto",
                        help="open-loop phases: benchmarks/openloop.c (built with gcc on first use), the "
                             "asyncio generator, or auto: C when gcc builds it")
    parser.add_argument("--only", default=None,
                        help="servers to run, of bare, default, production, pooled (default: all; "
                             "--smoke: the first three)")
    parser.add_argument("--set", default="{}", metavar="JSON",
                        help="merge this JSON object into (c)'s config, e.g. '{\"recording\": {\"enabled\": false}}'")
    parser.add_argument("--markdown", type=Path, help="also write the figures as Markdown to this file")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each phase, wait up to this long for the machine to be idle; "
                             "run a phase again when other processes used more than --quiet-cores meanwhile")
    parser.add_argument("--quiet-cores", type=float, default=0.25, help="'idle' means fewer busy cores than this")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, recordings)")
    parser.add_argument("--tree-b", type=Path, metavar="DIR",
                        help="also run (b) and (c) on another checkout's code (its C extension built), as "
                             "default-b and production-b, alternating with the others: a before/after pair "
                             "over HTTP in one invocation, each side paired round by round with the bare app")
    parser.add_argument("--access-log", action="store_true",
                        help="every server writes gunicorn's access log to a file (imhook ships it off)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.words, args.callbacks = min(args.words, 2000), min(args.callbacks, 200)
    args.wrk = loadgen.wrk_available() and not args.python_generator
    args.only = args.only or ("bare,default,production" if args.smoke else "bare,default,production,pooled")

    info = machine()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    print(f"gunicorn: worker class {WORKER_CLASS}, {args.workers} workers x {args.threads} threads (all servers); "
          f"load: {'wrk' if args.wrk else 'Python closed-loop generator (wrk not found)'} + open loop: "
          f"{loadgen.open_loop_name(args.open_generator)}")
    workdir = Path(tempfile.mkdtemp(prefix="imhook-bench-"))
    try:
        words = traffic.make_words(SEED, args.words)
        traffic.write_word_file(workdir / "bench-words.txt", words)
        production = workdir / "production.yaml"
        production.write_text(production_config(json.loads(args.set)), encoding="utf-8")
        bodies = traffic.Traffic.build(SEED, words, args.callbacks, loadgen.wall_clock())
        print(f"mix of {args.callbacks} callbacks: " + ", ".join(
            f"{k} {v}" for k, v in sorted(bodies.command_counts().items())))
        changed = f" + {args.set}" if json.loads(args.set) else ""
        servers = {
            "bare": ("(a) bare Flask: parse JSON, answer OK",
                     ServerSpec("bare", "python:benchmarks.configs.gunicorn_bare"), None),
            "default": ("(b) imhook, receiver/default.yaml", imhook_spec("default", DEFAULT_CONFIG),
                        DEFAULT_CONFIG),
            "production": (f"(c) imhook, configs/production.yaml{changed}, {args.words:,} words",
                           imhook_spec("production", production), production),
            "pooled": ("(c') as (c), every rule decided on the chain's thread pool (experiment)",
                       imhook_spec("pooled", production, "benchmarks.configs.pooled_chain:app"), production),
        }
        if args.tree_b is not None:
            production_b = production_b_config(workdir, json.loads(args.set))
            for name in ("default", "production"):
                spec = tree_b_spec(f"{name}-b", args.tree_b, production_b)
                servers[f"{name}-b"] = (f"{servers[name][0]}, code of {args.tree_b}", spec,
                                        Path(spec.env["IMHOOK_CONFIG"]))
            args.only += "".join(f",{name}-b" for name in ("default", "production") if name in args.only.split(","))
        names = args.only.split(",")
        runs = [Run(name, servers[name][0]) for name in names]
        receivers = {name: reference_receiver(servers[name][2]) for name in names if servers[name][2]}
        running = start_all(runs, {name: servers[name][1] for name in names}, workdir, args)
        try:
            check_all(runs, running, receivers, bodies)
            load_all(runs, running, bodies, workdir, args)
        finally:
            for run in runs:
                server = running[run.name]
                if server.stop() not in (0, None):
                    print(f"  {run.name}: gunicorn exited with {server.process.returncode}:\n{server.log_tail()}")
                abandoned = sum(int(n) for n in ABANDONED_LOG.findall(server.log_tail(400)))
                if abandoned:
                    print(f"  {run.name}: {abandoned:,} requests not decided: their client had left (timed out) "
                          "while they were queued")
                counts = SHED_LOG.findall(server.log_tail(400))  # each worker logs its count as it exits
                if counts:
                    run.shed = sum(int(n) for n in counts)
                    print(f"  {run.name}: {run.shed:,} requests shed over the whole run (answered at once, "
                          "fail-open, without the app)")
        for run in runs:
            if run.name in ("default", "production") and not args.smoke:
                run.hop = chain_hop_cost(receivers[run.name], bodies, 20_000)
                print(f"  {run.name}: rules per before-send message, in-process: on a thread pool "
                      f"{run.hop[0]:.1f} us, inline {run.hop[1]:.1f} us: the hop costs {run.hop[0] - run.hop[1]:.1f} us")
        targets = summarize(runs, args.smoke, args.overload_factor)
        if args.markdown:
            args.markdown.write_text(markdown(info, args, runs, targets, argv), encoding="utf-8")
            print(f"figures written to {args.markdown}")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    broken = [r.name for r in runs if r.wrong or not r.checked or any(p.errors for k, p in r.phases.items()
                                                                       if k != "overload")]
    if broken:
        print(f"FAILED: wrong replies or errors from {', '.join(broken)}")
        return 1
    return 1 if args.strict and not all(met for _, met in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
