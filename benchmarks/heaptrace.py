"""Where a worker's memory goes over a soak: periodic heap samples in each worker, and their diff.

`soak.py --trace DIR` serves imhook with configs/gunicorn_traced.py, whose post_worker_init calls
`start_sampling` in every worker. A daemon thread then writes, every IMHOOK_TRACE_EVERY seconds:

- DIR/<pid>-<n>.json: RSS, glibc's malloc statistics (`mallinfo2`: heap bytes the arenas hold, in
  use and free, mmapped), the objects Python's own allocator holds, gc counts, threads;
- DIR/<pid>-<n>.snap: a tracemalloc snapshot (1 frame per allocation, to keep its cost low),
  only with IMHOOK_TRACEMALLOC=1 (tracing costs ~2x CPU per request: run it at a low rate).

`report(DIR, since)` prints each worker's growth between the first sample at or after `since`
seconds and its last one: which of RSS, malloc in-use, malloc free (fragmentation, arenas) and
Python-traced memory grew, and the source lines that grew most.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

MB = 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_stats() -> dict[str, int]:
    """glibc's view of the heap: `arena` bytes held in all arenas (uordblks in use + fordblks free),
    `hblkhd` in mmapped blocks; {} off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"arena": info.arena, "in_use": info.uordblks, "free": info.fordblks, "mmapped": info.hblkhd}


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sample(directory: Path, n: int, started: float) -> None:
    pid = os.getpid()
    record = {"t": round(time.monotonic() - started, 1), "rss": rss_bytes(), "malloc": malloc_stats(),
              "pymalloc_blocks": sys.getallocatedblocks(), "gc_counts": gc.get_count(),
              "gc_objects": len(gc.get_objects()), "threads": sorted(t.name for t in threading.enumerate())}
    if tracemalloc.is_tracing():
        record["traced"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.take_snapshot().dump(str(directory / f"{pid}-{n:04d}.snap"))
    (directory / f"{pid}-{n:04d}.json").write_text(json.dumps(record))


def start_sampling() -> None:
    """In a worker: sample every IMHOOK_TRACE_EVERY seconds into IMHOOK_TRACE_DIR (when set)."""
    target = os.environ.get("IMHOOK_TRACE_DIR")
    if not target:
        return
    directory = Path(target)
    directory.mkdir(parents=True, exist_ok=True)
    every = float(os.environ.get("IMHOOK_TRACE_EVERY", "30"))
    if os.environ.get("IMHOOK_TRACEMALLOC") == "1":
        tracemalloc.start(1)
    started = time.monotonic()

    def loop() -> None:
        n = 0
        while True:
            sample(directory, n, started)
            n += 1
            time.sleep(every)

    threading.Thread(target=loop, name="heaptrace", daemon=True).start()


def report(directory: Path, since: float, top: int = 12) -> list[str]:
    """Each worker's growth from its first sample at or after `since` s to its last, as lines."""
    lines = []
    by_pid: dict[str, list[Path]] = {}
    for path in sorted(directory.glob("*.json")):
        by_pid.setdefault(path.name.split("-")[0], []).append(path)
    for pid, paths in sorted(by_pid.items()):
        records = [(p, json.loads(p.read_text())) for p in paths]
        later = [r for r in records if r[1]["t"] >= since] or records[-1:]
        (first_path, first), (last_path, last) = later[0], records[-1]
        m0, m1 = first.get("malloc", {}), last.get("malloc", {})
        parts = [f"RSS {(last['rss'] - first['rss']) / MB:+.2f} MB"]
        parts += [f"malloc {key} {(m1[key] - m0[key]) / MB:+.2f} MB" for key in ("arena", "in_use", "free", "mmapped")
                  if key in m0 and key in m1]
        parts.append(f"pymalloc blocks {last['pymalloc_blocks'] - first['pymalloc_blocks']:+,}")
        parts.append(f"gc objects {last['gc_objects'] - first['gc_objects']:+,}")
        if "traced" in first and "traced" in last:
            parts.append(f"tracemalloc {(last['traced'] - first['traced']) / MB:+.2f} MB")
        lines.append(f"worker {pid} t={first['t']:.0f}..{last['t']:.0f}s: " + ", ".join(parts))
        snaps = first_path.with_suffix(".snap"), last_path.with_suffix(".snap")
        if all(s.exists() for s in snaps):
            old, new = (tracemalloc.Snapshot.load(str(s)) for s in snaps)
            for stat in new.compare_to(old, "lineno")[:top]:
                frame = stat.traceback[0]
                lines.append(f"    {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7,} blocks  "
                             f"{frame.filename}:{frame.lineno}")
    return lines
