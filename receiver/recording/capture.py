"""Turn a handled request (core.Outcome) into a Record, applying the privacy policy.

With the journal on (the default) this runs on the reply path: the journal line is the finished,
already private record, written before the reply goes out. Without it, on the writer thread.
"""

from __future__ import annotations

from ..core import Outcome
from .privacy import Policy
from .record import Record


def record_from_outcome(outcome: Outcome, policy: Policy, *, max_rejected_body: int) -> Record:
    request = outcome.request
    body = request.body
    truncated = False
    if outcome.error is not None and len(body) > max_rejected_body:
        # Rejected requests may be anyone's junk: keep only enough to see what it was.
        body, truncated = body[:max_rejected_body], True
    verdict = outcome.decision.verdict if outcome.decision else None
    return Record(
        received_at=outcome.received_at,
        command=outcome.command,
        query=policy.query(request.query),
        body=policy.body(body),  # a truncated body is not JSON: hashed whole when redacting
        status=outcome.status,
        reply=policy.value(outcome.reply),
        outcome=outcome.outcome_name,
        rule=verdict.rule if verdict else "",
        reason=verdict.reason if verdict else (outcome.error.message if outcome.error else ""),
        trace=[vars(step).copy() for step in outcome.decision.trace] if outcome.decision else [],
        elapsed_ms=round(outcome.elapsed_ms, 3),
        rejected=outcome.error is not None,
        error=outcome.error.message if outcome.error else "",
        body_truncated=truncated,
        user=policy.user(outcome.callback.event.actor) if outcome.callback else "",
        request_id=request.request_id,
        source="live",
        redacted=policy.redacted,
    )
