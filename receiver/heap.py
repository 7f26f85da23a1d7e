"""Give the C heap's free pages back to the system, now and then (glibc's malloc_trim).

A worker's requests allocate and free a few MB of C heap a second (request and reply bytes, JSON,
SQLite's pages). glibc keeps what is freed for reuse: after a burst (a queue of requests past
saturation) the heap stays at its high-water mark, and pieces still in use scattered through it keep
even a mostly free heap from shrinking. Over a 30-minute soak a worker's RSS rose by 4-7 MB in the
last 15 minutes while the memory in use stayed flat: it was all free heap (benchmarks/RESULTS.md,
issue 16). `malloc_trim(0)` returns every whole free page inside the heap (madvise), in all arenas;
it took 0.1-8 ms over heaps with 10,000-30,000 free blocks here, and does not hold the GIL (ctypes
releases it). Every 10 seconds: with a trim a minute, RSS rose by ~3 MB between trims at 1,000
callbacks/s (a saw-tooth that also blurred the soak's first-to-last growth figure); six trims a
minute leave it less time to refill, for at most tens of ms of a core a minute. Not glibc (musl,
macOS): nothing done.

gunicorn imports this module in the master (gunicorn_conf): standard library only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading

log = logging.getLogger("imhook.worker")

TRIM_SECONDS = float(os.environ.get("IMHOOK_MALLOC_TRIM_SECONDS", "10"))  # 0: never


def malloc_trim():
    """glibc's malloc_trim, or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def start_trimming(every: float = TRIM_SECONDS) -> threading.Thread | None:
    """In a worker: call malloc_trim(0) every `every` seconds on a daemon thread; None when off."""
    trim = malloc_trim() if every > 0 else None
    if trim is None:
        return None
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                trim(0)
            except Exception:  # never worth a worker
                log.debug("malloc_trim failed", exc_info=True)
                return

    thread = threading.Thread(target=loop, name="imhook-malloc-trim", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]  # for tests
    thread.start()
    return thread
