"""When to shed: CoDel's standing-queue test on a worker's thread-pool queue (issue 16, "Overload").

A fixed wait threshold depends on the host's speed. A client with a bounded pool (the IM, the
benchmark's open-loop generator: at most 256 connections) keeps at most that many requests open, so
a worker's queue holds at most its share of them and a request waits there at most share / speed:
on a fast host that stayed under `server.shed_after_ms`, almost nothing was shed, and the excess
waited in the client, where the server cannot see it, until its replies missed the IM's 2 s.

What does not depend on the speed is whether the queue *drains*. Nichols & Jacobson's CoDel (ACM
Queue, 2012) tells a burst from overload by the minimum wait over an interval: a burst's queue
empties (some request leaves it quickly), a queue that never does for a whole interval is standing
and only grows or stays. So, per worker: once every request for `interval` has waited longer than
`target`, the queue is standing, and while it is, a request that waited longer than `target` is shed
(answered at once, fail-open). The first request that waited less ends it. Shedding everything over
the target (not CoDel's one drop per interval) because a shed callback still costs ~65 % of a
decided one (gunicorn's parse, Sign, record, log): at 1.25 x saturation most of them must go.

A worker that saw no request for a whole interval starts afresh (its queue was empty meanwhile).
So a worker whose requests leave the queue less often than once an interval (each taking longer
than interval x threads, e.g. a rule that waits on a slow service) is judged by the ceiling alone.

`server.shed_after_ms` stays the absolute ceiling: a request that waited longer is always shed; 0
switches all shedding off. Why the defaults: docs/operations.md. Standard library only: gunicorn
imports this in the master (receiver/worker.py).
"""

from __future__ import annotations


class StandingQueue:
    """The standing-queue state of one worker's queue, fed each request's wait as a thread takes it.

    Runs once per request on the worker's threads, without a lock: two threads may both note a
    wait at once, and the worst a lost update does is start or end a standing period one request
    late, which the next request corrects.
    """

    __slots__ = ("above_since", "last_seen")

    def __init__(self) -> None:
        self.above_since: float | None = None  # when the waits went over target and stayed there
        self.last_seen = float("-inf")  # when the previous request left the queue

    def note(self, waited_ms: float, now: float, target_ms: float, interval_s: float) -> bool:
        """Note one request's wait; True when every wait for at least `interval_s` (this one too)
        exceeded `target_ms`, i.e. the queue is standing and this request should be shed."""
        previous, self.last_seen = self.last_seen, now
        if waited_ms <= target_ms:
            self.above_since = None  # the queue drained below the target: a burst, not overload
            return False
        since = self.above_since
        # No request for a whole interval: the queue was empty meanwhile, whatever the waits before
        # (CoDel resets on an empty queue too); this wait starts a new period.
        if since is None or now - previous > interval_s:
            self.above_since = now
            return False
        return now - since >= interval_s


def past_ceiling(waited_ms: float, ceiling_ms: float) -> bool:
    """Whether a request waited longer than `server.shed_after_ms` (0: shedding off, never)."""
    return ceiling_ms > 0 and waited_ms > ceiling_ms


def decide(queue: StandingQueue, waited_ms: float, now: float, *, ceiling_ms: float, target_ms: float,
           interval_s: float) -> bool:
    """Whether a request that waited `waited_ms` is shed: over the ceiling always, over the target
    while the queue stands; never with a ceiling of 0 (shedding off), only by the ceiling with a
    target of 0 (the standing-queue test off)."""
    if ceiling_ms <= 0:
        return False
    standing = target_ms > 0 and queue.note(waited_ms, now, target_ms, interval_s)
    return standing or past_ceiling(waited_ms, ceiling_ms)
