"""Thousands of malformed queries and bodies: never a 500, never a crash, every reply is JSON."""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.client import callback_query

from .helpers import APP_ID, TOKEN, request_samples, sample
from .test_ops_support import config_text, make_app, server_env

RULES = """rules:
  - use: tests.rulekit:Append
    config: {suffix: "!"}
  - use: contact_info
  - use: sensitive_words
    config: {words: ["badword"]}
"""
SAMPLES = [sample(name) for name in request_samples()]
QUERY_KEYS = ["SdkAppid", "CallbackCommand", "contenttype", "ClientIP", "OptPlatform", "Sign", "RequestTime"]

text = st.text(max_size=40)
json_scalars = st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats() | text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(text, inner, max_size=4), max_leaves=12)


@st.composite
def mutated_sample(draw) -> dict:
    """A real sample with a few fields replaced, removed or added (nested ones included)."""
    body = json.loads(json.dumps(draw(st.sampled_from(SAMPLES))))
    for _ in range(draw(st.integers(1, 4))):
        target = body
        # Walk down into a nested dict or list element some of the time (MsgBody[0].MsgContent...).
        while draw(st.booleans()):
            children = [v for v in (target.values() if isinstance(target, dict) else target)
                        if isinstance(v, (dict, list)) and v]
            if not children:
                break
            target = draw(st.sampled_from(children))
        if isinstance(target, list):
            target[draw(st.integers(0, len(target) - 1))] = draw(json_values)
        elif target and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(target)))
            if draw(st.booleans()):
                del target[key]
            else:
                target[key] = draw(json_values)
        else:
            target[draw(text)] = draw(json_values)
    return body


def good_query(body) -> dict:
    command = body.get("CallbackCommand") if isinstance(body, dict) else None
    return callback_query(command if isinstance(command, str) else "C2C.CallbackAfterSendMsg", APP_ID)


# Half the time the app id is right, so garbage also reaches the command and body checks.
queries = st.tuples(st.dictionaries(st.sampled_from(QUERY_KEYS) | text, text, max_size=8),
                    st.sampled_from([{}, {"SdkAppid": APP_ID}]),
                    st.sampled_from([{}, {"CallbackCommand": "C2C.CallbackBeforeSendMsg"},
                                     {"CallbackCommand": "Group.CallbackAfterSendMsg"}])
                    ).map(lambda parts: {**parts[0], **parts[1], **parts[2]})
raw_bodies = st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())


def assert_json_reply(status: int, content_type: str, data: bytes) -> None:
    assert status != 500 and status < 600
    assert content_type.startswith("application/json"), (status, content_type, data[:200])
    reply = json.loads(data)
    assert isinstance(reply, dict) and "ErrorCode" in reply


IN_PROCESS = settings(max_examples=1200, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture
def client(tmp_path, monkeypatch):
    # log_text on: the log line then reads the texts of whatever the fuzzer sends.
    extra = "server:\n  log_text: true\n"
    return make_app(tmp_path, config_text(tmp_path, extra, rules=RULES), monkeypatch).test_client()


def run(name: str, client, strategy, make_request) -> None:
    """Drive `make_request(client, example)` over IN_PROCESS examples; print replies by status."""
    seen: dict[int, int] = {}

    @IN_PROCESS
    @given(example=strategy)
    def check(example):
        response = make_request(client, example)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert_json_reply(response.status_code, response.content_type, response.data)

    check()
    print(f"\n{name}: {sum(seen.values())} requests, replies by status {dict(sorted(seen.items()))}")


def test_mutated_samples(client):
    run("mutated samples", client, mutated_sample(), lambda c, body: c.post(
        "/callback", query_string=good_query(body), data=json.dumps(body)))


def test_garbage_queries_and_bodies(client):
    requests_ = st.tuples(queries, raw_bodies, st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE"]),
                          st.sampled_from(["/", "/callback", "/callback/", "/nope"]))
    run("garbage", client, requests_, lambda c, r: c.open(r[3], method=r[2], query_string=r[0], data=r[1]))


def test_truncated_and_spliced_bodies(client):
    spliced = st.tuples(mutated_sample(), st.binary(max_size=200), st.integers(0, 400))
    run("truncated/spliced", client, spliced, lambda c, r: c.post(
        "/callback", query_string=good_query(r[0]), data=json.dumps(r[0]).encode()[:r[2]] + r[1]))


@pytest.mark.integration
def test_fuzz_over_real_http(serve, tmp_path):
    """A smaller run through gunicorn, signed, so bodies pass the Sign check and reach the parser."""
    server = serve(config_text(tmp_path, rules=RULES), workers=2, threads=4, env=server_env())
    session = requests.Session()
    seen: dict[int, int] = {}

    @settings(max_examples=300, deadline=None, database=None)
    @given(body=mutated_sample(), raw=raw_bodies, use_raw=st.booleans())
    def check(body, raw, use_raw):
        query = callback_query(body.get("CallbackCommand") if isinstance(body.get("CallbackCommand"), str)
                               else "C2C.CallbackAfterSendMsg", APP_ID, token=TOKEN)
        data = raw if use_raw else json.dumps(body).encode()
        response = session.post(server.callback_url, params=query, data=data, timeout=5)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert_json_reply(response.status_code, response.headers.get("Content-Type", ""), response.content)

    check()
    print(f"\nreal HTTP fuzz, replies by status: {dict(sorted(seen.items()))}")
    assert server.process.poll() is None
    assert "Traceback" not in server.log()
