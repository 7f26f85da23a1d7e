"""gunicorn settings for imhook, tuned for the IM's 2 s callback budget.

Every value can be overridden from the environment (IMHOOK_WORKERS, IMHOOK_THREADS, IMHOOK_BIND,
IMHOOK_WORKER_CLASS, IMHOOK_WORKER_CONNECTIONS, IMHOOK_LOG_LEVEL, IMHOOK_ACCESS_LOG,
IMHOOK_REUSE_PORT) or on the gunicorn command line. IMHOOK_BALANCE_CONNECTIONS=0 stops imhook's
worker from evening out the connections over the workers (receiver/balance.py);
IMHOOK_MALLOC_TRIM_SECONDS (10; 0: never) sets how often each worker hands free C heap back to the
system (receiver/heap.py).
"""

import multiprocessing
import os

bind = os.environ.get("IMHOOK_BIND", f"0.0.0.0:{os.environ.get('PORT', '8080')}")
# Threads let one worker serve several of the IM's keep-alive connections at once (PROTOCOL.md §1);
# processes use the cores. Rules are CPU-bound, so processes ~ cores.
workers = int(os.environ.get("IMHOOK_WORKERS", max(2, multiprocessing.cpu_count())))
# gthread with a read stage and load shedding: a connection reaches a thread only with a whole
# request, so slow or idle clients cost a buffer, not a thread; a callback that waited too long in
# the worker's queue is answered at once (receiver/worker.py, receiver/standing_queue.py).
worker_class = os.environ.get("IMHOOK_WORKER_CLASS", "receiver.worker.ImhookWorker")
# Few threads: the rules are CPU work under one GIL, so more threads only take turns on it (8 threads
# cost ~10% of throughput and doubled p99 in benchmarks/http.py). Waiting is done elsewhere: idle
# keep-alive connections wait in gthread's poller, a blocking rule on the chain's own pool under its
# deadline. Raise it for Python rules that wait on slow services.
threads = int(os.environ.get("IMHOOK_THREADS", "2"))
# The IM reuses connections; keep them a little longer than its idle gap.
keepalive = 75
# A worker silent this long is stuck: far beyond the 2 s budget, short enough to recover fast.
timeout = 30
graceful_timeout = 20
# Bounded listen queue: a queued request older than 2 s is worthless to the IM anyway.
backlog = 256
# Each worker listens on its own SO_REUSEPORT socket (gunicorn binds it in the worker, not the
# master), and the kernel spreads new connections over the workers' accept queues by a hash of
# their addresses. With one inherited socket, whichever worker woke first took every connection
# of a burst: the IM's keep-alive connections then stayed on one worker while the others idled
# (17 of 86 benchmark runs, issue 16). The price: a stuck worker's queue is not drained by its
# siblings. imhook's worker binds only once it has loaded the app, and a stopping one closes its
# socket at once, after a successor listens (receiver/handover.py; docs/performance.md weighs it all).
# IMHOOK_REUSE_PORT=0: one shared socket (a Unix socket is always one: see share_sockets_not_made_per_worker).
# The hash splits connections unevenly now and then (4/12); imhook's worker evens that out by closing
# a few on the fuller worker (receiver/balance.py, IMHOOK_BALANCE_CONNECTIONS).
reuse_port = os.environ.get("IMHOOK_REUSE_PORT", "1").strip().lower() not in ("0", "false", "no", "off")
# Open connections per worker, idle ones included: past it the worker stops accepting. With the read
# stage each costs a few KB plus its buffered request (receiver/read_stage.py bounds the total).
worker_connections = int(os.environ.get("IMHOOK_WORKER_CONNECTIONS", "1000"))
max_requests = 0
# Request line and one header line, in bytes; beyond them the answer is a JSON 414 / 431.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 100
# imhook's JSON callback log (receiver/ops/logs.py) is the access log: one line per request, with
# its request id. gunicorn's own access log is off unless IMHOOK_ACCESS_LOG names a file or "-";
# its line carries the path, never the query (which holds Sign), whatever the format says
# (receiver/edge.py AccessLogger).
accesslog = os.environ.get("IMHOOK_ACCESS_LOG") or None
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}i)s'
logger_class = "receiver.edge.AccessLogger"
loglevel = os.environ.get("IMHOOK_LOG_LEVEL", "info")
wsgi_app = "receiver.app:create_app()"
# gunicorn 27's control socket defaults to one path per user: several imhook instances on one
# machine (tests, benchmarks, blue/green) would fight over it. imhook needs none.
control_socket_disable = True


