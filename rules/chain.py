"""The rule chain: rules in config order, first refusal wins, rewrites compose, default allow."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace

from receiver.model import Callback, MessageSend, filled
from receiver.threadnames import name_this_thread
from receiver.verdict import ALLOW, DROP, REFUSE, FriendResult, Verdict

from .base import Rule

log = logging.getLogger("imhook.chain")

ON_ERROR_OUTCOMES = (ALLOW, REFUSE, DROP)
FAULT_LOG_INTERVAL = 10.0  # seconds between two log lines about the same failing rule
_MAX_ACTIONS_CACHED = 256  # far more than the neutral actions and platform commands there are


@dataclass(frozen=True)
class Scope:
    """Which callbacks a rule sees. Empty tuples mean "any"."""

    commands: tuple[str, ...] = ()  # platform command names or neutral actions ("message.send")
    group_types: tuple[str, ...] = ()
    conversations: tuple[str, ...] = ()  # "c2c", "group", "official"
    users: tuple[str, ...] = ()
    except_users: tuple[str, ...] = ()

    def covers(self, callback: Callback) -> bool:
        event = callback.event
        if self.commands and callback.command not in self.commands and event.action not in self.commands:
            return False
        if self.group_types and event.group_type not in self.group_types:
            return False
        if self.conversations and getattr(event, "conversation", "") not in self.conversations:
            return False
        if self.users and event.actor not in self.users:
            return False
        return event.actor not in self.except_users


@dataclass
class ChainEntry:
    rule: Rule
    scope: Scope = field(default_factory=Scope)
    on_error: str = ALLOW
    budget_ms: float = 200.0

    _last_logged: float = field(default=0.0, repr=False)
    _suppressed: int = field(default=0, repr=False)
    # What applies_to asks on every callback, worked out once (rule and scope never change).
    _allowed: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)
    _everywhere: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A rule sees its default `actions`; naming commands in the scope widens that to anything
        # the rule `supports` (e.g. sensitive_words on friend wordings only when asked to).
        allowed = (self.rule.supports or self.rule.actions) if self.scope.commands else self.rule.actions
        self._allowed = frozenset(allowed)
        self._everywhere = self.scope == Scope()

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def actions(self) -> frozenset[str]:
        """The neutral actions this entry sees (empty: all): the rule's own, widened by scope.commands."""
        return self._allowed

    def log_fault(self, command: str, fault: str) -> None:
        """Log a fault with the rule's name; a rule failing on every request (Redis down) logs
        once per FAULT_LOG_INTERVAL with a count, not one line per callback."""
        now = time.monotonic()
        if now - self._last_logged < FAULT_LOG_INTERVAL:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        log.error("rule %s failed on %s: %s; applied on_error=%s%s", self.name, command, fault, self.on_error, more)
        self._last_logged, self._suppressed = now, 0

    def applies_to(self, callback: Callback) -> bool:
        # Called for every entry on every callback, twice (decide, then run): kept minimal.
        allowed = self._allowed
        if allowed and callback.event.action not in allowed:
            return False
        return self.in_scope(callback)

    def in_scope(self, callback: Callback) -> bool:
        """The scope half of applies_to, for entries already picked by action (Chain._candidates)."""
        return self._everywhere or self.scope.covers(callback)


@dataclass(frozen=True)
class TraceStep:
    """What one rule did with one callback, for `imhook explain`, replay and logs."""

    rule: str
    result: str  # allow, refuse, drop, rewrite, refuse_some, no_opinion, error, timeout, skipped
    reason: str = ""
    elapsed_ms: float = 0.0


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    trace: tuple[TraceStep, ...]
    elapsed_ms: float = 0.0


# The answers most callbacks get, made once: decisions and verdicts are immutable values.
NO_RULE_APPLIES = Decision(Verdict(ALLOW, reason="no rule applies"), ())
NO_OBJECTION = Verdict(ALLOW, reason="no rule objected")


