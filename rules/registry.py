"""Find rule classes: by entry-point name (built-in and third-party alike) or `module:Class`."""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from receiver.errors import ConfigError

from .base import Rule

GROUP = "imhook.rules"


@cache
def registered() -> dict[str, object]:
    """Every rule registered in the `imhook.rules` entry-point group, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_rule_class(name: str, *, file: str | None = None, path: str = "", line: int | None = None) -> type[Rule]:
    """Resolve `name` to a Rule subclass, or raise a ConfigError naming where it was asked for."""
    where = dict(file=file, path=path, line=line)
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import rule {name!r}: {exc}", **where) from exc
    else:
        entry = registered().get(name)
        if entry is None:
            known = ", ".join(sorted(registered())) or "(none installed)"
            raise ConfigError(f"unknown rule {name!r}; known rules: {known}", **where)
        try:
            obj = entry.load()
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"rule {name!r} is registered but cannot be loaded: {exc}", **where) from exc
    if not (isinstance(obj, type) and issubclass(obj, Rule)):
        raise ConfigError(f"{name!r} is not a subclass of rules.Rule", **where)
    return obj
