"""What a step handler works with: the world, the transport, the step's report, the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from receiver.errors import ImhookError
from .report import ClientEvent, Exchange, StepReport
from .world import World

NOT_LOGGED_IN = 6014  # the client SDK's own error when an offline user tries to act


class StepError(ImhookError):
    """A step cannot happen in the emulated world (e.g. accepting an invitation nobody sent)."""


@dataclass(frozen=True)
class Settings:
    """Scenario-wide behaviour of the emulated IM (documented in docs/emulator.md)."""

    budget_seconds: float = 2.0
    on_failure: str = "deliver"  # message before-callbacks that fail: deliver (the default) or refuse
    login_policy: str = "per_platform"  # a login kicks the same platform, or every device ("single")
    seed: int = 0
    recall_window_seconds: float = 120  # NetEase: a later recall fails with 508 (default 2 minutes)


class Context:
    """Helpers for step handlers: post callbacks as a user, raise client events, note facts."""

    def __init__(self, world: World, transport, settings: Settings):
        # transport: emulator.tencent.transport.Transport or emulator.netease.transport.Transport
        self.world = world
        self.transport = transport
        self.settings = settings
        self.report = StepReport(0, "")

    def now_ms(self) -> int:
        return self.world.ids.now_ms()

    def post(self, actor: str, body: dict[str, Any], *, platform: str | None = None) -> Exchange:
        """Post a callback caused by `actor`, from her current device and address."""
        user = self.world.users[actor]
        exchange = self.transport.post(body, platform=platform or user.platform, client_ip=user.client_ip)
        self.report.exchanges.append(exchange)
        return exchange

    def post_after(self, actor: str, body: dict[str, Any], *, platform: str | None = None) -> Exchange:
        exchange = self.post(actor, body, platform=platform)
        exchange.outcome = "ignored (after-callback)"  # the IM ignores after-callback replies
        return exchange

    def emit(self, user: str, kind: str, summary: str = "", *, local: bool = False, **detail: Any) -> bool:
        """Raise a client event for `user` if her client is online (or `local`: her own action's
        completion, which she sees whatever happens). Return whether it was raised."""
        if not (local or self.world.online(user)):
            return False
        self.report.events.append(ClientEvent(user, kind, summary, detail))
        return True

    def succeed(self, user: str, op: str, summary: str = "", **detail: Any) -> None:
        self.emit(user, "succeeded", f"{op} succeeded{': ' + summary if summary else ''}", local=True, op=op,
                  **detail)

    def fail(self, user: str, op: str, code: int, info: str = "", **detail: Any) -> None:
        text = f"{op} failed {code}" + (f" {info!r}" if info else "")
        self.emit(user, "failed", text, local=True, op=op, code=code, info=info, **detail)

    def require_online(self, user: str, op: str) -> bool:
        """An offline client cannot act: its SDK fails the call before anything reaches the IM."""
        if self.world.online(user):
            return True
        self.fail(user, op, NOT_LOGGED_IN, "not logged in")
        return False

    def note(self, text: str) -> None:
        self.report.notes.append(text)
