"""/metrics, /readyz, JSON logs and forwarding, in process through the Flask test client."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from receiver.client import callback_query
from receiver.ops import logs
from receiver.ops.forward import events
from receiver.ops.forward.sender import stop_all

from .helpers import APP_ID, free_port
from .test_ops_support import Downstream, c2c_after, c2c_before, config_text, make_app, post, wait_until

BOOM = "rules:\n  - use: tests.rulekit:Raise\n    name: boom\n"


@pytest.fixture(autouse=True)
def _stop_forwarders():
    yield
    stop_all()


def metric(client, name: str, **labels) -> float:
    """The value of one sample in the app's /metrics (0 when absent)."""
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_metrics_count_callbacks_by_command_and_outcome(tmp_path, monkeypatch):
    client = make_app(tmp_path, config_text(tmp_path), monkeypatch).test_client()
    before = metric(client, "imhook_callbacks_total", command="C2C.CallbackAfterSendMsg", outcome="notify")
    for n in range(3):
        assert post(client, c2c_after(n)).status_code == 200
    after = metric(client, "imhook_callbacks_total", command="C2C.CallbackAfterSendMsg", outcome="notify")
    assert after - before == 3


def test_rejected_and_unknown_commands_use_bounded_labels(tmp_path, monkeypatch):
    client = make_app(tmp_path, config_text(tmp_path), monkeypatch).test_client()
    labels = dict(command="other", outcome="rejected")
    before = metric(client, "imhook_callbacks_total", **labels)
    for n in range(4):
        query = {"SdkAppid": APP_ID, "CallbackCommand": f"Made.Up{n}"}
        assert client.post("/callback", query_string=query, data="not json").status_code == 400
    assert metric(client, "imhook_callbacks_total", **labels) - before == 4
    assert "Made.Up" not in client.get("/metrics").get_data(as_text=True)


def test_rule_errors_are_counted_by_rule(tmp_path, monkeypatch):
    client = make_app(tmp_path, config_text(tmp_path, rules=BOOM), monkeypatch).test_client()
    before = metric(client, "imhook_rule_faults_total", rule="boom", kind="error")
    assert post(client, c2c_before()).get_json()["ErrorCode"] == 0  # on_error: allow
    assert metric(client, "imhook_rule_faults_total", rule="boom", kind="error") - before == 1
    assert metric(client, "imhook_rule_results_total", rule="boom", result="error") >= 1


def test_chain_timeouts_are_counted(tmp_path, monkeypatch):
    rules = ("chain:\n  deadline_ms: 50\n  on_error: refuse\n"
             "rules:\n  - use: tests.rulekit:Sleep\n    config: {seconds: 0.3}\n")
    client = make_app(tmp_path, config_text(tmp_path, rules=rules), monkeypatch).test_client()
    before = metric(client, "imhook_rule_faults_total", rule="chain", kind="timeout")
    assert post(client, c2c_before()).get_json()["ErrorCode"] == 1
    assert metric(client, "imhook_rule_faults_total", rule="chain", kind="timeout") - before == 1
    assert metric(client, "imhook_decisions_total", rule="chain", outcome="refuse") >= 1


def test_latency_histogram_has_buckets_up_to_the_2s_budget(tmp_path, monkeypatch):
    client = make_app(tmp_path, config_text(tmp_path), monkeypatch).test_client()
    post(client, c2c_after(1))
    text = client.get("/metrics").get_data(as_text=True)
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "imhook_reply_seconds"]
    bounds = {s.labels["le"] for s in family.samples if s.name.endswith("_bucket")}
    assert {"0.001", "0.1", "1.0", "1.5", "2.0", "+Inf"} <= bounds


def test_metrics_can_be_switched_off(tmp_path, monkeypatch):
    client = make_app(tmp_path, config_text(tmp_path, "metrics:\n  enabled: false\n"), monkeypatch).test_client()
    response = client.get("/metrics")
    assert response.status_code == 404 and response.content_type == "application/json"


def test_readyz_is_ready_with_rules_and_stores(tmp_path, monkeypatch):
    client = make_app(tmp_path, config_text(tmp_path), monkeypatch).test_client()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["rules"] == "ok"


def test_readyz_is_503_with_reasons_when_a_rule_backend_is_down(tmp_path, monkeypatch):
    rules = "rules:\n  - use: tests.test_ops_support:NotReady\n    name: backend\n"
    client = make_app(tmp_path, config_text(tmp_path, rules=rules), monkeypatch).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not ready"
    assert body["reasons"] == ["rule:backend: ready() returned 'backend unreachable'"]


