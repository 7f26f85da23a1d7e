"""Broker targets, the pure parts: names from templates, safe tokens, the config and its errors."""

from __future__ import annotations

import re

import pytest

from receiver.config import parse_config
from receiver.errors import ConfigError
from receiver.ops.forward import brokerconf
from receiver.ops.forward.brokerconf import TOKEN_MAX_CHARS, encode_token, render, stream_subjects
from receiver.ops.forward.events import resolve_targets
from receiver.ops.forward.natsjs import header_value

# What NATS takes in one subject token without a second meaning (and a JetStream-safe name).
SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


@pytest.mark.parametrize(("value", "token"), [
    ("c2c:alice|bob", "c2c_3Aalice_7Cbob"),
    ("group:@TGS#1", "group_3A_40TGS_231"),
    ("a.b*c>d e", "a_2Eb_2Ac_3Ed_20e"),
    ("under_score", "under_5Fscore"),
    ("", "_"),
    ("群", "_E7_BE_A4"),
    ("\ud800", "_5C_75_64_38_30_30"),  # the lone surrogate by its escape, as the outbox stores it
    ("\0", "_00"),
])
def test_a_token_holds_only_safe_characters(value, token):
    assert encode_token(value) == token
    assert SAFE_TOKEN.match(token)


def test_distinct_values_give_distinct_tokens():
    values = ["a_2E", "a.", "a_", "a", "c2c:a|b", "c2c:a_7Cb", "x" * TOKEN_MAX_CHARS, "x" * (TOKEN_MAX_CHARS + 1)]
    assert len({encode_token(v) for v in values}) == len(values)


@pytest.mark.parametrize("length", [TOKEN_MAX_CHARS, TOKEN_MAX_CHARS + 1, 10**6])
def test_a_long_value_is_bounded_by_a_digest(length):
    token = encode_token("g" * length)
    assert len(token) <= TOKEN_MAX_CHARS and SAFE_TOKEN.match(token)
    assert token == ("g" * length if length <= TOKEN_MAX_CHARS else token)
    assert token.startswith("h_") == (length > TOKEN_MAX_CHARS)


@pytest.mark.parametrize(("template", "command", "name"), [
    ("imhook.{command}", "C2C.CallbackAfterSendMsg", "imhook.C2C.CallbackAfterSendMsg"),
    ("imhook.events.{conversation}", "C2C.CallbackAfterSendMsg", "imhook.events.c2c_3Aa_7Cb"),
    ("x.{app_id}.{command}", "a..*.>", "x.1400.a._._2A._3E"),  # no empty token, no wildcard
    ("imhook:{command}", "Group.CallbackAfterSendMsg\r\n", "imhook:Group.CallbackAfterSendMsg_0D_0A"),
])
def test_render(template, command, name):
    assert render(template, command, "c2c:a|b", "1400") == name


@pytest.mark.parametrize(("template", "problem"), [
    ("imhook.{command}", None),
    ("imhook.events.{conversation}", None),
    ("{app_id}:{conversation}", None),
    ("imhook.{nope}", "unknown placeholder"),
    ("imhook.{command!r}", "unknown placeholder"),
    ("imhook.{command:>9}", "unknown placeholder"),
    ("imhook.{command", "not a valid template"),
    ("im hook.{command}", "outside placeholders"),
    ("imhook.*", "outside placeholders"),
    ("imhook.>", "outside placeholders"),
    ("imhook..{command}", "empty part"),
    (".imhook", "empty part"),
    ("imhook.", "empty part"),
])
def test_template_problems(template, problem):
    found = brokerconf.template_problem(template)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(("template", "subjects"), [
    ("imhook.events.{conversation}", "imhook.events.>"),
    ("imhook.{command}", "imhook.>"),
    ("imhook.x{command}", "imhook.>"),
    ("{command}", ">"),
    ("imhook.all", "imhook.all"),
])
def test_the_stream_covers_every_subject_of_its_template(template, subjects):
    assert stream_subjects(template) == subjects


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
    ("nats://user:s3cret@host:4222", "nats://user:***@host:4222"),
    ("redis://host:6379/0", "redis://host:6379/0"),
])
def test_a_url_is_shown_without_its_password(url, shown):
    assert brokerconf.redact(url) == shown


def test_a_header_value_cannot_start_another_header():
    assert header_value("C2C.CallbackAfterSendMsg\r\nNats-Msg-Id: x") == "C2C.CallbackAfterSendMsg\\r\\nNats-Msg-Id: x"
    assert header_value("\ud800é") == "\\ud800\\xe9"


