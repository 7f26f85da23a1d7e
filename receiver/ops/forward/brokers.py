"""Delivery of outbox rows to message brokers: Redis Streams here, NATS JetStream in natsjs.py.

Each deliverer has the HTTP Deliverer's interface, `(target, row) -> Result`, so the sender's
per-conversation head-of-line order, retries with backoff, supervision and metrics hold for a
broker exactly as for an HTTP downstream. A deliverer reports success only once the broker has
acknowledged the event (the XADD reply, the JetStream publish ack); anything else is a failed
attempt the outbox retries. A broker that is down costs the sender thread one timeout per
attempt; it never touches the reply path, which only writes the outbox.

Duplicates: the event id (events.event_id, stable over retries) travels with every entry. For
Redis a `SET NX` marker with a TTL and the XADD run in one Lua script, so a retry after a lost
reply adds nothing; for JetStream the `Nats-Msg-Id` header lets the stream drop a repeat inside
its duplicate window.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...jsonout import storable_bytes
from . import events
from .brokerconf import HTTP, NATS, REDIS_STREAM, redact, render
from .events import Target
from .outbox import Row
from .sender import Deliverer, Result

log = logging.getLogger("imhook.forward")

# KEYS: stream, marker. ARGV: marker TTL (0: no marker), MAXLEN, "~" or "=", then field/value pairs.
# The marker is set first; if the XADD then fails (a key of another type...) it is removed again,
# since a script that errs keeps the writes it made before. Returns the entry id, or nil for a
# repeat of an event already added.
XADD_ONCE = """
local ttl = tonumber(ARGV[1])
if ttl > 0 and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ttl) then
  return false
end
local command = {'XADD', KEYS[1], 'MAXLEN', ARGV[3], ARGV[2], '*'}
for i = 4, #ARGV do command[#command + 1] = ARGV[i] end
local reply = redis.pcall(unpack(command))
if type(reply) == 'table' and reply.err then
  if ttl > 0 then redis.call('DEL', KEYS[2]) end
  return reply
end
return reply
"""


def marker_key(stream: str, event_id: str) -> str:
    """The dedupe marker of one event in one stream; the `{stream}` hash tag keeps both keys in
    one Redis Cluster slot, as a script needs."""
    return f"imhook-dedupe:{{{stream}}}:{event_id}"


def entry_fields(row: Row) -> list[bytes]:
    """The entry's fields: the body byte for byte, and what the HTTP headers carry (as UTF-8, a
    lone surrogate by its escape: the text policy of receiver/jsonout.py)."""
    texts = ["event_id", events.event_id(row.dedupe), "command", row.command, "app_id", row.app_id,
             "conversation", row.conversation, "attempt", str(row.attempts + 1), "body"]
    return [storable_bytes(text) for text in texts] + [row.body]


class RedisStreamDeliverer:
    """XADD one row to the stream its target's template names; one pooled client per target."""

    def __init__(self, target: Target):
        options = target.broker
        self.options = options
        self.where = f"{target.name} ({redact(options.url)})"
        # No retries inside redis-py: the outbox retries, with backoff, and counts each failure.
        self.client = redis.Redis.from_url(options.url, socket_timeout=target.timeout,
                                           socket_connect_timeout=target.timeout, retry=Retry(NoBackoff(), 0),
                                           health_check_interval=30, client_name="imhook-forwarder")
        self.script = self.client.register_script(XADD_ONCE)

    def __call__(self, target: Target, row: Row) -> Result:
        options = self.options
        stream = render(options.stream, row.command, row.conversation, row.app_id)
        event = events.event_id(row.dedupe)
        try:
            reply = self.script(keys=[storable_bytes(stream), storable_bytes(marker_key(stream, event))],
                                args=[options.dedupe_ttl_seconds, options.maxlen,
                                      "~" if options.approximate else "=", *entry_fields(row)])
        except redis.TimeoutError:
            return Result(False, error=f"no answer from Redis within {target.timeout:g} s", kind="timeout")
        except redis.ConnectionError as exc:
            return Result(False, error=f"cannot reach Redis {self.where}: {type(exc).__name__}", kind="connect")
        except redis.RedisError as exc:
            # The server's own words (WRONGTYPE, OOM, NOSCRIPT...), which never hold the URL.
            return Result(False, error=f"Redis {self.where}: {str(exc)[:200]}", kind="redis_error")
        if reply is None:
            log.info("forwarding: event %s was already in Redis stream %s; not added again", event, stream)
        return Result(True)

    def close(self) -> None:
        self.client.close()


class KindDeliverer:
    """Choose the deliverer by the target's kind: HTTP for `http`, one broker deliverer per target.

    Broker deliverers are made on first use, in the process that sends (after gunicorn forked).
    """

    def __init__(self, http: Deliverer | None = None):
        self.http = http or Deliverer()
        self._brokers: dict[str, object] = {}
        self._lock = threading.Lock()

    def __call__(self, target: Target, row: Row) -> Result:
        if target.kind == HTTP:
            return self.http(target, row)
        return self._broker(target)(target, row)

    def _broker(self, target: Target):
        with self._lock:
            deliverer = self._brokers.get(target.name)
            if deliverer is None:
                deliverer = self._brokers[target.name] = _BROKERS[target.kind](target)
            return deliverer

    def check(self, targets: Sequence[Target]) -> None:
        """Make each broker's client now, so a URL its library refuses stops the start-up."""
        for target in targets:
            if target.kind != HTTP:
                self._broker(target)


def _nats(target: Target):
    from .natsjs import NatsDeliverer

    return NatsDeliverer(target)


_BROKERS = {REDIS_STREAM: RedisStreamDeliverer, NATS: _nats}
