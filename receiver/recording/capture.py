"""Turn a handled request (core.Outcome) into a Record, applying the privacy policy.

With the journal on (the default) this runs on the reply path: the journal line is the finished,
already private record, written before the reply goes out. Without it, on the writer thread.
"""

from __future__ import annotations

import json

from ..core import Outcome
from ..model import filled
from ..platforms import RECORD_PLATFORM_KEY
from .privacy import Policy
from .record import Record


def record_from_outcome(outcome: Outcome, policy: Policy, *, max_rejected_body: int) -> Record:
    request, error, decision = outcome.request, outcome.error, outcome.decision
    body = request.body
    truncated = False
    if error is not None and len(body) > max_rejected_body:
        # Rejected requests may be anyone's junk: keep only enough to see what it was.
        body, truncated = body[:max_rejected_body], True
    verdict = decision.verdict if decision else None
    query = policy.query(request.query)
    if request.platform:  # NetEase: replay and explain dispatch on it (receiver/platforms.py)
        query[RECORD_PLATFORM_KEY] = request.platform
        body = without_login_token(body)
    # `filled`: every field, in Record's order (tests/test_recording_encode.py compares with Record(...)).
    return filled(
        Record,
        received_at=outcome.received_at,
        command=outcome.command,
        query=query,
        body=policy.body(body),  # a truncated body is not JSON: hashed whole when redacting
        status=outcome.status,
        reply=policy.value(outcome.reply),
        outcome=outcome.outcome_name,
        rule=verdict.rule if verdict else "",
        reason=verdict.reason if verdict else (error.message if error else ""),
        trace=[step.__dict__.copy() for step in decision.trace] if decision else [],
        elapsed_ms=round(outcome.elapsed_ms, 3),
        rejected=error is not None,
        error=error.message if error else "",
        body_truncated=truncated,
        user=policy.user(outcome.callback.event.actor) if outcome.callback else "",
        request_id=request.request_id,
        source="live",
        redacted=policy.redacted,
        id=None,
        origin="",
    )


def without_login_token(body: bytes) -> bytes:
    """A NetEase login body (events 36, 40) without its `token`: a credential is never recorded."""
    if b'"token"' not in body:
        return body
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(data, dict) or "token" not in data:
        return body
    data["token"] = "(not recorded)"
    return json.dumps(data, ensure_ascii=False).encode()
