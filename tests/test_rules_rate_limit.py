"""rate_limit: sliding windows in memory and in a real Redis, shared counters, Redis outages, HTTP."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from receiver.client import post_callback
from receiver.errors import ConfigError
from rules.ratelimit import Hit, MemoryStore, StoreUnavailable
from rules.ratelimit.store import MAX_MEMORY_KEYS
from rules.ratelimit.redis_store import CircuitBreaker, RedisStore

from .helpers import APP_ID, TOKEN, handle, make_receiver, redis_url, rules_yaml, sample
from .test_rules_policies import OK, c2c, friend_items, group_msg, refused, text

SLOW = refused(120400, "slow down")


class Clock:
    """A hand-moved clock, so windows slide without sleeping."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def receiver_for(rule: str):
    return make_receiver(rules_yaml(rule))


def the_rule(receiver):
    return receiver.chain.entries[0].rule


@pytest.fixture
def receivers():
    """Build receivers from rule entries; their chains (and Redis clients) are closed afterwards."""
    built = []

    def build(rule: str):
        receiver = receiver_for(rule)
        built.append(receiver)
        return receiver

    yield build
    for receiver in built:
        receiver.chain.close()


def replies(receiver, *bodies):
    return [handle(receiver, body).reply for body in bodies]


MSG = c2c(text("hi"))
FROM_OTHER = c2c(text("hi"), sender="other")
TO_OTHER = dict(c2c(text("hi")), To_Account="someone")
FRIENDS = sample("Sns.CallbackPrevFriendAdd")
LIMIT = "{use: rate_limit, %s config: {limits: [%s], code: 120400, info: slow down %s}}"

MEMORY = [
    ("sender", LIMIT % ("", "{key: sender, max: 2, per_seconds: 60}", ""),
     [MSG, MSG, MSG, FROM_OTHER], [OK, OK, SLOW, OK]),
    ("pair: one counter per recipient", LIMIT % ("", "{key: pair, max: 1, per_seconds: 60}", ""),
     [MSG, MSG, TO_OTHER], [OK, SLOW, OK]),
    ("group: any sender, c2c untouched", LIMIT % ("", "{key: group, max: 1, per_seconds: 60}", ""),
     [group_msg(text("a")), dict(group_msg(text("b")), From_Account="x"), MSG, MSG],
     [OK, refused(1, "slow down"), OK, OK]),
    ("several limits: the tightest decides", LIMIT % (
        "", "{key: sender, max: 5, per_seconds: 60}, {key: pair, max: 1, per_seconds: 60}", ""),
     [MSG, MSG, TO_OTHER], [OK, SLOW, OK]),
    ("drop on messages", LIMIT % ("", "{key: sender, max: 1, per_seconds: 60}", ", action: drop"),
     [MSG, MSG], [OK, refused(2)]),
    ("drop refuses where the command cannot drop", LIMIT % (
        "scope: {commands: [friend.add]},", "{key: sender, max: 1, per_seconds: 60}", ", action: drop"),
     [FRIENDS, FRIENDS], [friend_items({"id1": (0, ""), "id2": (0, "")}),
                          friend_items({"id1": (38001, "slow down"), "id2": (38001, "slow down")})]),
    ("scope: only the named commands count", LIMIT % (
        "scope: {commands: [Group.CallbackBeforeCreateGroup]},", "{key: sender, max: 1, per_seconds: 60}", ""),
     [MSG, MSG, sample("Group.CallbackBeforeCreateGroup"), sample("Group.CallbackBeforeCreateGroup")],
     [OK, OK, OK, refused(1, "slow down")]),
]


@pytest.mark.parametrize("case, rule, bodies, expected", MEMORY, ids=[m[0] for m in MEMORY])
def test_memory_limits(receivers, case, rule, bodies, expected):
    assert replies(receivers(rule), *bodies) == expected


def test_memory_window_slides_and_refusals_do_not_count(receivers):
    receiver = receivers(LIMIT % ("", "{key: sender, max: 2, per_seconds: 10}", ""))
    clock = the_rule(receiver).store.clock = Clock()
    assert replies(receiver, MSG) == [OK]
    clock.now += 4
    assert replies(receiver, MSG, MSG) == [OK, SLOW]
    clock.now += 6  # the first message leaves the window (now - 10, now]
    assert replies(receiver, MSG, MSG) == [OK, SLOW]
    clock.now += 4  # the second leaves; refused attempts never entered
    assert replies(receiver, MSG) == [OK]


