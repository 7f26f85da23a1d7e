"""NetEase IM over real HTTP through gunicorn: signed requests, every reply shape, recording and replay."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from receiver.recording.store import Store

from .helpers import ROOT, NETEASE_APP_KEY, NETEASE_SECRET, netease_headers, sample

pytestmark = pytest.mark.integration

RULES = """
recording:
  path: {db}
  flush_interval_seconds: 0.05
rules:
  - use: sensitive_words
    config: {{words: [badword]}}
  - use: sensitive_words
    name: hard_words
    config: {{words: [refuseme], action: refuse, code: {{tencent: 120050, netease: 20050}}}}
  - use: sensitive_words
    name: drop_words
    config: {{words: [dropme], action: drop}}
  - use: recall_policy
    config: {{window_seconds: 60, late_code: 20011, code: 20010}}
"""


def text(body: str, event_type: int = 1) -> dict:
    return {"eventType": event_type, "fromAccount": "alice", "to": "bob", "msgType": "TEXT", "body": body,
            "msgTimestamp": "1700000000000"}


def recall(age_seconds: int, actor: str = "alice") -> dict:
    return {**sample("eventType35.recall", "netease"), "fromAccount": actor, "time": "1700000000000",
            "timestamp": str(1700000000000 + age_seconds * 1000)}


def signed(body: bytes, **changes) -> dict:
    headers = netease_headers(body)
    headers.update(changes)
    return {k: v for k, v in headers.items() if v is not None}


def raw(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


# (case, path, body bytes, headers from the body, status, expected reply or the keys it must hold)
CASES = [
    ("allow", "/netease/callback", raw(text("hello")), signed, 200, {"errCode": 0, "responseCode": 200}),
    ("mask", "/netease/callback", raw(text("a badword")), signed, 200,
     {"errCode": 0, "responseCode": 200, "modifyResponse": {"body": "a *******"}}),
    ("refuse", "/netease/callback", raw(text("refuseme")), signed, 200, {"errCode": 1, "responseCode": 20050}),
    ("drop", "/netease/callback", raw(text("dropme", 2)), signed, 200, {"errCode": 1, "responseCode": 200}),
    ("recall in time", "/netease/callback", raw(recall(5)), signed, 200, {"errCode": 0, "responseCode": 200}),
    ("late recall", "/netease/callback", raw(recall(61)), signed, 200, {"errCode": 1, "responseCode": 20011}),
    ("others' recall", "/netease/callback", raw(recall(5, "mallory")), signed, 200,
     {"errCode": 1, "responseCode": 20010}),
    ("login sample", "/netease/callback", raw(sample("eventType40.qchat-login", "netease")), signed, 200,
     {"errCode": 0, "responseCode": 200}),
    ("unknown event", "/netease/callback", raw({"eventType": 74}), signed, 200, {"errCode": 0, "responseCode": 200}),
    ("wrong CheckSum", "/netease/callback", raw(text("hello")), lambda b: signed(b, CheckSum="f" * 40), 401, None),
    ("wrong MD5", "/netease/callback", raw(text("hello")), lambda b: signed(b, MD5="0" * 32), 401, None),
    ("stale CurTime", "/netease/callback", raw(text("hello")),
     lambda b: netease_headers(b, now=time.time() - 3600), 401, None),
    ("missing headers", "/netease/callback", raw(text("hello")), lambda b: {}, 401, None),
    ("another AppKey", "/netease/callback", raw(text("hello")), lambda b: netease_headers(b, app_key="x"), 403, None),
    ("not JSON", "/netease/callback", b"{oops", signed, 400, None),
    ("copy feed address check", "/netease/copy", b"", lambda b: {}, 200, {"errCode": 0, "responseCode": 200}),
    ("copy feed event", "/netease/copy", raw({"eventType": "1", "body": "refuseme"}), signed, 200,
     {"errCode": 0, "responseCode": 200}),
    ("copy feed unsigned", "/netease/copy", raw({"eventType": "1"}), lambda b: {}, 401, None),
]


def test_signed_netease_requests_over_gunicorn(serve, tmp_path):
    db = tmp_path / "rec.sqlite"
    server = serve(RULES.format(db=json.dumps(str(db))), workers=2)
    for case, path, body, make_headers, status, reply in CASES:
        response = requests.post(server.url + path, data=body, headers=make_headers(body), timeout=10)
        assert response.status_code == status, (case, response.text)
        assert response.headers["Content-Type"].startswith("application/json"), case
        answer = response.json()
        if reply is not None:
            assert answer == reply, case
        else:
            assert answer["errCode"] == 1 and answer["responseCode"] == status, case
    # Tencent's paths are untouched.
    assert requests.post(server.callback_url, data=b"{}", timeout=10).status_code in (400, 401, 403)
    assert server.stop() == 0
    assert NETEASE_SECRET not in server.log()

    store = Store(db, create=False)
    try:
        records = list(store.records())
    finally:
        store.close()
    assert len(records) == len(CASES) + 1  # and the Tencent request
    netease = [r for r in records if r.query.get("imhook.platform")]
    assert len(netease) == len(CASES)
    login = next(r for r in records if r.command == "NetEase.QChatLogin")
    assert b"xxxxx" not in login.body  # the login token is not recorded
    assert {r.command for r in records} >= {"NetEase.P2PMessage", "NetEase.RecallMessage", "NetEase.UnknownEvent",
                                            "NetEase.Copy.AddressCheck", "NetEase.Copy.Message"}

    # Offline replay dispatches on the record's platform: the same rules give the same replies.
    config = tmp_path / "imhook.yaml"
    result = subprocess.run([sys.executable, "-m", "receiver.cli", "replay", str(db), "--rules", str(config),
                             "--fail-on-change"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**server.env})
    assert result.returncode == 0, result.stdout + result.stderr

    # Over HTTP: each NetEase record goes to the receiver's NetEase path, signed anew from the
    # environment's AppKey and secret; the same rules give the same replies.
    again = serve(RULES.format(db=json.dumps(str(tmp_path / "again.sqlite"))), workers=1)
    result = subprocess.run([sys.executable, "-m", "receiver.cli", "replay", str(db), "--url", again.callback_url,
                             "--fail-on-change"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**again.env})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "errors 0" in result.stdout and "changed 0" in result.stdout, result.stdout


@pytest.mark.parametrize("url, platform, expected", [
    ("http://h:8080/callback", "netease", "http://h:8080/netease/callback"),
    ("http://h:8080/", "netease.copy", "http://h:8080/netease/copy"),
    ("https://h/im/callback", "netease", "https://h/im/netease/callback"),
    ("http://h/netease/callback?x=1", "netease.copy", "http://h/netease/copy"),
])
def test_a_netease_record_is_replayed_to_the_receivers_netease_path(url, platform, expected):
    from receiver.recording.replay import netease_url

    assert netease_url(url, platform) == expected


def test_netease_paths_are_404_without_a_key(serve, tmp_path):
    server = serve("rules: []\n", workers=1, env={"IMHOOK_NETEASE_APP_KEY": "", "IMHOOK_NETEASE_APP_SECRET": ""})
    for path in ("/netease/callback", "/netease/copy"):
        body = raw(text("hello"))
        response = requests.post(server.url + path, data=body, headers=netease_headers(body), timeout=10)
        assert response.status_code == 404 and response.json()["errCode"] == 1


def test_imhook_send_and_sign_for_netease(serve, tmp_path):
    server = serve("rules: []\n", workers=1)
    sample_file = ROOT / "tests" / "samples" / "netease" / "callback_p2p_text_eventType1.json"
    env = {**server.env, "IMHOOK_NETEASE_APP_KEY": NETEASE_APP_KEY, "IMHOOK_NETEASE_APP_SECRET": NETEASE_SECRET}
    sent = subprocess.run([sys.executable, "-m", "receiver.cli", "send", "--platform", "netease", str(sample_file),
                           "--url", server.url + "/netease/callback"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"errCode": 0, "responseCode": 200}
    wrong = subprocess.run([sys.executable, "-m", "receiver.cli", "send", "--platform", "netease", str(sample_file),
                            "--url", server.url + "/netease/callback", "--token", "wrong"], capture_output=True,
                           text=True, env=env, timeout=60)
    assert wrong.returncode == 3 and "401" in wrong.stderr
    signed_out = subprocess.run([sys.executable, "-m", "receiver.cli", "sign", "--platform", "netease", "--token",
                                 NETEASE_SECRET, "--body", str(sample_file)], capture_output=True, text=True,
                                timeout=60)
    lines = dict(line.split("=", 1) for line in signed_out.stdout.split())
    headers = {"AppKey": NETEASE_APP_KEY, **lines}
    response = requests.post(server.url + "/netease/callback", data=sample_file.read_bytes(), headers=headers,
                             timeout=10)
    assert response.status_code == 200, response.text
