"""Posting callbacks the way the IM does: query string, signature, JSON body.

Used by `imhook send`, replay over HTTP and the emulator.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from .signature import sign


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
    except ValueError:
        reply = response.text
    return PostResult(response.status_code, reply, elapsed)
