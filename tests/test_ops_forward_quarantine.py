"""Forwarding never stops on one event: what cannot be enqueued or sent is set aside and counted, and a
dead or stuck sender thread is replaced."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.ops.forward.events import Target
from receiver.ops.forward.observer import Enqueuer
from receiver.ops.forward.outbox import Outbox, quarantine_path
from receiver.ops.forward.sender import Forwarder, Result
from receiver.recording.quarantine import Quarantine

from .helpers import handle, make_receiver, rules_yaml, sample
from .test_ops_outbox import SETTINGS, add, drain
from .test_recording_quarantine import Boom, wait_for


class Stats:
    def __init__(self):
        self.counts = Counter()

    def count(self, what, target, kind="", n=1):
        self.counts[what, target] += n


class Downstream:
    """Raises (a bug, not an HTTP failure) for conversation "bug"; blocks for "slow" until released."""

    def __init__(self, broken: bool = True):
        self.got, self.release, self.broken = [], threading.Event(), broken

    def __call__(self, target, row) -> Result:
        if row.conversation == "bug" and self.broken:
            raise UnicodeEncodeError("latin-1", "\u4e2d", 0, 1, "a header cannot carry it")
        if row.conversation == "slow":
            self.release.wait(10)
        self.got.append(row.body)
        return Result(True)


def forwarder(outbox, downstream, stats=None, **settings) -> Forwarder:
    return Forwarder(outbox, [Target("a", "http://a", ("*",), 1.0)], {**SETTINGS, **settings}, deliver=downstream,
                     stats=stats)


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite")
    yield box
    box.close()


def test_a_row_that_cannot_be_sent_is_quarantined_and_unblocks_its_conversation(outbox):
    downstream, stats = Downstream(), Stats()
    fwd = forwarder(outbox, downstream, stats)
    add(outbox, 1, "bug")
    add(outbox, 2, "ok")
    drain(fwd, 3)
    assert downstream.got == [b"ok:2"]
    [(row_id, target, command, error, _)] = outbox.quarantined()
    assert (target, command) == ("a", "cmd") and error.startswith("UnicodeEncodeError")
    assert stats.counts["quarantined", "a"] == 1 and outbox.counts()["quarantined"] == 1
    assert outbox.heads(["a"], 10) == []  # it blocks nothing, and is not retried
    assert outbox.release_quarantined() == 1
    downstream_fixed = Downstream(broken=False)
    drain(forwarder(outbox, downstream_fixed), 2)
    assert downstream_fixed.got == [b"bug:1"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_sender_thread_is_restarted(outbox):
    downstream, stats = Downstream(), Stats()
    fwd = forwarder(outbox, downstream, stats, poll_seconds=0.05)
    real_step = fwd.step

    def dying_step(pool=None):
        fwd.step = real_step
        raise Boom()

    fwd.step = dying_step
    fwd.start()
    try:
        # The process's watchdog thread (receiver/watchdog.py, each second) may replace the dead
        # thread before this test looks: either way it must be replaced exactly once.
        assert wait_for(lambda: not fwd._thread.is_alive() or fwd.restarts_total)
        add(outbox, 1, "c")
        assert fwd.supervise() is None  # replaced at once (or already)
        assert stats.counts["sender_restart", ""] == 1 and fwd.restarts_total == 1
        assert wait_for(lambda: downstream.got == [b"c:1"])
    finally:
        fwd.stop()


def test_a_stuck_sender_is_replaced_and_other_conversations_go_on(outbox):
    downstream = Downstream()
    fwd = forwarder(outbox, downstream, poll_seconds=0.05, stall_seconds=0.3, concurrency=1)
    add(outbox, 1, "slow")
    fwd.start()
    try:
        assert wait_for(lambda: fwd.supervise() is None and fwd.restarts_total == 0)
        add(outbox, 2, "other")
        assert wait_for(lambda: fwd.restarts_total >= 1 and b"other:2" in downstream.got)
    finally:
        downstream.release.set()
        fwd.stop()


def test_an_event_the_outbox_cannot_take_is_kept_aside_and_reimported(tmp_path, monkeypatch):
    receiver = make_receiver(rules_yaml())
    body = sample("Group.CallbackAfterGroupInfoChanged")
    body["Name"] = "\udfffname"
    outcome = handle(receiver, json.dumps(body).encode(),
                     query={"SdkAppid": "1400000000", "CallbackCommand": body["CallbackCommand"]})
    assert outcome.status == 200
    outbox, stats = Outbox(tmp_path / "outbox.sqlite"), Stats()
    enqueuer = Enqueuer(outbox, [Target("a", "http://a", ("*",), 1.0)], stats=stats)

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(outbox, "add", locked)
    enqueuer(outcome)
    assert stats.counts["quarantined", "a"] == 1 and stats.counts["enqueue_error", ""] == 1
    [entry] = Quarantine(quarantine_path(outbox.path)).entries()
    assert entry.data["event"]["command"] == body["CallbackCommand"]
    monkeypatch.undo()
    outbox.close()

    listed = CliRunner().invoke(main, ["recordings", "quarantine", "--db", str(tmp_path / "rec.sqlite"),
                                       "--outbox", str(tmp_path / "outbox.sqlite")])
    assert listed.exit_code == 0, listed.output
    assert "outbox.sqlite.quarantine.jsonl: 1 quarantined" in listed.output
    imported = CliRunner().invoke(main, ["recordings", "quarantine", "--db", str(tmp_path / "rec.sqlite"),
                                         "--outbox", str(tmp_path / "outbox.sqlite"), "--import"])
    assert "1 events enqueued, 0 kept" in imported.output, imported.output
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        [(raw, dedupe)] = db.execute("SELECT body, dedupe FROM outbox").fetchall()
    assert raw == json.dumps(body).encode() and b"\\udfffname" in raw


def test_supervision_counters_and_the_undrained_gauge_reach_the_metrics():
    from receiver.ops import metrics

    from .test_ops_metrics import value

    totals = {"quarantined_total": 0, "writer_restarts_total": 0, "user_index_failures_total": 0,
              "undrained_seconds": 0}
    names = ("imhook_recording_quarantined_total", "imhook_recording_writer_restarts_total",
             "imhook_recording_user_index_failures_total")
    previous = metrics._recording
    metrics.track_recording(lambda: dict(totals))
    try:
        metrics.flush()
        before = [value(name) for name in names]
        totals.update(quarantined_total=2, writer_restarts_total=1, user_index_failures_total=3, undrained_seconds=42)
        metrics.flush()
        after = [value(name) for name in names]
        assert [a - b for a, b in zip(after, before)] == [2, 1, 3]
        assert value("imhook_recording_undrained_seconds") == 42
    finally:
        metrics._recording = previous
    stats = metrics.ForwardStats()
    quarantined = value("imhook_forward_quarantined_total", target="a")
    stats.count("quarantined", "a")
    stats.count("sender_restart", "")
    assert value("imhook_forward_quarantined_total", target="a") - quarantined == 1
    assert value("imhook_forward_sender_restarts_total") >= 1
