"""Scenario files and sentences: what parses into what, and errors that name file, step and line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from emulator import parse_scenario, steps
from emulator.grammar import SentenceError, parse_options, tokenize
from receiver.errors import ConfigError

HEADER = """\
users: [alice, bob, carol]
groups:
  g1: {type: Public, owner: alice, members: [bob]}
steps:
"""


def scenario(steps_yaml: str, header: str = HEADER):
    return parse_scenario(header + textwrap.indent(textwrap.dedent(steps_yaml), "  "), "test.yaml")


# --- sentences -----------------------------------------------------------------------------------

SENTENCES = [
    ('alice sends bob "hi there"', steps.SendMessage("alice", "c2c", "bob", (
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi there"}},))),
    ('alice sends group g1 "x" (online only)', steps.SendMessage("alice", "group", "g1", (
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "x"}},), online_only=True)),
    ('alice adds friend bob with wording "hi"', steps.AddFriend("alice", ("bob",), wording="hi")),
    ("alice adds friends [bob, carol] (single)", steps.AddFriend("alice", ("bob", "carol"),
                                                                  add_type="Add_Type_Single")),
    ("bob responds agree", steps.RespondFriend("bob", "Response_Action_Agree")),
    ("bob responds agree and add to alice", steps.RespondFriend("bob", "Response_Action_AgreeAndAdd", "alice")),
    ("bob responds reject", steps.RespondFriend("bob", "Response_Action_Reject")),
    ('alice creates group "My team" type Public with [bob, carol]',
     steps.CreateGroup("alice", "My team", "Public", ("bob", "carol"), "My team")),
    ('alice creates group "My team" type Work as t2', steps.CreateGroup("alice", "My team", "Work", (), "t2")),
    ("carol applies to join g1", steps.ApplyJoin("carol", "g1")),
    ("alice approves carol", steps.ReviewApplication("alice", "carol", True)),
    ("alice declines carol for g1", steps.ReviewApplication("alice", "carol", False, "g1")),
    ("alice invites [carol] to g1", steps.InviteMembers("alice", ("carol",), "g1")),
    ("bob leaves g1", steps.LeaveGroup("bob", "g1")),
    ("alice kicks bob from g1", steps.KickMembers("alice", ("bob",), "g1")),
    ("alice recalls her last message", steps.Recall("alice")),
    ("bob recalls his last message to alice", steps.Recall("bob", peer="alice")),
    ("alice recalls the last message in g1", steps.Recall("alice", group="g1")),
    ("bob reads", steps.Read("bob")),
    ("bob reads alice", steps.Read("bob", peer="alice")),
    ("bob reads group g1", steps.Read("bob", group="g1")),
    ("alice logs in on iOS", steps.Login("alice", "iOS")),
    ("alice logs in", steps.Login("alice")),
    ("alice logs out", steps.Logout("alice")),
    ("alice disconnects", steps.Logout("alice", "LinkClose")),
    ("alice calls bob (video, timeout 30)", steps.Call("alice", ("bob",), media="video", timeout=30)),
    ("alice calls bob (online only, timeout 0)", steps.Call("alice", ("bob",), timeout=0, online_only=True)),
    ("alice invites [bob, carol] to a group call in g1", steps.Call("alice", ("bob", "carol"), "g1")),
    ("bob accepts", steps.AnswerCall("bob", "accept")),
    ("bob rejects (busy)", steps.AnswerCall("bob", "reject", busy=True)),
    ("alice cancels", steps.AnswerCall("alice", "cancel")),
    ("carol lets it time out", steps.AnswerCall("carol", "timeout")),
    ("wait 0.5 s", steps.Wait(0.5)),
]


@pytest.mark.parametrize("sentence,action", SENTENCES, ids=[s for s, _ in SENTENCES])
def test_sentence_reads_as_action(sentence, action):
    names = steps.Names({"alice", "bob", "carol"}, {"g1"})
    assert steps.parse_step(sentence, names) == action


BAD_SENTENCES = [
    ("alice sendz bob", "not a step I know"),
    ('zed sends bob "x"', "unknown user 'zed'"),
    ('alice sends group g9 "x"', "unknown group 'g9'"),
    ("alice calls bob (loud)", "unknown option 'loud'"),
    ("alice calls bob (timeout)", "needs a number"),
    ("alice calls bob (audio, video)", "audio or video"),
    ("alice calls [bob, carol]", "one invitee"),
    ('alice sends bob "x', "not closed"),
    ("alice sends bob", "needs \"TEXT\""),
    ('alice creates group "x" type Huge', "unknown group type 'Huge'"),
    ("bob responds reject and add", "only `agree and add`"),
    ("alice adds friend alice", "herself"),
]


@pytest.mark.parametrize("sentence,message", BAD_SENTENCES, ids=[s for s, _ in BAD_SENTENCES])
def test_bad_sentence_says_why(sentence, message):
    with pytest.raises(SentenceError, match=None) as caught:
        steps.parse_step(sentence, steps.Names({"alice", "bob", "carol"}, {"g1"}))
    assert message in caught.value.message


def test_unknown_verb_lists_the_forms_of_that_verb():
    with pytest.raises(SentenceError) as caught:
        steps.parse_step("alice calls", steps.Names({"alice"}))
    assert "USER calls [USERS] [(OPTIONS)]" in caught.value.message
    assert "sends" not in caught.value.message  # only the near forms, not the whole table


def test_tokens_and_options():
    tokens = tokenize('alice sends bob "say \\"hi\\"\\n" [a, b] (video, timeout 30)')
    assert [t.kind for t in tokens] == ["word", "word", "word", "str", "list", "opts"]
    assert tokens[3].value == 'say "hi"\n'
    assert tokens[4].value == ("a", "b")
    assert parse_options(tokens[5].value, {"video": "flag", "timeout": "num"}) == {"video": True, "timeout": 30}


# --- scenario files ----------------------------------------------------------------------------

def test_mapping_step_with_elements_data_and_expectations():
    loaded = scenario("""\
        - do: alice sends bob
          elements:
            - text: "hello"
            - {TIMFaceElem: {Index: 1}}
            - {MsgType: TIMImageElem, MsgContent: {UUID: "u1"}}
          cloud_custom_data: "cd"
          expect: [bob receives "hello", alice send succeeds]
        - do: alice calls bob
          data: {app: "mine", n: 1}
        - expect: g1 members include bob
        """)
    send, call, check = loaded.steps
    assert [e["MsgType"] for e in send.action.body] == ["TIMTextElem", "TIMFaceElem", "TIMImageElem"]
    assert send.action.cloud_custom_data == "cd"
    assert [e.text for e in send.expectations] == ['bob receives "hello"', "alice send succeeds"]
    assert json.loads(call.action.data) == {"app": "mine", "n": 1}
    assert isinstance(check.action, steps.Check) and check.sentence == "(check)"
    assert [s.line for s in loaded.steps] == [5, 12, 14]


def test_declarations_are_read():
    loaded = parse_scenario(textwrap.dedent("""\
        users:
          alice: {platform: iOS, add_friend: any}
          bob: {online: false}
        friends: [[alice, bob]]
        groups:
          g1: {type: ChatRoom, owner: alice, admins: [bob], id: "@TGS#g1", name: Lobby}
        settings: {budget_seconds: 0.5, on_failure: refuse, login_policy: single, seed: 7}
        steps: [alice logs out]
        """), "decl.yaml")
    assert [(u.name, u.platform, u.online, u.add_friend) for u in loaded.users] == [
        ("alice", "iOS", True, "any"), ("bob", "Android", False, "confirm")]
    group = loaded.groups[0]
    assert (group.group_id, group.name, group.join, group.admins) == ("@TGS#g1", "Lobby", "free", ("bob",))
    assert loaded.settings.budget_seconds == 0.5 and loaded.settings.login_policy == "single"


# (steps yaml, fragments the error must contain: file, step, line, reason)
BAD_SCENARIOS = [
    ('- alice sends bob "x"\n- alice sendz bob\n', ["test.yaml:6", "step 2", "not a step I know"]),
    ('- do: alice sends bob "x"\n  expect: [bob receives "x", bob gets maybe]\n',
     ["test.yaml:6", "step 1, expectation 2", "not a expectation I know"]),
    ('- do: alice sends bob "x"\n  expct: bob receives "x"\n', ["step 1", "expct", "unknown key"]),
    ('- do: alice sends bob "x"\n  elements: [{text: "y"}]\n', ["step 1", "not both"]),
    ("- do: alice sends bob\n  elements: [{Foo: 1}]\n", ["step 1", "element"]),
    ("- do: alice logs in\n  elements: [{text: y}]\n", ["step 1", "only apply to `sends`"]),
    ("- 42\n", ["test.yaml:5", "step 1", "a step is a sentence"]),
    ("- expect: [bob receives [x]]\n", ["test.yaml:5", "quote a sentence"]),
    ('- alice sends bob "a: b"\n', ["test.yaml:5", "step 1"]),
]


@pytest.mark.parametrize("steps_yaml,fragments", BAD_SCENARIOS, ids=[b[1][-1] for b in BAD_SCENARIOS])
def test_scenario_errors_name_file_step_and_line(steps_yaml, fragments):
    with pytest.raises(ConfigError) as caught:
        parse_scenario(HEADER + textwrap.indent(steps_yaml, "  "), "test.yaml")
    for fragment in fragments:
        assert fragment in str(caught.value)


BAD_DECLARATIONS = [
    ("users: [alice]\nsteps: [alice logs out]\nfriends: [[alice, zed]]\n", "friends[0][1]", "unknown user 'zed'"),
    ("users: [alice]\nsteps: [alice logs out]\ngroups: {g: {type: Huge, owner: alice}}\n", "groups.g.type",
     "Must be one of"),
    ("users: [alice]\nsteps: [alice logs out]\ngroups: {g: {type: Work, owner: bob}}\n", "groups.g.owner",
     "unknown user 'bob'"),
    ("users: {alice: {platfrom: iOS}}\nsteps: [alice logs out]\n", "users.alice.platfrom", "unknown key"),
    ("users: [alice]\nsteps: []\n", "steps", "Shorter than minimum"),
    ("users: [alice]\nsteps: [alice logs out]\nsettings: {on_failure: maybe}\n", "settings.on_failure",
     "Must be one of"),
    ("users: [alice]\nstep: [alice logs out]\n", "step", "unknown key"),
]


@pytest.mark.parametrize("text,path,message", BAD_DECLARATIONS, ids=[b[1] for b in BAD_DECLARATIONS])
def test_declaration_errors_name_their_place(text, path, message):
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, "decl.yaml")
    assert path in str(caught.value) and message in str(caught.value)
    assert "decl.yaml" in str(caught.value)


def test_groups_created_in_a_step_can_be_named_later():
    loaded = scenario("""\
        - alice creates group "Team" type Work with [bob] as team
        - alice sends group team "hi"
        - expect: team members include bob
        """)
    assert loaded.steps[1].action.peer == "team"
    with pytest.raises(ConfigError, match="unknown group 'team'"):
        scenario('- alice sends group team "hi"\n- alice creates group "Team" type Work as team\n')


def test_importing_the_emulator_loads_neither_flask_nor_a_platform_adapter():
    # A client builds the wire itself: neither the web app nor the receiver's Tencent or NetEase parsing.
    code = ("import sys, emulator, emulator.cli; print(sorted(m for m in sys.modules if m == 'flask' or "
            "m.startswith(('receiver.tencent', 'receiver.netease', 'receiver.app'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
