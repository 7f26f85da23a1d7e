"""/readyz checks: rules loaded, stores writable, Redis (or any rule's backend) reachable.

A check is a named callable returning None when fine, else a short reason. Each runs on a pool
thread with a timeout, so a hung backend makes /readyz answer 503, never hang.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from ..threadnames import name_this_thread

log = logging.getLogger("imhook.ready")
Check = Callable[[], "str | None"]
PROBE_METHODS = ("ready", "ping")  # a rule with a backend (Redis...) exposes one of these


@dataclass(frozen=True)
class Report:
    ready: bool
    checks: dict[str, str]  # name -> "ok" or the reason it is not

    def to_json(self) -> dict:
        reasons = [f"{name}: {state}" for name, state in self.checks.items() if state != "ok"]
        return {"status": "ready" if self.ready else "not ready", "checks": self.checks, "reasons": reasons}


def rule_probe(rule) -> Check | None:
    """A check calling ready()/ping() of the rule, else of its store, else of the store's client.

    Rules with a backend should offer `ready()`; the fallbacks find a Redis client (whose ping()
    honours the rule's short socket timeouts) in rules that do not yet. A False return or an
    exception means not ready.
    """
    store = getattr(rule, "store", None)
    for owner in (rule, store, getattr(store, "client", None)):
        for method in PROBE_METHODS:
            probe = getattr(owner, method, None) if owner is not None else None
            if callable(probe):
                return _probe_check(probe, method)
    return None


def _probe_check(probe, method: str) -> Check:
    def check() -> str | None:
        try:
            result = probe()
        except Exception as exc:
            return f"{method}() raised {type(exc).__name__}: {str(exc)[:200]}"
        return None if result is None or result is True else f"{method}() returned {result!r}"
    return check


def chain_checks(chain) -> dict[str, Check]:
    """One check that the chain is built, plus one per rule that can probe its backend."""
    checks: dict[str, Check] = {"rules": lambda: None if chain is not None else "no rule chain loaded"}
    for entry in getattr(chain, "entries", ()):
        probe = rule_probe(entry.rule)
        if probe is not None:
            checks[f"rule:{entry.name}"] = probe
    return checks


class Readiness:
    """Run named checks concurrently, each bounded by `timeout` seconds."""

    def __init__(self, timeout: float = 1.0):
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="imhook-ready",
                                        initializer=name_this_thread)

    def run(self, checks: dict[str, Check]) -> Report:
        futures = {name: self._pool.submit(_safe, check) for name, check in checks.items()}
        deadline = time.monotonic() + self.timeout  # one budget for all: the checks run in parallel
        states: dict[str, str] = {}
        for name, future in futures.items():
            try:
                reason = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                reason = f"no answer within {self.timeout:g} s"
            states[name] = "ok" if reason is None else reason
        return Report(all(state == "ok" for state in states.values()), states)


def _safe(check: Check) -> str | None:
    try:
        return check()
    except Exception as exc:  # a check that crashes says "not ready", it does not 500
        log.warning("readiness check failed", exc_info=True)
        return f"check raised {type(exc).__name__}"
