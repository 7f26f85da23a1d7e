"""Decisions on a before-callback, platform-neutral; the platform renders them as replies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALLOW = "allow"
REFUSE = "refuse"
DROP = "drop"


@dataclass(frozen=True)
class FriendResult:
    code: int | None = None  # None: the platform's generic refusal code
    info: str = ""


@dataclass(frozen=True)
class Verdict:
    """What a rule (or the whole chain) decided, with who decided it and why.

    `message` is the rewritten message (None: unchanged). `refused_members` refuses only some
    invitees; `friend_results` refuses only some requested friends (keyed by account).
    """

    outcome: str = ALLOW
    code: int | None = None
    info: str = ""
    message: Any = None
    refused_members: tuple[str, ...] = ()
    friend_results: Mapping[str, FriendResult] = field(default_factory=dict)
    rule: str = ""
    reason: str = ""

    @property
    def ends_chain(self) -> bool:
        return self.outcome in (REFUSE, DROP)

    def by(self, rule: str) -> "Verdict":
        """Return this verdict attributed to `rule` (kept if a rule already set it)."""
        from dataclasses import replace

        return self if self.rule else replace(self, rule=rule)


def allow(reason: str = "") -> Verdict:
    return Verdict(ALLOW, reason=reason)


def refuse(info: str = "", *, code: int | None = None, reason: str = "") -> Verdict:
    """Refuse the whole action; `code` must lie in the command's own range (PROTOCOL.md §3)."""
    return Verdict(REFUSE, code=code, info=info, reason=reason or info)


def drop(reason: str = "") -> Verdict:
    """Silently drop a message: the sender sees success, nobody receives it."""
    return Verdict(DROP, reason=reason)


def rewrite(message: Any, reason: str = "") -> Verdict:
    """Deliver `message` instead of the original body."""
    return Verdict(ALLOW, message=message, reason=reason)


def refuse_members(accounts: Iterable[str], reason: str = "") -> Verdict:
    """Refuse only these invitees of a group invitation."""
    return Verdict(ALLOW, refused_members=tuple(dict.fromkeys(accounts)), reason=reason)


def refuse_friends(results: Mapping[str, FriendResult | tuple], reason: str = "") -> Verdict:
    """Refuse only these requested friends: {account: FriendResult(code, info)}."""
    normalised = {
        account: r if isinstance(r, FriendResult) else FriendResult(*r) for account, r in results.items()
    }
    return Verdict(ALLOW, friend_results=normalised, reason=reason)
