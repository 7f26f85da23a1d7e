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
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, sweep_every: int = 64,
                 max_keys: int = MAX_MEMORY_KEYS):
        self.clock = clock
        self.max_keys = max_keys
        self._evicted = 0
        # Least recently hit first: the order eviction follows.
        self._logs: OrderedDict[str, tuple[float, deque[float]]] = OrderedDict()
        self._lock = threading.Lock()
        self._sweep_every = sweep_every
        self._calls = 0

    def hit(self, hits: Sequence[Hit]) -> Result:
        now = self.clock()
        with self._lock:
            for h in hits:
                entry = self._logs.get(h.key)
                if entry is None:
                    continue
                log = entry[1]
                _trim(log, now - h.window)
                if len(log) >= h.limit:
                    return Result(False, h, max(0.0, log[0] + h.window - now))
            for h in hits:
                entry = self._logs.get(h.key)
                if entry is None:
                    if len(self._logs) >= self.max_keys:
                        self._make_room(now)
                    entry = self._logs[h.key] = (h.window, deque())
                else:
                    self._logs.move_to_end(h.key)
                entry[1].append(now)
            self._calls += 1
            if self._calls % self._sweep_every == 0:
                self._sweep_idle_front(now)
        return ALLOWED

    def __len__(self) -> int:
        return len(self._logs)

    def sweep(self) -> None:
        """Forget every key with nothing left in its window (every `sweep_every` hits, the idle keys
        at the front of the least-recently-hit order are forgotten anyway)."""
        with self._lock:
            self._sweep(self.clock())

    def _make_room(self, now: float) -> None:
        self._sweep_idle_front(now)
        while len(self._logs) >= self.max_keys:
            self._logs.popitem(last=False)
            self._evicted += 1
            if self._evicted == 1:
                log.warning("rate limit memory store is full (%d keys): the least recently used counters "
                            "are forgotten, and their limits start over", self.max_keys)

    def _sweep(self, now: float) -> None:
        # Every key: for `sweep`, called rarely. The reply path sweeps the front only.
        for key in [k for k, (window, log) in self._logs.items() if not log or log[-1] <= now - window]:
            del self._logs[key]

    def _sweep_idle_front(self, now: float) -> None:
        """Forget the least recently hit keys while they are idle; stop at the first one that is not.

        Keys are in the order of their last hit, so the idle ones gather at the front, and this
        costs what it removes. Scanning every key instead, as this did, cost each new key a pass
        over all 100,000 once the store was full: ~20 ms a hit in a flood of new senders, against
        ~3 µs now (benchmarks/rate_limit_store.py; RESULTS.md, issue 16 step 17). An idle key with a short
        window behind a live one with a long window waits for that one to go (at most the longest
        window): memory only, its log is trimmed whenever it is hit, and max_keys bounds them all.
        """
        logs = self._logs
        while logs:
            key, (window, log) = next(iter(logs.items()))
            if log and log[-1] > now - window:
                return
            del logs[key]

    def close(self) -> None:
        with self._lock:
            self._logs.clear()


def _trim(log: deque[float], horizon: float) -> None:
    # The window is (now - window, now], the same bounds the Redis script uses.
    while log and log[0] <= horizon:
        log.popleft()
