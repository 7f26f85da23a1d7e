"""receiver/handover.py: a worker listens once it can answer, and stops listening once its successor does.

The shared table in-process first, then real gunicorn with a rule that takes 1.5 s to build (as a
large word list does) while callbacks keep coming, over new connections and over kept-alive ones: a
worker stopped (the master starts another), a HUP reload, the same without `reuse_port`, and a
stopping worker that still holds an idle keep-alive connection. Every callback must be answered by
the rules, and none may wait out a worker's boot; a lone worker's restart still binds at once, so a
callback then waits for the load rather than being refused (before this, callbacks hashed to a booting worker
waited 1.6 s, and those queued on a stopping one were reset).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlencode

import pytest
import requests

from receiver import handover
from receiver.client import callback_query
from receiver.handover import ACCEPTING, HANDOVER_MAX_SECONDS
from receiver.worker_table import SLOTS, WorkerTable

from .helpers import APP_ID, ROOT, TOKEN, free_port, sample, start_server
from .test_ops_support import wait_until, worker_pids

# --- the table ----------------------------------------------------------------------------------------


def test_a_younger_booting_worker_is_waited_for_until_it_listens():
    table = WorkerTable()
    table.booting(1, now=100.0)
    table.started(1, os.getpid())
    table.listening(1, now=100.5)
    table.booting(2, now=110.0)  # a HUP: the master creates worker 2 before the fork
    assert table.successor_booting(1, 110.0, HANDOVER_MAX_SECONDS)  # not started yet (pid 0): still waited for
    table.started(2, os.getpid())
    assert table.successor_booting(1, 111.0, HANDOVER_MAX_SECONDS)
    assert not table.successor_booting(2, 111.0, HANDOVER_MAX_SECONDS)  # only younger workers are successors
    table.listening(2, now=112.0)
    assert not table.successor_booting(1, 112.0, HANDOVER_MAX_SECONDS)


def test_a_successor_is_not_waited_for_forever_nor_when_it_died():
    table = WorkerTable()
    table.booting(5, now=100.0)
    table.started(5, os.getpid())
    assert table.successor_booting(4, 100.0 + HANDOVER_MAX_SECONDS - 0.1, HANDOVER_MAX_SECONDS)
    assert not table.successor_booting(4, 100.0 + HANDOVER_MAX_SECONDS + 0.1, HANDOVER_MAX_SECONDS)
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    table.started(5, child)  # a worker that died while loading (its pid is gone)
    assert not table.successor_booting(4, 100.5, HANDOVER_MAX_SECONDS)


def test_a_gone_worker_leaves_its_row_and_rows_wrap_around():
    table = WorkerTable()
    table.booting(3, now=100.0)
    table.gone(3)
    assert not table.successor_booting(1, 100.0, HANDOVER_MAX_SECONDS)
    table.booting(3 + SLOTS, now=100.0)  # the same row, a much later worker
    table.gone(3)  # the old worker's exit does not wipe its successor's row
    assert table.successor_booting(3, 100.0, HANDOVER_MAX_SECONDS)


def test_the_balancer_and_the_handover_share_a_row_without_disturbing_each_other():
    table = WorkerTable()
    table.booting(7, now=100.0)
    table.started(7, os.getpid())
    table.write_connections(7, 5, now=100.2)  # the balancer's columns
    assert table.successor_booting(6, 100.3, HANDOVER_MAX_SECONDS)  # still booting for the handover
    table.listening(7, now=100.4)
    assert table.fair_share(100.5, 2.0) == (5, 1) and table.anyone_listening()
    table.forget_connections(7)  # a stopping worker's connections no longer count ...
    assert table.fair_share(100.5, 2.0) == (0, 0) and table.anyone_listening()  # ... it still accepts
    table.booting(7 + SLOTS, now=200.0)  # a later worker in the same row starts afresh
    assert table.fair_share(200.0, 2.0) == (0, 0) and not table.anyone_listening()


def test_only_the_fork_time_bind_of_a_reuse_port_worker_is_skipped_and_only_with_a_sibling(monkeypatch):
    made = []
    monkeypatch.setattr(handover, "_gunicorn_create_sockets", lambda conf, log, fds=None: made.append(fds) or ["s"])
    table = WorkerTable()
    monkeypatch.setattr(handover, "TABLE", table)

    class Conf:
        reuse_port = True

    monkeypatch.setattr(handover, "_binds_late", True)
    assert handover._create_sockets(Conf, None) == ["s"]  # nobody accepts yet (the first start): bind now
    table.booting(1)
    table.started(1, os.getpid())
    table.listening(1)  # a sibling accepts
    monkeypatch.setattr(handover, "_binds_late", True)
    assert handover._create_sockets(Conf, None) == [] and made == [None]  # the call right after the fork
    assert handover._create_sockets(Conf, None) == ["s"]  # any later one binds
    monkeypatch.setattr(handover, "_binds_late", True)
    Conf.reuse_port = False  # the master's shared socket (say, a daemonized master): always made
    assert handover._create_sockets(Conf, None) == ["s"]
    table.gone(1)  # that sibling stopped accepting
    Conf.reuse_port = True
    monkeypatch.setattr(handover, "_binds_late", True)
    assert handover._create_sockets(Conf, None) == ["s"]


# --- real gunicorn ------------------------------------------------------------------------------------

LOAD_SECONDS = 1.5
CONFIG = f"""
app_id: {APP_ID}
rules:
  - use: tests.rulekit:SlowStart
    config: {{seconds: {LOAD_SECONDS}}}
  - use: tests.rulekit:Decide
    scope: {{commands: [C2C.CallbackBeforeSendMsg]}}
    config: {{outcome: refuse, code: 20006, info: by the rules}}