def test_memory_store_forgets_idle_keys():
    clock = Clock()
    store = MemoryStore(clock=clock)
    assert store.hit([Hit("a", 1, 10), Hit("b", 1, 100)]).allowed
    clock.now += 50
    store.sweep()
    assert len(store) == 1
    assert not store.hit([Hit("b", 1, 100)]).allowed


@pytest.mark.parametrize("keys", [MAX_MEMORY_KEYS - 1, MAX_MEMORY_KEYS])
def test_memory_store_keeps_at_most_max_keys_forgetting_the_least_recently_used(keys):
    store = MemoryStore(clock=Clock())
    for i in range(keys):
        assert store.hit([Hit(f"k{i}", 2, 1000)]).allowed
    assert store.hit([Hit("k0", 2, 1000)]).allowed  # counted again: now the most recently used
    assert len(store) == keys
    assert store.hit([Hit("new", 2, 1000)]).allowed
    assert len(store) == min(keys + 1, MAX_MEMORY_KEYS)
    assert not store.hit([Hit("k0", 2, 1000)]).allowed  # kept, with its two hits
    # k1 was the least recently used: forgotten (its limit starts over) only when the store was full.
    assert store.hit([Hit("k1", 1, 1000)]).allowed == (keys == MAX_MEMORY_KEYS)


def test_a_full_memory_store_forgets_idle_keys_before_evicting_live_ones():
    clock = Clock()
    store = MemoryStore(clock=clock, max_keys=4)
    for key, window in [("idle", 1), ("live1", 100), ("live2", 100)]:
        assert store.hit([Hit(key, 1, window)]).allowed
    clock.now += 2  # "idle" has nothing left in its window; the others have
    assert store.hit([Hit("new1", 1, 100)]).allowed
    assert store.hit([Hit("new2", 1, 100)]).allowed  # full: the idle key goes, no live key is evicted
    assert len(store) == 4 and store._evicted == 0
    assert not store.hit([Hit("live1", 1, 100)]).allowed  # still counted (a refused hit is not a use)
    assert store.hit([Hit("new3", 1, 100)]).allowed  # nothing idle at the front: the least recently used goes
    assert store._evicted == 1
    assert not store.hit([Hit("live2", 1, 100)]).allowed  # kept
    assert store.hit([Hit("live1", 1, 100)]).allowed  # it was live1: its limit started over


@pytest.mark.parametrize("sweep_every", [1, 64])
def test_memory_store_sweeps_the_idle_front_as_it_goes(sweep_every):
    clock = Clock()
    store = MemoryStore(clock=clock, sweep_every=sweep_every)
    for i in range(500):
        assert store.hit([Hit(f"old{i}", 5, 10)]).allowed
    clock.now += 11  # all 500 idle
    for i in range(128):
        assert store.hit([Hit(f"young{i}", 5, 10)]).allowed
    assert len(store) == 128  # the idle keys went at the first sweep, without a call to sweep()
    assert not any(store.hit([Hit(f"young{i}", 1, 10)]).allowed for i in range(128))  # the live ones stayed


def test_an_idle_key_is_forgotten_though_a_live_one_with_a_longer_window_was_hit_before_it():
    clock = Clock()
    store = MemoryStore(clock=clock, sweep_every=1)
    assert store.hit([Hit("long", 1, 100)]).allowed
    assert store.hit([Hit("short", 1, 1)]).allowed
    clock.now += 2
    assert store.hit([Hit("other", 1, 100)]).allowed
    assert len(store) == 2  # "short" went; "long" and "other" count on
    assert not store.hit([Hit("long", 1, 100)]).allowed


def test_a_full_store_evicts_the_least_recently_hit_key_of_any_window():
    clock = Clock()
    store = MemoryStore(clock=clock, max_keys=3)
    for key, window in [("a", 100), ("b", 50), ("c", 100)]:
        assert store.hit([Hit(key, 1, window)]).allowed
        clock.now += 1
    assert store.hit([Hit("a", 2, 100)]).allowed  # "a" is now the most recently hit
    assert store.hit([Hit("d", 1, 100)]).allowed  # full, nothing idle: "b" (window 50) goes
    assert store.hit([Hit("b", 1, 50)]).allowed  # its limit started over
    assert not store.hit([Hit("a", 2, 100)]).allowed  # kept, with both hits


