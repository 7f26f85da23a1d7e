"""What the HTTP benchmarks share: the machine description, gunicorn servers on loopback, statistics."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from receiver.handover import ACCEPTING

ROOT = Path(__file__).resolve().parent.parent
# imhook's worker (gthread plus load shedding past saturation), for every server alike;
# IMHOOK_WORKER_CLASS=gthread prices the worker itself.
WORKER_CLASS = os.environ.get("IMHOOK_WORKER_CLASS", "receiver.worker.ImhookWorker")
# A worker that used less than this fraction of the busiest worker's CPU sat idle: the run is flagged
# and left out of the ratios (issue 16: with an inherited listening socket, all keep-alive
# connections sometimes land on one worker).
IDLE_WORKER_SHARE = 0.2
PACKAGES = ("flask", "werkzeug", "gunicorn", "marshmallow", "ahocorasick-rs", "opencc", "pyyaml",
            "prometheus-client", "redis")


def machine() -> dict[str, str]:
    """nproc, CPU model, memory, kernel, Python and the versions of the packages that matter."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "memory": memory,
            "kernel": f"{platform.system()} {platform.release()}",
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "packages": ", ".join(versions)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerSpec:
    """How to start one benchmarked server: the gunicorn config module and the environment."""

    name: str
    gunicorn_config: str  # "python:module" for gunicorn's --config
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()  # more gunicorn arguments, e.g. an APP_MODULE overriding the config's


