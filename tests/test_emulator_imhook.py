"""The emulator against imhook itself, served by gunicorn over real HTTP.

Every scenario in examples/scenarios/ runs against the imhook config it names; a scripted
test-only rule (tests/emulator_rules.py) exercises every reply shape end to end.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from receiver.emulator import Emulator, load_scenario, parse_scenario

from .helpers import APP_ID, ROOT, TOKEN

pytestmark = pytest.mark.integration

EXAMPLES = sorted(p for p in (ROOT / "examples" / "scenarios").glob("*.yaml") if not p.name.endswith(".rules.yaml"))
# The test-only rule lives in tests/, which gunicorn imports from the repository root.
SERVE_ENV = {"PYTHONPATH": str(ROOT)}


def test_there_are_example_scenarios_for_every_builtin_rule():
    from receiver.tencent.platform import TencentPlatform
    from rules.registry import load_rule_class, registered

    # The emulator speaks Tencent: a rule no Tencent callback reaches (recall_policy, NetEase only)
    # gets its scenario with the emulator's NetEase client.
    tencent = TencentPlatform()
    emulated = {name for name in registered()
                if not load_rule_class(name).actions or tencent.commands_for(load_rule_class(name).actions)}
    named = {p.stem for p in EXAMPLES}
    assert emulated <= named, f"rules without an example scenario: {emulated - named}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_scenario_passes_against_imhook(serve, path: Path):
    scenario = load_scenario(path)
    assert scenario.receiver_config is not None and scenario.receiver_config.exists(), \
        f"{path.name} must name its imhook config in `receiver_config`"
    assert sum(len(step.expectations) for step in scenario.steps) >= 4
    # One worker: the rate_limit example counts in process memory (its config says so).
    server = serve(scenario.receiver_config.read_text(encoding="utf-8"), workers=1, env=SERVE_ENV)
    report = Emulator(server.callback_url, APP_ID, TOKEN).run(scenario)
    assert report.ok, report.transcript() + "\n" + server.log()[-2000:]
    assert not report.warnings, report.warnings


SCRIPTED_CONFIG = """\
rules:
  - use: tests.emulator_rules:ScriptedRule
    config:
      mask: [fool]
      refuse: {forbidden: 120001, blocked: 0, groupwide: 10100}
      drop: [secret]
      tag: "tagged"
      drop_invitations_to: [carol]
      refuse_invitees: [erin]
      refuse_friends: {mallory: 38005}
      refuse_group_names: [Casino]
      refuse_joiners: [mallory]
"""

SCRIPTED_SCENARIO = """\
users: [alice, bob, carol, dave, erin, mallory]
groups:
  g1: {type: Public, owner: alice, members: [bob, carol]}
steps:
  - do: alice sends bob "you fool"
    expect: [bob receives "you ****", alice sees message updated to "you ****"]
  - do: alice sends bob "forbidden"
    expect: [alice send fails 120001 with "forbidden is not allowed", bob receives nothing]
  - do: alice sends bob "blocked"
    expect: alice send fails 20006
  - do: alice sends bob "a secret"
    expect: [alice send succeeds, bob receives nothing, callback C2C.CallbackAfterSendMsg is not sent]
  - do: alice sends group g1 "groupwide"
    expect: alice send fails 10100
  - do: alice sends group g1 "forbidden"
    expect: alice send fails 10016
  - do: alice sends bob "tag me"
    expect: [bob receives "tag me", alice sees message updated]
  - do: alice adds friends [bob, mallory]
    expect: [alice add fails 38005, bob sees friend request, mallory sees no friend request]
  - do: alice creates group "Casino" type Public as casino
    expect: alice create fails 10101 with "group name refused"
  - do: mallory applies to join g1
    expect: mallory join fails 10016
  - do: alice invites [dave, erin] to g1
    expect: [g1 members include dave, g1 members exclude erin]
  - do: alice calls carol (video)
    expect: [alice call succeeds, carol gets no invitation]
  - do: alice calls bob (audio)
    expect: bob gets an invitation
  - do: bob accepts
    expect: alice sees invitation accepted
"""


def test_every_reply_shape_through_imhook(serve):
    server = serve(SCRIPTED_CONFIG, env=SERVE_ENV)
    report = Emulator(server.callback_url, APP_ID, TOKEN).run(parse_scenario(SCRIPTED_SCENARIO, "scripted.yaml"))
    assert report.ok, report.transcript() + "\n" + server.log()[-2000:]
    tagged = report.step(7).events_of("bob", "new message")[0]
    assert tagged.detail["cloud_custom_data"] == "tagged"
    outcomes = [x.outcome for step in report.steps for x in step.exchanges if "Before" in x.command
                or "Prev" in x.command]
    assert outcomes[:4] == ["allow, rewritten MsgBody", "refuse 120001 'forbidden is not allowed'",
                            "refuse (ErrorCode 1; sender sees 20006)", "silent drop (ErrorCode 2)"]


def test_wrong_token_is_a_warning_and_the_im_default(serve):
    server = serve(SCRIPTED_CONFIG, env=SERVE_ENV)
    scenario = parse_scenario(textwrap.dedent("""\
        users: [alice, bob]
        steps:
          - do: alice sends bob "you fool"
            expect: bob receives "you fool"
        """), "unsigned.yaml")
    report = Emulator(server.callback_url, APP_ID, "not-the-token").run(scenario)
    assert report.ok, report.transcript()
    assert "HTTP 401" in report.warnings[0]
