"""Give imhook's threads their names in the operating system too, so `top -H`, `ps -T` and
/proc/<pid>/task/<tid>/comm tell the request threads, the recording writer and the flushers apart
(Python 3.11 names a thread for Python only). benchmarks/served_threads.py splits a served
worker's CPU by these names."""

from __future__ import annotations

import threading

OS_NAME_LIMIT = 15  # Linux keeps 15 bytes of a thread's name (TASK_COMM_LEN 16, NUL included)


def name_this_thread(name: str | None = None) -> None:
    """Set the calling thread's OS name to `name` (default: its Python name), cut to 15 characters.

    Best effort: Linux only (elsewhere, or with /proc read-only, nothing happens)."""
    name = (name or threading.current_thread().name).encode("ascii", "replace")[:OS_NAME_LIMIT]
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "wb") as comm:
            comm.write(name)
    except OSError:
        pass
