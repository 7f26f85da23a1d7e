"""Every command with bad input ends in one line naming the problem and the fix, never a traceback.

One table: (command line, exit code, fragments the message line must hold). The exit codes are
the documented ones (docs/cli.md): 2 usage or config error, 3 nothing tested or the target failed.
A tiny local HTTP server plays a receiver that answers 401, 500 or not JSON.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from receiver.cli import main

from .helpers import SAMPLES, free_port

CLEAN_ENV = {name: None for name in ("IMHOOK_CONFIG", "IMHOOK_APP_ID", "IMHOOK_TOKEN", "IMHOOK_TOKEN_FILE",
                                     "IMHOOK_BIND", "PORT")}
GOOD = """app_id: 1400000000
recording: {path: rec.sqlite}
rules:
  - use: sensitive_words
    config: {words: [red packet], action: refuse}
"""
SCENARIO = """users: [alice, bob]
steps:
  - do: alice sends bob "hi"
    expect: bob receives "hi"
"""
REPLIES = {  # path -> (status, content type, body)
    "/401": (401, "application/json", b'{"ActionStatus": "FAIL", "ErrorCode": 401, "ErrorInfo": "bad Sign"}'),
    "/500": (500, "text/html", b"<h1>Internal Server Error</h1>"),
    "/notjson": (200, "text/plain", b"ok"),
}


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 -- the http.server naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, kind, body = REPLIES[self.path.split("?")[0]]
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A folder of good and bad inputs, and a recording made from the samples."""
    root = tmp_path_factory.mktemp("cli-errors")
    files = {
        "conf/rules.yaml": GOOD,
        "conf/nodb.yaml": GOOD.replace("rec.sqlite", "never-recorded.sqlite"),
        "empty.yaml": "", "empty.jsonl": "", "empty.json": "",
        "bad.yaml": "rules: [\n  - use: x\n",
        "twoapps.yaml": "app_id: [1400000000, 1400000001]\n",
        "float.yaml": "app_id: 14.5\n",
        "wrongtype.yaml": "app_id: 1\nchain: {deadline_ms: soon}\n",
        "unknownrule.yaml": "app_id: 1\nrules:\n  - use: no_such_rule\n",
        "list.json": "[1, 2]",
        "nocmd.json": '{"From_Account": "alice"}',
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "scenario.yaml": SCENARIO,
        "badscenario.yaml": "users: [alice]\nsteps:\n  - do: alice frobnicates\n",
        "dir/keep": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "binary.bin").write_bytes(b"\xff\xfe\x00\x81" * 64)
    with sqlite3.connect(root / "other.sqlite") as db:
        db.execute("CREATE TABLE t (x)")
    runner = CliRunner()
    made = runner.invoke(main, ["recordings", "import-samples", str(SAMPLES / "tencent"), "--config",
                                str(root / "conf/rules.yaml"), "--app-id", "1400000000"], env=CLEAN_ENV)
    assert made.exit_code == 0, made.output
    made = runner.invoke(main, ["recordings", "export", str(root / "week.jsonl"), "--config",
                                str(root / "conf/rules.yaml")], env=CLEAN_ENV)
    assert made.exit_code == 0, made.output
    return root


SAMPLE = str(SAMPLES / "tencent" / "C2C.CallbackBeforeSendMsg.json")
APP = ("--app-id", "1400000000")

