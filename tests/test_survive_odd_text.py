"""Over real gunicorn: a callback carrying a lone surrogate is answered, recorded and forwarded, and
never switches recording off; a stalled recording pipeline shows in /readyz and the metrics."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import pytest
import requests

from receiver.client import post_callback
from receiver.recording.store import Store

from .helpers import APP_ID, TOKEN, free_port, sample
from .test_ops_support import Downstream, c2c_after, config_text, server_env, wait_until, worker_pids

pytestmark = pytest.mark.integration


def recording_config(tmp_path, **recording) -> str:
    options = {"path": str(tmp_path / "recordings.sqlite"), "flush_interval_seconds": 0.05, **recording}
    return f"app_id: '{APP_ID}'\nrules: []\nrecording:\n" + "".join(
        f"  {key}: {json.dumps(value)}\n" for key, value in options.items())


def odd_c2c(n: int, account: str = "\ud800eve") -> bytes:
    raw = json.dumps(c2c_after(n, sender=account)).encode()
    assert b"\\ud800eve" in raw or account != "\ud800eve"  # sent as the escape, as the IM may
    return raw


def send(server, raw: bytes):
    result = post_callback(server.callback_url, raw, app_id=APP_ID, token=TOKEN, timeout=10)
    assert result.status == 200 and result.reply["ErrorCode"] == 0, result
    return result


def recorded(tmp_path) -> list:
    db = tmp_path / "recordings.sqlite"
    if not db.exists():
        return []
    store = Store(db, create=False)
    try:
        return [r for r in store.records() if not r.rejected]
    finally:
        store.close()


def ready(server) -> tuple[int, dict]:
    response = requests.get(server.url + "/readyz", timeout=5)
    return response.status_code, response.json()


def test_a_lone_surrogate_account_is_recorded_and_so_is_every_callback_after_it(serve, tmp_path):
    server = serve(recording_config(tmp_path), workers=1, env=server_env())
    bodies = [odd_c2c(1)] + [odd_c2c(n, account=f"user{n}") for n in range(2, 7)]
    for raw in bodies:
        send(server, raw)
    assert wait_until(lambda: len(recorded(tmp_path)) == len(bodies), 10), server.log()[-3000:]
    assert ready(server)[0] == 200  # the writer is alive and drained
    records = sorted(recorded(tmp_path), key=lambda r: r.received_at)
    assert [r.body for r in records] == bodies  # byte for byte: replay parses the same callback
    assert records[0].user == "\\ud800eve"  # the TEXT column holds the escape (docs/recording.md)
    assert server.stop() == 0
    assert "Traceback" not in server.log(), server.log()[-3000:]  # no thread died, no log line failed


def test_a_worker_killed_with_such_a_record_in_its_journal_the_next_worker_stores_it(serve, tmp_path):
    # A long flush interval keeps the record in the journal (and the queue) when the worker is killed.
    text = recording_config(tmp_path, flush_interval_seconds=60, batch_size=1000)
    server = serve(text, workers=1, env=server_env())
    send(server, odd_c2c(1))
    journal = tmp_path / "recordings.sqlite.journal"
    assert any(b"\\ud800eve" in path.read_bytes() for path in journal.glob("*.jsonl"))
    [victim] = worker_pids(server.process.pid)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: [p for p in worker_pids(server.process.pid) if p != victim], 20)
    assert wait_until(lambda: [r.user for r in recorded(tmp_path)] == ["\\ud800eve"], 20), server.log()[-3000:]
    for n in range(2, 5):  # the new worker keeps recording (its writer survived the import)
        send(server, odd_c2c(n))
    assert ready(server)[0] == 200
    assert server.stop() == 0
    assert sorted(json.loads(r.body)["MsgSeq"] for r in recorded(tmp_path)) == [1, 2, 3, 4]
    assert "of a process that died: 1 records, 1 of them not stored before" in server.log()
    assert "Exception in thread" not in server.log(), server.log()[-3000:]


def test_an_after_callback_with_a_lone_surrogate_is_forwarded_byte_for_byte(serve, tmp_path):
    downstream = Downstream(free_port()).start()
    try:
        text = config_text(tmp_path, "forwarding:\n  outbox: outbox.sqlite\n  poll_seconds: 0.05\n  targets:\n"
                                     f"    - url: {downstream.url}\n")
        server = serve(text, workers=2, env=server_env())
        body = sample("Group.CallbackAfterGroupInfoChanged")
        body["Name"] = "\udfffname"
        raw = json.dumps(body).encode()
        assert b'"Name": "\\udfffname"' in raw
        send(server, raw)
        send(server, raw)  # the IM's retry: a duplicate, forwarded once
        send(server, json.dumps(c2c_after(1)).encode())  # and the events after it flow too
        assert wait_until(lambda: len(downstream.events()) == 2, 10), server.log()[-3000:]
        time.sleep(0.3)
        # Two workers record independently, so the two events may reach the outbox in either
        # order: forwarding keeps order within a conversation, not across them.
        by_command = {headers["X-Imhook-Command"]: body for headers, body in downstream.events()}
        assert sorted(by_command) == ["C2C.CallbackAfterSendMsg", "Group.CallbackAfterGroupInfoChanged"]
        forwarded, after = by_command["Group.CallbackAfterGroupInfoChanged"], by_command["C2C.CallbackAfterSendMsg"]
        assert forwarded == raw  # the exact bytes the IM sent, the escape included
        assert json.loads(after)["MsgKey"] == c2c_after(1)["MsgKey"]
        with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
            [(conversation,)] = db.execute("SELECT conversation FROM outbox WHERE command LIKE 'Group.%'").fetchall()
        assert conversation == "group:@TGS#2J4SZEAEL"
        assert ready(server)[0] == 200
        metrics = requests.get(server.url + "/metrics", timeout=5).text
        quarantined = [float(line.split()[-1]) for line in metrics.splitlines()
                       if line.startswith("imhook_forward_quarantined_total")]
        assert sum(quarantined) == 0  # nothing had to be set aside
        assert "Traceback" not in server.log(), server.log()[-3000:]
    finally:
        downstream.stop()


def test_a_stalled_recording_turns_readyz_to_503_with_the_reason_and_back_once_drained(serve, tmp_path):
    server = serve(recording_config(tmp_path, stall_seconds=1), workers=1, env=server_env())
    send(server, odd_c2c(1, account="before"))
    assert wait_until(lambda: len(recorded(tmp_path)) == 1, 10)
    holder = sqlite3.connect(tmp_path / "recordings.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the writer cannot write: records stop draining
    try:
        send(server, odd_c2c(2))
        # (while under a second old, the check may first time out on the locked file: 503 all the same)
        stalled = lambda: (lambda r: r if "has not drained" in r[1]["checks"]["recording"] else None)(ready(server))
        status, report = wait_until(stalled, 10) or ready(server)
        assert status == 503 and report["checks"]["recording"].startswith("recording has not drained for "), report
        assert "1 being written" in report["checks"]["recording"], report
        metrics = requests.get(server.url + "/metrics", timeout=5).text
        undrained = [float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith("imhook_recording_undrained_seconds")]
        assert undrained and max(undrained) >= 1, metrics
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert wait_until(lambda: ready(server)[0] == 200, 30), ready(server)
    assert len(recorded(tmp_path)) == 2
    assert server.stop() == 0
