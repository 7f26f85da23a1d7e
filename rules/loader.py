"""Build a Chain from the validated config: resolve rule classes, validate each rule's config."""

from __future__ import annotations

import logging

from marshmallow import ValidationError

from receiver.config import Config
from receiver.errors import ConfigError
from receiver.yamlfile import errors_to_config_error

from .base import RuleContext
from .chain import Chain, ChainEntry, Scope
from .registry import load_rule_class

log = logging.getLogger("imhook.rules")


def build_chain(config: Config, *, platform=None, services: dict | None = None) -> Chain:
    """Instantiate every enabled rule in config order; errors name file, path and line."""
    doc = config.document
    context = RuleContext(base_dir=config.base_dir, platform=platform, services=services or {})
    chain_cfg = config.chain
    entries: list[ChainEntry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(config.rules):
        if not item["enabled"]:
            continue
        path = ("rules", index)
        rule_class = load_rule_class(item["use"], file=doc.file, path=f"rules[{index}].use",
                                     line=doc.line_of(path + ("use",)), search_dir=config.base_dir)
        name = item["name"] or item["use"]
        if name in seen:
            raise doc.error(path + ("name",), f"rule name {name!r} is already used by rules[{seen[name]}]; "
                                              "give one of them a distinct `name`")
        seen[name] = index
        try:
            rule_config = rule_class.Config().load(item["config"])
        except ValidationError as exc:
            raise errors_to_config_error(doc, exc.messages, path + ("config",)) from None
        try:
            rule = rule_class(rule_config, name=name, context=context)
        except ConfigError as exc:
            if exc.file is None:  # a rule's own check: say where in our file it came from
                # "limits.0.max" -> ("limits", 0, "max"): list indexes are ints in the line table
                inner = tuple(int(p) if p.isdigit() else p for p in exc.path.split(".")) if exc.path else ()
                raise doc.error(path + ("config",) + inner, exc.detail) from None
            raise
        scope = item["scope"]
        entries.append(ChainEntry(
            rule=rule,
            scope=Scope(**{k: tuple(v) for k, v in scope.items()}),
            on_error=item["on_error"] or chain_cfg["on_error"],
            budget_ms=item["budget_ms"] or chain_cfg["rule_budget_ms"],
        ))
        _check_scope(doc, path, entries[-1], platform)
        _warn_platforms(name, path, entries[-1], platform, _enabled_platforms(config))
    return Chain(entries, deadline_ms=chain_cfg["deadline_ms"], on_error=chain_cfg["on_error"],
                 threads=chain_cfg["threads"])


def _enabled_platforms(config: Config) -> tuple[str, ...]:
    """The platforms this receiver answers: Tencent always, NetEase with its key (docs/netease.md)."""
    return ("tencent", "netease") if getattr(config, "netease_app_key", "") else ("tencent",)


def _warn_platforms(name: str, path: tuple, entry: ChainEntry, platform, enabled: tuple[str, ...]) -> list[str]:
    """Say at load which enabled platform a rule can never act on (friend_policy on NetEase, which
    has no friend callback; recall_policy on Tencent, which reports recalls only afterwards)."""
    members = getattr(platform, "members", None)
    if not members or len(enabled) < 2 or not entry.actions:
        return []
    idle = [each for each in enabled if each in members and not members[each].commands_for(tuple(entry.actions))]
    for each in idle:
        log.warning("rules[%d] %s acts on %s, which %s IM never asks about: it applies to %s callbacks only",
                    path[1], name, ", ".join(sorted(entry.actions)), each,
                    " and ".join(p for p in enabled if p not in idle) or "no")
    return idle


def _check_scope(doc, path, entry: ChainEntry, platform) -> None:
    """Scope commands must be names the platform (or the neutral vocabulary) knows."""
    if platform is None:
        return
    from receiver import model

    neutral = {v for k, v in vars(model).items() if k.isupper() and isinstance(v, str)}
    for i, command in enumerate(entry.scope.commands):
        if command not in platform.commands and command not in neutral:
            raise doc.error(path + ("scope", "commands", i),
                            f"unknown command {command!r}; use a {platform.name} CallbackCommand "
                            f"or one of {', '.join(sorted(neutral))}")