# (id, argv with {ws}/{http}/{dead}/{sample}, extra env, exit code, fragments of the message line)
CASES = [
    # serve: checked before gunicorn is started
    ("serve-missing-config", ["serve", "--config", "{ws}/nope.yaml"], {}, 2, ["--config", "does not exist"]),
    ("serve-env-config", ["serve"], {"IMHOOK_CONFIG": "{ws}/nope.yaml"}, 2, ["$IMHOOK_CONFIG", "--config FILE"]),
    ("serve-config-is-dir", ["serve", "--config", "{ws}/dir"], {}, 2, ["not a file"]),
    ("serve-bad-bind", ["serve", "--bind", "localhost:http"], {}, 2, ["HOST:PORT", "0 to 65535"]),
    ("serve-bad-port-env", ["serve"], {"PORT": "eighty"}, 2, ["$PORT", "HOST:PORT"]),
    ("serve-threads-zero", ["serve", "--threads", "0"], {}, 2, ["--threads", "x>=1"]),
    # check: what serve would refuse
    ("check-missing", ["check", "{ws}/nope.yaml"], {}, 2, ["does not exist"]),
    ("check-bad-yaml", ["check", "--config", "{ws}/bad.yaml"], {}, 2, ["bad.yaml:", "not valid YAML"]),
    ("check-empty", ["check", "--config", "{ws}/empty.yaml"], {}, 2, ["no app id", "IMHOOK_APP_ID"]),
    ("check-binary", ["check", "--config", "{ws}/binary.bin"], {}, 2, ["binary.bin", "not a UTF-8 text file"]),
    ("check-two-app-ids", ["check", "--config", "{ws}/twoapps.yaml"], {}, 2, ["app_id", "one SdkAppid", "list"]),
    ("check-float-app-id", ["check", "--config", "{ws}/float.yaml"], {}, 2, ["app_id", "whole number"]),
    ("check-bad-env-app-id", ["check", "--config", "{ws}/conf/rules.yaml"], {"IMHOOK_APP_ID": "abc"}, 2,
     ["IMHOOK_APP_ID", "whole number"]),
    ("check-wrong-type", ["check", "--config", "{ws}/wrongtype.yaml"], {}, 2, ["chain.deadline_ms", "number"]),
    ("check-unknown-rule", ["check", "--config", "{ws}/unknownrule.yaml"], {}, 2, ["no_such_rule", "known rules"]),
    ("check-twice", ["check", "{ws}/conf/rules.yaml", "--config", "{ws}/conf/rules.yaml"], {}, 2, ["once"]),
    # explain
    ("explain-no-command", ["explain", "--config", "{ws}/conf/rules.yaml", "{ws}/nocmd.json"], {}, 2,
     ["the body has no CallbackCommand", "pass --command or add it"]),
    ("explain-empty", ["explain", "{ws}/empty.json"], {}, 2, ["not JSON", "callback body"]),
    ("explain-binary", ["explain", "{ws}/binary.bin"], {}, 2, ["not JSON"]),
    ("explain-list", ["explain", "{ws}/list.json"], {}, 2, ["JSON list, not an object"]),
    ("explain-deep", ["explain", "{ws}/deep.json"], {}, 2, ["nested too deeply"]),
    ("explain-bad-config", ["explain", "--rules", "{ws}/bad.yaml", "{sample}"], {}, 2, ["not valid YAML"]),
    # send
    ("send-unreachable", ["send", "{sample}", "--url", "{dead}/callback", *APP], {}, 3,
     ["cannot reach", "connection refused", "imhook serve"]),
    ("send-no-scheme", ["send", "{sample}", "--url", "127.0.0.1:8080", *APP], {}, 2,
     ["not an http(s) URL", "http://127.0.0.1:8080/callback"]),
    ("send-bad-port", ["send", "{sample}", "--url", "http://127.0.0.1:99999/", *APP], {}, 2, ["not a valid URL"]),
    ("send-401", ["send", "{sample}", "--url", "{http}/401", *APP], {}, 3, ["HTTP 401", "--token", "IMHOOK_TOKEN"]),
    ("send-500", ["send", "{sample}", "--url", "{http}/500", *APP], {}, 3, ["HTTP 500", "log"]),
    ("send-not-json", ["send", "{sample}", "--url", "{http}/notjson", *APP], {}, 3, ["not a JSON object"]),
    ("send-empty-body", ["send", "{ws}/empty.json", "--url", "{http}/401", *APP], {}, 2, ["CallbackCommand"]),
    ("send-deep-body", ["send", "{ws}/deep.json", "--url", "{http}/401", *APP], {}, 2, ["CallbackCommand"]),
    ("send-missing-file", ["send", "{ws}/nope.json", "--url", "{http}/401", *APP], {}, 2, ["nope.json"]),
    ("send-bad-app-id", ["send", "{sample}", "--url", "{http}/401", "--app-id", "[1]"], {}, 2, ["SdkAppid"]),
    ("send-zero-timeout", ["send", "{sample}", "--url", "{http}/401", *APP, "--timeout", "0"], {}, 2, ["--timeout"]),
    # replay
    ("replay-empty-source", ["replay", "{ws}/empty.jsonl"], {}, 3, ["nothing replayed", "0 records"]),
    ("replay-unknown-command", ["replay", "{ws}/week.jsonl", "--command", "C2C.Nope"], {}, 3,
     ["0 records selected", "'C2C.Nope' is not a known CallbackCommand"]),
    ("replay-nothing-in-window", ["replay", "{ws}/week.jsonl", "--since", "2999-01-01"], {}, 3,
     ["0 records selected", "--since"]),
    ("replay-bad-time", ["replay", "{ws}/week.jsonl", "--since", "yesterday-ish"], {}, 2, ["cannot read the time"]),
    ("replay-html-missing-folder", ["replay", "{ws}/week.jsonl", "--html", "{ws}/nope/r.html"], {}, 2,
     ["--html", "does not exist", "create it"]),
    ("replay-json-missing-folder", ["replay", "{ws}/week.jsonl", "--json", "{ws}/nope/r.json"], {}, 2, ["--json"]),
    ("replay-json-is-dir", ["replay", "{ws}/week.jsonl", "--json", "{ws}/dir"], {}, 2, ["is a folder"]),
    ("replay-save-missing-folder", ["replay", "{ws}/week.jsonl", "--save", "{ws}/nope/b.jsonl"], {}, 2, ["--save"]),
    ("replay-binary-source", ["replay", "{ws}/binary.bin"], {}, 3, ["no record could be replayed", "not valid JSON"]),
    ("replay-foreign-sqlite", ["replay", "{ws}/other.sqlite"], {}, 2, ["not an imhook recordings database"]),
    ("replay-bad-config", ["replay", "{ws}/week.jsonl", "--config", "{ws}/bad.yaml"], {}, 2, ["not valid YAML"]),
    ("replay-url-and-config", ["replay", "{ws}/week.jsonl", "--url", "{http}/401", "--config",
                               "{ws}/conf/rules.yaml"], {}, 2, ["offline replay"]),
    ("replay-bad-app-id", ["replay", "{ws}/week.jsonl", "--url", "{http}/401", "--app-id", "x"], {}, 2, ["SdkAppid"]),
    ("replay-negative-rate", ["replay", "{ws}/week.jsonl", "--url", "{http}/401", "--rate", "-5"], {}, 2, ["--rate"]),
    ("replay-tiny-rate", ["replay", "{ws}/week.jsonl", "--url", "{http}/401", "--rate", "1e-300"], {}, 2,
     ["--rate", "0.01"]),
    ("replay-url-no-scheme", ["replay", "{ws}/week.jsonl", "--url", "127.0.0.1:8080"], {}, 2, ["http(s) URL"]),
    ("replay-unreachable", ["replay", "{ws}/week.jsonl", "--url", "{dead}/callback", "--fail-on-change"], {}, 3,
     ["no record could be replayed", "cannot reach"]),
    ("replay-401", ["replay", "{ws}/week.jsonl", "--url", "{http}/401", *APP, "--fail-on-change"], {}, 3,
     ["every reply was HTTP 401", "--token", "IMHOOK_TOKEN"]),
    ("replay-500", ["replay", "{ws}/week.jsonl", "--url", "{http}/500", *APP], {}, 3, ["every reply was HTTP 500"]),
    ("replay-not-json", ["replay", "{ws}/week.jsonl", "--url", "{http}/notjson", *APP], {}, 3,
     ["every reply was HTTP 200", "not a JSON object"]),
    # recordings
    ("export-never-recorded", ["recordings", "export", "{ws}/w.jsonl", "--config", "{ws}/conf/nodb.yaml"], {}, 2,
     ["no recordings database at", "never-recorded.sqlite", "recording.path of", "imhook serve"]),
    ("export-missing-folder", ["recordings", "export", "{ws}/nope/w.jsonl", "--config", "{ws}/conf/rules.yaml"], {},
     2, ["does not exist", "create it"]),
    ("export-env-config", ["recordings", "export", "-"], {"IMHOOK_CONFIG": "{ws}/nope.yaml"}, 2,
     ["$IMHOOK_CONFIG", "does not exist"]),
    ("stats-db-is-dir", ["recordings", "stats", "--db", "{ws}/dir"], {}, 2, ["a folder, not a file"]),
    ("stats-foreign-sqlite", ["recordings", "stats", "--db", "{ws}/other.sqlite"], {}, 2, ["other.sqlite"]),
    ("prune-negative", ["recordings", "prune", "--db", "{ws}/conf/rec.sqlite", "--days", "-1"], {}, 2, ["--days"]),
    ("import-missing", ["recordings", "import", "{ws}/nope.jsonl", "--db", "{ws}/x.sqlite"], {}, 2, ["nope.jsonl"]),
    ("import-into-a-file", ["recordings", "import", "{ws}/week.jsonl", "--db", "{ws}/empty.yaml/x.sqlite"], {}, 2,
     ["cannot open recordings database"]),
    ("hash-id-bad-config", ["recordings", "hash-id", "alice", "--config", "{ws}/bad.yaml"], {}, 2, ["not valid YAML"]),
    # emulate
    ("emulate-unreachable", ["emulate", "{ws}/scenario.yaml", "--url", "{dead}/callback", *APP], {}, 3,
     ["cannot reach", "--allow-unreachable"]),
    ("emulate-401", ["emulate", "{ws}/scenario.yaml", "--url", "{http}/401", *APP], {}, 3,
     ["HTTP 401", "--token", "--allow-unreachable"]),
    ("emulate-500", ["emulate", "{ws}/scenario.yaml", "--url", "{http}/500", *APP], {}, 3, ["HTTP 500"]),
    ("emulate-not-json", ["emulate", "{ws}/scenario.yaml", "--url", "{http}/notjson", *APP], {}, 3,
     ["answered no callback", "no JSON object"]),
    ("emulate-bad-scenario", ["emulate", "{ws}/badscenario.yaml", "--url", "{http}/401", *APP], {}, 2,
     ["badscenario.yaml"]),
    ("emulate-binary-scenario", ["emulate", "{ws}/binary.bin", "--url", "{http}/401", *APP], {}, 2,
     ["not a UTF-8 text file"]),
    ("emulate-no-app-id", ["emulate", "{ws}/scenario.yaml", "--url", "{http}/401"], {}, 2, ["--app-id"]),
    ("emulate-ftp", ["emulate", "{ws}/scenario.yaml", "--url", "ftp://example.com/", *APP], {}, 2, ["http(s) URL"]),
]


