"""The NetEase IM platform: header authentication, `eventType` dispatch, replies; no I/O (PROTOCOL.md §8).

Two entry points share the checks: `NeteasePlatform` for the third-party callbacks (the reply decides)
and `NeteaseCopyFeed` for the message copy feed (消息抄送: after the fact, nothing to decide).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

from ..errors import BadRequest, Unauthorized
from ..model import Callback, Event, Notification, NOTIFY
from ..tencent.platform import TooDeep, parse_json_object  # the JSON limits are the same for every IM
from ..verdict import Verdict
from . import auth, replies
from .events import BY_NAME, EVENTS, UNKNOWN, EventSpec, generic_event, load

log = logging.getLogger("imhook.netease")

# Distinct unknown eventType values logged once each; past this, new ones are only counted (the
# command label is UNKNOWN for all of them, so metrics stay bounded too).
MAX_UNKNOWN_EVENTS = 256
MAX_DRIFT_LOGGED = 1024  # (event, field) pairs whose drift has been logged once
MAX_EVENT_TYPE_DIGITS = 6  # eventType values are small numbers; a longer one is unknown, not parsed


class _OnceLog:
    """Log each key once, for at most `limit` keys, then one line saying the rest are not logged."""

    def __init__(self, limit: int, full_message: str) -> None:
        self._seen: set[Any] = set()
        self._limit, self._full_message, self._full = limit, full_message, False
        self._lock = threading.Lock()

    def first_time(self, key: Any) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) < self._limit:
                self._seen.add(key)
                return True
            if self._full:
                return False
            self._full = True
        log.warning(self._full_message)
        return False


def credentials(config) -> tuple[str, tuple[str, ...], float] | None:
    """(AppKey, AppSecrets, CurTime window) of the NetEase app; None when NetEase is not configured."""
    if not config.netease_app_key:
        return None
    return config.netease_app_key, config.netease_secrets, config.netease["window_seconds"]


class NeteasePlatform:
    """Parses NetEase third-party callbacks and renders replies; one instance serves a process."""

    name = "netease"
    commands = tuple(BY_NAME) + (UNKNOWN,)
    before_commands = tuple(BY_NAME)

    def __init__(self) -> None:
        self._unknown = _OnceLog(MAX_UNKNOWN_EVENTS, f"over {MAX_UNKNOWN_EVENTS} distinct unknown NetEase "
                                                     "eventType values; new ones are no longer logged")
        self._drift = _OnceLog(MAX_DRIFT_LOGGED, "NetEase schema drift: further fields no longer logged")

    credentials = staticmethod(credentials)

    def from_http(self, query: Mapping[str, str], body: bytes, *, headers: Mapping[str, str] | None = None,
                  app_id: str, tokens: tuple[str, ...] = (), window: float = 60.0, max_body: int = 1 << 20,
                  now: float) -> Callback:
        """Authenticate (`app_id` is the AppKey, `tokens` the AppSecrets) and parse one callback.

        With no secrets (a trusted replay, `imhook explain`) the headers are not checked.
        """
        self.authenticate(query, headers, app_id=app_id, tokens=tokens, window=window, now=now, body=body)
        try:
            payload = parse_json_object(body, max_body)
        except TooDeep as exc:
            # Unparsed: the chain's on_error answers it, as the event its eventType names, if any can
            # be found in the text; else as an unknown event (allowed, as NetEase's default would).
            spec = EVENTS.get(_peek_event_type(body))
            if spec is None:
                raise
            return self._callback(app_id, spec, {}, {}, undecidable=exc.message)
        spec = self._spec(payload)
        if spec is None:
            return self._callback(app_id, None, payload, payload)
        data, drift = load(spec.schema, payload)
        paths = tuple(dict.fromkeys(path for path, _ in drift))
        for path, problem in drift:
            if self._drift.first_time((spec.name, path)):
                log.warning("schema drift in %s: %s: %s; kept as the IM sent it (logged once per field)",
                            spec.name, path, problem)
        decisive = [p for p in paths if spec.decides_on(p)]
        reason = f"unreadable {', '.join(decisive[:3])}" if decisive else ""
        return self._callback(app_id, spec, payload, data, drift=paths, undecidable=reason)

    def _spec(self, payload: dict[str, Any]) -> EventSpec | None:
        raw = payload.get("eventType")
        if raw is None:
            raise BadRequest("missing eventType")
        value = raw.strip() if isinstance(raw, str) else raw
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= MAX_EVENT_TYPE_DIGITS:
            value = int(value)  # §8: numbers sometimes come as strings
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadRequest("eventType must be a number")
        spec = EVENTS.get(value)
        if spec is None and self._unknown.first_time(value):
            log.warning("unknown NetEase eventType %s acknowledged and allowed (logged once)", str(value)[:20])
        return spec

    def _callback(self, app_key: str, spec: EventSpec | None, payload: dict, data: dict, *,
                  drift: tuple[str, ...] = (), undecidable: str = "") -> Callback:
        event: Event
        if spec is None:
            event = generic_event(payload)
        elif undecidable:
            event = Event(spec.action, actor=_text(payload, "fromAccount"))
        else:
            try:
                event = spec.build_event(data)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                log.debug("cannot build the %s event", spec.name, exc_info=True)
                undecidable = f"event not readable: {type(exc).__name__}"
                event = Event(spec.action, actor=_text(payload, "fromAccount"))
        return Callback(
            platform=self.name, command=spec.name if spec else UNKNOWN, is_before=spec is not None,
            app_id=app_key, event=event, body=payload, data=data,
            client_ip=_text(payload, "fromClientIp"), client_platform=_text(payload, "fromClientType"),
            known=spec is not None, drift=drift, undecidable=undecidable,
        )

    def authenticate(self, query: Mapping[str, str], headers: Mapping[str, str] | None = None, *,
                     app_id: str, tokens: tuple[str, ...] = (), window: float = 60.0, now: float,
                     body: bytes | None = None) -> None:
        """Raise unless AppKey, CurTime, MD5 (of `body`, when given) and CheckSum are right."""
        if not tokens:
            return
        if body is None:  # the MD5 header is checked against the body: no body, no authentication
            raise Unauthorized("a NetEase request is authenticated with its body")
        auth.verify(headers, body, app_key=app_id, secrets=tokens, now=now, window=window)

    def render(self, callback: Callback, verdict: Verdict) -> dict[str, Any]:
        return replies.render(callback, verdict)

    def render_fail_open(self, query: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
        """Allow: one shape for every event; None for a body the normal path would reject (400)."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return None
        return replies.allow() if isinstance(payload, dict) and "eventType" in payload else None

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        return replies.error(status, message)

    def code_range(self, command: str):
        spec = BY_NAME.get(command)
        return spec.codes if spec else None

    def supports_drop(self, command: str) -> bool:
        spec = BY_NAME.get(command)
        return bool(spec and spec.can_drop)

    def commands_for(self, actions) -> tuple[str, ...]:
        return tuple(name for name, spec in BY_NAME.items() if not actions or spec.action in actions)


