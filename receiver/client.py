"""Posting callbacks the way the IM does: query string, signature, JSON body.

Used by `imhook send`, replay over HTTP and the emulator.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from .signature import sign

# Sign (and the RequestTime it signs) in any URL or message about one: never shown, never logged.
_SIGNED = re.compile(r"((?:Sign|RequestTime)=)[^&#\s'\")]*")

def callback_query(command: str, app_id: str, *, token: str | None = None, now: float | None = None,
                   client_ip: str = "127.0.0.1", platform: str = "RESTAPI") -> dict[str, str]:
    """The query parameters the IM sends with a callback (PROTOCOL.md §1)."""
    query = {
        "SdkAppid": str(app_id), "CallbackCommand": command, "contenttype": "json",
        "ClientIP": client_ip, "OptPlatform": platform,
    }
    if token:
        request_time = str(int(time.time() if now is None else now))
        query["RequestTime"] = request_time
        query["Sign"] = sign(token, request_time)
    return query


@dataclass
class PostResult:
    status: int
    reply: Any  # parsed JSON, or the text when it is not JSON
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        """Counts as an answer only if HTTP 200 with a JSON object (PROTOCOL.md §2)."""
        return self.status == 200 and isinstance(self.reply, dict)


def post_callback(url: str, body: dict | bytes, *, app_id: str, token: str | None = None,
                  session: requests.Session | None = None, timeout: float = 2.0,
                  query: dict[str, str] | None = None) -> PostResult:
    """POST one callback; `body` may be raw bytes (sent as is) or a dict."""
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    if query is None:
        command = json.loads(raw).get("CallbackCommand", "") if not isinstance(body, dict) else body.get(
            "CallbackCommand", "")
        query = callback_query(command, app_id, token=token)
    http = session or requests
    started = time.perf_counter()
    response = http.post(url, params=query, data=raw, timeout=timeout,
                         headers={"Content-Type": "application/json; charset=utf-8"})
    elapsed = (time.perf_counter() - started) * 1000
    try:
        reply = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past what the parser takes: shown raw
        reply = response.text
    return PostResult(response.status_code, reply, elapsed)


def post_netease(url: str, raw: bytes, *, app_key: str, secret: str | None, timeout: float = 2.0,
                 session: requests.Session | None = None) -> PostResult:
    """POST one NetEase callback body with the AppKey/CurTime/MD5/CheckSum headers (PROTOCOL.md §8);
    without a secret, only AppKey is sent (the receiver answers 401)."""
    from .netease.auth import signed_headers

    headers = signed_headers(app_key, secret, raw, now=time.time()) if secret else {"AppKey": app_key}
    headers["Content-Type"] = "application/json; charset=utf-8"
    http = session or requests
    started = time.perf_counter()
    response = http.post(url, data=raw, timeout=timeout, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    try:
        reply = response.json()
    except (ValueError, RecursionError):
        reply = response.text
    return PostResult(response.status_code, reply, elapsed)


def hide_signature(text: str) -> str:
    """`text` with the value of every Sign= and RequestTime= replaced: safe to print or log."""
    return _SIGNED.sub(r"\1<hidden>", text)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be posted to (None: it can); checked before anything is sent."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in range
    except ValueError as exc:
        return f"{hide_signature(url)!r} is not a valid URL ({exc})"
    shown = hide_signature(url)
    if "://" not in url:  # 127.0.0.1:8080 or localhost/callback: requests would call it a bad scheme
        example = f"http://{url or '127.0.0.1:8080'}" + ("" if "/" in url else "/callback")
        return f"{shown!r} is not an http(s) URL; write it in full, e.g. {example}"
    if parts.scheme not in ("http", "https"):
        return f"{shown!r} is not an http(s) URL; the IM posts callbacks over http:// or https:// only"
    if not parts.hostname:
        return f"{shown!r} names no host; e.g. http://127.0.0.1:8080/callback"
    return None


def describe_failure(exc: requests.RequestException, url: str, timeout: float) -> str:
    """One line saying why a POST to `url` got no HTTP reply, without the Sign it carried."""
    shown = hide_signature(url)
    if isinstance(exc, requests.Timeout) and not isinstance(exc, requests.ConnectTimeout):
        return f"no reply from {shown} within {timeout:g} s (a reply later than the IM's 2 s counts as none)"
    if isinstance(exc, (requests.ConnectionError, requests.ConnectTimeout)):
        detail = str(exc)
        why = ("connection refused: nothing is listening there" if "refused" in detail.lower()
               else "unknown host" if "resolve" in detail.lower() or "name or service" in detail.lower()
               else "timed out connecting" if isinstance(exc, requests.ConnectTimeout)
               else "the connection failed")
        return f"cannot reach {shown}: {why}; start the receiver (imhook serve) or fix --url"
    if isinstance(exc, (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidURL)):
        return url_problem(url) or f"{shown} is not a URL requests can post to"
    return f"request to {shown} failed: {type(exc).__name__}: {hide_signature(str(exc))}"