@pytest.fixture(scope="module")
def dead():
    return f"http://127.0.0.1:{free_port()}"  # bound once, then closed: nothing listens


def _fill(text: str, ws, http, dead) -> str:
    return text.format(ws=ws, http=http, dead=dead, sample=SAMPLE)


@pytest.fixture
def no_exec(monkeypatch):
    """`serve` must refuse before it execs gunicorn, which would replace the test process."""
    def refuse(*args):
        raise AssertionError(f"serve would have started gunicorn: {args}")

    monkeypatch.setattr("os.execv", refuse)


@pytest.mark.parametrize("argv, env, code, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_user_error_is_one_line_with_the_fix_and_its_exit_code(ws, http, dead, no_exec, argv, env, code,
                                                                  fragments):
    env = {**CLEAN_ENV, **{k: _fill(v, ws, http, dead) for k, v in env.items()}}
    result = CliRunner().invoke(main, [_fill(a, ws, http, dead) for a in argv], env=env, catch_exceptions=True)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith(("imhook: ", "Error: "))]
    assert len(lines) == 1, result.stderr  # one message line...
    assert all(f in lines[0] for f in fragments), lines[0]  # ...that names the problem and the fix


def test_the_table_covers_every_command():
    covered = {c[1][0] if c[1][0] != "recordings" else c[1][1] for c in CASES}
    assert covered >= {"serve", "check", "explain", "send", "replay", "emulate", "export", "stats", "prune",
                       "import", "hash-id"}


