"""What a scenario run produced: callbacks sent, client events per user, checks, the transcript."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The client SDK events the emulator reports (PROTOCOL.md §7), by the phrase used in transcripts
# and in `USER sees ...` expectations.
EVENT_KINDS = (
    "new message", "message updated", "failed", "succeeded", "message recalled", "read receipt",
    "friend request", "friend added", "friend request rejected", "friend deleted",
    "group created", "member invited", "member entered", "member left", "member kicked",
    "join application", "join declined", "logged in", "logged out", "kicked offline",
    "invitation", "invitation cancelled", "invitation accepted", "invitation rejected",
    "invitation timeout",
)


@dataclass(frozen=True)
class ClientEvent:
    """One event a user's client SDK raises (or a send's completion), with a readable summary."""

    user: str
    kind: str
    summary: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        if self.kind in ("failed", "succeeded"):  # completions read better as "send failed 20006"
            return self.summary
        return f"{self.kind}{': ' + self.summary if self.summary else ''}"


@dataclass
class Exchange:
    """One callback posted to the receiver and how the IM read the reply."""

    command: str
    query: dict[str, str]
    body: dict[str, Any]
    status: int | None = None  # None: no HTTP answer (timeout, connection refused)
    reply: Any = None
    elapsed_ms: float = 0.0
    outcome: str = ""  # how the IM read it: "allow", "refuse 120001 ...", "drop", "ignored", ...
    answered: bool = False  # True only for HTTP 200 with a JSON object within the budget
    warnings: list[str] = field(default_factory=list)

    def brief(self) -> str:
        answer = "no answer" if self.status is None else f"HTTP {self.status}"
        return f"{self.command:<36} ← {answer} in {self.elapsed_ms:.0f} ms: {self.outcome}"


@dataclass(frozen=True)
class CheckResult:
    text: str
    ok: bool
    detail: str = ""
    line: int | None = None


@dataclass
class StepReport:
    number: int
    sentence: str
    line: int | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    events: list[ClientEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(c.ok for c in self.checks)

    @property
    def warnings(self) -> list[str]:
        return [f"{x.command}: {w}" for x in self.exchanges for w in x.warnings]

    def events_of(self, user: str, kind: str | None = None) -> list[ClientEvent]:
        return [e for e in self.events if e.user == user and (kind is None or e.kind == kind)]


@dataclass
class Report:
    scenario: str
    url: str
    steps: list[StepReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for step in self.steps for c in step.checks if not c.ok]

    @property
    def warnings(self) -> list[str]:
        return [w for step in self.steps for w in step.warnings]

    def step(self, number: int) -> StepReport:
        """The report of step `number` (1-based, as in the transcript)."""
        return self.steps[number - 1]

    def summary(self) -> str:
        checks = [c for s in self.steps for c in s.checks]
        errors = sum(1 for s in self.steps if s.error)
        failed = len(self.failed_checks)
        parts = [f"{len(self.steps)} steps", f"{len(checks)} expectations: {len(checks) - failed} passed, "
                 f"{failed} failed"]
        if errors:
            parts.append(f"{errors} step errors")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warnings")
        return ("PASS" if self.ok else "FAIL") + ": " + "; ".join(parts)

    def transcript(self, *, bodies: bool = False) -> str:
        """A readable per-step account; `bodies` adds each callback body and reply as JSON."""
        out = [f"Scenario {self.scenario} against {self.url}"]
        for step in self.steps:
            out.extend(_render_step(step, bodies))
        out.append(self.summary())
        return "\n".join(out)


def _render_step(step: StepReport, bodies: bool) -> list[str]:
    where = f"  (line {step.line})" if step.line else ""
    out = [f"{step.number:>3}. {step.sentence}{where}"]
    for exchange in step.exchanges:
        out.append(f"     → {exchange.brief()}")
        if bodies:
            out.append("         body:  " + json.dumps(exchange.body, ensure_ascii=False))
            out.append("         reply: " + (json.dumps(exchange.reply, ensure_ascii=False)
                                             if isinstance(exchange.reply, (dict, list)) else repr(exchange.reply)))
        out.extend(f"     ! {warning}" for warning in exchange.warnings)
    width = max((len(e.user) for e in step.events), default=0)
    out.extend(f"     {event.user:<{width}}  {event.line()}" for event in step.events)
    out.extend(f"     · {note}" for note in step.notes)
    for check in step.checks:
        mark = "✓" if check.ok else "✗"
        detail = f"  — {check.detail}" if check.detail and not check.ok else ""
        out.append(f"     {mark} {check.text}{detail}")
    if step.error:
        out.append(f"     ✗ step failed: {step.error}")
    return out
