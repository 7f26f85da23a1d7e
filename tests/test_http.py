"""The Flask adapter: the same table of inputs over the WSGI interface, every reply JSON."""

from __future__ import annotations

import json

import pytest

from receiver.app import create_app
from receiver.signature import sign

from .helpers import APP_ID, TOKEN, make_receiver, rules_yaml, sample


@pytest.fixture
def client():
    receiver = make_receiver(rules_yaml(extra="server: {max_body_bytes: 2048}"), env={"IMHOOK_TOKEN": TOKEN})
    return create_app(receiver=receiver).test_client()


def signed_query(command, token=TOKEN):
    import time

    now = int(time.time())
    return {"SdkAppid": APP_ID, "CallbackCommand": command, "contenttype": "json",
            "RequestTime": str(now), "Sign": sign(token, now)}


CASES = [
    ("POST", "/callback", "State.StateChange", None, 200),
    ("POST", "/", "State.StateChange", None, 200),
    ("POST", "/callback", "State.StateChange", "wrong-token", 401),
    ("GET", "/callback", "State.StateChange", None, 405),
    ("PUT", "/callback", "State.StateChange", None, 405),
    ("POST", "/elsewhere", "State.StateChange", None, 404),
]


@pytest.mark.parametrize("method, path, command, token, status", CASES)
def test_statuses_and_json_everywhere(client, method, path, command, token, status):
    response = client.open(path, method=method, query_string=signed_query(command, token or TOKEN),
                           data=json.dumps(sample(command)), content_type="text/plain")
    assert response.status_code == status
    assert response.mimetype == "application/json"
    reply = response.get_json()
    assert reply["ActionStatus"] == ("OK" if status == 200 else "FAIL")
    assert reply["ErrorInfo"] or status == 200


def test_body_over_limit_is_413_before_reading_it(client):
    body = sample("State.StateChange")
    body["Padding"] = "x" * 5000
    response = client.post("/callback", query_string=signed_query("State.StateChange"), data=json.dumps(body))
    assert response.status_code == 413
    assert response.get_json()["ActionStatus"] == "FAIL"


def test_content_type_is_ignored(client):
    for content_type in ("application/json", "application/x-www-form-urlencoded", None):
        response = client.post("/callback", query_string=signed_query("C2C.CallbackBeforeSendMsg"),
                               data=json.dumps(sample("C2C.CallbackBeforeSendMsg")), content_type=content_type)
        assert response.get_json() == sample("C2C.CallbackBeforeSendMsg.response")


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_rules_and_core_do_not_import_flask():
    import subprocess
    import sys

    code = ("import sys, rules, rules.chain, rules.loader, receiver.core, receiver.tencent.platform;"
            "print('flask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("query_string", [
    "SdkAppid=1&CallbackCommand=C2C.CallbackBeforeSendMsg", "a=1&a=2&b=", "a=%E4%BD%A0&b=%FF%FE&c=x+y",
    "=&&x", "n=caf\u00c3\u00a9", "", "a=b=c&=v&k", "SdkAppid=1400&Sign=ab12&RequestTime=17&ClientIP=1.2.3.4",
])
def test_query_parsing_matches_werkzeug(query_string):
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from receiver.app import parse_query

    environ = EnvironBuilder(path="/callback").get_environ()
    environ["QUERY_STRING"] = query_string
    assert parse_query(query_string) == Request(environ).args.to_dict()


def test_request_ids_are_unique_and_a_forked_child_draws_a_new_prefix():
    import os

    from receiver.core import RequestIds

    ids = RequestIds()
    mine = [ids() for _ in range(1000)]
    assert len(set(mine)) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in mine)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, ids().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child[:16] != mine[0][:16] and child not in mine
    assert ids() == mine[0][:16] + f"{1000:016x}"  # the parent goes on with its own prefix and count


def test_a_lone_surrogate_in_a_callback_is_written_back_as_its_json_escape():
    from receiver import jsonout

    value = json.loads('{"Text": "a\\ud800b", "n": 123456789012345678901234567890}')
    assert json.loads(jsonout.dumps(value)) == value
