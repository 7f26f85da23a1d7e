"""Prometheus metrics, correct under several gunicorn workers.

Import this module only in workers (or single-process runs): prometheus_client decides at import
whether to use multiprocess files, from PROMETHEUS_MULTIPROC_DIR, which `hooks.when_ready` sets in
the gunicorn master before any worker is forked.

The per-request counts are tallied in plain dicts (`observe`, a few µs) and moved into
prometheus_client by `flush`: every FLUSH_SECONDS from a background thread, before every scrape
(`render`) and at worker exit. In multiprocess mode each prometheus_client write is an mmap write
under a global lock; a request used to make about a dozen. So another worker's counts reach
/metrics up to FLUSH_SECONDS late, and a worker killed with SIGKILL loses its last unflushed second.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

from .flusher import Flusher

log = logging.getLogger("imhook.metrics")

# Up to the IM's 2 s budget (PROTOCOL.md §2): a reply in the last buckets is about to be a failure.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0)
OTHER = "other"  # the label for commands this version does not know (bounded label values)

CALLBACKS = Counter("imhook_callbacks", "Callbacks answered, by command and outcome.", ["command", "outcome"])
REPLY_SECONDS = Histogram("imhook_reply_seconds", "Time from request to reply, inside imhook.", ["phase"],
                          buckets=LATENCY_BUCKETS)
DECISIONS = Counter("imhook_decisions", "Before-callback decisions, by the deciding rule and outcome.",
                    ["rule", "outcome"])
RULE_RESULTS = Counter("imhook_rule_results", "What each rule returned.", ["rule", "result"])
RULE_FAULTS = Counter("imhook_rule_faults", "Rule errors and timeouts (on_error applied).", ["rule", "kind"])
SCHEMA_DRIFT = Counter("imhook_schema_drift",
                       "Body fields kept as the IM sent them because they did not fit their schema, by "
                       "command and schema path (receiver/tencent/drift.py).", ["command", "field"])
# (command, field) label pairs one process mints; past it a new pair counts under field="other".
# Fields are schema paths and unknown commands are "other", so this only guards against a bug.
MAX_DRIFT_LABELS = 512
EDGE_REFUSED = Counter("imhook_edge_refusals",
                       "Requests refused by the worker before the app (malformed HTTP, over-long line or "
                       "head, over-size body, too slow), by HTTP status.", ["status"])
ABANDONED = Counter("imhook_abandoned_requests",
                    "Callbacks not decided: they waited in the worker's queue long enough to be shed and "
                    "their client had closed the connection (receiver/worker.py).")
REBALANCED = Counter("imhook_connections_rebalanced",
                     "Keep-alive connections a worker closed (Connection: close on a whole reply) because it "
                     "held more than its share, so the client's next one may go to another worker "
                     "(receiver/balance.py).")
IP_REJECTED = Counter("imhook_ip_rejected", "Callbacks refused by server.allow_ips.")
RECORDING_DEPTH = Gauge("imhook_recording_queue_depth", "Callbacks waiting to be recorded.",
                        multiprocess_mode="livesum")
RECORDING_OVERFLOW = Counter("imhook_recording_overflow",
                             "Callbacks that found the recording queue full (kept in the journal when it is on).")
RECORDING_WRITTEN = Counter("imhook_recording_written", "Callbacks written to the recording database.")
RECORDING_FAILED = Counter("imhook_recording_failed", "Callbacks the recording could not store (lost).")
RECORDING_SPILLED = Counter("imhook_recording_journal_spilled",
                            "Callbacks that overflowed the queue and were stored from the journal instead.")
RECORDING_RECOVERED = Counter("imhook_recording_journal_recovered",
                              "Callbacks recovered from the journals of dead workers.")
RECORDING_JOURNAL_FULL = Counter("imhook_recording_journal_full",
                                 "Callbacks not journaled: the journal was at recording.journal_max_bytes.")
# Supervision of the recording pipeline (receiver/recording/quarantine.py, receiver/watchdog.py).
RECORDING_QUARANTINED = Counter("imhook_recording_quarantined",
                                "Records the store refused, kept aside in the quarantine file.")
RECORDING_WRITER_RESTARTS = Counter("imhook_recording_writer_restarts", "Recording writer threads restarted.")
RECORDING_USER_INDEX_FAILURES = Counter("imhook_recording_user_index_failures",
                                        "Minute sorts of new rows into the SQLite user index that failed.")
RECORDING_UNDRAINED = Gauge("imhook_recording_undrained_seconds",
                            "Age of the oldest answered callback not recorded yet (0: drained).",
                            multiprocess_mode="livemax")
FORWARD_SPOOLED = Counter("imhook_forward_spooled",
                          "After-callbacks the PostgreSQL outbox could not take at once, kept in the local spool.",
                          ["target"])
FORWARD_QUARANTINED = Counter("imhook_forward_quarantined",
                              "After-callbacks that could not be put in the outbox or sent, kept aside.",
                              ["target"])
FORWARD_SENDER_RESTARTS = Counter("imhook_forward_sender_restarts", "Forward sender threads restarted.")
FORWARD_ENQUEUED = Counter("imhook_forward_enqueued", "After-callbacks written to the outbox.", ["target"])
FORWARD_DUPLICATES = Counter("imhook_forward_duplicates", "Duplicate callbacks not enqueued again.", ["target"])
FORWARD_ENQUEUE_ERRORS = Counter("imhook_forward_enqueue_errors", "Outbox writes that failed.")
FORWARD_DELIVERED = Counter("imhook_forward_delivered", "Events delivered downstream.", ["target"])
FORWARD_FAILURES = Counter("imhook_forward_failures", "Failed delivery attempts.", ["target", "kind"])
FORWARD_DEAD = Counter("imhook_forward_dead", "Events given up on (permanent error or max_attempts).",
                       ["target"])

_FAULT_RESULTS = ("error", "timeout")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def phase(outcome) -> str:
    if outcome.shed:  # its time is the wait in the worker's queue (receiver/worker.py)
        return "shed"
    if outcome.error is not None:
        return "rejected"
    return "before" if outcome.callback is not None and outcome.callback.is_before else "after"


class Tally:
    """This process's counts since the last flush, in plain dicts under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.clear()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # A child counts only its own requests, and must not inherit a lock held by another thread.
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.callbacks: defaultdict[tuple[str, str], int] = defaultdict(int)  # (command, outcome)
        self.decisions: defaultdict[tuple[str, str], int] = defaultdict(int)  # (rule, outcome)
        self.rule_results: defaultdict[tuple[str, str], int] = defaultdict(int)  # (rule, result)
        # phase -> a count per bucket of REPLY_SECONDS (LATENCY_BUCKETS, then +Inf), then the sum.
        self.replies: dict[str, list[float]] = {}
        self.drift: defaultdict[tuple[str, str], int] = defaultdict(int)  # (command, schema path)
        self.drift_taken: dict[tuple[str, str], int] = {}

    def take(self) -> tuple[dict, dict, dict, dict]:
        with self.lock:
            taken, drift = (self.callbacks, self.decisions, self.rule_results, self.replies), self.drift
            self.clear()
            self.drift_taken = drift  # read by flush, which alone calls take
        return taken