@dataclass
class Server:
    """A running gunicorn on a loopback port."""

    spec: ServerSpec
    port: int
    process: subprocess.Popen
    log_path: Path
    command: list[str]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(spec: ServerSpec, workdir: Path, *, workers: int, threads: int,
                 timeout: float = 60.0, access_log: bool = False) -> Server:
    """Start gunicorn with the same worker class and counts for every server; wait for /healthz.

    gunicorn's access log stays off, as imhook ships it (receiver/gunicorn_conf.py), unless
    `access_log`: then every server writes one to a file in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--config", spec.gunicorn_config,
               "--worker-class", WORKER_CLASS, "--workers", str(workers), "--threads", str(threads),
               "--bind", f"127.0.0.1:{port}", *spec.args]
    env = {**os.environ, "IMHOOK_WORKERS": str(workers), "IMHOOK_THREADS": str(threads),
           "IMHOOK_ACCESS_LOG": str(workdir / "access.log") if access_log else "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           **spec.env}
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(spec, port, process, log_path, command)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{spec.name}: gunicorn exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=1) as reply:
                # and every worker accepts: imhook's binds once it has loaded the app and says so
                # (receiver/handover.py); a worker that never says it (gthread, an older tree's) took
                # connections from its fork, so the first answer is enough.
                accepting = server.log_tail(10**6).count(ACCEPTING)
                if reply.status == 200 and (accepting == 0 or accepting >= workers):
                    return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{spec.name}: gunicorn did not answer /healthz in {timeout:g} s:\n{server.log_tail()}")


@dataclass
class LoadResult:
    """One load phase's figures; latencies in milliseconds."""

    generator: str  # "wrk", "python-closed", "python-open"
    connections: int
    seconds: float
    requests: int
    non_2xx: int
    socket_errors: int  # connect, read, write errors
    timeouts: int
    p50: float
    p99: float
    p999: float
    max: float
    target_rate: float = 0.0  # open loop only
    over_2s: int = 0  # replies (or time-outs) later than the IM's 2 s budget
    generator_lag_ms: float = 0.0  # open loop: worst delay of a send behind its schedule
    peak_connections: int = 0
    scheduled: int = 0  # open loop: requests the schedule called for (answered or not)
    send_seconds: float = 0.0  # open loop: from the first due time to the last
    late_sends: int = 0  # C open loop: requests the generator itself noticed over 10 ms after their due time
    generator_cpu_s: float = 0.0  # C open loop: the generator's own CPU seconds over the phase
    cpu_server: float = 0.0  # cores used by the server's processes during the phase
    cpu_generator: float = 0.0  # cores used by the load generator (this process, wrk)
    cpu_others: float = 0.0  # cores used by everything else on the machine meanwhile
    cpu_workers: tuple[float, ...] = ()  # cores used by each gunicorn worker (the server's share of each)
    worker_connections: tuple[int, ...] = ()  # established connections per worker, mid-phase (ss)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors + self.timeouts

    @property
    def cpu_us_per_request(self) -> float:
        """The server's CPU per answered request: steadier than req/s on a shared machine, because
        another process's load takes cores away from the server but barely changes what a request costs."""
        return self.cpu_server / self.rps * 1e6 if self.rps else 0.0

    @property
    def worker_shares(self) -> tuple[float, ...]:
        """Each worker's share of the workers' CPU during the phase (0.5 / 0.5: balanced)."""
        total = sum(self.cpu_workers)
        return tuple(c / total for c in self.cpu_workers) if total else ()

    @property
    def idle_worker(self) -> bool:
        """A worker sat (nearly) idle: it used under IDLE_WORKER_SHARE of the busiest worker's CPU, so
        the run measured fewer workers than configured (all connections landed on the others)."""
        busy = max(self.cpu_workers, default=0.0)
        return len(self.cpu_workers) > 1 and busy > 0 and min(self.cpu_workers) < IDLE_WORKER_SHARE * busy


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _process_jiffies(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def _tree_jiffies(root: int) -> int:
    """utime + stime of `root` and its descendants (children scanned from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()  # the fields after "(comm)"
        parents[int(entry.name)] = int(rest[1])
        times[int(entry.name)] = int(rest[11]) + int(rest[12])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0) for pid in tree)


class CpuMeter:
    """How much CPU the benchmark used during a phase, and how much everything else on the machine did.

    The machine is shared: CPU used by processes outside this benchmark (and outside the server under
    test) competes with the server and skews the figures, so every phase reports it.
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.start = self._sample()

    def _sample(self) -> tuple[float, int, int, int, dict[int, int]]:
        busy, _ = _busy_jiffies()
        # The load generator is this process or its child (wrk); the server is its own process tree.
        generator = _process_jiffies(os.getpid()) + _own_children_jiffies()
        workers = {}
        for pid in child_pids(self.server_pid):  # gunicorn's workers: the master's children
            try:
                workers[pid] = _process_jiffies(pid)
            except (OSError, ValueError, IndexError):
                pass
        return time.monotonic(), busy, _tree_jiffies(self.server_pid), generator, workers

    def stop(self) -> tuple[float, float, float]:
        """Cores used since creation by (the server, the load generator, everything else); each
        worker's cores (workers alive at both ends of the phase) are left in `self.workers`."""
        t1, busy1, server1, generator1, workers1 = self._sample()
        t0, busy0, server0, generator0, workers0 = self.start
        scale = os.sysconf("SC_CLK_TCK") * max(t1 - t0, 1e-9)
        server, generator = (server1 - server0) / scale, (generator1 - generator0) / scale
        self.workers = tuple((workers1[pid] - workers0[pid]) / scale for pid in sorted(workers0) if pid in workers1)
        return server, generator, max(0.0, (busy1 - busy0) / scale - server - generator)


def child_pids(parent: int) -> list[int]:
    """The pids whose parent is `parent` (from /proc/<pid>/task/*/children, else a scan of /proc)."""
    pids: list[int] = []
    try:
        for task in Path(f"/proc/{parent}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
        return pids
    except OSError:
        pass
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == parent:
                pids.append(int(entry.name))
    return pids


def connections_per_worker(port: int, workers: list[int]) -> tuple[int, ...]:
    """Established TCP connections on the server's `port` held by each worker (from `ss -tnp`);
    () when ss is missing."""
    import re
    import shutil

    if shutil.which("ss") is None:
        return ()
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True).stdout
    counts = dict.fromkeys(workers, 0)
    for pid in re.findall(r"pid=(\d+)", out):
        if int(pid) in counts:
            counts[int(pid)] += 1
    return tuple(counts[pid] for pid in sorted(counts))


def _own_children_jiffies() -> int:
    """CPU of this process's finished children (wrk), in jiffies; running ones are in the tree."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * os.sysconf("SC_CLK_TCK"))


def quiet_cores(seconds: float = 1.0) -> float:
    """Cores busy on the whole machine over `seconds` (before the benchmark starts its servers)."""
    busy0, _ = _busy_jiffies()
    time.sleep(seconds)
    busy1, _ = _busy_jiffies()
    return (busy1 - busy0) / os.sysconf("SC_CLK_TCK") / seconds
