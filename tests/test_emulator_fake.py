"""The emulator against a hand-written fake receiver: what it sends, in what order, and how it
reads every kind of reply (including late, non-200 and non-JSON ones); the command line."""

from __future__ import annotations

import re
import textwrap
import time

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.signature import sign

from .emulator_fake import APP_ID, HEADER, OK, REWRITE, TOKEN, Answer, kinds, run
from .emulator_fake import fake  # noqa: F401 (the fixture)


# --- what is sent ------------------------------------------------------------------------------

def test_c2c_send_is_signed_and_ordered_with_realistic_ids(fake):
    before = time.time()
    report = run(fake, '- alice sends bob "one"\n- alice sends bob "two"\n- bob sends alice "back"\n')
    assert report.ok, report.transcript()
    assert fake.commands == ["C2C.CallbackBeforeSendMsg", "C2C.CallbackAfterSendMsg"] * 3
    for received in fake.received:
        q = received.query
        assert (q["SdkAppid"], q["contenttype"], q["OptPlatform"]) == (APP_ID, "json", "Android")
        assert q["CallbackCommand"] == received.body["CallbackCommand"]
        assert re.fullmatch(r"203\.0\.113\.\d+", q["ClientIP"])
        assert q["Sign"] == sign(TOKEN, q["RequestTime"]) and abs(int(q["RequestTime"]) - before) < 30
    first, second, third = fake.bodies("C2C.CallbackBeforeSendMsg")
    for body in (first, second, third):
        assert body["MsgKey"] == f"{body['MsgSeq']}_{body['MsgRandom']}_{body['MsgTime']}"
        assert body["MsgId"].endswith(f"-{body['MsgTime']}-{body['MsgRandom']}")
        assert isinstance(body["EventTime"], int) and abs(body["EventTime"] / 1000 - before) < 30
        assert body["OnlineOnlyFlag"] == 0
    assert second["MsgSeq"] == first["MsgSeq"] + 1  # one conversation, growing sequence
    assert third["MsgSeq"] == second["MsgSeq"] + 1  # the same conversation seen from bob
    assert first["MsgRandom"] != second["MsgRandom"]
    after = fake.bodies("C2C.CallbackAfterSendMsg")
    assert [a["UnreadMsgNum"] for a in after] == [1, 2, 1]
    assert all(a["SendMsgResult"] == 0 and a["MsgKey"] == b["MsgKey"] for a, b in zip(after, (first, second, third)))


def test_unsigned_when_no_token(fake, monkeypatch):
    monkeypatch.delenv("IMHOOK_TOKEN", raising=False)
    run(fake, '- alice sends bob "x"\n', token="")
    assert "Sign" not in fake.received[0].query and "RequestTime" not in fake.received[0].query


# --- how replies are read: one table for one-to-one messages --------------------------------------

# (name, answer, bob receives, alice's failure code, after-callback sent, warning expected)
C2C_REPLIES = [
    ("allow", Answer(), "hi", None, True, False),
    ("generic refusal", Answer(body={**OK, "ErrorCode": 1, "ErrorInfo": "no"}), None, 20006, False, False),
    ("app code", Answer(body={**OK, "ErrorCode": 120001, "ErrorInfo": "nope"}), None, 120001, False, False),
    ("silent drop", Answer(body={**OK, "ErrorCode": 2}), None, None, False, False),
    ("rewrite", Answer(body=REWRITE), "hello", None, True, False),
    ("late reply", Answer(delay=1.0), "hi", None, True, True),
    ("HTTP 500", Answer(status=500), "hi", None, True, True),
    ("not JSON", Answer(body=b"OK"), "hi", None, True, True),
    ("no ErrorCode", Answer(body={"ActionStatus": "OK"}), "hi", None, True, True),
    ("undocumented code", Answer(body={**OK, "ErrorCode": 7}), None, 20006, False, True),
    ("bad MsgBody", Answer(body={**OK, "MsgBody": "oops"}), "hi", None, True, True),
]


