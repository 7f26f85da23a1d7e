"""Prometheus metrics, correct under several gunicorn workers.

Import this module only in workers (or single-process runs): prometheus_client decides at import
whether to use multiprocess files, from PROMETHEUS_MULTIPROC_DIR, which `hooks.when_ready` sets in
the gunicorn master before any worker is forked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

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


def command_label(command: str, known: Iterable[str]) -> str:
    """The command, or "other": a query string must not mint unbounded label values."""
    return command if command in known else OTHER


def phase(outcome) -> str:
    if outcome.error is not None:
        return "rejected"
    return "before" if outcome.callback is not None and outcome.callback.is_before else "after"


def observe(outcome, known_commands: frozenset[str]) -> None:
    """Count one handled request (an Outcome from receiver.core)."""
    CALLBACKS.labels(command_label(outcome.command, known_commands), outcome.outcome_name).inc()
    REPLY_SECONDS.labels(phase(outcome)).observe(outcome.elapsed_ms / 1000)
    decision = outcome.decision
    if decision is None or outcome.callback is None or not outcome.callback.is_before:
        return
    if decision.trace:
        DECISIONS.labels(decision.verdict.rule or "(none)", outcome.outcome_name).inc()
    for step in decision.trace:
        RULE_RESULTS.labels(step.rule, step.result).inc()
        if step.result in _FAULT_RESULTS:
            RULE_FAULTS.labels(step.rule, step.result).inc()


class RecordingStats:
    """Mirror receiver.recording.stats() into metrics: the queue depth and the running totals."""

    # A per-process running total becomes increments, so the sum over workers is right.
    _TOTALS = {"overflow_total": RECORDING_OVERFLOW, "written_total": RECORDING_WRITTEN,
               "failed_total": RECORDING_FAILED, "journal_spilled_total": RECORDING_SPILLED,
               "journal_recovered_total": RECORDING_RECOVERED}

    def __init__(self, stats: Callable[[], dict]):
        self.stats = stats
        self._seen = dict.fromkeys(self._TOTALS, 0)

    def update(self) -> None:
        values = self.stats() or {}
        if "queue_depth" in values:
            RECORDING_DEPTH.set(values["queue_depth"])
        for key, counter in self._TOTALS.items():
            value = values.get(key)
            if isinstance(value, int) and value > self._seen[key]:
                counter.inc(value - self._seen[key])
                self._seen[key] = value


class ForwardStats:
    """The sender's and the enqueuer's counters, behind one small interface."""

    _COUNTERS = {"delivered": FORWARD_DELIVERED, "dead": FORWARD_DEAD, "enqueued": FORWARD_ENQUEUED,
                 "duplicate": FORWARD_DUPLICATES}

    def count(self, what: str, target: str, kind: str = "", n: int = 1) -> None:
        if what == "failed":
            FORWARD_FAILURES.labels(target, kind or "other").inc(n)
        elif what == "enqueue_error":
            FORWARD_ENQUEUE_ERRORS.inc(n)
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


def render(extra: Iterable = ()) -> tuple[bytes, str]:
    """The exposition text: every worker's metrics (multiprocess mode) plus scrape-time collectors."""
    directory = multiprocess_dir()
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    scraped = CollectorRegistry()
    for collector in extra:
        scraped.register(collector)
    return text + generate_latest(scraped), CONTENT_TYPE_LATEST
