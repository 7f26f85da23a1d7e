"""The emulated world against a fake receiver: recalls and read reports, friends, groups, logins
and the signaling state machine — what is sent, and what each client sees."""

from __future__ import annotations

import json
import re

from .emulator_fake import HEADER, OK, REWRITE, Answer, kinds, run, signals
from .emulator_fake import fake  # noqa: F401 (the fixture)


def test_c2c_recall_and_read_report(fake):
    report = run(fake, """\
        - alice sends bob "a"
        - alice sends bob "b"
        - do: alice recalls her last message
          expect: [bob has 1 unread, bob sees message recalled]
        - do: bob reads alice
          expect: [alice sees read receipt, bob has 0 unread]
        """)
    assert report.ok, report.transcript()
    sent = fake.bodies("C2C.CallbackBeforeSendMsg")
    withdraw = fake.bodies("C2C.CallbackAfterMsgWithDraw")[0]
    assert (withdraw["MsgKey"], withdraw["UnreadMsgNum"]) == (sent[1]["MsgKey"], 1)
    report_body = fake.bodies("C2C.CallbackAfterMsgReport")[0]
    assert (report_body["Report_Account"], report_body["Peer_Account"], report_body["UnreadMsgNum"]) == \
        ("bob", "alice", 0)


# --- friends ------------------------------------------------------------------------------------

def test_friend_refusals_are_per_friend(fake):
    fake.answer("Sns.CallbackPrevFriendAdd", Answer(body={**OK, "ResultItem": [
        {"To_Account": "bob", "ResultCode": 38005, "ResultInfo": "no"},
        {"To_Account": "carol", "ResultCode": 0, "ResultInfo": ""}]}))
    step = run(fake, '- alice adds friends [bob, carol] with wording "hey"\n').step(1)
    assert [(e.detail["code"], e.detail["friend"]) for e in step.events_of("alice", "failed")] == [(38005, "bob")]
    assert kinds(step, "carol") == ["friend request"] and kinds(step, "bob") == []
    body = fake.bodies("Sns.CallbackPrevFriendAdd")[0]
    assert [i["To_Account"] for i in body["FriendItem"]] == ["bob", "carol"]
    assert body["FriendItem"][0]["AddWording"] == "hey" and body["AddType"] == "Add_Type_Both"


def test_top_level_error_on_friend_callback_lets_the_request_through(fake):
    fake.answer("Sns.CallbackPrevFriendAdd", Answer(body={**OK, "ErrorCode": 38001}))
    step = run(fake, "- alice adds friend bob\n").step(1)
    assert kinds(step, "bob") == ["friend request"] and "app failed" in step.warnings[0]


def test_friend_flow_keeps_lists_and_sends_friend_add(fake):
    header = HEADER.replace("users: [alice, bob, carol, dave, erin]",
                            "users: {alice: {}, bob: {}, carol: {add_friend: any}, dave: {add_friend: deny}, erin: {}}")
    report = run(fake, """\
        - do: alice adds friend carol
          expect: [alice and carol are friends, carol sees friend added]
        - do: alice adds friend dave
          expect: alice add fails 30516
        - alice adds friend bob (single)
        - do: bob responds agree
          expect: [alice is friends with bob, bob is not friends with alice]
        - do: erin adds friend bob
        - do: bob responds reject
          expect: [erin sees friend request rejected, erin is not friends with bob]
        """, header)
    assert report.ok, report.transcript()
    adds = fake.bodies("Sns.CallbackFriendAdd")
    assert [(p["From_Account"], p["To_Account"]) for p in adds[0]["PairList"]] == [("alice", "carol"), ("carol", "alice")]
    assert adds[0]["ClientCmd"] == "friend_add"
    assert [(p["From_Account"], p["To_Account"], p["Initiator_Account"]) for p in adds[1]["PairList"]] == \
        [("alice", "bob", "alice")]
    assert adds[1]["ClientCmd"] == "friend_response" and len(adds) == 2
    responses = fake.bodies("Sns.CallbackPrevFriendResponse")
    assert [r["ResponseFriendItem"][0]["ResponseAction"] for r in responses] == \
        ["Response_Action_Agree", "Response_Action_Reject"]