@pytest.mark.parametrize("name,answer,received,code,after,warned", C2C_REPLIES, ids=[r[0] for r in C2C_REPLIES])
def test_c2c_reply_is_read_as_the_im_does(fake, name, answer, received, code, after, warned):
    fake.answer("C2C.CallbackBeforeSendMsg", answer)
    step = run(fake, '- alice sends bob "hi"\n').step(1)
    texts = [e.detail["text"] for e in step.events_of("bob", "new message")]
    assert texts == ([received] if received else [])
    failures = [e.detail["code"] for e in step.events_of("alice", "failed")]
    assert failures == ([code] if code else [])
    assert ("succeeded" in kinds(step, "alice")) == (code is None)  # a drop looks like success
    assert ("C2C.CallbackAfterSendMsg" in fake.commands) == after
    assert bool(step.warnings) == warned


def test_rewritten_body_reaches_after_callback_and_sender_sees_update(fake):
    fake.answer("C2C.CallbackBeforeSendMsg", Answer(body={**REWRITE, "CloudCustomData": "flagged"}))
    step = run(fake, '- alice sends bob "hi"\n').step(1)
    after = fake.bodies("C2C.CallbackAfterSendMsg")[0]
    assert after["MsgBody"] == REWRITE["MsgBody"] and after["CloudCustomData"] == "flagged"
    updated = step.events_of("alice", "message updated")
    assert [e.detail["text"] for e in updated] == ["hello"]
    assert step.events_of("bob", "new message")[0].detail["cloud_custom_data"] == "flagged"


def test_console_can_make_failed_callbacks_refuse(fake):
    fake.answer("C2C.CallbackBeforeSendMsg", Answer(status=503))
    header = HEADER.replace("budget_seconds: 0.5", "budget_seconds: 0.5, on_failure: refuse")
    step = run(fake, '- alice sends bob "hi"\n', header).step(1)
    assert [e.detail["code"] for e in step.events_of("alice", "failed")] == [20006]
    assert step.events_of("bob") == []


def test_unreachable_receiver_lets_messages_through_with_a_warning(fake):
    fake.server.shutdown()
    fake.server.server_close()
    step = run(fake, '- alice sends bob "hi"\n').step(1)
    assert step.events_of("bob", "new message") and "unreachable" in step.warnings[0]


GROUP_REPLIES = [
    ("generic refusal", {**OK, "ErrorCode": 1}, 10016),
    ("app code", {**OK, "ErrorCode": 10100, "ErrorInfo": "x"}, 10100),
    ("c2c code in a group", {**OK, "ErrorCode": 120001}, 10016),
]


@pytest.mark.parametrize("name,reply,code", GROUP_REPLIES, ids=[r[0] for r in GROUP_REPLIES])
def test_group_refusals(fake, name, reply, code):
    fake.answer("Group.CallbackBeforeSendMsg", Answer(body=reply))
    step = run(fake, '- alice sends group g1 "hi"\n').step(1)
    assert [e.detail["code"] for e in step.events_of("alice", "failed")] == [code]
    assert fake.commands == ["Group.CallbackBeforeSendMsg"]


def test_group_send_and_recall_carry_the_group_sequence(fake):
    report = run(fake, """\
        - alice sends group g1 "one"
        - do: bob sends group g1 "two"
          expect: [alice has 1 unread in g1, carol has 2 unread in g1]
        - do: bob recalls his last message in g1
          expect: [carol has 1 unread in g1, carol sees message recalled]
        """)
    assert report.ok, report.transcript()
    before = fake.bodies("Group.CallbackBeforeSendMsg")
    assert all("MsgSeq" not in b and b["GroupId"] == "g1" and b["Type"] == "Public" for b in before)
    assert [a["MsgSeq"] for a in fake.bodies("Group.CallbackAfterSendMsg")] == [1, 2]
    recall = fake.bodies("Group.CallbackAfterRecallMsg")[0]
    assert recall["Operator_Account"] == "bob" and recall["MsgSeqList"][0]["MsgSeq"] == 2
    assert recall["MsgSeqList"][0]["MsgId"] == fake.bodies("Group.CallbackAfterSendMsg")[1]["MsgId"]