def test_no_message_shows_a_sign(ws, dead):
    """A URL given with a Sign in it is never echoed with it (the security review's finding)."""
    url = f"{dead}/callback?SdkAppid=1400000000&RequestTime=1669872112&Sign=17773bc39a671d7b9aa8"
    for argv in (["send", SAMPLE, "--url", url, *APP], ["replay", str(ws / "week.jsonl"), "--url", url, "--json", "-"]):
        result = CliRunner().invoke(main, argv, env=CLEAN_ENV)
        assert result.exit_code == 3, result.output
        assert "17773bc39a" not in result.output and "1669872112" not in result.output


def test_a_lone_surrogate_is_printed_as_its_escape(ws, tmp_path):
    body = tmp_path / "surrogate.json"
    body.write_text(json.dumps({"CallbackCommand": "\ud800"}), encoding="utf-8")
    for argv in (["explain", str(body)], ["explain", "--json", str(body)]):
        result = CliRunner().invoke(main, argv, env=CLEAN_ENV)
        assert result.exit_code == 0 and "\\ud800" in result.output, result.output


class _Http:
    """What exit_status reads from an HTTP replay: the replies that were no callback answer."""

    def __init__(self, answered: int, **turned_away: int):
        from collections import Counter

        self.answered = answered
        self.turned_away = Counter({int(k[1:]): v for k, v in turned_away.items()})