"""
# Well under the boot: a callback that waited for a loading worker takes LOAD_SECONDS or more.
SLOW_SECONDS = 0.75
BODY = json.dumps(sample("C2C.CallbackBeforeSendMsg"))


def query() -> dict:
    """Signed now: imhook refuses a RequestTime outside its 60 s window."""
    return callback_query("C2C.CallbackBeforeSendMsg", APP_ID, token=TOKEN)


class Traffic:
    """Callbacks from a few threads until stopped: half over new connections, half kept alive."""

    def __init__(self, url: str, threads: int = 4):
        self.url = url
        self.results: list[tuple[float, float, str]] = []  # (sent at, seconds, what answered)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i % 2 == 0,)) for i in range(threads)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _send(self, keep_alive: bool) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if keep_alive:
                    response = session.post(self.url, params=query(), data=BODY, timeout=5)
                else:
                    response = requests.post(self.url, params=query(), data=BODY, timeout=5,
                                             headers={"Connection": "close"})
                reply = response.json()
                what = "rules" if reply.get("ErrorCode") == 1 else f"{response.status_code} {reply}"
            except requests.RequestException as exc:
                what = type(exc).__name__
            self.results.append((started, time.monotonic() - started, what))
            time.sleep(0.005)

    def misses(self) -> list[tuple[float, str]]:
        """Every callback not answered by the rules, or answered after SLOW_SECONDS."""
        return [(round(seconds, 3), what) for _, seconds, what in self.results
                if what != "rules" or seconds > SLOW_SECONDS]


@pytest.fixture
def slow_loading(tmp_path, request):
    servers = []

    def start(**env):
        server = start_server(tmp_path, CONFIG, workers=2, threads=2, timeout=60, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def serving_pids(server, count: int = 2) -> list[int]:
    """The workers, once all have loaded (they boot side by side; the first answered already)."""
    pids = wait_until(lambda: len(worker_pids(server.process.pid)) == count, 30)
    time.sleep(LOAD_SECONDS / 2 + 0.25)
    return worker_pids(server.process.pid) if pids else []


def new_worker_serves(server, old: set[int], count: int = 2) -> bool:
    """The master has `count` workers none of which is in `old`, and the newest answers."""
    def done():
        pids = set(worker_pids(server.process.pid))
        return len(pids) == count and not pids & old
    return bool(wait_until(done, 30))


@pytest.mark.parametrize("reuse_port", ["1", "0"])
def test_a_hup_reload_answers_every_callback_by_the_rules(slow_loading, reuse_port):
    server = slow_loading(IMHOOK_REUSE_PORT=reuse_port)
    old = set(serving_pids(server))
    with Traffic(server.callback_url) as traffic:
        time.sleep(0.5)
        server.process.send_signal(signal.SIGHUP)
        assert new_worker_serves(server, old)
        time.sleep(1.0)
    assert len(traffic.results) > 100
    assert traffic.misses() == [], Counter(what for _, what in traffic.misses())
    assert "serving on until the new worker listens" in server.log()


def test_a_stopped_worker_is_replaced_without_a_callback_waiting_for_its_boot(slow_loading):
    server = slow_loading()
    first, second = serving_pids(server)
    with Traffic(server.callback_url) as traffic:
        time.sleep(0.5)
        os.kill(first, signal.SIGTERM)  # as max_requests or an operator would: the master starts another
        assert new_worker_serves(server, {first})
        time.sleep(1.0)
    assert len(traffic.results) > 100
    assert traffic.misses() == [], Counter(what for _, what in traffic.misses())


def test_a_stopping_worker_with_an_idle_connection_stops_listening_at_once(slow_loading):
    """gunicorn keeps a stopping worker's kept-alive connections up to 2 s; its listening socket
    must not stay open meanwhile, or the connections the kernel queues there are reset at the end."""
    server = slow_loading()
    port = int(server.url.rsplit(":", 1)[1])
    idle = []
    for _ in range(16):  # idle keep-alive connections, on both workers
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(b"GET /healthz HTTP/1.1\r\nHost: imhook\r\n\r\n")
        held.recv(4096)
        idle.append(held)
    first, _ = serving_pids(server)
    with Traffic(server.callback_url) as traffic:
        time.sleep(0.3)
        os.kill(first, signal.SIGTERM)
        time.sleep(2.5)  # the stopping worker's linger, and then some
    for held in idle:
        held.close()
    assert len(traffic.results) > 100
    assert traffic.misses() == [], Counter(what for _, what in traffic.misses())


def test_a_lone_worker_restarting_binds_at_once_so_a_callback_waits_rather_than_being_refused(tmp_path):
    server = start_server(tmp_path, CONFIG, workers=1, threads=2, timeout=60)
    try:
        [victim] = worker_pids(server.process.pid)
        accepted_before = server.log().count(ACCEPTING)
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: [p for p in worker_pids(server.process.pid) if p != victim], 20)
        # Between the kill and the new worker's bind nothing listens (no sibling, no master socket
        # with reuse_port): connections are refused for those milliseconds, longer on a busy host.
        # The bind comes right after the fork, long before the app is loaded (1.5 s).
        port = int(server.url.rsplit(":", 1)[1])
        forked = time.monotonic()
        assert wait_until(lambda: listening(port), 20)
        assert time.monotonic() - forked < 1.0, "bound only once the app was loaded"
        assert server.log().count(ACCEPTING) == accepted_before, "bound only once the app was loaded"
        # The new worker is loading: with no sibling to take it, the connection waits for it.
        response = requests.post(server.callback_url, params=query(), data=BODY, timeout=10)
        assert response.status_code == 200 and response.json()["ActionStatus"] == "OK"
    finally:
        server.stop()


def listening(port: int) -> bool:
    """Whether a socket listens on this TCP port (/proc/net/tcp, state 0A: LISTEN)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        if any(int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "0A" for f in map(str.split, lines)):
            return True
    return False


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


