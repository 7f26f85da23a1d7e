"""One supervisor thread per process for imhook's background threads (recording writer, forward sender).

A part registers itself with `watch(part)`; every INTERVAL_SECONDS the thread calls its
`supervise()`, which restarts the part's thread if it died and logs a change of its health. /readyz
calls `supervise()` too (through the part's readiness check), so a process whose watchdog is gone
is still checked whenever it is probed. The thread itself only calls, catches and sleeps.
"""

from __future__ import annotations

import logging
import os
import threading

from .threadnames import name_this_thread

log = logging.getLogger("imhook.watchdog")
INTERVAL_SECONDS = 1.0
_watched: list = []
_lock = threading.Lock()
_running_in: int | None = None  # pid whose thread runs; a forked child starts its own


def watch(part) -> None:
    """Supervise `part` (an object with `supervise()`), starting this process's thread if needed."""
    global _running_in
    with _lock:
        if part not in _watched:
            _watched.append(part)
        if _running_in != os.getpid():
            _running_in = os.getpid()
            threading.Thread(target=_run, name="imhook-watchdog", daemon=True).start()


def unwatch(part) -> None:
    with _lock:
        if part in _watched:
            _watched.remove(part)


def check_all() -> None:
    """Supervise every watched part once (what the thread does each interval)."""
    for part in list(_watched):
        try:
            part.supervise()
        except Exception:  # one part's supervisor must not stop the others'
            log.exception("supervising %r failed", part)


def _run() -> None:
    name_this_thread()
    stop = threading.Event()  # never set: a daemon thread, ended with the process
    while True:
        stop.wait(INTERVAL_SECONDS)
        check_all()


def _after_fork() -> None:
    global _lock, _running_in
    _lock, _running_in = threading.Lock(), None


os.register_at_fork(after_in_child=_after_fork)