def test_non_member_cannot_send_to_group_and_no_callback_is_sent(fake):
    step = run(fake, '- dave sends group g1 "let me in"\n').step(1)
    assert [e.detail["code"] for e in step.events_of("dave", "failed")] == [10007]
    assert fake.commands == []


# --- reports and the command line -----------------------------------------------------------------

def test_failed_expectation_says_what_was_seen(fake):
    fake.answer("C2C.CallbackBeforeSendMsg", Answer(body=REWRITE))
    report = run(fake, '- do: alice sends bob "hi"\n  expect: [bob receives "hi", alice send fails]\n')
    checks = report.step(1).checks
    assert [c.ok for c in checks] == [False, False]
    assert "hello" in checks[0].detail and "succeeded" in checks[1].detail
    transcript = report.transcript()
    assert '✗ bob receives "hi"' in transcript and transcript.endswith("2 failed")


def write(tmp_path, name: str, steps_yaml: str) -> str:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(steps_yaml), "  "), encoding="utf-8")
    return str(path)


CLI_CASES = [
    ("pass", '- do: alice sends bob "hi"\n  expect: bob receives "hi"\n', 0, '✓ bob receives "hi"'),
    ("fail", '- do: alice sends bob "hi"\n  expect: bob receives "bye"\n', 1, '✗ bob receives "bye"'),
    ("step error", "- bob accepts\n", 1, "bob has no pending invitation"),
    ("bad file", "- alice frobs\n", 2, "cli.yaml:7: step 1: not a step I know"),
]


@pytest.mark.parametrize("name,steps_yaml,status,text", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_exit_status_and_transcript(fake, tmp_path, name, steps_yaml, status, text):
    path = write(tmp_path, "cli.yaml", steps_yaml)
    result = CliRunner().invoke(main, ["emulate", path, "--url", fake.url, "--bodies"],
                                env={"IMHOOK_APP_ID": APP_ID, "IMHOOK_TOKEN": TOKEN})
    assert result.exit_code == status, result.output
    assert text in result.output
    if status == 0:
        assert '"CallbackCommand": "C2C.CallbackBeforeSendMsg"' in result.output  # --bodies
        assert fake.received[0].query["Sign"] == sign(TOKEN, fake.received[0].query["RequestTime"])


def test_cli_checks_every_file_before_sending(fake, tmp_path):
    good = write(tmp_path, "good.yaml", '- alice sends bob "hi"\n')
    bad = write(tmp_path, "bad.yaml", "- alice frobs\n")
    result = CliRunner().invoke(main, ["emulate", good, bad, "--url", fake.url, "--app-id", APP_ID, "-q"])
    assert result.exit_code == 2 and fake.received == []


def test_cli_needs_an_app_id(fake, tmp_path):
    path = write(tmp_path, "x.yaml", '- alice sends bob "hi"\n')
    result = CliRunner().invoke(main, ["emulate", path, "--url", fake.url], env={"IMHOOK_APP_ID": ""})
    assert result.exit_code == 2 and "no app id" in result.output


def test_the_emulators_refusal_ranges_are_the_receivers():
    """The emulator keeps its own copy of the IM's refusal ranges (a client does not load the
    receiver's adapter); the two copies must say the same."""
    from emulator.tencent import transport
    from receiver.tencent import commands

    for name in ("GROUP_CODES", "C2C_CODES", "FRIEND_CODES"):
        mine, theirs = getattr(transport, name), getattr(commands, name)
        assert (mine.low, mine.high) == (theirs.low, theirs.high), name
