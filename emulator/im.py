"""The emulator: plays an IM backend (Tencent or NetEase) against a callback receiver, step by step."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from . import steps
from .context import Context, StepError
from .ids import Ids
from .netease import messages as netease_messages
from .netease.transport import Transport as NeteaseTransport
from .platforms import NETEASE, TENCENT
from .report import Report, StepReport
from .scenario import Scenario, load_scenario
from .tencent import calls, groups, messages, social
from .tencent.transport import Transport
from .world import GroupState, World

NETEASE_PATH = "/netease/callback"  # where the receiver takes NetEase callbacks, beside its /callback
APP_KEY_ENV, APP_SECRET_ENV = "IMHOOK_NETEASE_APP_KEY", "IMHOOK_NETEASE_APP_SECRET"


def _wait_step(ctx: Context, action: steps.Wait) -> None:
    time.sleep(action.seconds)


def _check_step(ctx: Context, action: steps.Check) -> None:
    """A step with expectations only: nothing happens."""


# One handler per action type and IM: dispatch tables, not if-chains. A NetEase scenario is
# checked against its table when it is loaded (platforms.py), so a missing row is never reached.
HANDLERS = {
    TENCENT: {
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
        steps.Check: _check_step,
    },
    NETEASE: {
        steps.SendMessage: netease_messages.send_step,
        steps.Recall: netease_messages.recall_step,
        steps.Wait: _wait_step,
        steps.Check: _check_step,
    },
}


def build_world(scenario: Scenario, ids: Ids) -> World:
    """The world as the scenario declares it before step 1 (no callbacks are sent for it)."""
    world = World(ids)
    for user in scenario.users:
        world.add_user(user.name, platform=user.platform, online=user.online, add_friend=user.add_friend,
                       devices=user.devices)
    for a, b in scenario.friends:
        world.befriend(a, b)
        world.befriend(b, a)
    for g in scenario.groups:
        members = list(dict.fromkeys([g.owner, *g.members, *g.admins]))
        world.add_group(GroupState(g.alias, g.group_id, g.name, g.type, g.owner, members, set(g.admins), g.join))
    return world


def netease_url(url: str) -> str:
    """The receiver's NetEase URL: `url` itself if it ends in /netease/callback, else the same
    server (and path prefix) with /callback replaced by /netease/callback."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith(NETEASE_PATH):
        path = path.removesuffix("/callback") + NETEASE_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class Emulator:
    """Plays scenarios against the receiver at `url`, signing as each IM does.

    Tencent scenarios sign with `app_id` and `token` (default: $IMHOOK_APP_ID, first of
    $IMHOOK_TOKEN); NetEase scenarios post to `netease_url(url)` with `app_key` and `app_secret`
    (default: $IMHOOK_NETEASE_APP_KEY, $IMHOOK_NETEASE_APP_SECRET).

    >>> report = Emulator("http://127.0.0.1:8080/callback", "1400000000", "token").run("chat.yaml")
    >>> report.ok, print(report.transcript())
    """

    def __init__(self, url: str, app_id: str | None = None, token: str | None = None, *,
                 app_key: str | None = None, app_secret: str | None = None,
                 budget_seconds: float | None = None, session: requests.Session | None = None):
        self.url = url
        self.app_id = str(app_id or os.environ.get("IMHOOK_APP_ID") or "")
        token = token if token is not None else os.environ.get("IMHOOK_TOKEN", "").split(",")[0].strip()
        self.token = token or None
        self.app_key = app_key or os.environ.get(APP_KEY_ENV) or ""
        self.app_secret = app_secret or os.environ.get(APP_SECRET_ENV) or ""
        self.budget_seconds = budget_seconds
        self.session = session

    def run(self, scenario: Scenario | str | Path) -> Report:
        """Run every step in order and check its expectations; never stops early."""
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        settings = scenario.settings
        budget = self.budget_seconds if self.budget_seconds is not None else settings.budget_seconds
        transport = self._transport(scenario.platform, budget)
        world = build_world(scenario, Ids(settings.seed))
        context = Context(world, transport, settings)
        report = Report(scenario.file, transport.url)
        try:
            for step in scenario.steps:
                report.steps.append(self._run_step(context, step, HANDLERS[scenario.platform]))
        finally:
            if self.session is None:
                transport.close()
        return report

    def _transport(self, platform: str, budget: float):
        session = self.session or requests.Session()
        if platform == NETEASE:
            if not (self.app_key and self.app_secret):
                raise ValueError(f"no NetEase AppKey or AppSecret: pass app_key and app_secret or set "
                                 f"{APP_KEY_ENV} and {APP_SECRET_ENV}")
            return NeteaseTransport(netease_url(self.url), self.app_key, self.app_secret, budget_seconds=budget,
                                    session=session)
        if not self.app_id:
            raise ValueError("no app id: pass app_id or set IMHOOK_APP_ID")
        return Transport(self.url, self.app_id, self.token, budget_seconds=budget, session=session)

    @staticmethod
    def _run_step(context: Context, step, handlers) -> StepReport:
        context.report = result = StepReport(step.number, step.sentence, step.line)
        try:
            handlers[type(step.action)](context, step.action)
        except StepError as exc:
            result.error = exc.message
        result.checks = [e.evaluate(result, context.world) for e in step.expectations]
        return result
