"""Tencent IM callback authentication (PROTOCOL.md §1)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from .errors import Unauthorized

# RequestTime is seconds since 1970 as decimal ASCII digits (PROTOCOL.md §1). Twelve digits reach the
# year 33658: anything longer is no time at all, and is refused before it is made a number (a
# 400-digit value cannot even become the float the window check compares).
MAX_REQUEST_TIME_DIGITS = 12


def sign(token: str, request_time: int | str) -> str:
    """Return Sign = lower-case hex sha256(token + RequestTime)."""
    return hashlib.sha256(f"{token}{request_time}".encode()).hexdigest()


# The expected Sign of each (token, RequestTime) lately seen: RequestTime is in whole seconds, so a
# busy receiver checks hundreds of callbacks against the same one, and the hash was ~2 % of a
# callback's CPU. Bounded: emptied when full (a RequestTime is only accepted within the window).
_EXPECTED: dict[tuple[str, str], bytes] = {}
_EXPECTED_MAX = 256


def expected_sign(token: str, request_time: str) -> bytes:
    key = (token, request_time)
    found = _EXPECTED.get(key)
    if found is None:
        if len(_EXPECTED) >= _EXPECTED_MAX:
            _EXPECTED.clear()  # racing threads may clear twice or add one more: harmless
        found = _EXPECTED[key] = sign(token, request_time).encode()
    return found


def verify_sign(
    tokens: Sequence[str], sign_value: str | None, request_time: str | None, *, now: float, window: float
) -> None:
    """Raise Unauthorized unless Sign matches one of `tokens` and RequestTime is fresh.

    Several tokens may be valid at once so a token can be rotated without downtime. Messages
    never echo the token or the expected signature.
    """
    if not sign_value or not request_time:
        raise Unauthorized("missing Sign or RequestTime")
    # int() would also take spaces, "_" and non-ASCII digits; the IM sends plain digits.
    if not (request_time.isascii() and request_time.isdigit()):
        raise Unauthorized("RequestTime is not an integer")
    if len(request_time) > MAX_REQUEST_TIME_DIGITS:
        raise Unauthorized(f"RequestTime is out of range (over {MAX_REQUEST_TIME_DIGITS} digits)")
    when = int(request_time)
    # The IM page states no window; a sibling Tencent product advises one minute (PROTOCOL.md §1).
    if abs(now - when) > window:
        raise Unauthorized(f"RequestTime is outside the allowed window of {window:g} s")
    given = sign_value.strip().lower().encode()
    matched = False
    for token in tokens:
        # Compare against every token (no early exit) so timing does not reveal which one failed.
        matched |= hmac.compare_digest(expected_sign(token, request_time), given)
    if not matched:
        raise Unauthorized("Sign does not match")
