"""Sliding-window log in Redis: one Lua script per check, one round trip, shared by every worker.

Each counter is a sorted set of event timestamps (ms). The script trims each set to the window,
refuses if any set is full, and otherwise records the event in all of them, so a request either
counts everywhere or nowhere, atomically, whatever the number of workers and machines.

Timeouts are short and there are no retries, so a slow or dead Redis costs one request at most
`connect_timeout + read_timeout`; after a failure a circuit breaker fails fast for a while instead of
trying Redis on every request, then lets one request probe it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence

from .store import ALLOWED, Hit, Result, StoreUnavailable

log = logging.getLogger("imhook.ratelimit")

# KEYS: one sorted set per counter. ARGV: now_ms, member, then (limit, window_ms) for each key.
# Returns {0, 0} when counted, else {index of the full key (1-based), ms until it has room}.
SLIDING_WINDOW_LOG = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {i, tonumber(oldest[2]) + window - now}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, ARGV[2 + 2 * i])
end
return {0, 0}
"""


class CircuitBreaker:
    """After a failure, fail fast for `cooldown` seconds; then let one call probe the server."""

    def __init__(self, cooldown: float, clock: Callable[[], float] = time.monotonic):
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._tripped = False
        self._last_error = ""

    @property
    def is_open(self) -> bool:
        return self._tripped and self.clock() < self._open_until

    def before_call(self, where: str) -> None:
        """Raise StoreUnavailable while open; in the half-open state let only this caller through."""
        if self.cooldown <= 0:
            return
        now = self.clock()
        with self._lock:
            if not self._tripped:
                return
            if now < self._open_until:
                raise StoreUnavailable(f"redis at {where} unavailable (circuit open for another "
                                       f"{self._open_until - now:.1f} s after: {self._last_error})")
            # Half-open: this call probes; the others keep failing fast until it reports back.
            self._open_until = now + self.cooldown

    def failure(self, where: str, error: str) -> None:
        with self._lock:
            opened = not self._tripped
            self._tripped, self._last_error = True, error
            self._open_until = self.clock() + self.cooldown
        if opened and self.cooldown > 0:
            log.warning("redis at %s unavailable (%s); failing fast for %g s before trying again",
                        where, error, self.cooldown)

    def success(self, where: str) -> None:
        if not self._tripped:
            return
        with self._lock:
            self._tripped, self._open_until = False, 0.0
        log.info("redis at %s reachable again", where)


class RedisStore:
    """Counters in one Redis (not Redis Cluster: one script touches keys in several hash slots)."""

    def __init__(self, url: str, *, prefix: str = "imhook:rl:", connect_timeout: float = 0.05,
                 read_timeout: float = 0.1, breaker_seconds: float = 2.0,
                 clock: Callable[[], float] = time.time):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._redis_error = redis.RedisError
        # No retries: a retry would double the time a dead server costs inside the 2 s budget.
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=read_timeout,
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False, health_check_interval=0,
        )
        self.script = self.client.register_script(SLIDING_WINDOW_LOG)  # EVALSHA, EVAL once if unknown
        self.prefix = prefix
        self.clock = clock  # wall clock: shared by all machines (NTP-synchronised) through Redis
        self.breaker = CircuitBreaker(breaker_seconds)
        self.where = _where(self.client)

    def hit(self, hits: Sequence[Hit]) -> Result:
        if not hits:
            return ALLOWED
        self.breaker.before_call(self.where)
        now_ms = int(self.clock() * 1000)
        member = f"{now_ms}:{uuid.uuid4().hex}"  # unique even for two events in the same ms
        args: list = [now_ms, member]
        for h in hits:
            args += [h.limit, max(1, int(h.window * 1000))]
        try:
            index, wait_ms = self.script(keys=[self.prefix + h.key for h in hits], args=args)
        except self._errors as exc:
            self.breaker.failure(self.where, f"{type(exc).__name__}: {exc}")
            raise StoreUnavailable(f"redis at {self.where} unavailable: {exc}") from exc
        except self._redis_error as exc:  # the server answered, with an error: not an outage
            raise StoreUnavailable(f"redis at {self.where} refused the rate-limit script: {exc}") from exc
        self.breaker.success(self.where)
        if index == 0:
            return ALLOWED
        return Result(False, hits[int(index) - 1], max(0.0, int(wait_ms) / 1000))

    def close(self) -> None:
        self.client.close()


def _where(client) -> str:
    """host:port/db of the client, never its password."""
    kw = client.connection_pool.connection_kwargs
    if kw.get("path"):
        return f"unix:{kw['path']}"
    return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"