@pytest.mark.parametrize("kinds, skipped, runner, fail_on_change, code, fragment", [
    ({"unchanged": 3}, 0, None, True, 0, ""),
    ({"changed": 1, "unchanged": 2}, 0, None, False, 0, ""),
    ({"changed": 1, "unchanged": 2}, 0, None, True, 1, "1 of 3 decisions changed"),
    ({}, 0, None, True, 3, "0 records selected"),
    ({}, 4, None, True, 3, "--include-rejected"),
    ({"changed": 2, "error": 1}, 0, None, True, 3, "1 of 3 records could not be replayed"),  # 3 wins over 1
    ({"error": 2}, 0, None, False, 3, "no record could be replayed"),
    ({"changed": 3}, 0, _Http(3, s401=3), True, 3, "every reply was HTTP 401"),
    ({"changed": 3}, 0, _Http(3, s401=1, s503=2), True, 3, "no usable reply"),
    ({"changed": 3}, 0, _Http(3, s401=2), True, 1, "decisions changed"),  # one real answer: the rules ran
])
def test_replay_exit_status(kinds, skipped, runner, fail_on_change, code, fragment):
    from receiver.recording.replay import exit_status
    from receiver.recording.summary import Case, Summary

    summary = Summary(skipped_rejected=skipped)
    for kind, count in kinds.items():
        for i in range(count):
            summary.add(Case(f"r{i}", "C2C.CallbackBeforeSendMsg", "u", 0.0, "error", error="bad")
                        if kind == "error" else _case(kind))
    got, why = exit_status(summary, runner or object(), fail_on_change=fail_on_change)
    assert got == code and fragment in why


def _case(kind):
    from receiver.recording.summary import Case, Side

    old = Side(200, {"ErrorCode": 0}, "allow", "", "")
    new = old if kind == "unchanged" else Side(200, {"ErrorCode": 1}, "refuse", "r", "why")
    return Case("r", "C2C.CallbackBeforeSendMsg", "u", 0.0, kind, old, new)
