"""The metrics observer: per-request tallies, moved into prometheus_client by `flush`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.registry import REGISTRY

from receiver.ops import metrics
from receiver.verdict import Verdict
from rules.chain import Decision, TraceStep

from .test_ops_support import wait_until

KNOWN = frozenset({"C2C.CallbackAfterSendMsg", "C2C.CallbackBeforeSendMsg"})


def outcome(elapsed_ms: float = 1.0, *, command: str = "C2C.CallbackAfterSendMsg", name: str = "notify",
            before: bool = False, trace: tuple = (), rule: str = "", error=None, shed: bool = False,
            drift: tuple = ()):
    """What metrics.observe reads of a receiver.core.Outcome."""
    callback = SimpleNamespace(is_before=before, drift=drift) if error is None and not shed else None
    decision = Decision(Verdict(rule=rule), trace) if before else None
    return SimpleNamespace(command=command, outcome_name=name, elapsed_ms=elapsed_ms, callback=callback,
                           decision=decision, error=error, shed=shed)


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def histogram_samples(registry, name: str, phase: str) -> dict[tuple, float]:
    return {(s.name[len(name):], s.labels.get("le")): s.value for family in registry.collect()
            for s in family.samples if s.name.startswith(name) and s.labels.get("phase") == phase
            and not s.name.endswith("_created")}


def test_reply_histogram_matches_prometheus_observe():
    # On the bounds, between them, beyond the last one: the bucket Histogram.observe would choose.
    seconds = [0.0, 0.0005, 0.001, 0.0010001, 0.0025, 0.003, 0.1, 0.99, 1.0, 2.0, 2.0001, 7.5]
    phase = "after"
    before = histogram_samples(REGISTRY, "imhook_reply_seconds", phase)
    for s in seconds:
        metrics.observe(outcome(s * 1000), KNOWN)
    metrics.flush()
    after = histogram_samples(REGISTRY, "imhook_reply_seconds", phase)
    reference_registry = CollectorRegistry()
    reference = Histogram("ref", "", ["phase"], buckets=metrics.LATENCY_BUCKETS, registry=reference_registry)
    for s in seconds:
        reference.labels(phase).observe(s)
    expected = histogram_samples(reference_registry, "ref", phase)
    assert set(expected) == set(after)
    for key, count in expected.items():
        assert after[key] - before.get(key, 0.0) == pytest.approx(count), key


@pytest.mark.parametrize("case, labels_and_deltas", [
    (outcome(command="Made.Up"), [("imhook_callbacks_total", {"command": "other", "outcome": "notify"}, 1)]),
    (outcome(error=SimpleNamespace(message="bad"), name="rejected"),
     [("imhook_callbacks_total", {"command": "C2C.CallbackAfterSendMsg", "outcome": "rejected"}, 1),
      ("imhook_reply_seconds_count", {"phase": "rejected"}, 1)]),
    (outcome(shed=True, name="shed"), [("imhook_reply_seconds_count", {"phase": "shed"}, 1)]),
    (outcome(command="C2C.CallbackBeforeSendMsg", name="refuse", before=True, rule="words",
             trace=(TraceStep("rate", "error"), TraceStep("slow", "timeout"), TraceStep("rate", "error"),
                    TraceStep("words", "refuse"))),
     [("imhook_callbacks_total", {"command": "C2C.CallbackBeforeSendMsg", "outcome": "refuse"}, 1),
      ("imhook_decisions_total", {"rule": "words", "outcome": "refuse"}, 1),
      ("imhook_rule_results_total", {"rule": "rate", "result": "error"}, 2),
      ("imhook_rule_results_total", {"rule": "words", "result": "refuse"}, 1),
      ("imhook_rule_faults_total", {"rule": "rate", "kind": "error"}, 2),
      ("imhook_rule_faults_total", {"rule": "slow", "kind": "timeout"}, 1),
      ("imhook_rule_faults_total", {"rule": "words", "kind": "refuse"}, 0),
      ("imhook_reply_seconds_count", {"phase": "before"}, 1)]),
    (outcome(command="C2C.CallbackBeforeSendMsg", name="allow", before=True, trace=()),  # no rule applied
     [("imhook_decisions_total", {"rule": "(none)", "outcome": "allow"}, 0)]),
    (outcome(command="C2C.CallbackBeforeSendMsg", name="allow", before=True, trace=(TraceStep("a", "no_opinion"),)),
     [("imhook_decisions_total", {"rule": "(none)", "outcome": "allow"}, 1)]),
    (outcome(drift=("MsgSeq", "MsgBody[].TIMImageElem.ImageFormat")),
     [("imhook_schema_drift_total", {"command": "C2C.CallbackAfterSendMsg", "field": "MsgSeq"}, 1),
      ("imhook_schema_drift_total", {"command": "C2C.CallbackAfterSendMsg",
                                     "field": "MsgBody[].TIMImageElem.ImageFormat"}, 1)]),
    (outcome(command="Made.Up.Drifting", drift=("Info",)),
     [("imhook_schema_drift_total", {"command": "other", "field": "Info"}, 1)]),
], ids=["unknown-command", "rejected", "shed", "before-with-faults", "before-no-rules", "before-no-opinion",
        "drift", "drift-unknown-command"])
def test_each_outcome_is_counted_once_flushed(case, labels_and_deltas):
    metrics.flush()
    before = [value(name, **labels) for name, labels, _ in labels_and_deltas]
    metrics.observe(case, KNOWN)
    metrics.flush()
    deltas = [value(name, **labels) - b for (name, labels, _), b in zip(labels_and_deltas, before)]
    assert deltas == [delta for _, _, delta in labels_and_deltas]


def test_drift_label_pairs_are_capped(monkeypatch):
    monkeypatch.setattr(metrics, "_drift_labels", set())
    monkeypatch.setattr(metrics, "MAX_DRIFT_LABELS", 2)
    metrics.flush()
    over = {"command": "C2C.CallbackAfterSendMsg", "field": "other"}
    start = value("imhook_schema_drift_total", **over)
    metrics.observe(outcome(drift=("A", "B", "C", "D")), KNOWN)
    metrics.flush()
    assert value("imhook_schema_drift_total", **over) - start == 2  # C and D
    assert len(metrics._drift_labels) == 3


def test_counts_reach_prometheus_without_a_scrape():
    labels = {"command": "C2C.CallbackAfterSendMsg", "outcome": "notify"}
    metrics.flush()
    start = value("imhook_callbacks_total", **labels)
    for _ in range(3):
        metrics.observe(outcome(), KNOWN)
    # The background thread moves them within FLUSH_SECONDS; nothing here calls flush or render.
    assert wait_until(lambda: value("imhook_callbacks_total", **labels) - start == 3,
                      timeout=metrics.FLUSH_SECONDS * 3)


def test_render_includes_the_counts_up_to_now():
    text = metrics.render()[0].decode()
    start = _callbacks_in(text)
    metrics.observe(outcome(), KNOWN)
    assert _callbacks_in(metrics.render()[0].decode()) == start + 1


def _callbacks_in(text: str) -> float:
    prefix = 'imhook_callbacks_total{command="C2C.CallbackAfterSendMsg",outcome="notify"} '
    return next((float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


def test_recording_counters_are_mirrored_at_each_flush():
    totals = {"queue_depth": 4, "written_total": 10}
    previous = metrics._recording
    metrics.track_recording(lambda: dict(totals))
    try:
        metrics.flush()
        written = value("imhook_recording_written_total")
        totals["written_total"] = 15
        metrics.flush()
        assert value("imhook_recording_written_total") - written == 5
        assert value("imhook_recording_queue_depth") == 4
    finally:
        metrics._recording = previous


def _counter_file(folder, pid: int, value: float) -> None:
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    counts = MmapedDict(str(folder / f"counter_{pid}.db"))
    counts.write_value(mmap_key("imhook_test_total", "imhook_test_total", ["k"], ["v"], "A test counter."), value, 0.0)
    counts.close()


def test_metrics_read_every_worker_file_but_one_still_being_created(tmp_path, monkeypatch):
    # A worker starting up creates its file empty, then sizes it: /metrics read in between once
    # answered 500 (CI, right after a worker was replaced). The empty file holds nothing yet.
    from receiver.ops import metrics

    _counter_file(tmp_path, 101, 3)
    _counter_file(tmp_path, 102, 4)
    (tmp_path / "counter_103.db").write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text, _ = metrics.render()
    assert 'imhook_test_total{k="v"} 7.0' in text.decode()


def test_metrics_list_the_files_again_when_one_went_between_listing_and_reading(tmp_path, monkeypatch):
    # gunicorn's child_exit removes a dead worker's live gauge files while /metrics may be reading.
    from receiver.ops import metrics

    _counter_file(tmp_path, 101, 3)
    real_glob = metrics.glob.glob
    listings = []

    def glob_with_a_ghost_once(pattern):
        found = real_glob(pattern)
        listings.append(found)
        return found + [str(tmp_path / "counter_999.db")] if len(listings) == 1 else found

    monkeypatch.setattr(metrics.glob, "glob", glob_with_a_ghost_once)
    monkeypatch.setattr(metrics, "_has_content", lambda path: True)  # as if it vanished after this check
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text, _ = metrics.render()
    assert 'imhook_test_total{k="v"} 3.0' in text.decode() and len(listings) == 2
