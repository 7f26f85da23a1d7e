"""What a replay found: one Case per record, gathered into counts per command and per rule."""

from __future__ import annotations

import difflib
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from ..jsonout import storable

NO_RULE = "(no rule)"
KINDS = ("unchanged", "changed", "new", "error")


@dataclass(frozen=True)
class Side:
    """One reply and what produced it. `rule`/`reason` None: unknown (replay over HTTP)."""

    status: int | None
    reply: Any
    outcome: str
    rule: str | None = ""
    reason: str | None = ""

    def rules(self) -> list[str]:
        return [r for r in (self.rule or "").split(",") if r]


@dataclass
class Case:
    where: str
    command: str
    user: str
    received_at: float
    kind: str  # unchanged / changed / new / error
    old: Side | None = None
    new: Side | None = None
    error: str = ""

    def diff(self) -> list[str]:
        """A unified diff of the old and new reply, as pretty JSON."""
        if self.old is None or self.new is None:
            return []
        old, new = _pretty(self.old.status, self.old.reply), _pretty(self.new.status, self.new.reply)
        return list(difflib.unified_diff(old, new, "recorded reply", "new reply", lineterm="", n=2))

    def rule_keys(self) -> list[str]:
        """The rules a case is counted under: both deciders of a change, else the one deciding now."""
        new_rules = self.new.rules() if self.new and self.new.rule is not None else None
        old_rules = self.old.rules() if self.old else []
        if new_rules is None:  # not known over HTTP: the recorded decider stands in
            new_rules = old_rules
        keys = list(dict.fromkeys(old_rules + new_rules)) if self.kind == "changed" else new_rules
        return keys or [NO_RULE]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.kind == "changed":
            data["diff"] = self.diff()
        return data


def _pretty(status: int | None, reply: Any) -> list[str]:
    # storable: a reply may echo a lone surrogate of the callback; the diff is printed and saved.
    text = storable(json.dumps(reply, ensure_ascii=False, indent=2, sort_keys=True))
    return [f"HTTP {status}"] + text.splitlines()


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)
    by_command: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    by_rule: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    transitions: Counter = field(default_factory=Counter)
    changed: list[Case] = field(default_factory=list)
    new: list[Case] = field(default_factory=list)
    errors: list[Case] = field(default_factory=list)
    skipped_rejected: int = 0
    redacted: int = 0

    def add(self, case: Case) -> None:
        self.counts[case.kind] += 1
        self.by_command[case.command or "(unreadable)"][case.kind] += 1
        if case.kind == "error":
            self.errors.append(case)
            return
        for rule in case.rule_keys():
            self.by_rule[rule][case.kind] += 1
        if case.kind == "changed":
            self.changed.append(case)
            self.transitions[(case.old.outcome, case.new.outcome)] += 1
        elif case.kind == "new":
            self.new.append(case)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": {"total": self.total, **{k: self.counts[k] for k in KINDS},
                        "skipped_rejected": self.skipped_rejected, "redacted": self.redacted},
            "by_command": {k: {kind: v[kind] for kind in KINDS} for k, v in sorted(self.by_command.items())},
            "by_rule": {k: {kind: v[kind] for kind in KINDS[:3]} for k, v in sorted(self.by_rule.items())},
            "transitions": [{"from": a, "to": b, "count": n} for (a, b), n in self.transitions.most_common()],
            "changed": [c.to_json() for c in self.changed],
            "new": [c.to_json() for c in self.new],
            "errors": [{"where": c.where, "command": c.command, "why": c.error} for c in self.errors],
        }
