"""The command line as a user runs it: every command, its --help, its errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from receiver.cli import main

from .helpers import APP_ID, ROOT, SAMPLES, TOKEN, sample

RULES = """app_id: 1400000000
recording: {enabled: false}
rules:
  - use: sensitive_words
    config: {words: [red packet], action: refuse, code: 120100, info: no gambling}
"""


@pytest.fixture
def run():
    runner = CliRunner()

    def _run(*args, env=None):
        return runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)

    return _run


@pytest.mark.parametrize("command", ["serve", "sign", "send", "check", "explain", "replay", "recordings",
                                     "emulate"])
def test_every_command_has_help(run, command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_sign_prints_the_documented_vector(run):
    result = run("sign", "--token", "xxxxyyyy", "--time", "1669872112")
    assert result.output.splitlines() == [
        "RequestTime=1669872112", "Sign=17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"]


def test_explain_json_has_reply_and_trace(run, tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    result = run("explain", "--json", "--rules", tmp_path / "rules.yaml",
                 SAMPLES / "tencent" / "C2C.CallbackBeforeSendMsg.json")
    out = json.loads(result.output)
    assert out["reply"] == {"ActionStatus": "OK", "ErrorCode": 120100, "ErrorInfo": "no gambling"}
    assert out["outcome"] == "refuse" and out["rule"] == "sensitive_words"
    assert [(s["rule"], s["result"]) for s in out["trace"]] == [("sensitive_words", "refuse")]


def test_explain_text(run, tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    result = run("explain", "--rules", tmp_path / "rules.yaml", SAMPLES / "tencent" / "C2C.CallbackBeforeSendMsg.json")
    assert "C2C.CallbackBeforeSendMsg: REFUSE by sensitive_words" in result.output
    assert '"ErrorCode": 120100' in result.output


def test_check_prints_the_resolved_chain(run):
    result = run("check", ROOT / "examples" / "production.yaml", env={"IMHOOK_APP_ID": APP_ID})
    assert result.exit_code == 0
    assert "examples/production.yaml: OK" in result.output
    assert "1. message-flood (rules.builtin.rate_limit:RateLimit)" in result.output
    assert "3. words (rules.builtin.sensitive_words:SensitiveWords)" in result.output


def test_check_reports_a_bad_file_with_its_place_and_exit_2(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("app_id: 1\nrules:\n  - use: sensitive_words\n    config: {words: [x], action: shout}\n")
    result = CliRunner().invoke(main, ["check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:4: rules[0].config.action: Must be one of" in result.output


def test_send_posts_a_signed_callback_to_a_running_receiver(serve, run):
    server = serve(RULES.replace("recording: {enabled: false}\n", ""))
    result = run("send", SAMPLES / "tencent" / "C2C.CallbackBeforeSendMsg.json", "--url", server.callback_url,
                 "--app-id", APP_ID, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("HTTP 200")
    assert json.loads(result.output.split("\n", 1)[1]) == {
        "ActionStatus": "OK", "ErrorCode": 120100, "ErrorInfo": "no gambling"}
    wrong = CliRunner().invoke(main, ["send", str(SAMPLES / "tencent" / "State.StateChange.json"), "--url",
                                      server.callback_url, "--app-id", APP_ID, "--token", "wrong"])
    assert wrong.exit_code == 3 and "HTTP 401" in wrong.output and "IMHOOK_TOKEN" in wrong.output


def test_send_without_app_id_says_how(run):
    result = CliRunner().invoke(main, ["send", str(SAMPLES / "tencent" / "State.StateChange.json"), "--url",
                                       "http://127.0.0.1:9/"], env={"IMHOOK_APP_ID": ""})
    assert result.exit_code == 2 and "IMHOOK_APP_ID" in result.output
    assert sample("State.StateChange")  # the file it would have sent is a real sample
