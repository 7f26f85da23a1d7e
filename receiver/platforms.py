"""Every IM platform the receiver serves, as one: each request is parsed by its own, the rules see all.

A rule file serves Tencent and NetEase alike: rules are built once, against `Platforms`, whose
command vocabulary, refusal-code ranges and drop support are the union of its members', each
command answered by the platform it belongs to (command names never overlap). A request names its
platform by its path (receiver/app.py); the core parses it with that member.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import Callback
from .netease.platform import NeteaseCopyFeed, NeteasePlatform
from .tencent.platform import TencentPlatform
from .verdict import Verdict

TENCENT, NETEASE, NETEASE_COPY = "tencent", "netease", "netease.copy"
# A record's platform, kept in its query (NetEase requests have none of their own; a Tencent record
# has no such key): replay and explain dispatch on it. Not a query parameter any IM sends.
RECORD_PLATFORM_KEY = "imhook.platform"


def split_record_query(query: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(platform, the query without the platform key) of a recorded query; "" is Tencent."""
    if RECORD_PLATFORM_KEY not in query:
        return "", query
    rest = {k: v for k, v in query.items() if k != RECORD_PLATFORM_KEY}
    platform = query[RECORD_PLATFORM_KEY]
    return (platform if platform in (NETEASE, NETEASE_COPY) else ""), rest


def body_platform(body: object) -> str:
    """The platform a bare callback body comes from: NetEase bodies carry eventType, Tencent's
    CallbackCommand (for `imhook explain`, given only a body)."""
    if isinstance(body, dict) and "CallbackCommand" not in body and "eventType" in body:
        return NETEASE
    return ""


class Platforms:
    """The platforms by name; behaves as the default one (Tencent) where no platform is named."""

    name = "tencent or netease"

    def __init__(self, members: Mapping[str, Any] | None = None, default: str = TENCENT) -> None:
        self.members = dict(members) if members is not None else {
            TENCENT: TencentPlatform(), NETEASE: NeteasePlatform(), NETEASE_COPY: NeteaseCopyFeed()}
        self.default = self.members[default]
        self._owner = {command: platform for platform in reversed(list(self.members.values()))
                       for command in platform.commands}
        self.commands = tuple(self._owner)
        self.before_commands = tuple(c for p in self.members.values() for c in p.before_commands)

    def member(self, name: str) -> Any:
        """The platform called `name` ("" is the default), or None."""
        return self.members.get(name) if name else self.default

    def owner(self, command: str) -> Any:
        """The platform a command belongs to (the default one for a name none knows)."""
        return self._owner.get(command, self.default)

    def platform_name(self, command: str) -> str:
        return self.owner(command).name

    def sole(self, name: str) -> Any:
        """The member called `name` alone (e.g. to ask which commands it has for some actions)."""
        return self.members[name]

    # The rules' questions: answered by the command's own platform, or by all for a set of actions.
    def code_range(self, command: str):
        return self.owner(command).code_range(command)

    def supports_drop(self, command: str) -> bool:
        return self.owner(command).supports_drop(command)

    def commands_for(self, actions) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for p in self.members.values() for c in p.commands_for(actions)))

    # A request on the default path: the default platform's.
    def credentials(self, config) -> tuple[str, tuple[str, ...], float] | None:
        return self.default.credentials(config)

    def from_http(self, query, body, **kwargs) -> Callback:
        return self.default.from_http(query, body, **kwargs)

    def authenticate(self, query, headers=None, **kwargs) -> None:
        return self.default.authenticate(query, headers, **kwargs)

    def render(self, callback: Callback, verdict: Verdict) -> dict[str, Any]:
        return self.owner(callback.command).render(callback, verdict)

    def render_fail_open(self, query, body) -> dict[str, Any] | None:
        return self.default.render_fail_open(query, body)

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        return self.default.render_error(status, message)
