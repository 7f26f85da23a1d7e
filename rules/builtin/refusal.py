"""What a built-in policy rule does when it objects: refuse (with the app's code and text) or drop.

Shared by the policy rules so each validates `action`, `code` and `info` the same way, once, at
start-up: a code must lie in the refusal range of a command the rule can act on (PROTOCOL.md §3),
and `drop` is only accepted where such a command can silently drop (message sends). Also the one
config shape several policies share: option blocks keyed by a name (group type, ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields, validate

from receiver.errors import ConfigError
from receiver.model import Callback
from receiver.verdict import DROP, REFUSE, FriendResult, Verdict, drop, refuse

from ..base import RuleConfig, RuleContext


def platform_of(context: RuleContext) -> Any:
    """The platforms the rule serves. Without one (a rule built alone), every platform imhook knows:
    one rule file serves them all, so its codes are checked against them all."""
    if context.platform is not None:
        return context.platform
    from receiver.platforms import Platforms

    return Platforms()


PLATFORM_NAMES = ("tencent", "netease")


class PlatformCode(fields.Field):
    """`code: 120050`, or one per platform: `code: {tencent: 120050, netease: 20050}`.

    A single code is used on the platform whose ranges it fits; a callback of a platform it does not
    fit gets that platform's generic refusal (Refusal.code_for).
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict):
            unknown = [k for k in value if k not in PLATFORM_NAMES]
            if unknown:
                raise ValidationError(f"unknown platform {str(unknown[0])[:40]!r}; use {' or '.join(PLATFORM_NAMES)}")
            if not value:
                raise ValidationError("name at least one platform's code")
            return {name: self._one(code) for name, code in value.items()}
        return self._one(value)

    @staticmethod
    def _one(value):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return value


def code_field() -> fields.Field:
    return PlatformCode(load_default=None, allow_none=True)


def action_field(choices: tuple[str, ...], default: str) -> fields.String:
    return fields.String(load_default=default, validate=validate.OneOf(choices))


class NamedBlocks(fields.Dict):
    """{name: block}: a mapping of nested option blocks, whose errors read `name.option`.

    marshmallow's Dict reports a bad value under `name.value.option`; that `value` level names no
    key of the YAML file, so it is removed and the error points at the option's own line.
    """

    def __init__(self, schema, **kwargs):
        super().__init__(keys=fields.String(), values=fields.Nested(schema), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError as exc:
            messages = exc.messages
            if isinstance(messages, dict):
                messages = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in messages.items()}
            raise ValidationError(messages) from None


class RefusalConfig(RuleConfig):
    """`action`, `code` and `info`: the common tail of a policy rule's config."""

    action = action_field((REFUSE, DROP), REFUSE)
    code = code_field()
    info = fields.String(load_default="")


@dataclass(frozen=True)
class Refusal:
    """How to object: `outcome` refuse or drop, with the app's own `code` and `info` text."""

    platform: Any
    outcome: str = REFUSE
    code: int | None = None
    info: str = ""

    def verdict(self, callback: Callback, reason: str) -> Verdict:
        """Drop where the command can drop, refuse everywhere else (a drop cannot be rendered there)."""
        if self.outcome == DROP and self.platform.supports_drop(callback.command):
            return drop(reason)
        return refuse(self.info, code=self.code_for(callback.command), reason=reason)

    def friend_result(self, callback: Callback) -> FriendResult:
        return FriendResult(self.code_for(callback.command), self.info)

    def code_for(self, command: str) -> int | None:
        """The configured code if this command accepts it; else None (the command's generic refusal).

        A code is validated against the union of the rule's commands, on every platform, so a C2C
        code may meet a group message or a NetEase one: sending it there would be misread by the IM,
        so the generic refusal goes instead.
        """
        return code_in_range(self.platform, self.code, command)


def code_in_range(platform: Any, code: int | dict | None, command: str) -> int | None:
    """`code` (or its entry for the command's platform) if it lies in the command's range, else None."""
    if isinstance(code, dict):
        name = platform.platform_name(command) if hasattr(platform, "platform_name") else platform.name
        code = code.get(name)
    codes = platform.code_range(command)
    return code if code is not None and codes is not None and code in codes else None


def build_refusal(config: dict[str, Any], context: RuleContext, actions: Iterable[str], *,
                  path: str = "") -> Refusal:
    """Validate `action`/`code` of `config` against the commands of `actions`; return a Refusal.

    `path` is where `config` sits inside the rule's config ("patterns.2"), for the error message.
    """
    platform = platform_of(context)
    commands = platform.commands_for(tuple(actions))
    prefix = f"{path}." if path else ""
    outcome = config.get("action", REFUSE)
    if outcome == DROP and not any(platform.supports_drop(c) for c in commands):
        raise ConfigError("`drop` is only possible on message sends; this rule acts on "
                          f"{', '.join(commands)}: use `refuse`", path=f"{prefix}action")
    code = config.get("code")
    if code is not None:
        check_code(platform, commands, code, path=f"{prefix}code")
    return Refusal(platform, outcome, code, config.get("info", ""))


def check_code(platform: Any, commands: Iterable[str], code: int | dict, *, path: str = "code") -> None:
    """Raise a ConfigError unless `code` lies in the refusal range of at least one of `commands`
    (per platform: each platform's code against that platform's commands)."""
    commands = tuple(commands)
    if isinstance(code, dict):
        for name, one in code.items():
            mine = [c for c in commands if _platform_name(platform, c) == name]
            if not mine:
                raise ConfigError(f"this rule acts on no {name} callback that takes a refusal code; "
                                  f"remove `{name}`", path=f"{path}.{name}")
            check_code(platform, mine, one, path=f"{path}.{name}")
        return
    ranges = {c: platform.code_range(c) for c in commands}
    if any(r is not None and code in r for r in ranges.values()):
        return
    by_range: dict[str, list[str]] = {}
    for command, r in ranges.items():
        if r is not None:
            by_range.setdefault(str(r), []).append(command)
    known = "; ".join(f"{r} for {', '.join(commands)}" for r, commands in by_range.items())
    if not known:
        raise ConfigError(f"code {code}: the commands this rule acts on take no refusal code of "
                          "their own; remove `code`", path=path)
    raise ConfigError(f"code {code} is outside the refusal codes of every command this rule acts on "
                      f"({known})", path=path)


def _platform_name(platform: Any, command: str) -> str:
    return platform.platform_name(command) if hasattr(platform, "platform_name") else platform.name


def describe_options(config: dict[str, Any]) -> str:
    """One line for `imhook check`: the options that are set, long lists by their length."""
    return ", ".join(f"{key}={_brief(value)}" for key, value in config.items() if _is_set(value))


def _is_set(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_brief(v)}" for k, v in value.items() if _is_set(v)) + "}"
    if isinstance(value, list) and len(value) > 3:
        return f"[{len(value)} entries]"
    return str(value)