DECIDING_CONFIG = (f"app_id: {APP_ID}\nrules:\n  - use: tests.rulekit:Decide\n"
                   "    config: {outcome: refuse, code: 20006, info: by the rules}\n")


@contextlib.contextmanager
def gunicorn_listening(tmp_path, argv: list[str], **env: str):
    """gunicorn (or a launcher that execs it) started with imhook's config and `env`, once both workers
    accept; yields its log file. For binds start_server cannot wait on (a Unix socket, systemd's)."""
    config = tmp_path / "imhook.yaml"
    config.write_text(DECIDING_CONFIG, encoding="utf-8")
    log_path = tmp_path / "gunicorn.log"
    full_env = {**os.environ, "IMHOOK_CONFIG": str(config), "IMHOOK_APP_ID": APP_ID, "IMHOOK_TOKEN": TOKEN,
                "IMHOOK_WORKERS": "2", "IMHOOK_THREADS": "2",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **env}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, cwd=tmp_path, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: log_path.read_text().count(ACCEPTING) >= 2, 30), log_path.read_text()
        yield log_path
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


GUNICORN = [sys.executable, "-m", "gunicorn", "--config", "python:receiver.gunicorn_conf"]


@pytest.mark.parametrize("reuse_port", ["1", "0"])
def test_a_unix_socket_is_served_by_both_workers_whatever_reuse_port_says(tmp_path, reuse_port):
    # SO_REUSEPORT is TCP's: on a Unix socket Linux refuses it (EOPNOTSUPP). With reuse_port on (the
    # default) every worker failed to bind, over and over, and not one callback was answered.
    path = str(tmp_path / "imhook.sock")
    with gunicorn_listening(tmp_path, GUNICORN, IMHOOK_BIND=f"unix:{path}", IMHOOK_REUSE_PORT=reuse_port) as log_path:
        replies = []
        for _ in range(10):
            connection = UnixHTTPConnection(path)
            connection.request("POST", "/callback?" + urlencode(query()), body=BODY,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            replies.append((response.status, json.loads(response.read())["ErrorInfo"]))
            connection.close()
        assert replies == [(200, "by the rules")] * 10
        text = log_path.read_text()
        assert "Operation not supported" not in text and "Traceback" not in text
        assert ("reuse_port is off: unix:" in text) == (reuse_port == "1")  # said once, in the master


SYSTEMD_LAUNCHER = """
import os, socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(64)
os.dup2(listener.fileno(), 3)  # SD_LISTEN_FDS_START, as systemd hands sockets over
os.set_inheritable(3, True)
os.environ.update({"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())})  # exec keeps the pid
os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "--config", "python:receiver.gunicorn_conf"])
"""


def test_a_socket_handed_over_by_systemd_is_the_one_served(tmp_path):
    # With reuse_port on, gunicorn let each worker bind IMHOOK_BIND itself and never used the socket
    # systemd passed: the address systemd listens on was never answered.
    launcher = tmp_path / "launch.py"
    launcher.write_text(SYSTEMD_LAUNCHER, encoding="utf-8")
    port, unused = free_port(), free_port()
    with gunicorn_listening(tmp_path, [sys.executable, str(launcher), str(port)],
                            IMHOOK_BIND=f"127.0.0.1:{unused}") as log_path:
        replies = [requests.post(f"http://127.0.0.1:{port}/callback", params=query(), data=BODY, timeout=10)
                   for _ in range(10)]
        assert [(r.status_code, r.json()["ErrorInfo"]) for r in replies] == [(200, "by the rules")] * 10
        assert "reuse_port is off: 1 socket(s) come from systemd" in log_path.read_text()
        with pytest.raises(requests.ConnectionError):  # IMHOOK_BIND is not bound beside systemd's socket
            requests.get(f"http://127.0.0.1:{unused}/healthz", timeout=2)