def on_starting(server):
    """Validate the config once in the master: a bad file stops start-up with a clear message. Then
    bring the recordings file to this imhook's schema, once, before the workers open it."""
    import sys

    from receiver.errors import EXIT_USAGE, ImhookError
    from receiver.recording.hooks import migrate_before_workers
    from receiver.reload import check_start_up

    try:
        config, chain = check_start_up()
        chain.close()
        migrated = migrate_before_workers(config)
    except ImhookError as exc:
        print(f"imhook: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None  # a config error: the same status `imhook check` gives
    if migrated:
        server.log.info("%s", migrated)
    share_sockets_not_made_per_worker(server)


def share_sockets_not_made_per_worker(server) -> None:
    """reuse_port off where a socket of its own per worker cannot be: a Unix socket (Linux refuses
    SO_REUSEPORT on one: EOPNOTSUPP) and sockets handed over by systemd (gunicorn would leave them
    unused and have each worker bind the address itself). With it on there, every worker failed to
    bind, over and over, and nothing was served. Called in the master before it makes the listening
    sockets."""
    from gunicorn import systemd
    from gunicorn.util import parse_address

    def tcp(address: str) -> bool:
        try:
            return isinstance(parse_address(address), tuple)
        except RuntimeError:  # not an address at all: gunicorn says so itself when it binds
            return True

    if not server.cfg.reuse_port:
        return
    not_tcp = [address for address in server.cfg.bind if not tcp(address)]
    inherited = systemd.listen_fds(unset_environment=False)
    if not_tcp or inherited:
        server.cfg.set("reuse_port", False)
        why = (f"{', '.join(not_tcp)} {'is' if len(not_tcp) == 1 else 'are'} not TCP" if not_tcp
               else f"{inherited} socket(s) come from systemd")
        server.log.info("reuse_port is off: %s; the workers share one listening socket", why)


def on_reload(server):
    """On HUP: a bad new file is logged and the last good one keeps serving."""
    from receiver.reload import validate_and_remember

    validate_and_remember()


def _each(hook, *args):
    """Call the gunicorn hook `hook` of every part that defines it (see receiver/parts.py)."""
    from receiver import parts

    for module in parts.modules("hooks"):
        if hasattr(module, hook):
            getattr(module, hook)(*args)


def when_ready(server):
    if server.cfg.reuse_port and not server.LISTENERS:
        # With reuse_port gunicorn binds in each worker, so the master's own "Listening at" line
        # above names no address; say where the workers will listen.
        server.log.info("Listening at: %s (each worker binds it, SO_REUSEPORT)", ", ".join(server.cfg.bind))
    _each("when_ready", server)


def post_fork(server, worker):
    _each("post_fork", server, worker)


def post_worker_init(worker):
    """The app is built: move everything it holds out of the garbage collector's sight.

    The rules' word lists, schemas and the app are tens of thousands of long-lived objects; every
    full collection walked them all while holding the GIL (~50 ms on the benchmark config, a stall
    of every request in the worker). Frozen, a full collection walks only what requests left behind.
    Frozen objects are still freed by reference counting; only cycles among them stay, e.g. those
    of a chain replaced by `reload.watch` (a HUP reload starts new workers): small, once per reload.
    """
    from receiver.heap import settle, start_trimming

    settle()
    # Free C heap back to the system every 10 s, so RSS follows the memory in use (receiver/heap.py).
    start_trimming()


def worker_exit(server, worker):
    _each("worker_exit", server, worker)


def child_exit(server, worker):
    _each("child_exit", server, worker)
