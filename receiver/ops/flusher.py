"""A background thread that moves an observer's buffered work out of the reply path.

The metrics and the JSON callback lines are collected cheaply while a request is answered and
written out here: every `interval` seconds, sooner when woken, and at exit (atexit, and the
gunicorn `worker_exit` hook through `flush_all`). One thread per flusher and per process; it starts
with the first request, so a master that forks workers never owns it (a forked child starts its own).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

from ..threadnames import name_this_thread

log = logging.getLogger("imhook.ops")
_ALL: list[Flusher] = []


class Flusher:
    """Runs `job` every `interval` seconds (sooner after `wake`) in a daemon thread, and at exit."""

    def __init__(self, name: str, interval: float, job: Callable[[], None]):
        self.name = name
        self.interval = interval
        self.job = job
        self._started_in: int | None = None  # the pid whose thread runs; None: not started
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        _ALL.append(self)
        # A child inherits neither the thread nor a usable Event (another thread may hold its lock).
        os.register_at_fork(after_in_child=self._after_fork)

    @property
    def running(self) -> bool:
        return self._started_in is not None

    def start(self) -> None:
        """Start the thread (callers check `running` first: that check is all the reply path pays)."""
        with self._start_lock:  # the first requests of several threads may all get here
            if self._started_in == os.getpid():
                return
            threading.Thread(target=self._run, name=f"imhook-{self.name}", daemon=True).start()
            self._started_in = os.getpid()

    def wake(self) -> None:
        """Flush soon, without waiting for the interval (a buffer is filling up)."""
        if not self._wake.is_set():  # cheaper than set(), which takes a lock
            self._wake.set()

    def flush(self) -> None:
        try:
            self.job()
        except Exception:  # a failed flush must neither kill the thread nor the caller's request
            log.exception("%s: flush failed", self.name)

    def _run(self) -> None:
        name_this_thread()
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def _after_fork(self) -> None:
        self._started_in = None
        self._wake = threading.Event()
        self._start_lock = threading.Lock()


def flush_all() -> None:
    """Write out everything buffered in this process: at worker exit and interpreter exit."""
    for flusher in list(_ALL):
        flusher.flush()


atexit.register(flush_all)