# The copy feed's own numbering, as a string (§8, official); the rest are recorded as COPY_UNKNOWN.
COPY_EVENTS = {"1": "Message", "2": "Login", "3": "Logout", "4": "ChatroomMessage", "7": "P2PRecall",
               "8": "TeamRecall"}
COPY_PREFIX = "NetEase.Copy."
COPY_CHECK = COPY_PREFIX + "AddressCheck"  # the console's empty body when the URL is saved
COPY_UNKNOWN = COPY_PREFIX + "Other"


class NeteaseCopyFeed(NeteasePlatform):
    """The message copy feed: same headers, `eventType` a string; recorded and forwarded, never decided."""

    name = "netease"
    commands = tuple(COPY_PREFIX + n for n in COPY_EVENTS.values()) + (COPY_CHECK, COPY_UNKNOWN)
    before_commands = ()

    def from_http(self, query: Mapping[str, str], body: bytes, *, headers: Mapping[str, str] | None = None,
                  app_id: str, tokens: tuple[str, ...] = (), window: float = 60.0, max_body: int = 1 << 20,
                  now: float) -> Callback:
        if not body.strip():
            # The console's address check posts an empty body and wants a 200 within 5 s (§8); whether
            # it signs that request is not documented, and there is nothing in it to trust.
            return self._notice(app_id, COPY_CHECK, {})
        self.authenticate(query, headers, app_id=app_id, tokens=tokens, window=window, now=now, body=body)
        payload = parse_json_object(body, max_body)
        raw = payload.get("eventType")
        key = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
        name = COPY_EVENTS.get(key.strip())
        if name is None and self._unknown.first_time(key[:MAX_EVENT_TYPE_DIGITS]):
            log.warning("unknown NetEase copy eventType %r recorded as %s (logged once)",
                        key[:MAX_EVENT_TYPE_DIGITS], COPY_UNKNOWN)
        return self._notice(app_id, COPY_PREFIX + name if name else COPY_UNKNOWN, payload)

    def _notice(self, app_key: str, command: str, payload: dict[str, Any]) -> Callback:
        actor = _text(payload, "fromAccount")
        return Callback(platform=self.name, command=command, is_before=False, app_id=app_key,
                        event=Notification(NOTIFY, actor=actor), body=payload, data=payload,
                        client_ip=_text(payload, "fromClientIp"), client_platform=_text(payload, "fromClientType"))

    def render(self, callback: Callback, verdict: Verdict) -> dict[str, Any]:
        return replies.allow()

    def code_range(self, command: str):
        return None

    def supports_drop(self, command: str) -> bool:
        return False

    def commands_for(self, actions) -> tuple[str, ...]:
        return ()


_EVENT_TYPE = re.compile(rb'"eventType"\s*:\s*"?(\d{1,%d})\b' % MAX_EVENT_TYPE_DIGITS)


def _peek_event_type(body: bytes) -> int | None:
    """The eventType of a body too deep to parse, read from its text (the first one, at any depth)."""
    match = _EVENT_TYPE.search(body)
    return int(match.group(1)) if match else None


def _text(d: Any, key: str) -> str:
    value = d.get(key) if isinstance(d, dict) else None
    return value if isinstance(value, str) else ""
