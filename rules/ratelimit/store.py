"""The store interface and the in-memory sliding-window log."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from receiver.errors import RuleError

log = logging.getLogger("imhook.rate_limit")

# Counters (sender / group / pair keys) one process keeps in memory. The keys come from callbacks, so
# their number is the sender's to choose: at this bound the counter used least recently is
# forgotten (its limit starts over), after idle ones are swept. 100,000 keys of ~100 bytes with a
# short log each stay in the tens of MB; the Redis store has Redis's own memory policy.
MAX_MEMORY_KEYS = 100_000


class StoreUnavailable(RuleError):
    """The counters cannot be reached (Redis down, timed out, or its circuit is open)."""


class Hit(NamedTuple):
    """One counter to check and, if every counter of the request is under its limit, to bump.

    A named tuple, not a frozen dataclass: a callback makes one per limit and hashes it (the rule
    dedups them in a dict), and a tuple is made and hashed in C, at half the cost (~0.7 µs a
    callback with two limits)."""

    key: str
    limit: int  # at most this many events...
    window: float  # ...in any window of this many seconds


@dataclass(frozen=True)
class Result:
    allowed: bool
    hit: Hit | None = None  # the first counter that was at its limit
    retry_after: float = 0.0  # seconds until that counter has room again


ALLOWED = Result(True)


class Store(Protocol):
    def hit(self, hits: Sequence[Hit]) -> Result:
        """Atomically: if every counter is under its limit, count the event in all; else count none."""

    def close(self) -> None: ...


class MemoryStore:
    """A sliding-window log per key, in this process only.

    Under gunicorn every worker process holds its own counters, so with N workers a sender may get
    up to N times the limit; use the Redis store where the limit must hold across workers.

    Keys are kept in one least-recently-hit order per window length. A key keeps its window
    (RateLimit puts the window in each key), so within one order keys go idle in the order they
    were last hit: the idle ones are always at its front, and forgetting them costs what it
    removes. One order for all windows, as before, needed a pass over every key to find them: once
    the store was full, a pass over 100,000 keys for each new one (~20 ms a hit in a flood of new
    senders, ~5 µs now: benchmarks/rate_limit_store.py, RESULTS.md issue 16 step 17).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, sweep_every: int = 64,
                 max_keys: int = MAX_MEMORY_KEYS):
        self.clock = clock
        self.max_keys = max_keys
        self._evicted = 0
        # window -> key -> the times of its hits in that window; least recently hit first. Windows
        # come from the configured limits, so there are few of them, and an emptied order is kept.
        self._windows: dict[float, OrderedDict[str, deque[float]]] = {}
        self._count = 0
        self._lock = threading.Lock()
        self._sweep_every = sweep_every
        self._calls = 0

    def hit(self, hits: Sequence[Hit]) -> Result:
        now = self.clock()
        with self._lock:
            windows = self._windows
            for h in hits:
                logs = windows.get(h.window)
                log = None if logs is None else logs.get(h.key)
                if log is None:
                    continue
                _trim(log, now - h.window)
                if len(log) >= h.limit:
                    return Result(False, h, max(0.0, log[0] + h.window - now))
            for h in hits:
                logs = windows.get(h.window)
                if logs is None:
                    logs = windows[h.window] = OrderedDict()
                log = logs.get(h.key)
                if log is None:
                    if self._count >= self.max_keys:
                        self._make_room(now)
                    log = logs[h.key] = deque()
                    self._count += 1
                else:
                    logs.move_to_end(h.key)
                log.append(now)
            self._calls += 1
            if self._calls % self._sweep_every == 0:
                self._sweep(now)
        return ALLOWED

    def __len__(self) -> int:
        return self._count

    def sweep(self) -> None:
        """Forget keys with nothing left in their window (done every `sweep_every` hits anyway)."""
        with self._lock:
            self._sweep(self.clock())

    def _make_room(self, now: float) -> None:
        self._sweep(now)
        while self._count >= self.max_keys:
            # The least recently hit key of all is at the front of one of the orders.
            fronts = [logs for logs in self._windows.values() if logs]
            min(fronts, key=lambda logs: next(iter(logs.values()))[-1]).popitem(last=False)
            self._count -= 1
            self._evicted += 1
            if self._evicted == 1:
                log.warning("rate limit memory store is full (%d keys): the least recently used counters "
                            "are forgotten, and their limits start over", self.max_keys)

    def _sweep(self, now: float) -> None:
        # Without this a process would keep one entry for every sender it ever saw.
        for window, logs in self._windows.items():
            horizon = now - window
            while logs:
                key, times = next(iter(logs.items()))
                if times and times[-1] > horizon:
                    break
                del logs[key]
                self._count -= 1

    def close(self) -> None:
        with self._lock:
            self._windows.clear()
            self._count = 0


def _trim(log: deque[float], horizon: float) -> None:
    # The window is (now - window, now], the same bounds the Redis script uses.
    while log and log[0] <= horizon:
        log.popleft()
