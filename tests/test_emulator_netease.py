"""The emulator playing the NetEase IM against a hand-written fake receiver (tests/netease_fake.py):
signed requests, message sends and their replies, recalls and who is told of them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from emulator.im import netease_url
from emulator.netease.transport import CALLBACK_EXT_MAX
from receiver.cli import main
from receiver.errors import ConfigError

from .helpers import sample
from .netease_fake import APP_KEY, APP_SECRET, HEADER, Reply, authentic, run
from .netease_fake import netease  # noqa: F401 (the fixture)

SENT = "alice sends bob \"hi there\""


def events(report, number: int, user: str, kind: str) -> list:
    return report.step(number).events_of(user, kind)


# --- the request: where, how signed, what shape ---------------------------------------------------

def test_requests_are_signed_as_netease_signs_them(netease):
    report = run(netease, f"- {SENT}\n- alice sends group team \"hello team\"\n")
    assert report.ok, report.transcript()
    assert [r.path for r in netease.requests] == ["/netease/callback"] * 2
    assert all(r.authentic for r in netease.requests)
    first = netease.requests[0]
    assert first.headers["Content-Type"].startswith("application/json")
    assert len(first.headers["CurTime"]) == 13  # milliseconds, not seconds
    assert "CheckSum" not in report.step(1).exchanges[0].query  # the transcript never shows it


def test_a_wrong_secret_is_turned_away_and_the_default_lets_the_message_through(netease):
    report = run(netease, f"- do: {SENT}\n  expect: [bob receives \"hi there\", a warning]\n", secret="wrong")
    assert report.ok, report.transcript()
    assert netease.requests and not any(r.authentic for r in netease.requests)
    assert "HTTP 401" in report.warnings[0]


def test_the_fake_checks_the_body_hash_too():
    request = {"AppKey": APP_KEY, "CurTime": "0", "MD5": "", "CheckSum": ""}
    assert not authentic(request, b"{}")  # a guard that the fake's check can fail


def test_message_events_carry_the_documented_fields(netease):
    run(netease, f"- {SENT}\n- alice sends group team \"hello team\"\n")
    one, team = netease.bodies(1)[0], netease.bodies(2)[0]
    assert set(sample("callback_p2p_text_eventType1", "netease")) <= set(one)
    assert (one["fromAccount"], one["to"], one["body"], one["msgType"], one["fromClientType"]) == \
        ("alice", "bob", "hi there", "TEXT", "AOS")  # the first device acts
    assert isinstance(one["eventType"], int) and one["msgTimestamp"].isdigit()
    assert "attach" not in one and "ext" not in one  # only when the message has them
    assert (team["eventType"], team["to"]) == (2, "6001")


@pytest.mark.parametrize("given, expected", [
    ("http://h:1/callback", "http://h:1/netease/callback"),
    ("http://h:1/im/callback/", "http://h:1/im/netease/callback"),
    ("https://h/netease/callback", "https://h/netease/callback"),
    ("http://h:1", "http://h:1/netease/callback"),
])
def test_netease_url_sits_beside_the_tencent_callback(given, expected):
    assert netease_url(given) == expected


@pytest.mark.parametrize("text", ["\ud800 lone surrogate", "nul \x00 inside", "x" * 1_000_000])
def test_odd_text_is_sent_and_signed_over_the_exact_bytes(netease, text):
    report = run(netease, "- alice sends bob " + json.dumps(text) + "\n")
    assert report.ok and netease.requests[0].authentic, report.transcript()
    assert netease.bodies(1)[0]["body"] == text


# --- sends: the reply decides ----------------------------------------------------------------

SENDS = [
    ("allowed", {"errCode": 0}, ["alice send succeeds", "bob receives \"hi there\""]),
    ("refused in range", {"errCode": 1, "responseCode": 20001}, ["alice send fails 20001", "bob receives nothing"]),
    ("refused, top of range", {"errCode": 1, "responseCode": 20099}, ["alice send fails 20099"]),
    ("refused, over range", {"errCode": 1, "responseCode": 20100}, ["alice send fails 403", "a warning"]),
    ("refused, no code", {"errCode": 1}, ["alice send fails 403", "bob receives nothing"]),
    ("silent drop", {"errCode": 1, "responseCode": 200}, ["alice send succeeds", "bob receives nothing"]),
    ("rewritten", {"errCode": 0, "modifyResponse": {"body": "***"}}, ["bob receives \"***\""]),
    ("rewritten as a string", {"errCode": 0, "modifyResponse": "{\"body\": \"***\"}"},
     ["bob receives \"***\"", "a warning"]),
    ("no errCode", {"responseCode": 20001}, ["alice send succeeds", "bob receives \"hi there\"", "a warning"]),
]


@pytest.mark.parametrize("reply, expect", [row[1:] for row in SENDS], ids=[row[0] for row in SENDS])
def test_a_send_goes_as_the_reply_says(netease, reply, expect):
    netease.answer(1, reply)
    report = run(netease, f"- do: {SENT}\n  expect: {json.dumps(expect)}\n")
    assert report.ok, report.transcript()


def test_a_rewrite_replaces_body_attach_and_ext_and_carries_callback_ext(netease):
    rewrite = {"body": "clean", "attach": "{\"a\":1}", "ext": "{\"e\":2}", "pushContent": "not modelled"}
    netease.answer(1, {"errCode": 0, "modifyResponse": rewrite, "callbackExt": "x" * CALLBACK_EXT_MAX})
    report = run(netease, f"- do: {SENT}\n  ext: '{{\"e\":1}}'\n")
    [event] = events(report, 1, "bob", "new message")
    assert (event.detail["text"], event.detail["attach"], event.detail["ext"]) == ("clean", "{\"a\":1}", "{\"e\":2}")
    assert event.detail["callback_ext"] == "x" * CALLBACK_EXT_MAX and not report.warnings
    assert netease.bodies(1)[0]["ext"] == "{\"e\":1}"  # the original went to the receiver


def test_callback_ext_over_its_limit_is_not_carried(netease):
    netease.answer(1, {"errCode": 0, "callbackExt": "x" * (CALLBACK_EXT_MAX + 1)})
    report = run(netease, f"- {SENT}\n")
    assert events(report, 1, "bob", "new message")[0].detail["callback_ext"] is None
    assert "callbackExt" in report.warnings[0]


def test_no_reply_in_time_lets_through_or_refuses_as_the_console_is_set(netease):
    netease.answer(1, Reply(delay=0.8))
    report = run(netease, f"- do: {SENT}\n  expect: [bob receives a message, a warning]\n")
    assert report.ok, report.transcript()
    header = HEADER.replace("settings: {budget_seconds: 0.5}", "settings: {budget_seconds: 0.5, on_failure: refuse}")
    report = run(netease, f"- do: {SENT}\n  expect: [alice send fails 403, bob receives nothing]\n", header)
    assert report.ok, report.transcript()


def test_team_messages_reach_every_member_and_wait_for_the_offline(netease):
    report = run(netease, "- do: alice sends group team \"hello\"\n"
                          "  expect: [bob receives \"hello\", carol receives \"hello\", dave receives nothing,"
                          " dave has 1 unread in team]\n")
    assert report.ok, report.transcript()


# --- recalls -------------------------------------------------------------------------------------

def test_an_allowed_recall_tells_everyone_except_the_device_that_recalled(netease):
    report = run(netease, f"""\
        - {SENT} as m1
        - do: alice recalls m1 on PC
          expect:
            - alice recall succeeds
            - alice on PC sees no message recalled
            - alice on AOS sees message recalled
            - bob on IOS sees message recalled
            - bob on WEB sees message recalled
            - bob has 0 unread
        """)
    assert report.ok, report.transcript()
    [recall] = netease.bodies(35)
    [sent] = netease.bodies(1)
    assert (recall["fromAccount"], recall["msgFromAccid"], recall["toAccount"], recall["opeType"]) == \
        ("alice", "alice", "bob", 7)
    assert recall["msgidClient"] == sent["msgidClient"] and recall["time"] == recall["time"].strip()
    assert int(recall["timestamp"]) >= int(recall["time"]) >= int(sent["msgTimestamp"])


def test_a_team_recall_tells_every_online_member(netease):
    report = run(netease, """\
        - alice sends group team "oops" as m1
        - do: alice recalls m1 on AOS
          expect: [alice on PC sees message recalled, alice on AOS sees no message recalled,
                   bob on WEB sees message recalled, carol sees message recalled, dave sees no message recalled]
        """)
    assert report.ok, report.transcript()
    assert netease.bodies(35)[0]["opeType"] == 8 and netease.bodies(35)[0]["toAccount"] == "6001"


def test_a_refused_recall_fails_with_the_reply_code_and_tells_nobody(netease):
    netease.answer(35, {"errCode": 1, "responseCode": 20050})
    report = run(netease, f"""\
        - {SENT} as m1
        - do: alice recalls m1
          expect: [alice recall fails 20050, bob sees no message recalled, alice on AOS sees no message recalled]
        - expect: bob has 1 unread
        """)
    assert report.ok, report.transcript()


def test_a_late_recall_refused_by_the_receiver_says_how_old_the_message_is(netease):
    netease.answer(35, {"errCode": 1, "responseCode": 20051})
    report = run(netease, f"- {SENT} as m1\n- do: alice recalls m1 after 90 s\n  expect: alice recall fails 20051\n")
    assert report.ok, report.transcript()
    recall = netease.bodies(35)[0]
    assert int(recall["timestamp"]) - int(recall["time"]) == 90_000


@pytest.mark.parametrize("age, outcome", [(120, "succeeds"), (121, "fails 508")])
def test_the_ims_own_period_fails_a_late_recall_with_508_before_any_callback(netease, age, outcome):
    report = run(netease, f"- {SENT} as m1\n- do: alice recalls m1 after {age} s\n"
                          f"  expect: alice recall {outcome}\n")
    assert report.ok, report.transcript()
    assert len(netease.bodies(35)) == (1 if outcome == "succeeds" else 0)


def test_the_recall_period_is_a_scenario_setting(netease):
    header = HEADER.replace("settings: {budget_seconds: 0.5}",
                            "settings: {budget_seconds: 0.5, recall_window_seconds: 5}")
    steps = f"- {SENT} as m1\n- do: alice recalls m1 after 6 s\n  expect: alice recall fails 508\n"
    report = run(netease, steps, header)
    assert report.ok, report.transcript()


def test_the_last_message_form_and_a_recalled_message_twice(netease):
    report = run(netease, f"- {SENT}\n- alice recalls her last message to bob\n- alice recalls her last message\n")
    assert report.step(2).ok and report.step(3).error == "alice has no delivered message to recall"


def test_recall_from_a_device_that_is_not_online_is_a_step_error(netease):
    report = run(netease, f"- {SENT} as m1\n- alice recalls m1 on IOS\n")
    assert "not online on IOS" in report.step(2).error


# --- scenario files --------------------------------------------------------------------------------

@pytest.mark.parametrize("steps, message", [
    ("- alice adds friend bob\n", "not emulated for NetEase"),
    ("- alice recalls m9\n", "no message sent as 'm9'"),
    ("- alice sends bob \"a\" as m1\n- alice sends bob \"b\" as m1\n", "sent as 'm1' already"),
    ("- alice sends bob \"a\" as m1\n- alice recalls m1 on PHONE\n", "unknown NetEase client type"),
    ("- do: alice sends bob\n  elements: [{custom: x}]\n", "`elements`"),
])
def test_netease_scenario_errors_name_the_step(steps, message):
    from emulator import parse_scenario

    with pytest.raises(ConfigError, match=message):
        parse_scenario(HEADER + "  " + steps.replace("\n", "\n  ").rstrip() + "\n", "n.yaml")


def test_netease_only_forms_are_refused_in_a_tencent_scenario():
    from emulator import parse_scenario

    text = "users: [alice, bob]\nsteps:\n  - alice sends bob \"a\" as m1\n  - alice recalls m1 on PC\n"
    with pytest.raises(ConfigError, match="NetEase's"):
        parse_scenario(text, "t.yaml")


def test_emulate_plays_a_netease_scenario(netease, tmp_path, monkeypatch):
    path = tmp_path / "n.yaml"
    path.write_text(HEADER + f"  - do: {SENT}\n    expect: bob receives \"hi there\"\n", encoding="utf-8")
    monkeypatch.delenv("IMHOOK_APP_ID", raising=False)
    runner = CliRunner()
    missing = runner.invoke(main, ["emulate", str(path), "--url", netease.root + "/callback"])
    assert missing.exit_code == 2 and "IMHOOK_NETEASE_APP_KEY" in missing.output
    env = {"IMHOOK_NETEASE_APP_KEY": APP_KEY, "IMHOOK_NETEASE_APP_SECRET": APP_SECRET}
    result = runner.invoke(main, ["emulate", str(path), "--url", netease.root + "/callback"], env=env)
    assert result.exit_code == 0, result.output
    assert "NetEase.P2PMessage" in result.output and APP_SECRET not in result.output


def test_the_example_scenario_holds_against_its_rules_as_written(netease):
    """examples/scenarios/netease_recall.yaml against a fake that applies its rules file's
    recall_policy as its comments say (the real receiver's run is in test_emulator_imhook)."""
    import yaml

    from emulator import Emulator, load_scenario

    from .helpers import ROOT

    scenario = load_scenario(ROOT / "examples" / "scenarios" / "netease_recall.yaml")
    rules = yaml.safe_load(scenario.receiver_config.read_text(encoding="utf-8"))["rules"]
    policy = next(rule["config"] for rule in rules if rule["use"] == "recall_policy")

    def recall_policy(body):
        if body["eventType"] != 35:
            return {"errCode": 0}
        if body["fromAccount"] != body["msgFromAccid"] and not policy["revoke_others"]:
            return {"errCode": 1, "responseCode": policy["code"]}
        if int(body["timestamp"]) - int(body["time"]) > policy["window_seconds"] * 1000:
            return {"errCode": 1, "responseCode": policy["late_code"]}
        return {"errCode": 0}

    netease.decide = recall_policy
    report = Emulator(netease.root + "/callback", app_key=APP_KEY, app_secret=APP_SECRET).run(scenario)
    assert report.ok and not report.warnings, report.transcript()


def test_the_docs_netease_example_is_a_valid_scenario_that_passes(netease):
    from emulator import Emulator, parse_scenario

    from .helpers import ROOT

    text = (ROOT / "docs" / "emulator.md").read_text(encoding="utf-8")
    section = text[text.index("## NetEase IM"):]
    block = section[section.index("```yaml\n") + 8:section.index("```\n", section.index("```yaml\n") + 8)]
    report = Emulator(netease.root + "/callback", app_key=APP_KEY, app_secret=APP_SECRET).run(
        parse_scenario(block, "docs/emulator.md"))
    assert report.ok, report.transcript()


HOSTILE_REPLIES = [
    ("nested deeper than any parser", b"[" * 100_000 + b"]" * 100_000, "not a JSON object"),
    ("a JSON list", b"[1]", "not a JSON object"),
    ("errCode true", b'{"errCode": true}', "no integer errCode"),
    ("errCode beyond 64 bits", b'{"errCode": 123456789012345678901234567890}', "neither 0 nor 1"),
    ("modifyResponse nested in a string", json.dumps({"errCode": 0, "modifyResponse": "[" * 100_000}).encode(),
     "not a JSON object: ignored"),
    ("responseCode a string", b'{"errCode": 1, "responseCode": "20001"}', "outside 20000"),
]


@pytest.mark.parametrize("raw, warning", [row[1:] for row in HOSTILE_REPLIES], ids=[r[0] for r in HOSTILE_REPLIES])
def test_odd_replies_are_read_with_a_warning_never_a_crash(netease, raw, warning):
    netease.answer(1, Reply(raw))
    report = run(netease, f"- {SENT}\n")
    assert any(warning in w for w in report.warnings), report.warnings
    assert not report.step(1).error


def test_emulate_says_which_netease_setting_is_wrong_when_every_reply_is_401(netease, tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(HEADER + f"  - {SENT}\n", encoding="utf-8")
    env = {"IMHOOK_NETEASE_APP_KEY": APP_KEY, "IMHOOK_NETEASE_APP_SECRET": "wrong"}
    result = CliRunner().invoke(main, ["emulate", str(path), "--url", netease.root + "/callback"], env=env)
    assert result.exit_code == 3 and "IMHOOK_NETEASE_APP_SECRET" in result.output, result.output