def test_readyz_checks_a_redis_rate_limit(tmp_path, monkeypatch):
    port = free_port()  # nothing listens there
    rules = ("rules:\n  - use: rate_limit\n    config:\n      backend: redis\n"
             f"      redis_url: redis://127.0.0.1:{port}/0\n      limits: [{{key: sender, max: 5, per_seconds: 1}}]\n")
    client = make_app(tmp_path, config_text(tmp_path, rules=rules), monkeypatch).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "rule:rate_limit" in response.get_json()["checks"]


def log_lines(capsys) -> list[dict]:
    logs.flush()  # callback lines written straight to the handler wait for its writer thread
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "imhook.callback"]


def signed_post(client, body: dict):
    query = {**callback_query(body["CallbackCommand"], APP_ID), "Sign": "SIGN-MARKER", "RequestTime": "1"}
    return client.post("/callback", query_string=query, data=json.dumps(body))


@pytest.mark.parametrize("log_text", [False, True])
def test_one_json_line_per_callback_text_only_when_enabled(tmp_path, monkeypatch, capsys, log_text):
    extra = f"server:\n  log_text: {str(log_text).lower()}\n"
    client = make_app(tmp_path, config_text(tmp_path, extra, rules=BOOM), monkeypatch).test_client()
    capsys.readouterr()
    signed_post(client, c2c_before(text="TEXT-MARKER"))
    (line,) = log_lines(capsys)
    assert {k: line[k] for k in ("command", "app_id", "outcome", "rule", "status")} == {
        "command": "C2C.CallbackBeforeSendMsg", "app_id": APP_ID, "outcome": "allow", "rule": "", "status": 200}
    assert line["request_id"] and line["latency_ms"] >= 0
    assert line["trace"] == ["boom:error"]
    raw = json.dumps(line)
    assert "SIGN-MARKER" not in raw
    assert ("TEXT-MARKER" in raw) is log_text


def test_rejected_requests_are_logged_with_their_error(tmp_path, monkeypatch, capsys):
    client = make_app(tmp_path, config_text(tmp_path), monkeypatch).test_client()
    capsys.readouterr()
    client.post("/callback", query_string={"SdkAppid": "999", "CallbackCommand": "X"}, data="{}")
    (line,) = log_lines(capsys)
    assert line["status"] == 403 and line["outcome"] == "rejected" and "SdkAppid" in line["error"]


def test_callback_lines_can_be_switched_off(tmp_path, monkeypatch, capsys):
    extra = "logging:\n  callbacks: false\n"
    client = make_app(tmp_path, config_text(tmp_path, extra), monkeypatch).test_client()
    capsys.readouterr()
    post(client, c2c_after(1))
    assert log_lines(capsys) == []


def forwarding_config(tmp_path, url: str, **target) -> str:
    options = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in target.items())
    return config_text(tmp_path, "forwarding:\n  outbox: outbox.sqlite\n"
                                 "  retry: {base_seconds: 0.05, cap_seconds: 0.2}\n"
                                 f"  targets:\n    - url: {url}\n{options}")


def test_after_callbacks_are_forwarded_signed_and_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_FORWARD_SECRET", "s3cret")
    downstream = Downstream(free_port()).start()
    try:
        text = forwarding_config(tmp_path, downstream.url, secret_env="TEST_FORWARD_SECRET",
                                 commands=["C2C.CallbackAfter*"])
        client = make_app(tmp_path, text, monkeypatch).test_client()
        for n in range(3):
            post(client, c2c_after(n))
        post(client, c2c_after(1))  # the IM sends it again
        post(client, c2c_before())  # a before-callback: never forwarded
        post(client, {"CallbackCommand": "State.StateChange", "EventTime": 1, "Info": {"Action": "Login",
                      "To_Account": "x", "Reason": ""}})  # not in the target's commands
        got = wait_until(lambda: len(downstream.events()) >= 3 and downstream.events(), timeout=5)
        assert len(got) == 3
        for headers, body in got:
            assert events.verify(b"s3cret", headers["X-Imhook-Timestamp"], body, headers["X-Imhook-Signature"])
            assert headers["X-Imhook-Command"] == "C2C.CallbackAfterSendMsg"
        assert [json.loads(body)["MsgSeq"] for _, body in got] == [0, 1, 2]
        assert metric(client, "imhook_forward_duplicates_total") >= 1
        assert (tmp_path / "outbox.sqlite").exists()  # relative to the config file's folder
    finally:
        downstream.stop()


def test_forwarding_backlog_is_exported(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/down"  # nothing listens: events wait in the outbox
    client = make_app(tmp_path, forwarding_config(tmp_path, url, name="crm"), monkeypatch).test_client()
    for n in range(4):
        post(client, c2c_after(n, sender=f"user{n}"))
    assert metric(client, "imhook_forward_backlog", target="crm") == 4
    assert wait_until(lambda: metric(client, "imhook_forward_failures_total", target="crm", kind="connect"), 5)
    assert client.get("/readyz").get_json()["checks"]["outbox"] == "ok"
