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

from .threadnames import name_this_thread

log = logging.getLogger("imhook.worker")

TRIM_SECONDS = float(os.environ.get("IMHOOK_MALLOC_TRIM_SECONDS", "10"))  # 0: never


# The garbage collector's first threshold: container objects allocated (net of those freed) before
# a young collection. CPython's 700 meant a young collection every ~100 callbacks, each walking the
# callbacks' records still queued for the recording writer and promoting them, and an old
# collection now and then over whatever was promoted: 7-12 µs of a production callback in all
# (benchmarks/RESULTS.md, issue 16, step 8). At 10,000 most of those records are written and freed
# before a collection comes. What waits for a collection is only cyclic garbage, which a callback
# makes little of (werkzeug's URL matcher leaves one closure cycle of 8 objects, under 1 KB, per
# request): under 1 MB at this threshold. A young collection then takes ~3-4 ms, once every
# ~1,000 callbacks, instead of ~0.2 ms every ~100 and the old collections. 0: Python's default.
GC_THRESHOLD = int(os.environ.get("IMHOOK_GC_THRESHOLD", "10000"))


def settle(threshold: int = GC_THRESHOLD) -> None:
    """Once the app is built in a worker: move everything it holds out of the garbage collector's
    sight (see gunicorn_conf.post_worker_init), and collect young objects less often."""
    import gc

    gc.collect()
    gc.freeze()
    if threshold > 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(threshold, middle, old)


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
        name_this_thread()
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
