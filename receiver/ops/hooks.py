"""gunicorn hooks for metrics and forwarding, called by receiver/gunicorn_conf.py by name.

Metrics across workers use prometheus_client's multiprocess mode: each worker writes its values
to files in PROMETHEUS_MULTIPROC_DIR, and /metrics (served by any worker) sums them. The variable
must be set before prometheus_client is first imported, so the master sets it in `when_ready`,
before it forks any worker, and nothing the master imports earlier may import prometheus_client.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("imhook.ops")
ENV = "PROMETHEUS_MULTIPROC_DIR"


def when_ready(server) -> None:
    """Master, before the first fork: give the workers a clean metrics directory."""
    directory = prepare_multiprocess_dir(os.environ)
    if "prometheus_client" in sys.modules:
        # Already imported by something in the master: workers would inherit single-process
        # values and /metrics would show only the scraped worker. Say so loudly.
        server.log.warning("prometheus_client was imported before %s was set; /metrics may be per-worker", ENV)
    server.log.info("metrics of all workers are gathered in %s", directory)


def prepare_multiprocess_dir(env) -> str:
    """Use $PROMETHEUS_MULTIPROC_DIR emptied of old *.db files, else a fresh temporary directory.

    Files left by an earlier run would add old counts to new ones, so the directory is cleaned at
    every start. A directory made here is removed when the master exits.
    """
    directory = env.get(ENV)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink(missing_ok=True)
        return directory
    directory = tempfile.mkdtemp(prefix="imhook-metrics-")
    env[ENV] = directory
    master = os.getpid()
    # Workers inherit atexit handlers through fork: only the master may remove the directory.
    atexit.register(lambda: os.getpid() == master and shutil.rmtree(directory, ignore_errors=True))
    return directory


def worker_exit(server, worker) -> None:
    """Worker, on its way out: stop the forwarder so it releases the sender lock at once, then write
    out the metrics and callback log lines still buffered (receiver/ops/flusher.py)."""
    from .flusher import flush_all
    from .forward.sender import stop_all

    stop_all()
    flush_all()


def child_exit(server, worker) -> None:
    """Master, after a worker died (even by SIGKILL): drop its live gauges from the sums."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
