"""NetEase IM request authentication: AppKey, CurTime, MD5 and CheckSum headers (PROTOCOL.md §8).

CheckSum = hex SHA-1 of AppSecret + MD5 + CurTime (plain concatenation), MD5 = hex MD5 of the raw
body; both official. The samples are lower case: compare ignoring case.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from ..errors import Forbidden, Unauthorized

# CurTime is milliseconds since 1970 as decimal digits. Fifteen digits reach the year 33658, as the
# Tencent RequestTime limit does in seconds; a longer value is refused before it becomes a number.
MAX_CURTIME_DIGITS = 15
HEX_MD5_CHARS = 32
HEX_SHA1_CHARS = 40
AUTH_HEADERS = ("AppKey", "CurTime", "MD5", "CheckSum")


def body_md5(body: bytes) -> str:
    """The MD5 header a body is sent with: lower-case hex."""
    return hashlib.md5(body).hexdigest()


def checksum(secret: str, md5: str, cur_time: int | str) -> str:
    """CheckSum = lower-case hex sha1(AppSecret + MD5 + CurTime)."""
    return hashlib.sha1(f"{secret}{md5}{cur_time}".encode()).hexdigest()


def signed_headers(app_key: str, secret: str, body: bytes, *, now: float) -> dict[str, str]:
    """The four headers the IM sends with `body` at `now` (seconds): for tests and `imhook send`."""
    md5 = body_md5(body)
    cur_time = str(int(now * 1000))
    return {"AppKey": app_key, "CurTime": cur_time, "MD5": md5, "CheckSum": checksum(secret, md5, cur_time)}


def header(headers: Mapping[str, str] | None, name: str) -> str:
    """A header by name, whatever its case (a plain dict from a test or a replay has no folding)."""
    if not headers:
        return ""
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value if isinstance(value, str) else ""


def verify(headers: Mapping[str, str] | None, body: bytes, *, app_key: str, secrets: Sequence[str],
           now: float, window: float) -> None:
    """Raise Forbidden for another app's key, Unauthorized for anything else not right.

    Order: the key first (another app's request is a 403 whatever it carries), then the headers'
    presence and form, the freshness of CurTime, the body's MD5, the CheckSum against every secret
    (no early exit, so timing does not tell which secret failed). Messages never echo a secret or
    an expected value.
    """
    given = {name: header(headers, name).strip() for name in AUTH_HEADERS}
    if not given["AppKey"]:
        raise Unauthorized("missing AppKey header")
    if not hmac.compare_digest(given["AppKey"].encode("utf-8", "replace"), app_key.encode("utf-8", "replace")):
        raise Forbidden("AppKey does not match this receiver's NetEase app key")
    missing = [name for name in AUTH_HEADERS[1:] if not given[name]]
    if missing:
        raise Unauthorized(f"missing {', '.join(missing)} header{'s' if len(missing) > 1 else ''}")
    cur_time = given["CurTime"]
    if not (cur_time.isascii() and cur_time.isdigit()):
        raise Unauthorized("CurTime is not an integer")
    if len(cur_time) > MAX_CURTIME_DIGITS:
        raise Unauthorized(f"CurTime is out of range (over {MAX_CURTIME_DIGITS} digits)")
    if abs(now - int(cur_time) / 1000) > window:
        raise Unauthorized(f"CurTime is outside the allowed window of {window:g} s")
    md5 = given["MD5"].lower()
    if len(md5) != HEX_MD5_CHARS or not hmac.compare_digest(md5.encode("utf-8", "replace"),
                                                             body_md5(body).encode()):
        raise Unauthorized("MD5 does not match the body")
    given_sum = given["CheckSum"].lower().encode("utf-8", "replace")
    matched = False
    for secret in secrets:
        # CheckSum is computed over the MD5 header as sent (its case included), as the IM computed it.
        matched |= hmac.compare_digest(checksum(secret, given["MD5"], cur_time).encode(), given_sum)
    if not matched:
        raise Unauthorized("CheckSum does not match")