def test_refused_response_keeps_the_application(fake):
    fake.answer("Sns.CallbackPrevFriendResponse", Answer(body={**OK, "ResultItem": [
        {"To_Account": "alice", "ResultCode": 38002, "ResultInfo": "later"}]}), Answer())
    report = run(fake, """\
        - alice adds friend bob
        - do: bob responds agree and add
          expect: [bob respond fails 38002 with "later", alice is not friends with bob]
        - do: bob responds agree and add
          expect: alice and bob are friends
        """)
    assert report.ok, report.transcript()


# --- groups -------------------------------------------------------------------------------------

def test_create_group_bodies(fake):
    report = run(fake, """\
        - alice creates group "One" type Work with [bob] as one
        - do: alice creates group "Two" type Work with [carol] as two
          expect:
            - two members are [alice, carol]
            - carol sees member invited
        """)
    assert report.ok, report.transcript()
    first, second = fake.bodies("Group.CallbackBeforeCreateGroup")
    assert (first["CreateGroupNum"], second["CreateGroupNum"]) == (0, 1)
    assert second["MemberList"] == [{"Member_Account": "carol"}] and second["Owner_Account"] == "alice"
    after = fake.bodies("Group.CallbackAfterCreateGroup")[1]
    assert re.fullmatch(r"@TGS#1[0-9A-Z]{8}", after["GroupId"]) and after["Name"] == "Two"


def test_refused_group_creation_creates_nothing(fake):
    fake.answer("Group.CallbackBeforeCreateGroup", Answer(body={**OK, "ErrorCode": 10105, "ErrorInfo": "no"}))
    step = run(fake, '- alice creates group "X" type Work with [bob] as x\n- expect: x members exclude bob\n').step(1)
    assert [e.detail["code"] for e in step.events_of("alice", "failed")] == [10105]
    assert "Group.CallbackAfterCreateGroup" not in fake.commands


def test_invite_refuses_some_members(fake):
    fake.answer("Group.CallbackBeforeInviteJoinGroup", Answer(body={**OK, "RefusedMembers_Account": ["erin"]}))
    report = run(fake, """\
        - do: alice invites [dave, erin] to g1
          expect: [g1 members include dave, g1 members exclude erin, bob sees member invited]
        """)
    assert report.ok, report.transcript()
    joined = fake.bodies("Group.CallbackAfterNewMemberJoin")[0]
    assert joined["JoinType"] == "Invited" and joined["NewMemberList"] == [{"Member_Account": "dave"}]
    assert fake.bodies("Group.CallbackBeforeInviteJoinGroup")[0]["DestinationMembers"] == [
        {"Member_Account": "dave"}, {"Member_Account": "erin"}]


def test_join_free_group_and_approval_group(fake):
    report = run(fake, """\
        - do: dave applies to join room
          expect: room members include dave
        - do: dave applies to join g1
          expect: [g1 members exclude dave, alice sees join application]
        - do: alice approves dave
          expect: [g1 members include dave, carol sees member entered]
        - do: dave applies to join g1
          expect: dave join fails 10013
        """)
    assert report.ok, report.transcript()
    joins = fake.bodies("Group.CallbackAfterNewMemberJoin")
    assert [(j["GroupId"], j["JoinType"], j["Operator_Account"]) for j in joins] == [
        ("room", "Apply", "dave"), ("g1", "Apply", "alice")]
    assert len(fake.bodies("Group.CallbackBeforeApplyJoinGroup")) == 2  # not for the member's retry


# --- logins -------------------------------------------------------------------------------------

def test_login_kicks_the_same_platform_and_says_IOS(fake):
    header = HEADER.replace("users: [alice, bob, carol, dave, erin]", "users: {alice: {platform: iOS}, bob: {}, carol: {}}")
    report = run(fake, """\
        - do: alice logs in on iOS
          expect: alice sees kicked offline
        - alice disconnects
        - do: alice sends bob "x"
          expect: [alice send fails 6014, bob receives nothing]
        """, header)
    assert report.ok, report.transcript()
    login, disconnect = fake.received
    assert login.query["OptPlatform"] == "IOS"
    assert login.body["Info"] == {"Action": "Login", "To_Account": "alice", "Reason": "Register"}
    assert login.body["KickedDevice"] == [{"Platform": "iOS"}]
    assert disconnect.body["Info"]["Action"] == "Disconnect" and disconnect.body["Info"]["Reason"] == "LinkClose"
    assert len(fake.received) == 2  # an offline sender's SDK fails before anything is sent