class Chain:
    """Run rules in order under a whole-chain deadline; never raise."""

    def __init__(self, entries: list[ChainEntry], *, deadline_ms: float = 1500.0, on_error: str = ALLOW,
                 threads: int = 8):
        self.entries = entries  # fixed once the chain is built (see _candidates)
        self.deadline_ms = deadline_ms
        self._by_action: dict[str, tuple[ChainEntry, ...]] = {}
        self._inline: set[str] = set()  # actions none of whose rules may block (see _candidates)
        self.on_error = on_error
        # A chain with a rule that may block runs on a pool thread, so a rule that hangs cannot hold
        # the reply past the deadline; the hung thread is abandoned (and logged), the reply leaves.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imhook-chain",
                                        initializer=name_this_thread)
        self._undecided_log = _ThrottledLog()

    def decide(self, callback: Callback) -> Decision:
        """Decide a callback; after-callbacks and callbacks no rule covers are allowed at once."""
        if not callback.is_before:
            return NO_RULE_APPLIES
        if callback.undecidable:
            return self.undecided(callback)
        action = callback.event.action
        candidates = self._candidates(action)
        if not candidates:
            return NO_RULE_APPLIES
        started = time.perf_counter()
        # No rule in scope that may block (always so for an action in _inline, the common chain):
        # the hop to a pool thread would cost more than the rules do, and they cannot hold the
        # reply past the deadline. `run` checks each scope once more as it goes.
        if action in self._inline or not any(e.rule.blocking and e.in_scope(callback) for e in candidates):
            decision = self.run(callback)
            if not decision.trace:  # every in-scope rule leaves a step: none was in scope
                return NO_RULE_APPLIES
            return Decision(decision.verdict, decision.trace, (time.perf_counter() - started) * 1000)
        future = self._pool.submit(self.run, callback)
        try:
            decision = future.result(timeout=self.deadline_ms / 1000)
        except FutureTimeout:
            # If it never started (every pool thread held by hung rules), it never will be needed.
            future.cancel()
            log.error("rule chain overran its %.0f ms deadline on %s; replied %s",
                      self.deadline_ms, callback.command, self.on_error)
            verdict = _fallback(self.on_error, "chain", f"chain deadline of {self.deadline_ms:g} ms exceeded")
            decision = Decision(verdict, (TraceStep("chain", "timeout", verdict.reason),))
        return replace(decision, elapsed_ms=(time.perf_counter() - started) * 1000)

    def run(self, callback: Callback) -> Decision:
        """Run the chain in the calling thread (no deadline): used by `decide`, explain and replay."""
        if callback.undecidable and callback.is_before:
            return self.undecided(callback)
        trace: list[TraceStep] = []
        current = callback
        refused_members: dict[str, None] = {}
        friend_results: dict[str, FriendResult] = {}
        changed_by: list[str] = []
        clock = time.perf_counter
        # A rewrite changes only the message, never the action, so the candidates stay valid.
        for entry in self._candidates(current.event.action):
            if not entry.in_scope(current):
                continue
            started = clock()
            verdict, fault = _call(entry, current)
            elapsed = (clock() - started) * 1000
            name = entry.rule.name
            if fault is None and elapsed > entry.budget_ms:
                fault = f"overran its budget of {entry.budget_ms:g} ms ({elapsed:.1f} ms)"
            if fault is not None:
                entry.log_fault(current.command, fault)
                trace.append(_trace_step(name, "error", fault, elapsed))
                verdict = _fallback(entry.on_error, name, f"rule error: {fault}")
                if verdict.outcome == ALLOW:
                    continue
            if verdict is None:
                trace.append(_trace_step(name, "no_opinion", "", elapsed))
                continue
            if not verdict.rule:  # the text rules name themselves: no copy needed
                verdict = verdict.by(name)
            if fault is None:
                trace.append(_trace_step(name, result_name(verdict), verdict.reason, elapsed))
            if verdict.ends_chain:
                return Decision(verdict, tuple(trace))
            if verdict.message is not None:
                current = current.with_event(replace(current.event, message=verdict.message))
                changed_by.append(name)
            if verdict.refused_members or verdict.friend_results:
                refused_members.update(dict.fromkeys(verdict.refused_members))
                for account, result in verdict.friend_results.items():
                    friend_results.setdefault(account, result)
                changed_by.append(name)
        if not changed_by:  # the common case: nothing to merge (refused_members, friend_results empty)
            return Decision(NO_OBJECTION, tuple(trace))
        final_message = current.event.message if isinstance(current.event, MessageSend) else None
        reason = "; ".join(s.reason for s in trace if s.rule in changed_by and s.reason) or "no rule objected"
        return Decision(
            Verdict(ALLOW, message=final_message, refused_members=tuple(refused_members),
                    friend_results=friend_results, rule=",".join(dict.fromkeys(changed_by)), reason=reason),
            tuple(trace),
        )

    def undecided(self, callback: Callback) -> Decision:
        """The on_error outcome for a before-callback whose body the rules cannot read: with
        `on_error: refuse` an unreadable field fails closed instead of skipping the rules.

        Only where some rule takes callbacks of its action: the scope cannot be checked (it reads
        the fields that are unreadable), but a chain without a rule for the action decides nothing.
        """
        if not self._candidates(callback.event.action):
            return NO_RULE_APPLIES
        reason = f"rules not run: {callback.undecidable}"
        self._undecided_log.report(callback.command, reason, self.on_error)
        verdict = _fallback(self.on_error, "chain", reason)
        return Decision(verdict, (TraceStep("chain", "error", reason),))

    def _candidates(self, action: str) -> tuple[ChainEntry, ...]:
        """The entries whose actions admit `action`, in order; their scopes are still to check.

        Asking every entry on every callback, twice (decide, then run), cost more than a rule.
        """
        found = self._by_action.get(action)
        if found is None:
            found = tuple(e for e in self.entries if not e._allowed or action in e._allowed)
            if len(self._by_action) < _MAX_ACTIONS_CACHED:  # actions come from the wire
                if not any(e.rule.blocking for e in found):
                    self._inline.add(action)  # before _by_action: a thread that sees one sees both
                self._by_action[action] = found
        return found

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for entry in self.entries:
            try:
                entry.rule.close()
            except Exception:  # closing must not stop the other rules from closing
                log.exception("rule %s failed to close", entry.name)