FLUSH_SECONDS = 1.0
_TALLY = Tally()
_EMPTY_REPLIES = [0] * (len(LATENCY_BUCKETS) + 2)
_FLUSH_LOCK = threading.Lock()
os.register_at_fork(after_in_child=lambda: globals().update(_FLUSH_LOCK=threading.Lock()))


def observe(outcome, known_commands: frozenset[str]) -> None:
    """Count one handled request (an Outcome from receiver.core)."""
    command = outcome.command
    if command not in known_commands:
        command = OTHER  # a query string must not mint unbounded label values
    name = outcome.outcome_name
    seconds = outcome.elapsed_ms / 1000
    callback, decision = outcome.callback, outcome.decision
    before = callback is not None and callback.is_before
    if outcome.shed or outcome.error is not None:
        reply_phase = phase(outcome)
    else:  # what phase() says, without calling it for the common case
        reply_phase = "before" if before else "after"
    trace = decision.trace if before and decision is not None else ()
    tally = _TALLY
    with tally.lock:
        tally.callbacks[command, name] += 1
        replies = tally.replies.get(reply_phase)
        if replies is None:
            replies = tally.replies[reply_phase] = _EMPTY_REPLIES.copy()
        # The first bucket whose bound is >= seconds, as Histogram.observe chooses it.
        replies[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        replies[-1] += seconds
        if callback is not None and callback.drift:
            for field in callback.drift:
                tally.drift[command, field] += 1
        if trace:
            tally.decisions[decision.verdict.rule or "(none)", name] += 1
            results = tally.rule_results
            for step in trace:
                results[step.rule, step.result] += 1
    if not _FLUSHER.running:
        _FLUSHER.start()


def flush() -> None:
    """Move the tallies (and the recording's counters) into prometheus_client, one write per value."""
    with _FLUSH_LOCK:  # a scrape waits for a flush under way, so it sees its counts
        callbacks, decisions, rule_results, replies = _TALLY.take()
        for labels, count in callbacks.items():
            CALLBACKS.labels(*labels).inc(count)
        for reply_phase, counts in replies.items():
            _add_to_histogram(REPLY_SECONDS.labels(reply_phase), counts[:-1], counts[-1])
        for labels, count in decisions.items():
            DECISIONS.labels(*labels).inc(count)
        for (rule, result), count in rule_results.items():
            RULE_RESULTS.labels(rule, result).inc(count)
            if result in _FAULT_RESULTS:
                RULE_FAULTS.labels(rule, result).inc(count)
        _flush_drift(_TALLY.drift_taken)
        if _recording is not None:
            _recording.update()


_drift_labels: set[tuple[str, str]] = set()


def _flush_drift(drift: dict[tuple[str, str], int]) -> None:
    for (command, field), count in drift.items():
        if (command, field) not in _drift_labels:
            if len(_drift_labels) >= MAX_DRIFT_LABELS:
                field = OTHER
            _drift_labels.add((command, field))
        SCHEMA_DRIFT.labels(command, field).inc(count)


def _add_to_histogram(child, bucket_counts: list, total: float) -> None:
    """What `child.observe` would have done for each observation: Histogram has no public bulk
    update, so this adds to its values directly (tests/test_ops_metrics.py checks the exposition)."""
    child._sum.inc(total)
    for value, count in zip(child._buckets, bucket_counts):
        if count:
            value.inc(count)


_FLUSHER = Flusher("metrics", FLUSH_SECONDS, flush)
_recording: RecordingStats | None = None


def track_recording(stats: Callable[[], dict]) -> None:
    """Mirror the recording's counters (a process-wide source) at every flush; once per process."""
    global _recording
    if _recording is None or _recording.stats is not stats:
        _recording = RecordingStats(stats)


class RecordingStats:
    """Mirror receiver.recording.stats() into metrics: the queue depth and the running totals."""

    # A per-process running total becomes increments, so the sum over workers is right.
    _TOTALS = {"overflow_total": RECORDING_OVERFLOW, "written_total": RECORDING_WRITTEN,
               "failed_total": RECORDING_FAILED, "journal_spilled_total": RECORDING_SPILLED,
               "journal_recovered_total": RECORDING_RECOVERED, "quarantined_total": RECORDING_QUARANTINED,
               "journal_full_total": RECORDING_JOURNAL_FULL,
               "writer_restarts_total": RECORDING_WRITER_RESTARTS,
               "user_index_failures_total": RECORDING_USER_INDEX_FAILURES}

    def __init__(self, stats: Callable[[], dict]):
        self.stats = stats
        self._seen = dict.fromkeys(self._TOTALS, 0)

    def update(self) -> None:
        values = self.stats() or {}
        if "queue_depth" in values:
            RECORDING_DEPTH.set(values["queue_depth"])
        if "undrained_seconds" in values:
            RECORDING_UNDRAINED.set(values["undrained_seconds"])
        for key, counter in self._TOTALS.items():
            value = values.get(key)
            if isinstance(value, int) and value > self._seen[key]:
                counter.inc(value - self._seen[key])
                self._seen[key] = value


class ForwardStats:
    """The sender's and the enqueuer's counters, behind one small interface."""

    _COUNTERS = {"delivered": FORWARD_DELIVERED, "dead": FORWARD_DEAD, "enqueued": FORWARD_ENQUEUED,
                 "duplicate": FORWARD_DUPLICATES, "quarantined": FORWARD_QUARANTINED,
                 "spooled": FORWARD_SPOOLED}

    def count(self, what: str, target: str, kind: str = "", n: int = 1) -> None:
        if what == "failed":
            FORWARD_FAILURES.labels(target, kind or "other").inc(n)
        elif what == "enqueue_error":
            FORWARD_ENQUEUE_ERRORS.inc(n)
        elif what == "sender_restart":
            FORWARD_SENDER_RESTARTS.inc(n)
        else:
            self._COUNTERS[what].labels(target).inc(n)


class BacklogCollector:
    """Read the outbox at scrape time: its backlog is shared state, not any one worker's."""

    def __init__(self, backlog: Callable[[], dict[str, tuple[int, float]]], targets: Iterable[str]):
        self.backlog = backlog
        self.targets = tuple(targets)

    def collect(self):
        pending = GaugeMetricFamily("imhook_forward_backlog", "Events waiting in the outbox.", labels=["target"])
        oldest = GaugeMetricFamily("imhook_forward_oldest_pending_seconds",
                                   "Age of the oldest event waiting in the outbox.", labels=["target"])
        try:
            backlog = self.backlog()
        except Exception as exc:  # a locked or broken file must not break /metrics
            log.warning("cannot read the outbox backlog: %s", exc)
            return
        for target in sorted(set(self.targets) | set(backlog)):
            count, age = backlog.get(target, (0, 0.0))
            pending.add_metric([target], count)
            oldest.add_metric([target], age)
        yield pending
        yield oldest


class WorkerFiles:
    """prometheus_client's MultiProcessCollector, minus two races with workers starting and dying.

    A starting worker creates each of its files empty, then sizes it (prometheus_client's
    MmapedDict): read in between, an empty file made /metrics answer 500 (struct.error), seen in
    CI right after a worker was replaced. And gunicorn's child_exit removes a dead worker's live
    gauge files, which may go between the listing and the read. So an empty file is left out (it
    holds nothing yet), and a read that found a file gone lists the folder again.
    """

    ATTEMPTS = 3

    def __init__(self, path: str):
        self.path = path

    def collect(self):
        from prometheus_client.multiprocess import MultiProcessCollector

        for attempt in range(self.ATTEMPTS):
            files = [name for name in glob.glob(os.path.join(self.path, "*.db")) if _has_content(name)]
            try:
                return MultiProcessCollector.merge(files, accumulate=True)
            except FileNotFoundError:
                if attempt == self.ATTEMPTS - 1:
                    raise


def _has_content(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:  # removed since the listing
        return False


def render(extra: Iterable = ()) -> tuple[bytes, str]:
    """The exposition text: every worker's metrics (multiprocess mode) plus scrape-time collectors."""
    flush()  # this worker's own counts, up to this request; other workers flush every FLUSH_SECONDS
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        registry.register(WorkerFiles(directory))
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    scraped = CollectorRegistry()
    for collector in extra:
        scraped.register(collector)
    return text + generate_latest(scraped), CONTENT_TYPE_LATEST