# --- signaling ----------------------------------------------------------------------------------

def test_one_to_one_call_flow(fake):
    report = run(fake, """\
        - do: alice calls bob (video, timeout 30)
          expect: [bob gets an invitation, bob has a pending invitation]
        - do: bob accepts
          expect: [alice sees invitation accepted, bob has no pending invitation, bob has 0 unread]
        """)
    assert report.ok, report.transcript()
    invite, accept = signals(fake, "C2C.CallbackBeforeSendMsg")
    assert (invite["businessID"], invite["actionType"], invite["inviter"], invite["inviteeList"],
            invite["timeout"], invite["groupID"]) == (1, 1, "alice", ["bob"], 30, "")
    assert json.loads(invite["data"])["call_type"] == 2
    assert (accept["actionType"], accept["inviteID"], accept["inviteeList"]) == (3, invite["inviteID"], ["bob"])
    froms = [(b["From_Account"], b["To_Account"]) for b in fake.bodies("C2C.CallbackBeforeSendMsg")]
    assert froms == [("alice", "bob"), ("bob", "alice")]


def test_group_call_with_a_dropped_invitation(fake):
    fake.answer("Group.CallbackBeforeSendMsg", Answer(body={**OK, "ErrorCode": 2}), Answer())
    report = run(fake, """\
        - do: alice invites [bob, carol] to a group call in g1 (online only)
          expect: [alice call succeeds, carol gets no invitation, bob gets no invitation]
        - do: carol accepts
        - do: carol lets it time out
          expect: alice sees invitation timeout
        """)
    step2 = report.step(2)
    assert "never got the invitation" in step2.error and not report.ok
    invite = signals(fake, "Group.CallbackBeforeSendMsg")[0]
    assert invite["groupID"] == "g1" and invite["inviteeList"] == ["bob", "carol"]
    assert fake.bodies("Group.CallbackBeforeSendMsg")[0]["OnlineOnlyFlag"] == 1
    assert report.step(1).ok and report.step(3).ok
    assert len(fake.bodies("Group.CallbackBeforeSendMsg")) == 1  # the uninvited timeout sends nothing


def test_group_call_answers_and_cancel(fake):
    report = run(fake, """\
        - do: alice invites [bob, carol] to a group call in g1
          expect: [bob gets an invitation, carol gets an invitation]
        - do: bob rejects (busy)
          expect: [alice sees invitation rejected, carol sees invitation rejected]
        - do: alice cancels
          expect: [carol sees invitation cancelled, bob sees no invitation cancelled]
        """)
    assert report.ok, report.transcript()
    invite, reject, cancel = signals(fake, "Group.CallbackBeforeSendMsg")
    assert (reject["actionType"], reject["inviteeList"]) == (4, ["bob"])
    assert json.loads(reject["data"])["line_busy"]
    assert (cancel["actionType"], cancel["inviteeList"]) == (2, ["carol"])


def test_rewritten_signaling_is_seen_as_an_ordinary_message(fake):
    fake.answer("C2C.CallbackBeforeSendMsg", Answer(body=REWRITE))
    step = run(fake, "- alice calls bob\n").step(1)
    assert kinds(step, "bob") == ["new message"]


def test_a_recall_may_name_an_earlier_message_by_its_label(fake):
    report = run(fake, """\
        - alice sends bob "one" as m1
        - alice sends bob "two"
        - do: alice recalls m1
          expect: bob sees message recalled
        - alice recalls m1
        """)
    assert report.step(3).ok, report.transcript()
    first = fake.bodies("C2C.CallbackAfterSendMsg")[0]
    assert fake.bodies("C2C.CallbackAfterMsgWithDraw")[0]["MsgKey"] == first["MsgKey"]
    assert report.step(4).error == "message m1 was recalled already"
