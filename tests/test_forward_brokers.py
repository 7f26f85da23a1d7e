"""Broker targets against the real Redis and NATS: a real gunicorn forwards After* callbacks of
several conversations; a consumer reads each once, in per-conversation order, across a broker that
was cut off for a while; odd bodies arrive byte for byte; MAXLEN bounds a stream; a repeat is
dropped by event id."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from receiver.client import post_callback
from receiver.ops.forward import events
from receiver.ops.forward.brokerconf import BrokerOptions
from receiver.ops.forward.brokers import KindDeliverer
from receiver.ops.forward.events import Target
from receiver.ops.forward.outbox import Row

from . import brokerkit
from .brokerkit import NATS_URL, REDIS_URL, TcpProxy
from .helpers import APP_ID, TOKEN, free_port
from .test_ops_support import c2c_after, config_text, server_env, wait_until

pytestmark = pytest.mark.integration

# Distinct pairs: two threads sending into one conversation would have no order to check.
CONVERSATIONS = [("alice", "bob"), ("carol", "dave"), ("erin", "frank"), ("hal", "gina")]
BIG_TEXT = "x" * 10**6  # fits the default max_body_bytes (1 MiB) and NATS's default max_payload (1 MiB)


@pytest.fixture
def redis_scratch():
    client = brokerkit.redis_client()
    prefix = brokerkit.scratch()
    yield client, prefix
    for key in [*client.scan_iter(f"{prefix}*"), *client.scan_iter(f"imhook-dedupe:{{{prefix}*")]:
        client.delete(key)
    client.close()


@pytest.fixture
def nats_scratch():
    brokerkit.nats_reachable()
    name = brokerkit.scratch()
    yield name
    brokerkit.nats_delete(name)


def metric(url: str, name: str, **labels: str) -> float:
    text = requests.get(url + "/metrics", timeout=2).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def post(url: str, body: dict | bytes) -> None:
    assert post_callback(url, body, app_id=APP_ID, token=TOKEN).ok


def send(url: str, seqs: range, sent: dict[str, list[str]]) -> None:
    """Each conversation in its own thread, its messages one after another (so their order is known)."""
    def conversation(index: int, sender: str, receiver: str) -> None:
        key = events.conversation_key({"From_Account": sender, "To_Account": receiver})
        for n in seqs:
            body = c2c_after(n * 100 + index, sender=sender, receiver=receiver)
            post(url, body)
            sent[key].append(body["MsgKey"])

    threads = [threading.Thread(target=conversation, args=(i, *pair)) for i, pair in enumerate(CONVERSATIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def forwarding(target: str) -> str:
    return ("forwarding:\n  outbox: outbox.sqlite\n  poll_seconds: 0.1\n"
            "  retry: {base_seconds: 0.1, cap_seconds: 0.5}\n"
            f"  targets:\n    - {{name: broker, commands: ['C2C.CallbackAfter*'], timeout_seconds: 1, {target}}}\n")


def odd_bodies() -> list[bytes]:
    """A lone surrogate (JSON admits its escape, UTF-8 cannot hold it) and a 10^6-character text."""
    lone = c2c_after(90_001, sender="odd\ud800", receiver="bob", text="half a pair: \ud800")
    big = c2c_after(90_002, sender="big", receiver="bob", text=BIG_TEXT)
    return [json.dumps(lone).encode(), json.dumps(big, ensure_ascii=False).encode()]


def check_delivered(got: list[tuple[str, str, bytes]], sent: dict[str, list[str]], odd: list[bytes]) -> None:
    """`got`: (event id, conversation, body) in broker order. Each event once, in order per conversation."""
    ids = Counter(event for event, _, _ in got)
    assert [event for event, n in ids.items() if n > 1] == []
    by_conversation = defaultdict(list)
    for _, conversation, body in got:
        by_conversation[conversation].append(body)
    for conversation, keys in sent.items():
        assert [json.loads(body)["MsgKey"] for body in by_conversation[conversation]] == keys, conversation
    bodies = {body for _, _, body in got}
    assert all(body in bodies for body in odd)  # byte for byte
    assert len(got) == sum(map(len, sent.values())) + len(odd)


def run_outage(serve, tmp_path, target: str, proxy: TcpProxy, read) -> None:
    """Send with the broker up, cut it off and send more (and repeats), bring it back: all arrive."""
    sent: dict[str, list[str]] = defaultdict(list)
    server = serve(config_text(tmp_path, forwarding(target)), workers=2, threads=4, env=server_env())
    try:
        send(server.callback_url, range(0, 4), sent)
        odd = odd_bodies()
        for body in odd:
            post(server.callback_url, body)
        total = lambda: sum(map(len, sent.values())) + len(odd)  # noqa: E731
        assert wait_until(lambda: len(read()) == total(), timeout=15), server.log()[-3000:]

        proxy.stop()
        send(server.callback_url, range(4, 10), sent)
        for n in range(4, 7):  # the IM sends some callbacks twice
            post(server.callback_url, c2c_after(n * 100, sender="alice", receiver="bob"))
        assert wait_until(lambda: metric(server.url, "imhook_forward_failures_total", target="broker",
                                         kind="connect") >= len(CONVERSATIONS), timeout=15), server.log()[-3000:]
        assert len(read()) == 4 * len(CONVERSATIONS) + len(odd)  # nothing got through meanwhile

        proxy.start()
        assert wait_until(lambda: len(read()) >= total(), timeout=20), server.log()[-3000:]
        wait_until(lambda: False, timeout=1.0)  # give a stray duplicate time to show up
        check_delivered(read(), sent, odd)
    finally:
        proxy.stop()
        server.stop()


def test_redis_stream_target_survives_an_outage(serve, tmp_path, redis_scratch):
    client, prefix = redis_scratch
    proxy = TcpProxy(("127.0.0.1", client.connection_pool.connection_kwargs["port"]), free_port()).start()
    db = client.connection_pool.connection_kwargs.get("db", 0)
    target = (f"kind: redis_stream, url: 'redis://127.0.0.1:{proxy.port}/{db}', "
              f"stream: '{prefix}.{{conversation}}', maxlen: 100000")

    def read():
        streams = brokerkit.redis_entries(client, f"{prefix}.*")
        return [(f[b"event_id"].decode(), f[b"conversation"].decode(), f[b"body"])
                for entries in streams.values() for f in entries]

    run_outage(serve, tmp_path, target, proxy, read)
    # One stream per conversation, named by its encoded key.
    assert {f"{prefix}.c2c_3Aalice_7Cbob", f"{prefix}.c2c_3Acarol_7Cdave"} <= {
        k.decode() for k in client.scan_iter(f"{prefix}.*")}


def test_nats_target_survives_an_outage(serve, tmp_path, nats_scratch):
    port = int(NATS_URL.rsplit(":", 1)[1])
    proxy = TcpProxy(("127.0.0.1", port), free_port()).start()
    target = (f"kind: nats, url: 'nats://127.0.0.1:{proxy.port}', stream: {nats_scratch}, "
              f"subject: '{nats_scratch}.{{conversation}}', duplicate_window_seconds: 60")

    def read():
        try:
            messages = brokerkit.nats_messages(nats_scratch)
        except Exception:  # the stream is made by the first publish
            return []
        return [(m.headers["Nats-Msg-Id"], events.conversation_key(json.loads(m.data)), m.data) for m in messages]

    run_outage(serve, tmp_path, target, proxy, read)


def row(n: int, conversation: str = "c2c:a|b", body: bytes = b"{}") -> Row:
    return Row(n, "broker", f"C2C.CallbackAfterSendMsg|MsgKey={n}", conversation, "C2C.CallbackAfterSendMsg",
               APP_ID, body, 0, 0.0)


def redis_target(url: str, prefix: str, **options) -> Target:
    broker = BrokerOptions("redis_stream", url, **{"stream": f"{prefix}.{{command}}", "maxlen": 1000,
                                                   "dedupe_ttl_seconds": 60, **options})
    return Target("broker", "", ("*",), 1.0, None, "redis_stream", broker)


def test_redis_adds_a_repeated_event_once(redis_scratch):
    client, prefix = redis_scratch
    target = redis_target(REDIS_URL, prefix)
    deliver = KindDeliverer()
    assert [deliver(target, row(1)).ok for _ in range(3)] == [True, True, True]  # a lost reply, retried
    assert client.xlen(f"{prefix}.C2C.CallbackAfterSendMsg") == 1
    assert 0 < client.ttl(f"imhook-dedupe:{{{prefix}.C2C.CallbackAfterSendMsg}}:{events.event_id(row(1).dedupe)}") <= 60


def test_without_a_marker_redis_is_at_least_once(redis_scratch):
    client, prefix = redis_scratch
    deliver = KindDeliverer()
    target = redis_target(REDIS_URL, prefix, dedupe_ttl_seconds=0)
    assert deliver(target, row(1)).ok and deliver(target, row(1)).ok
    assert client.xlen(f"{prefix}.C2C.CallbackAfterSendMsg") == 2


@pytest.mark.parametrize(("approximate", "bound"), [(False, 10), (True, 10 + 100)])  # "~": whole nodes of 100
def test_maxlen_bounds_the_stream(redis_scratch, approximate, bound):
    client, prefix = redis_scratch
    deliver = KindDeliverer()
    target = redis_target(REDIS_URL, prefix, maxlen=10, approximate=approximate)
    for n in range(500):
        assert deliver(target, row(n)).ok
    length = client.xlen(f"{prefix}.C2C.CallbackAfterSendMsg")
    assert 10 <= length <= bound
    last = client.xrevrange(f"{prefix}.C2C.CallbackAfterSendMsg", count=1)[0][1]
    assert last[b"event_id"] == events.event_id(row(499).dedupe).encode()  # the newest kept


def test_a_failed_xadd_leaves_no_marker_behind(redis_scratch):
    client, prefix = redis_scratch
    client.set(f"{prefix}.C2C.CallbackAfterSendMsg", "not a stream")
    deliver = KindDeliverer()
    result = deliver(redis_target(REDIS_URL, prefix), row(1))
    assert (result.ok, result.kind) == (False, "redis_error") and "WRONGTYPE" in result.error
    client.delete(f"{prefix}.C2C.CallbackAfterSendMsg")
    assert deliver(redis_target(REDIS_URL, prefix), row(1)).ok  # the retry is not taken for a repeat
    assert client.xlen(f"{prefix}.C2C.CallbackAfterSendMsg") == 1


@pytest.mark.parametrize("kind", ["redis_stream", "nats"])
def test_a_broker_that_is_down_is_a_failed_attempt_without_its_password(kind):
    port = free_port()  # nothing listens there
    url = f"redis://:secret-pw@127.0.0.1:{port}/0" if kind == "redis_stream" else f"nats://u:secret-pw@127.0.0.1:{port}"
    broker = BrokerOptions(kind, url, stream="S", subject="s.{command}", maxlen=10, duplicate_window_seconds=60,
                           max_msgs=10)
    result = KindDeliverer()(Target("down", "", ("*",), 0.5, None, kind, broker), row(1))
    assert (result.ok, result.permanent, result.kind) == (False, False, "connect")
    assert "secret-pw" not in result.error and ":***@" in result.error


def test_nats_drops_a_repeated_event_by_its_id(nats_scratch):
    broker = BrokerOptions("nats", NATS_URL, stream=nats_scratch, subject=f"{nats_scratch}.{{conversation}}",
                           duplicate_window_seconds=60, max_msgs=1000)
    target = Target("broker", "", ("*",), 2.0, None, "nats", broker)
    deliver = KindDeliverer()
    assert [deliver(target, row(1)).ok for _ in range(3)] + [deliver(target, row(2)).ok] == [True] * 4
    messages = brokerkit.nats_messages(nats_scratch)
    assert [m.headers["X-Imhook-Event-Id"] for m in messages] == [events.event_id(row(n).dedupe) for n in (1, 2)]
    assert {m.subject for m in messages} == {f"{nats_scratch}.c2c_3Aa_7Cb"}
