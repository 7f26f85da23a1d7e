"""The rule protocol: a small object with a pure `decide`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from marshmallow import RAISE, Schema

from receiver.model import Callback
from receiver.verdict import Verdict


@dataclass
class RuleContext:
    """What a rule may need at build time: where its config file lives, shared clients."""

    base_dir: Path = Path(".")
    platform: Any = None  # the platform, for refusal-code ranges
    services: dict[str, Any] = field(default_factory=dict)  # e.g. a shared Redis client

    def resolve(self, path: str) -> Path:
        """Resolve a path from the config relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


class RuleConfig(Schema):
    """Base of a rule's config schema: unknown keys are errors."""

    class Meta:
        unknown = RAISE


class Rule:
    """Base class for rules, built-in and third-party alike.

    Subclasses set `Config` (a RuleConfig schema, validated once at start-up), optionally
    `actions` (neutral actions it applies to by default, e.g. ("message.send",)), and implement
    `decide(callback) -> Verdict | None`. `None` means "no opinion". `decide` must not block for
    long: the chain has a deadline, and the IM waits 2 s at most.
    """

    Config: ClassVar[type[Schema]] = RuleConfig
    actions: ClassVar[tuple[str, ...]] = ()  # empty: every before-callback in scope
    #: actions the rule can also handle when its scope names them (default: just `actions`)
    supports: ClassVar[tuple[str, ...]] = ()
    #: may `decide` block (I/O, locks, unbounded work)? Then the chain runs it on a pool thread under
    #: the deadline. Unknown code may: only rules known to do bounded CPU work set this to False.
    blocking: bool = True
    name: str

    def __init__(self, config: dict[str, Any], *, name: str, context: RuleContext):
        self.config = config
        self.name = name
        self.context = context

    def decide(self, callback: Callback) -> Verdict | None:
        raise NotImplementedError

    def describe(self) -> str:
        """One line for `imhook check`: what this rule instance will do."""
        return ", ".join(f"{k}={v!r}" for k, v in self.config.items() if not isinstance(v, (list, dict)))

    def close(self) -> None:
        """Release resources (connections, threads) when the chain is replaced."""