def targets(yaml: str, env: dict | None = None):
    config = parse_config("app_id: '1400000000'\nforwarding:\n  targets:\n" + yaml, "imhook.yaml", {})
    return resolve_targets(config.forwarding["targets"], env or {})


def test_defaults_of_each_kind():
    http, stream, jet = targets("    - url: http://crm.example/in\n"
                                "    - {kind: redis_stream, url: 'redis://127.0.0.1:6379/0'}\n"
                                "    - {kind: nats, url: 'nats://127.0.0.1:4222'}\n")
    assert (http.kind, http.broker, http.url) == ("http", None, "http://crm.example/in")
    assert (stream.name, stream.url) == ("127.0.0.1:6379", "")
    assert stream.broker == brokerconf.BrokerOptions(
        "redis_stream", "redis://127.0.0.1:6379/0", stream="imhook.{command}", maxlen=100_000, approximate=True,
        dedupe_ttl_seconds=86_400)
    assert jet.broker == brokerconf.BrokerOptions(
        "nats", "nats://127.0.0.1:4222", stream="IMHOOK", subject="imhook.events.{command}", create_stream=True,
        duplicate_window_seconds=600.0, max_msgs=1_000_000)


def test_the_url_comes_from_the_environment_or_a_file_and_never_shows(tmp_path):
    secret_url = "redis://:p4ssw0rd@127.0.0.1:6379/2"
    (tmp_path / "url").write_text(secret_url + "\n")
    (by_env,) = targets("    - {kind: redis_stream, name: a, url_env: BROKER_URL}\n", {"BROKER_URL": secret_url})
    (by_file,) = targets(f"    - {{kind: redis_stream, name: b, url_file: '{tmp_path / 'url'}'}}\n")
    assert by_env.broker.url == by_file.broker.url == secret_url
    assert "p4ssw0rd" not in repr(by_env) + repr(by_file)


@pytest.mark.parametrize(("yaml", "env", "message"), [
    ("- {url: 'http://x', maxlen: 5}", {}, ":4: forwarding.targets[0].maxlen: is an option of kind redis_stream"),
    ("- {kind: redis_stream, url: 'redis://x', subject: 'a.{command}'}", {},
     "forwarding.targets[0].subject: is an option of kind nats"),
    ("- {kind: nats, url: 'nats://x', secret_env: S}", {},
     "forwarding.targets[0].secret_env: is an option of kind http"),
    ("- {kind: redis_stream, url: 'redis://x', url_env: A}", {}, "url_env: give exactly one of url, url_env, url_file"),
    ("- {kind: redis_stream}", {}, "forwarding.targets[0].url: give exactly one"),
    ("- {url_env: A}", {}, "url_env: an http target takes its URL from `url`"),
    ("- {kind: kafka, url: 'x'}", {}, "forwarding.targets[0].kind: Must be one of: http, redis_stream, nats"),
    ("- {kind: redis_stream, url: 'http://x'}", {}, "url: the redis_stream URL must start with redis://"),
    ("- {kind: nats, url: 'redis://x'}", {}, "url: the nats URL must start with nats://"),
    ("- {kind: redis_stream, url: 'redis://x:port/0'}", {}, "url: the redis_stream URL is not a URL"),
    ("- {kind: nats, url_env: U}", {"U": "nats://u:hidden@x:99999"}, "url_env: the nats URL is not a URL"),
    ("- {kind: nats, url: 'nats://x', stream: 'a.b'}", {}, "stream: a JetStream stream name"),
    ("- {kind: nats, url: 'nats://x', subject: 'a.{nope}'}", {}, "subject: unknown placeholder {nope}"),
    ("- {kind: redis_stream, url: 'redis://x', stream: 'a b'}", {}, "stream: outside placeholders"),
    ("- {kind: redis_stream, url: 'redis://x', maxlen: 0}", {}, "maxlen:"),
    ("- {kind: redis_stream, url_env: NOPE}", {},
     "forwarding.targets[0].url_env: environment variable NOPE is not set"),
    ("- {kind: redis_stream, url_env: U}", {"U": "nats://u:hidden@x"}, "url_env: the redis_stream URL must start"),
    ("- {kind: nats, url_file: '/nonexistent/url'}", {}, "url_file: cannot read the URL file /nonexistent/url"),
])
def test_config_errors_name_their_place(yaml, env, message):
    with pytest.raises(ConfigError) as caught:
        targets("    " + yaml + "\n", env)
    assert message in str(caught.value)
    assert "hidden" not in str(caught.value)