class _ThrottledLog:
    """One line per FAULT_LOG_INTERVAL about undecidable callbacks, with a count of the others."""

    def __init__(self) -> None:
        self._last = -FAULT_LOG_INTERVAL
        self._suppressed = 0

    def report(self, command: str, reason: str, outcome: str) -> None:
        now = time.monotonic()
        if now - self._last < FAULT_LOG_INTERVAL:
            self._suppressed += 1  # a lost increment under a race only undercounts a log line
            return
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self._last, self._suppressed = now, 0
        log.error("%s: %s; applied on_error=%s%s", command[:100], reason, outcome, more)


def _call(entry: ChainEntry, callback: Callback) -> tuple[Verdict | None, str | None]:
    """Call a rule; return (verdict, None) or (None, what went wrong)."""
    try:
        verdict = entry.rule.decide(callback)
    except Exception as exc:  # a rule's fault must never take the service down
        log.debug("rule %s raised", entry.name, exc_info=True)
        return None, f"raised {type(exc).__name__}: {exc}"
    if verdict is None:  # no opinion: the common case
        return None, None
    if not isinstance(verdict, Verdict):
        return None, f"returned {type(verdict).__name__}, not a Verdict or None"
    if verdict.message is not None and not isinstance(callback.event, MessageSend):
        return None, "rewrote a message on a callback that carries none"
    if verdict.outcome not in ON_ERROR_OUTCOMES:
        return None, f"returned an unknown outcome {verdict.outcome!r}"
    return verdict, None


def _trace_step(rule: str, result: str, reason: str, elapsed_ms: float) -> TraceStep:
    """TraceStep(rule, result, reason, elapsed_ms), at half the cost: several per callback (`filled`)."""
    return filled(TraceStep, rule=rule, result=result, reason=reason, elapsed_ms=elapsed_ms)


def _fallback(outcome: str, rule: str, reason: str) -> Verdict:
    return Verdict(outcome, rule=rule, reason=reason)


def result_name(verdict: Verdict) -> str:
    """allow, refuse, drop, rewrite or refuse_some: how traces, logs and metrics name a verdict."""
    if verdict.outcome != ALLOW:
        return verdict.outcome
    if verdict.message is not None:
        return "rewrite"
    if verdict.refused_members or verdict.friend_results:
        return "refuse_some"
    return "allow"
