"""A rule that hangs for 10 s: every reply still leaves within the chain deadline, as on_error says."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from receiver.client import callback_query

from .helpers import APP_ID, TOKEN
from .test_ops_support import c2c_before, config_text, server_env, worker_pids

pytestmark = pytest.mark.integration

HANGING = """chain:
  deadline_ms: 300
  on_error: refuse
  threads: 4
rules:
  - use: tests.rulekit:Sleep
    name: hangs
    config: {seconds: 10}
"""
REQUESTS = 24  # more than the chain's 4 threads: later decisions queue behind hung ones


def timed_post(url: str, n: int) -> tuple[float, int, dict]:
    body = c2c_before(text=f"hello {n}")
    query = callback_query(body["CallbackCommand"], APP_ID, token=TOKEN)
    started = time.perf_counter()
    response = requests.post(url, params=query, json=body, timeout=5)
    return time.perf_counter() - started, response.status_code, response.json()


def test_a_hanging_rule_cannot_hold_the_reply(serve, tmp_path):
    server = serve(config_text(tmp_path, rules=HANGING), workers=2, threads=8, env=server_env())
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda n: timed_post(server.callback_url, n), range(REQUESTS)))
        slowest = max(seconds for seconds, _, _ in results)
        print(f"\n{REQUESTS} callbacks through a 10 s rule with a 300 ms deadline: slowest reply "
              f"{slowest * 1000:.0f} ms")
        for seconds, status, reply in results:
            assert status == 200
            assert reply == {"ActionStatus": "OK", "ErrorCode": 1, "ErrorInfo": ""}  # on_error: refuse
            assert seconds < 1.0
    finally:
        # Hung rule threads would hold a graceful stop for up to 10 s each: stop the master (so it
        # respawns nobody), then kill its workers.
        workers = worker_pids(server.process.pid)
        server.process.send_signal(signal.SIGTERM)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        server.stop()
