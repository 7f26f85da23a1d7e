"""The outbox and its sender, with a fake clock and a fake downstream: order, retries, dedupe."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from receiver.ops.forward.events import Target
from receiver.ops.forward.outbox import Outbox
from receiver.ops.forward.sender import Forwarder, LeaderLock, Result

SETTINGS = {"concurrency": 4, "poll_seconds": 0.5, "keep_delivered_hours": 1.0,
            "retry": {"base_seconds": 1.0, "cap_seconds": 8.0, "max_attempts": 0}}


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeDownstream:
    """Answers per conversation: fails while the conversation is in `failing`."""

    failing: set = field(default_factory=set)
    permanent: set = field(default_factory=set)
    got: list = field(default_factory=list)

    def __call__(self, target, row) -> Result:
        if row.conversation in self.permanent:
            return Result(False, permanent=True, error="HTTP 400", kind="http_4xx")
        if row.conversation in self.failing:
            return Result(False, error="cannot connect", kind="connect")
        self.got.append((target.name, row.conversation, row.body))
        return Result(True)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def outbox(tmp_path, clock):
    box = Outbox(tmp_path / "outbox.sqlite", clock=clock)
    yield box
    box.close()


def forwarder(outbox, downstream, targets=("a",), **retry) -> Forwarder:
    settings = {**SETTINGS, "retry": {**SETTINGS["retry"], **retry}}
    return Forwarder(outbox, [Target(t, f"http://{t}", ("*",), 1.0) for t in targets], settings,
                     deliver=downstream)


def add(outbox, n: int, conversation: str, targets=("a",)) -> list[str]:
    return outbox.add(targets, dedupe=f"cmd|{conversation}|{n}", conversation=conversation, command="cmd",
                      app_id="1", body=f"{conversation}:{n}".encode())


def drain(fwd: Forwarder, rounds: int = 50) -> None:
    for _ in range(rounds):
        fwd.step()


def test_a_duplicate_is_stored_once_per_target(outbox):
    assert add(outbox, 1, "c1", targets=("a", "b")) == ["a", "b"]
    assert add(outbox, 1, "c1", targets=("a", "b")) == []
    assert outbox.counts() == {"pending": 2}


def test_events_of_one_conversation_are_sent_in_order(outbox):
    down = FakeDownstream()
    for n in range(10):
        add(outbox, n, "c1")
        add(outbox, n, "c2")
    drain(forwarder(outbox, down))
    for conversation in ("c1", "c2"):
        sent = [body for _, c, body in down.got if c == conversation]
        assert sent == [f"{conversation}:{n}".encode() for n in range(10)]
    assert outbox.counts() == {"delivered": 20}


def test_a_failing_head_blocks_only_its_own_conversation(outbox, clock):
    down = FakeDownstream(failing={"c1"})
    for n in range(3):
        add(outbox, n, "c1")
        add(outbox, n, "c2")
    fwd = forwarder(outbox, down)
    drain(fwd)
    assert [c for _, c, _ in down.got] == ["c2", "c2", "c2"]
    assert outbox.counts() == {"delivered": 3, "pending": 3}
    down.failing.clear()
    clock.now += 10  # past the backoff
    drain(fwd)
    assert [body for _, c, body in down.got if c == "c1"] == [b"c1:0", b"c1:1", b"c1:2"]


def test_a_failed_event_waits_for_its_backoff(outbox, clock):
    down = FakeDownstream(failing={"c1"})
    add(outbox, 0, "c1")
    fwd = forwarder(outbox, down)
    fwd.step()
    down.failing.clear()
    fwd.step()
    assert down.got == []  # not due yet: base 1 s, jittered to 0.5–1 s
    clock.now += 1.0
    fwd.step()
    assert len(down.got) == 1


def test_backoff_grows_until_the_cap(outbox, clock):
    down = FakeDownstream(failing={"c1"})
    add(outbox, 0, "c1")
    fwd = forwarder(outbox, down)
    delays = []
    for _ in range(8):
        fwd.step()
        delays.append(outbox.next_due(["a"]) - clock.now)
        clock.now += delays[-1]
    assert delays[0] <= 1.0 and delays[3] >= 4.0
    assert max(delays) <= 8.0


def test_max_attempts_gives_up_and_unblocks_the_conversation(outbox, clock):
    down = FakeDownstream(failing={"c1"})
    add(outbox, 0, "c1")
    fwd = forwarder(outbox, down, max_attempts=3)
    for _ in range(5):
        fwd.step()
        clock.now += 10
    assert outbox.counts() == {"dead": 1}
    down.failing.clear()
    add(outbox, 1, "c1")
    fwd.step()
    assert [body for _, _, body in down.got] == [b"c1:1"]


def test_a_permanent_refusal_is_not_retried(outbox):
    down = FakeDownstream(permanent={"c1"})
    add(outbox, 0, "c1")
    add(outbox, 1, "c1")
    drain(forwarder(outbox, down), rounds=3)
    assert outbox.counts() == {"dead": 2}


def test_targets_progress_independently(outbox, clock):
    class DownForB(FakeDownstream):
        def __call__(self, target, row):
            if target.name == "b":
                return Result(False, error="down", kind="connect")
            return super().__call__(target, row)

    down = DownForB()
    add(outbox, 0, "c1", targets=("a", "b"))
    add(outbox, 1, "c1", targets=("a", "b"))
    drain(forwarder(outbox, down, targets=("a", "b")))
    assert [body for _, _, body in down.got] == [b"c1:0", b"c1:1"]
    assert outbox.backlog()["b"][0] == 2


def test_rows_of_an_unconfigured_target_stay_pending(outbox):
    down = FakeDownstream()
    add(outbox, 0, "c1", targets=("removed",))
    drain(forwarder(outbox, down), rounds=2)
    assert down.got == [] and outbox.counts() == {"pending": 1}


def test_pending_rows_survive_a_reopen(tmp_path, clock):
    path = tmp_path / "outbox.sqlite"
    first = Outbox(path, clock=clock)
    add(first, 0, "c1")
    first.close()
    down = FakeDownstream()
    drain(forwarder(Outbox(path, clock=clock), down), rounds=2)
    assert [body for _, _, body in down.got] == [b"c1:0"]


def test_delivered_rows_are_purged_after_the_keep_time(outbox, clock):
    add(outbox, 0, "c1")
    drain(forwarder(outbox, FakeDownstream()), rounds=1)
    assert outbox.purge(3600) == 0
    clock.now += 3601
    assert outbox.purge(3600) == 1
    assert outbox.counts() == {}


def test_backlog_reports_count_and_age(outbox, clock):
    add(outbox, 0, "c1")
    clock.now += 5
    add(outbox, 1, "c2")
    assert outbox.backlog() == {"a": (2, 5.0)}


def test_only_one_leader_lock_at_a_time(tmp_path):
    first, second = LeaderLock(tmp_path / "x.lock"), LeaderLock(tmp_path / "x.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()
