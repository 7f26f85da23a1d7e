"""The emulator: plays the Tencent IM backend against a callback receiver, step by step."""

from __future__ import annotations

import os
import time
from pathlib import Path

import requests

from . import steps
from .context import Context, StepError
from .ids import Ids
from .report import Report, StepReport
from .scenario import Scenario, load_scenario
from .tencent import calls, groups, messages, social
from .tencent.transport import Transport
from .world import GroupState, World


def _wait_step(ctx: Context, action: steps.Wait) -> None:
    time.sleep(action.seconds)


# One handler per action type: a dispatch table, not an if-chain.
HANDLERS = {
    steps.SendMessage: messages.send_step,
    steps.Recall: messages.recall_step,
    steps.Read: messages.read_step,
    steps.AddFriend: social.add_friend_step,
    steps.RespondFriend: social.respond_friend_step,
    steps.DeleteFriend: social.delete_friend_step,
    steps.Login: social.login_step,
    steps.Logout: social.logout_step,
    steps.CreateGroup: groups.create_group_step,
    steps.ApplyJoin: groups.apply_join_step,
    steps.ReviewApplication: groups.review_step,
    steps.InviteMembers: groups.invite_step,
    steps.LeaveGroup: groups.leave_step,
    steps.KickMembers: groups.kick_step,
    steps.Call: calls.call_step,
    steps.AnswerCall: calls.answer_step,
    steps.Wait: _wait_step,
    steps.Check: lambda ctx, action: None,
}


def build_world(scenario: Scenario, ids: Ids) -> World:
    """The world as the scenario declares it before step 1 (no callbacks are sent for it)."""
    world = World(ids)
    for user in scenario.users:
        world.add_user(user.name, platform=user.platform, online=user.online, add_friend=user.add_friend)
    for a, b in scenario.friends:
        world.befriend(a, b)
        world.befriend(b, a)
    for g in scenario.groups:
        members = list(dict.fromkeys([g.owner, *g.members, *g.admins]))
        world.add_group(GroupState(g.alias, g.group_id, g.name, g.type, g.owner, members, set(g.admins), g.join))
    return world


class Emulator:
    """Plays scenarios against the receiver at `url`, signing with `token` as the IM does.

    >>> report = Emulator("http://127.0.0.1:8080/callback", "1400000000", "token").run("chat.yaml")
    >>> report.ok, print(report.transcript())
    """

    def __init__(self, url: str, app_id: str | None = None, token: str | None = None, *,
                 budget_seconds: float | None = None, session: requests.Session | None = None):
        self.url = url
        self.app_id = str(app_id or os.environ.get("IMHOOK_APP_ID") or "")
        if not self.app_id:
            raise ValueError("no app id: pass app_id or set IMHOOK_APP_ID")
        token = token if token is not None else os.environ.get("IMHOOK_TOKEN", "").split(",")[0].strip()
        self.token = token or None
        self.budget_seconds = budget_seconds
        self.session = session

    def run(self, scenario: Scenario | str | Path) -> Report:
        """Run every step in order and check its expectations; never stops early."""
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        settings = scenario.settings
        budget = self.budget_seconds if self.budget_seconds is not None else settings.budget_seconds
        transport = Transport(self.url, self.app_id, self.token, budget_seconds=budget,
                              session=self.session or requests.Session())
        world = build_world(scenario, Ids(settings.seed))
        context = Context(world, transport, settings)
        report = Report(scenario.file, self.url)
        try:
            for step in scenario.steps:
                report.steps.append(self._run_step(context, step))
        finally:
            if self.session is None:
                transport.close()
        return report

    @staticmethod
    def _run_step(context: Context, step) -> StepReport:
        context.report = result = StepReport(step.number, step.sentence, step.line)
        try:
            HANDLERS[type(step.action)](context, step.action)
        except StepError as exc:
            result.error = exc.message
        result.checks = [e.evaluate(result, context.world) for e in step.expectations]
        return result
