"""Redis paused, killed and restarted under a rate_limit rule: replies keep coming within budget."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from receiver.client import callback_query

from .helpers import APP_ID, TOKEN, free_port
from .test_ops_support import c2c_before, config_text, server_env, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.redis]

BUDGET = 2.0  # the IM's budget (PROTOCOL.md §2)
PER_PHASE = 40


def start_redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    if not wait_until(lambda: _pings(client), timeout=5):
        process.kill()
        raise RuntimeError(f"redis-server did not start on port {port}")
    return process


def _pings(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


def rate_limited(port: int) -> str:
    # Limits far above the load: while Redis answers, every message is allowed; when the rule
    # cannot reach Redis it fails, and its on_error (refuse, to make it visible) decides.
    return ("rules:\n  - use: rate_limit\n    name: rl\n    on_error: refuse\n    config:\n"
            f"      backend: redis\n      redis_url: redis://127.0.0.1:{port}/0\n"
            "      limits: [{key: sender, max: 100000, per_seconds: 60}]\n")


def burst(url: str) -> list[tuple[float, int, int]]:
    """PER_PHASE callbacks from 8 connections: (seconds, HTTP status, ErrorCode) each."""
    def one(n: int):
        body = c2c_before(sender=f"user{n % 7}")
        query = callback_query(body["CallbackCommand"], APP_ID, token=TOKEN)
        started = time.perf_counter()
        response = requests.post(url, params=query, json=body, timeout=5)
        return time.perf_counter() - started, response.status_code, response.json()["ErrorCode"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(PER_PHASE)))


def test_redis_outage_costs_no_reply(serve, tmp_path):
    if shutil.which("redis-server") is None:  # same policy as the redis_client fixture
        message = "redis-server is not installed; this test starts its own throwaway one"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    port = free_port()
    redis_process = start_redis(port)
    try:
        server = serve(config_text(tmp_path, rules=rate_limited(port)), workers=2, threads=8, env=server_env())
        figures = {}

        def phase(name: str, expected_code: int) -> None:
            results = burst(server.callback_url)
            figures[name] = max(s for s, _, _ in results)
            assert all(status == 200 for _, status, _ in results)
            assert [code for _, _, code in results] == [expected_code] * PER_PHASE
            assert figures[name] < BUDGET

        phase("redis up", 0)
        redis_process.send_signal(signal.SIGSTOP)  # hung: connections open, no answers
        phase("redis paused", 1)
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 503
        redis_process.send_signal(signal.SIGCONT)
        redis_process.kill()
        redis_process.wait()
        phase("redis killed", 1)
        redis_process = start_redis(port)
        # The rule's circuit breaker lets a probe through after its cooldown (2 s by default).
        assert wait_until(lambda: all(code == 0 for _, _, code in burst(server.callback_url)), timeout=10)
        phase("redis back", 0)
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 200
        print("\nslowest reply per phase (ms): " + ", ".join(f"{k} {v * 1000:.0f}" for k, v in figures.items()))
    finally:
        redis_process.send_signal(signal.SIGCONT)
        redis_process.kill()
        redis_process.wait()