def test_refusal_names_the_limit_in_the_trace(receivers):
    receiver = receivers(LIMIT % ("name: chatty,", "{key: sender, max: 1, per_seconds: 30}", ""))
    handle(receiver, MSG)
    step = handle(receiver, MSG).decision.trace[-1]
    assert (step.rule, step.result) == ("chatty", "refuse")
    assert step.reason.startswith("rate limit: sender over 1 per 30 s")


# --- Redis ---------------------------------------------------------------------------------------

# Generous timeouts where Redis is up: on a loaded test machine a 100 ms read timeout could expire,
# and the rule's on_error (allow) would then blur what the test checks.
PATIENT = ", connect_timeout_ms: 1000, read_timeout_ms: 1000"


def redis_rule(max_: int = 2, per: float = 10, *, url: str | None = None, extra: str = PATIENT,
               entry: str = "budget_ms: 1400,") -> str:
    return ("{use: rate_limit, " + entry + " config: {backend: redis, redis_url: '" + (url or redis_url())
            + "', key_prefix: 'test:rl:', limits: [{key: sender, max: " + str(max_) + ", per_seconds: "
            + str(per) + "}], code: 120400, info: slow down" + extra + "}}")


def test_redis_limit_is_shared_by_two_rule_instances_and_slides(receivers, redis_client):
    first, second = receivers(redis_rule()), receivers(redis_rule())  # as two workers would build it
    clock = Clock()
    the_rule(first).store.clock = the_rule(second).store.clock = clock
    assert [handle(first, MSG).reply, handle(second, MSG).reply, handle(first, MSG).reply] == [OK, OK, SLOW]
    assert handle(second, MSG).reply == SLOW
    assert handle(second, FROM_OTHER).reply == OK
    clock.now += 10  # both entries are now exactly one window old: out
    assert [handle(second, MSG).reply, handle(first, MSG).reply, handle(first, MSG).reply] == [OK, OK, SLOW]
    keys = redis_client.keys("test:rl:*")
    assert len(keys) == 2  # jared and other
    assert all(0 < redis_client.pttl(k) <= 10_000 for k in keys)  # idle counters expire by themselves


def test_redis_counters_belong_to_their_rule(receivers, redis_client):
    one = receivers(redis_rule(1, entry="name: one, budget_ms: 1400,"))
    two = receivers(redis_rule(1, entry="name: two, budget_ms: 1400,"))
    assert [handle(one, MSG).reply, handle(two, MSG).reply, handle(one, MSG).reply] == [OK, OK, SLOW]


def test_redis_script_is_atomic_under_concurrency(redis_client):
    stores = [RedisStore(redis_url(), prefix="test:rl:", read_timeout=2) for _ in range(2)]
    hits = [Hit("burst", 20, 60)]
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: stores[i % 2].hit(hits).allowed, range(100)))
    finally:
        for store in stores:
            store.close()
    assert results.count(True) == 20
    assert redis_client.zcard("test:rl:burst") == 20


def test_all_or_nothing_across_counters(redis_client):
    store = RedisStore(redis_url(), prefix="test:rl:")
    try:
        assert store.hit([Hit("full", 1, 60)]).allowed
        result = store.hit([Hit("free", 5, 60), Hit("full", 1, 60)])
    finally:
        store.close()
    assert not result.allowed and result.hit == Hit("full", 1, 60) and 0 < result.retry_after <= 60
    assert redis_client.zcard("test:rl:free") == 0  # the refused request was counted nowhere


