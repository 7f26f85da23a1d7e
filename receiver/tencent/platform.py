"""The Tencent IM platform: `from_http` parsing and reply rendering, no I/O."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from ..errors import BadRequest, Forbidden, InvalidBody, PayloadTooLarge
from ..fastload import NOT_MINE
from ..model import Callback
from ..signature import verify_sign
from ..verdict import Verdict
from . import replies
from .commands import BEFORE_COMMANDS, COMMANDS, generic_event
from .schemas import FAST_LOADERS, GENERIC, GENERIC_FAST

log = logging.getLogger("imhook.tencent")


class TencentPlatform:
    """Parses Tencent IM callbacks and renders replies; one instance serves a process."""

    name = "tencent"
    commands = tuple(COMMANDS)
    before_commands = BEFORE_COMMANDS

    def __init__(self) -> None:
        self._unknown_seen: set[str] = set()
        self._lock = threading.Lock()

    def from_http(
        self,
        query: Mapping[str, str],
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,  # Tencent authenticates in the query, not headers
        app_id: str,
        tokens: tuple[str, ...] = (),
        window: float = 60.0,
        max_body: int = 1 << 20,
        now: float,
    ) -> Callback:
        """Turn the query parameters and raw body into a typed Callback, or raise a RequestError."""
        self.authenticate(query, headers, app_id=app_id, tokens=tokens, window=window, now=now)
        sdk_app_id = query["SdkAppid"]
        command = query.get("CallbackCommand")
        if not command:
            raise BadRequest("missing CallbackCommand query parameter")
        payload = parse_json_object(body, max_body)
        body_command = payload.get("CallbackCommand")
        if body_command != command:
            raise BadRequest(
                f"CallbackCommand in the body ({body_command!r}) does not match the query ({command!r})"
            )
        spec = COMMANDS.get(command)
        fast = FAST_LOADERS.get(command) if spec else GENERIC_FAST
        data = fast(payload) if fast is not None else NOT_MINE
        if data is NOT_MINE:  # anything unusual, errors included: the schema itself decides
            try:
                data = (spec.schema if spec else GENERIC).load(payload)
            except ValidationError as exc:
                raise InvalidBody(command, exc.messages) from exc
        if spec is None:
            self._note_unknown(command)
        event = spec.build_event(data) if spec else generic_event(payload)
        return Callback(
            platform=self.name, command=command, is_before=bool(spec and spec.is_before), app_id=sdk_app_id,
            event=event, query=dict(query), body=payload, data=data,
            client_ip=query.get("ClientIP", ""), client_platform=query.get("OptPlatform", ""),
            known=spec is not None,
        )

    def authenticate(
        self,
        query: Mapping[str, str],
        headers: Mapping[str, str] | None = None,  # Tencent authenticates in the query, not headers
        *,
        app_id: str,
        tokens: tuple[str, ...] = (),
        window: float = 60.0,
        now: float,
    ) -> None:
        """Raise Forbidden or Unauthorized unless SdkAppid is this app's and, with tokens, Sign is right."""
        # The app must check SdkAppid is its own before anything else runs (PROTOCOL.md §1).
        sdk_app_id = query.get("SdkAppid")
        if not sdk_app_id:
            raise Forbidden("missing SdkAppid")
        if sdk_app_id != app_id:
            raise Forbidden("SdkAppid does not match this receiver's app id")
        if tokens:
            verify_sign(tokens, query.get("Sign"), query.get("RequestTime"), now=now, window=window)

    def render(self, callback: Callback, verdict: Verdict) -> dict[str, Any]:
        return replies.render(callback, verdict)

    def render_fail_open(self, query: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
        return replies.fail_open(query.get("CallbackCommand", ""), body)

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        return replies.envelope(status, message, status="FAIL")

    def code_range(self, command: str):
        spec = COMMANDS.get(command)
        return spec.codes if spec else None

    def supports_drop(self, command: str) -> bool:
        spec = COMMANDS.get(command)
        return bool(spec and spec.can_drop)

    def commands_for(self, actions) -> tuple[str, ...]:
        """Before-commands whose neutral action is in `actions` (all of them if `actions` is empty)."""
        return tuple(c for c in BEFORE_COMMANDS if not actions or COMMANDS[c].action in actions)

    def _note_unknown(self, command: str) -> None:
        with self._lock:
            if command in self._unknown_seen:
                return
            self._unknown_seen.add(command)
        log.warning("unknown CallbackCommand %r acknowledged as a generic callback", command)


def parse_json_object(body: bytes, max_body: int) -> dict[str, Any]:
    """Decode the body as a JSON object whatever the Content-Type (it is not documented)."""
    if len(body) > max_body:
        raise PayloadTooLarge(f"body of {len(body)} bytes is over the limit of {max_body} bytes")
    if not body.strip():
        raise BadRequest("empty body; expected a JSON object")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"body must be a JSON object, not {type(payload).__name__}")
    return payload
