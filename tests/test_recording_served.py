"""Recording under gunicorn: two workers write to one SQLite file, and SIGTERM loses nothing."""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from receiver.client import callback_query, post_callback
from receiver.recording.store import Store

from .helpers import APP_ID, ROOT, TOKEN, request_samples, sample
from .test_recording import message
from .test_recording_rules import rules_yaml

pytestmark = pytest.mark.integration
# The served workers import the test rule from tests/.
ENV = {"PYTHONPATH": str(ROOT)}
NO_APPLE = {"name": "no_apple", "word": "apple"}


def served_config(db) -> str:
    return rules_yaml(NO_APPLE, recording=f"recording:\n  path: {json.dumps(str(db))}\n"
                                          "  flush_interval_seconds: 0.05\n")


def read_all(db) -> list:
    store = Store(db, create=False)
    try:
        return list(store.records())
    finally:
        store.close()


def test_served_workers_record_every_callback_they_answer(serve, tmp_path):
    db = tmp_path / "rec.sqlite"
    server = serve(served_config(db), workers=2, env=ENV)
    bodies = [json.dumps(sample(name)).encode() for name in request_samples()]
    bodies += [json.dumps(message(f"{'apple' if i % 3 == 0 else 'pear'} #{i}")).encode() for i in range(30)]

    def post(raw, token=TOKEN):
        return raw, post_callback(server.callback_url, raw, app_id=APP_ID, token=token, timeout=10)

    with ThreadPoolExecutor(8) as pool:
        answered = list(pool.map(post, bodies))
        rejected = list(pool.map(lambda raw: post(raw, token="wrong"), bodies[:3]))
    query = callback_query("C2C.CallbackBeforeSendMsg", APP_ID, token=TOKEN)
    rejected.append((b"{oops", post_callback(server.callback_url, b"{oops", app_id=APP_ID, query=query)))
    assert server.stop() == 0

    records = read_all(db)
    assert len(records) == len(bodies) + 4
    by_body = {r.body: r for r in records if not r.rejected}
    for raw, result in answered:
        assert result.ok and by_body[raw].reply == result.reply and by_body[raw].status == 200
    assert sum(r.outcome == "refuse" for r in records) == 10
    flagged = [r for r in records if r.rejected]
    assert sorted(r.status for r in flagged) == sorted(res.status for _, res in rejected) == [400, 401, 401, 401]


def test_sigterm_during_load_loses_no_record(serve, tmp_path):
    db = tmp_path / "rec.sqlite"
    server = serve(served_config(db), workers=2, threads=4, env=ENV)
    accepted: set[int] = set()
    lock = threading.Lock()
    numbers = itertools.count()

    def client() -> None:
        session = requests.Session()
        for n in numbers:
            if n > 200_000:  # a safety net; SIGTERM ends the loop long before
                return
            try:
                result = post_callback(server.callback_url, message(f"load {n}", MsgRandom=n), app_id=APP_ID,
                                       token=TOKEN, session=session, timeout=10)
            except requests.RequestException:
                return  # the server has gone away
            if result.ok:
                with lock:
                    accepted.add(n)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(accepted) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.process.send_signal(signal.SIGTERM)  # mid-load: requests are still in flight
    for thread in threads:
        thread.join(60)
    assert server.process.wait(60) == 0, server.log()[-4000:]

    records = read_all(db)
    recorded = {json.loads(r.body)["MsgRandom"] for r in records if not r.rejected}
    assert len(accepted) >= 300, server.log()[-4000:]
    missing = sorted(accepted - recorded)
    assert not missing, (f"{len(missing)} of {len(accepted)} accepted callbacks were not recorded "
                         f"({len(records)} records, e.g. {missing[:10]}):\n{server.log()[-4000:]}")
