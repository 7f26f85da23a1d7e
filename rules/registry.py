"""Find rule classes: by entry-point name (built-in and third-party alike) or `module:Class`."""

from __future__ import annotations

import importlib
import sys
from functools import cache
from pathlib import Path
from importlib.metadata import entry_points

from receiver.errors import ConfigError

from .base import Rule

GROUP = "imhook.rules"


@cache
def registered() -> dict[str, object]:
    """Every rule registered in the `imhook.rules` entry-point group, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_rule_class(name: str, *, file: str | None = None, path: str = "", line: int | None = None,
                    search_dir: Path | None = None) -> type[Rule]:
    """Resolve `name` to a Rule subclass, or raise a ConfigError naming where it was asked for.

    A `module:Class` is imported as Python would; a module not found that way is looked for in
    `search_dir` (the config file's folder), so `myrules.py` beside the config needs no PYTHONPATH.
    """
    where = dict(file=file, path=path, line=line)
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            obj = getattr(_import(module_name, search_dir), attr)
        except (ImportError, AttributeError) as exc:
            looked = f" (looked in the installed packages and in {search_dir})" if search_dir else ""
            raise ConfigError(f"cannot import rule {name!r}: {exc}{looked}", **where) from exc
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


def _import(module_name: str, search_dir: Path | None):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.partition(".")[0]
        if search_dir is None or exc.name != top:
            raise
    # Appended, never put first: a file beside the config must not shadow an installed module. It
    # stays on sys.path so the module's own later imports of its neighbours work too.
    folder = str(Path(search_dir).absolute())
    if folder not in sys.path:
        sys.path.append(folder)
    importlib.invalidate_caches()
    return importlib.import_module(module_name)