@pytest.mark.parametrize("on_error, expected", [("allow", OK), ("refuse", refused(1))])
def test_redis_down_gives_on_error_and_opens_the_circuit(receivers, on_error, expected):
    receiver = receivers(redis_rule(url="redis://127.0.0.1:1/0", extra="", entry=f"on_error: {on_error},"))
    first, second = handle(receiver, MSG), handle(receiver, MSG)
    assert first.reply == expected and second.reply == expected
    step = first.decision.trace[0]
    assert step.result == "error" and "raised StoreUnavailable" in step.reason and "127.0.0.1:1/0" in step.reason
    # the next request does not try the dead server again: it fails fast on the open circuit
    assert "circuit open" in second.decision.trace[0].reason


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers: a hung Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_hung_redis_times_out_inside_the_rule_budget(receivers, silent_server):
    receiver = receivers(redis_rule(url=silent_server, extra=", read_timeout_ms: 50"))
    outcome = handle(receiver, MSG)
    assert outcome.reply == OK  # on_error: allow
    step = outcome.decision.trace[0]
    # The short read timeout raised inside the rule: not an overrun budget, not the chain deadline.
    assert step.result == "error" and "raised StoreUnavailable" in step.reason and "Timeout" in step.reason


def test_circuit_breaker_half_opens_for_one_probe():
    clock = Clock()
    breaker = CircuitBreaker(2.0, clock=clock)
    breaker.before_call("r")
    breaker.failure("r", "refused")
    with pytest.raises(StoreUnavailable, match="circuit open"):
        breaker.before_call("r")
    clock.now += 2.0
    breaker.before_call("r")  # one probe goes through...
    with pytest.raises(StoreUnavailable):
        breaker.before_call("r")  # ...the others still fail fast while it runs
    breaker.success("r")
    breaker.before_call("r")
    assert not breaker.is_open


REDIS_CONFIG_ERRORS = [
    ("rules:\n  - use: rate_limit\n    config:\n      backend: redis\n      redis_url_env: IMHOOK_TEST_UNSET_URL\n"
     "      limits: [{key: sender, max: 1, per_seconds: 1}]\n",
     "test.yaml:3: rules[0].config.redis_url: ", "IMHOOK_TEST_UNSET_URL"),
    ("rules:\n  - use: rate_limit\n    config:\n      backend: redis\n      redis_url: http://x\n"
     "      limits: [{key: sender, max: 1, per_seconds: 1}]\n",
     "test.yaml:5: rules[0].config.redis_url: ", "invalid redis_url"),
    ("rules:\n  - use: rate_limit\n    config:\n      limits:\n        - {key: sender, max: 1, per_seconds: 1}\n"
     "        - {key: sender, max: 5, per_seconds: 1}\n",
     "test.yaml:4: rules[0].config.limits: ", "same key and per_seconds as limits[0]"),
    ("rules:\n  - use: rate_limit\n    config:\n      limits:\n        - {key: receiver, max: 1, per_seconds: 1}\n",
     "test.yaml:5: rules[0].config.limits[0].key: ", "Must be one of: sender, group, pair"),
    ("rules:\n  - use: rate_limit\n    config:\n      code: 5\n      limits: [{key: sender, max: 1, per_seconds: 1}]\n",
     "test.yaml:4: rules[0].config.code: ", "outside the refusal codes"),
]


@pytest.mark.parametrize("text, where, what", REDIS_CONFIG_ERRORS, ids=[e[2] for e in REDIS_CONFIG_ERRORS])
def test_config_errors(text, where, what):
    with pytest.raises(ConfigError) as info:
        make_receiver(text)
    assert str(info.value).startswith(where) and what in str(info.value), str(info.value)


@pytest.mark.integration
def test_redis_limit_holds_across_gunicorn_workers(serve, redis_client):
    server = serve(f"""
app_id: {APP_ID}
rules:
  - use: rate_limit
    scope: {{commands: [message.send]}}
    budget_ms: 1400
    config:
      backend: redis
      redis_url: '{redis_url()}'
      connect_timeout_ms: 1000
      read_timeout_ms: 1000
      key_prefix: 'test:http:'
      limits: [{{key: sender, max: 3, per_seconds: 60}}]
      code: 120400
      info: slow down
""", workers=2)

    def post(_):
        with requests.Session() as session:  # a new connection each time, so both workers answer
            return post_callback(server.callback_url, MSG, app_id=APP_ID, token=TOKEN, session=session,
                                 timeout=5)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, range(12)))
    assert all(r.ok for r in results)
    assert sorted(r.reply["ErrorCode"] for r in results) == [0] * 3 + [120400] * 9
    assert [key.decode() for key in redis_client.keys("test:http:*")] == [
        f"test:http:{APP_ID}|rate_limit|sender:60s|jared"]
