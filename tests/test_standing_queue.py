"""When a request is shed (receiver/standing_queue.py): over the ceiling always, over the target
while the worker's queue has stood above it for a whole interval (CoDel's test), never with 0."""

from __future__ import annotations

import pytest

from receiver.config import parse_config
from receiver.errors import ConfigError
from receiver.standing_queue import StandingQueue, decide

from .helpers import APP_ID
from .test_shedding import build_shedder


def every(step_ms: float, until_ms: float, wait_ms: float, start_ms: float = 0.0) -> list[tuple[float, float]]:
    """A request leaving the queue every `step_ms` from `start_ms` to before `until_ms`, each having
    waited `wait_ms`: (when, waited) in ms."""
    count = round((until_ms - start_ms) / step_ms)
    return [(start_ms + i * step_ms, wait_ms) for i in range(count)]


def run(requests, *, ceiling_ms=100.0, target_ms=20.0, interval_ms=100.0) -> list[float]:
    """When (ms) the requests that were shed left the queue. The clock and the interval are given in
    ms here (the controller only compares differences of the two), so no float rounding decides."""
    queue = StandingQueue()
    return [at for at, waited in requests
            if decide(queue, waited, at, ceiling_ms=ceiling_ms, target_ms=target_ms, interval_s=interval_ms)]


STANDING = every(5, 300, 60)  # every wait over the 20 ms target, none over the 100 ms ceiling
# (case, requests, settings, the times of the shed ones)
CASES = [
    ("a standing queue sheds once it stood a whole interval", STANDING, {}, [t for t, _ in STANDING if t >= 100]),
    ("a shorter interval sheds sooner", STANDING, dict(interval_ms=50), [t for t, _ in STANDING if t >= 50]),
    ("a burst that drains within the interval sheds nothing",
     every(5, 90, 60) + [(90, 3)] + every(5, 180, 60, start_ms=95) + [(180, 3)], {}, []),
    ("one wait under the target ends the standing period, and the next one must last an interval",
     every(5, 150, 60) + [(150, 10)] + every(5, 300, 60, start_ms=155),
     {}, [t for t, _ in STANDING if 100 <= t < 150 or t >= 255]),
    ("a wait exactly at the target is not over it", every(5, 300, 20), {}, []),
    ("the ceiling always sheds, even the first request", [(0, 101), (5, 60), (10, 500)], {}, [0, 10]),
    ("the ceiling alone with target 0", every(5, 300, 60) + [(300, 150)], dict(target_ms=0), [300]),
    ("ceiling 0 switches all shedding off", every(5, 300, 5000), dict(ceiling_ms=0), []),
    ("a request a whole interval after the last one starts a new period (the queue was empty)",
     [(0, 60), (50, 60), (400, 60), (450, 60), (500, 60)], {}, [500]),
    ("under the target while standing: that request is decided", every(5, 150, 60) + [(150, 19)],
     {}, [t for t, _ in STANDING if 100 <= t < 150]),
]


@pytest.mark.parametrize("case, requests, settings, shed_at", CASES, ids=[c[0] for c in CASES])
def test_the_standing_queue_decides(case, requests, settings, shed_at):
    assert run(requests, **settings) == shed_at


def test_the_worker_shedder_reads_the_settings_of_the_current_config(tmp_path, monkeypatch):
    monkeypatch.setenv("IMHOOK_APP_ID", APP_ID)
    wrapper, _ = build_shedder(tmp_path, "server: {shed_target_ms: 20, shed_interval_ms: 100}")
    stale = [wrapper.stale(0.06, 8.0 + i / 64) for i in range(10)]  # 60 ms waits every 15.6 ms
    assert stale == [False] * 7 + [True] * 3  # from 7 / 64 s = 109 ms on
    receiver = wrapper.receiver
    # Each answer differs from what the config before it would give: the next request sees a reload.
    for i, (text, waited, expected) in enumerate([
        ("server: {shed_target_ms: 80}", 0.06, False),  # 60 ms is now under the target: decided
        ("server: {shed_target_ms: 0, shed_after_ms: 50}", 0.06, True),  # the ceiling alone
        ("server: {shed_after_ms: 0}", 5.0, False),  # off
    ], start=10):
        receiver.swap(parse_config(text, "c.yaml", {"IMHOOK_APP_ID": APP_ID}), receiver.chain)
        assert wrapper.stale(waited, 8.0 + i / 64) is expected, text


def test_the_defaults_are_a_20_ms_target_over_50_ms():
    server = parse_config("rules: []\n", "c.yaml", {"IMHOOK_APP_ID": APP_ID}).server
    assert (server["shed_target_ms"], server["shed_interval_ms"], server["shed_after_ms"]) == (20, 50, 100)


@pytest.mark.parametrize("key, bad", [("shed_target_ms", "-1"), ("shed_target_ms", "2500"),
                                      ("shed_target_ms", "soon"), ("shed_interval_ms", "0"),
                                      ("shed_interval_ms", "60000"), ("shed_interval_ms", "[100]")])
def test_the_settings_are_validated_with_file_line_and_path(key, bad):
    with pytest.raises(ConfigError) as info:
        parse_config(f"server:\n  {key}: {bad}\n", "c.yaml", {"IMHOOK_APP_ID": APP_ID})
    assert "c.yaml:2" in str(info.value) and f"server.{key}" in str(info.value)
