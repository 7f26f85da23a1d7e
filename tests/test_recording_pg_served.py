"""gunicorn with 2 workers recording into PostgreSQL; the database goes away mid-run and comes back.

"Away" is a scratch database of this test refusing connections, its sessions terminated: the
machine's shared PostgreSQL server keeps running for everyone else.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from receiver.client import post_callback

from .helpers import APP_ID, ROOT, TOKEN
from .pgfixtures import create_database, drop_database, make_available, make_unavailable, pg_server  # noqa: F401
from .test_recording import message
from .test_recording_rules import rules_yaml

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
ENV = {"PYTHONPATH": str(ROOT)}
PASSWORD = "s3cret-pw"  # trust auth accepts it; it must show up nowhere
REPLY_BUDGET_SECONDS = 1.0  # well inside the IM's 2 s, on a 2-core machine shared with others


def texts_stored(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT body FROM recordings WHERE command = 'C2C.CallbackBeforeSendMsg'").fetchall()
    return [json.loads(bytes(body))["MsgBody"][0]["MsgContent"]["Text"] for (body,) in rows]


def readyz(server) -> tuple[int, dict]:
    response = requests.get(server.url + "/readyz", timeout=5)
    return response.status_code, response.json()


def test_replies_stay_fast_while_postgresql_is_away_and_every_answered_callback_is_stored_once(
        serve, tmp_path, pg_server):
    name = f"imhook_test_{os.getpid()}_served"
    url = create_database(name)
    secret_url = url.replace("postgres@", f"postgres:{PASSWORD}@")
    config = rules_yaml(recording=("recording:\n"
                                   f"  store: {json.dumps(secret_url)}\n"
                                   f"  journal_dir: {json.dumps(str(tmp_path / 'journal'))}\n"
                                   "  flush_interval_seconds: 0.05\n  stall_seconds: 2\n"))
    server = serve(config, workers=2, env=ENV)
    answered: list[str] = []
    slowest = 0.0

    def post(text: str) -> None:
        nonlocal slowest
        started = time.perf_counter()
        result = post_callback(server.callback_url, json.dumps(message(text)).encode(), app_id=APP_ID,
                               token=TOKEN, timeout=10)
        slowest = max(slowest, time.perf_counter() - started)
        assert result.status == 200 and result.reply["ErrorCode"] == 0, result
        answered.append(text)

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(post, [f"before #{i}" for i in range(40)]))
        deadline = time.monotonic() + 30
        while len(texts_stored(url)) < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sorted(texts_stored(url)) == sorted(answered)

        make_unavailable(name)
        slowest = 0.0
        degraded = None
        deadline = time.monotonic() + 40
        i = 0
        with ThreadPoolExecutor(4) as pool:
            while time.monotonic() < deadline:
                list(pool.map(post, [f"away #{i + k}" for k in range(8)]))
                i += 8
                status, body = readyz(server)
                if status == 503:
                    degraded = body
                    break
                time.sleep(0.2)
            list(pool.map(post, [f"away late #{k}" for k in range(40)]))
        assert slowest < REPLY_BUDGET_SECONDS, f"slowest reply {slowest:.3f} s with the database away"
        assert degraded is not None, "/readyz never said the recording is not draining"
        reason = json.dumps(degraded)
        assert "recording" in reason and "has not drained" in reason, reason
        assert PASSWORD not in reason

        make_available(name)
        deadline = time.monotonic() + 60
        while len(texts_stored(url)) < len(answered) and time.monotonic() < deadline:
            time.sleep(0.5)
        stored = texts_stored(url)
        assert sorted(stored) == sorted(answered)  # every answered callback, each exactly once
        deadline = time.monotonic() + 20
        while readyz(server)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert readyz(server)[0] == 200
    finally:
        make_available(name)
        server.stop()
        log = server.log()
        drop_database(name)
    assert PASSWORD not in log
    assert "imhook_test_" in log  # the database was named in the log, masked


def test_gunicorn_stops_at_start_with_one_line_naming_db_upgrade_when_the_database_is_behind(
        serve, tmp_path, pg_server):
    name = f"imhook_test_{os.getpid()}_{secrets.token_hex(3)}_behind"
    url = create_database(name, upgrade=False).replace("postgres@", f"postgres:{PASSWORD}@")
    try:
        with pytest.raises(RuntimeError) as caught:
            serve(rules_yaml(recording=f"recording:\n  store: {json.dumps(url)}\n"), workers=1, env=ENV, timeout=20)
    finally:
        drop_database(name)
    output = str(caught.value)
    assert "gunicorn exited with 2" in output
    [line] = [line for line in output.splitlines() if line.startswith("imhook:")]
    assert "run `imhook db upgrade`" in line and PASSWORD not in output and ":***@" in line
