"""A forwarding target down for a while (and imhook restarted meanwhile): every event arrives once,
in order per conversation, signed."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict

import pytest
import requests

from receiver.client import post_callback
from receiver.ops.forward import events

from .helpers import APP_ID, TOKEN, free_port
from .test_ops_support import Downstream, c2c_after, config_text, server_env, wait_until

pytestmark = pytest.mark.integration

SECRET = "downstream-secret"
CONVERSATIONS = [("alice", "bob"), ("bob", "alice"), ("carol", "dave"), ("erin", "frank"), ("gina", "hal")]


def forwarding(url: str) -> str:
    return ("forwarding:\n  outbox: outbox.sqlite\n  poll_seconds: 0.1\n"
            "  retry: {base_seconds: 0.1, cap_seconds: 0.5}\n"
            f"  targets:\n    - url: {url}\n      name: downstream\n      secret_env: FORWARD_SECRET\n"
            "      commands: ['C2C.CallbackAfter*']\n")


def send(url: str, seqs: range, sent: list) -> None:
    """Each conversation in its own thread, its messages one after another (so their order is known)."""
    def conversation(sender: str, receiver: str) -> None:
        for n in seqs:
            body = c2c_after(n * 100 + CONVERSATIONS.index((sender, receiver)), sender=sender, receiver=receiver)
            assert post_callback(url, body, app_id=APP_ID, token=TOKEN).ok
            sent.append(body["MsgKey"])

    threads = [threading.Thread(target=conversation, args=pair) for pair in CONVERSATIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_events_wait_for_a_downstream_that_is_down_and_arrive_once(serve, tmp_path):
    downstream = Downstream(free_port()).start()
    env = server_env(FORWARD_SECRET=SECRET)
    text = config_text(tmp_path, forwarding(downstream.url))
    sent: list[str] = []
    try:
        server = serve(text, workers=2, threads=4, env=env)
        send(server.callback_url, range(0, 6), sent)  # downstream up
        assert wait_until(lambda: len(downstream.events()) == len(sent), timeout=10)

        downstream.stop()
        send(server.callback_url, range(6, 14), sent)  # downstream down
        duplicates = [c2c_after(n * 100, sender="alice", receiver="bob") for n in range(6, 9)]
        for body in duplicates:  # the IM sends some callbacks twice
            assert post_callback(server.callback_url, body, app_id=APP_ID, token=TOKEN).ok
        # Let every conversation's head fail at least once (retries back off up to 0.5 s).
        failures = wait_until(lambda: (n := _metric(server.url, "imhook_forward_failures_total")) >= 2 * len(
            CONVERSATIONS) and n, timeout=10)
        assert failures

        server.stop()  # imhook restarts while the downstream is still down
        server = serve(text, workers=2, threads=4, env=env)
        assert _metric(server.url, "imhook_forward_backlog") == len(sent) - 6 * len(CONVERSATIONS)
        send(server.callback_url, range(14, 18), sent)

        downstream.start()  # back on the same port
        assert wait_until(lambda: len(downstream.events()) >= len(sent), timeout=20)
        wait_until(lambda: False, timeout=1.0)  # give a stray duplicate time to show up
        got = downstream.events()
    finally:
        downstream.stop()

    ids = Counter(headers["X-Imhook-Event-Id"] for headers, _ in got)
    bodies = [json.loads(body) for _, body in got]
    print(f"\n{len(sent)} distinct events (+{len(duplicates)} duplicate callbacks), {failures:.0f} failed "
          f"attempts while down, {len(got)} deliveries, {sum(ids.values()) - len(ids)} duplicates delivered")
    assert sorted(b["MsgKey"] for b in bodies) == sorted(sent)  # every event, exactly once
    assert max(ids.values()) == 1
    for headers, body in got:
        assert events.verify(SECRET.encode(), headers["X-Imhook-Timestamp"], body, headers["X-Imhook-Signature"])
    order = defaultdict(list)
    for b in bodies:
        order[(b["From_Account"], b["To_Account"])].append(b["MsgSeq"])
    for pair, seqs in order.items():
        assert seqs == sorted(seqs), f"{pair} delivered out of order"


def _metric(url: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url + "/metrics", timeout=2).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)
