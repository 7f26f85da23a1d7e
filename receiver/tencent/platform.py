"""The Tencent IM platform: `from_http` parsing and reply rendering, no I/O."""

from __future__ import annotations

import json
import logging
import sys
import threading
from itertools import chain
from collections.abc import Mapping
from typing import Any

import orjson
from marshmallow import ValidationError

from ..errors import BadRequest, Forbidden, PayloadTooLarge
from ..fastload import NOT_MINE
from ..model import Callback
from ..signature import verify_sign
from ..verdict import Verdict
from . import replies
from .commands import BEFORE_COMMANDS, COMMANDS, CommandSpec, generic_event, undecided_event
from .drift import load_tolerant, shadows
from .schemas import FAST_LOADERS, GENERIC, GENERIC_FAST

log = logging.getLogger("imhook.tencent")

# The deepest JSON nesting a body may have. CPython's json.loads (and the standard encoder the reply
# falls back to beyond orjson's 254 levels) recurse in C against the interpreter's recursion limit of
# 1,000, shared with the frames already on the stack (~100 under gunicorn or pytest): 512 leaves
# room for those. A merge-forward level costs 5 JSON levels (MsgBody, element, MsgContent, MsgList,
# item), so about 100 nested relays fit. A deeper body is a 400, or, for a before-callback named in
# the query, the chain's on_error outcome.
MAX_JSON_DEPTH = 512
# Distinct unknown CallbackCommand names remembered so each is logged once; past this, new ones
# are not logged (one line says so). The names come from the query: any length, any number.
MAX_UNKNOWN_COMMANDS = 256
# (command, field) pairs whose drift has been logged; past this, drift is only counted (metrics).
MAX_DRIFT_LOGGED = 1024
MAX_LOGGED_NAME = 100  # characters of a command name a log line shows


class TencentPlatform:
    """Parses Tencent IM callbacks and renders replies; one instance serves a process."""

    name = "tencent"
    commands = tuple(COMMANDS)
    before_commands = BEFORE_COMMANDS

    def __init__(self) -> None:
        self._unknown_seen: set[str] = set()  # truncated names, at most MAX_UNKNOWN_COMMANDS
        self._drift_logged: set[tuple[str, str]] = set()  # at most MAX_DRIFT_LOGGED
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
        """Turn the query parameters and raw body into a typed Callback, or raise a RequestError.

        Strict only where a body is unusable (not JSON, not an object, the command missing or not the
        query's): a field that does not fit its schema is kept raw and named in `Callback.drift`; a
        before-callback whose decision needs such a field is `undecidable` (the chain's on_error).
        """
        self.authenticate(query, headers, app_id=app_id, tokens=tokens, window=window, now=now)
        command = query.get("CallbackCommand")
        if not command:
            raise BadRequest("missing CallbackCommand query parameter")
        spec = COMMANDS.get(command)
        try:
            payload = parse_json_object(body, max_body)
        except TooDeep as exc:
            if spec is None or not spec.is_before:
                raise
            return self._callback(query, spec, {}, {}, undecidable=exc.message)
        body_command = payload.get("CallbackCommand")
        if body_command != command:
            raise BadRequest(
                f"CallbackCommand in the body ({shorten(body_command)!r}) does not match the query "
                f"({shorten(command)!r})"
            )
        if spec is None:
            self._note_unknown(command)
            data = GENERIC_FAST(payload)
            return self._callback(query, None, payload, GENERIC.load(payload) if data is NOT_MINE else data)
        data = FAST_LOADERS[command](payload)
        if data is not NOT_MINE:
            return self._callback(query, spec, payload, data)
        if not shadows(spec.schema, payload):
            try:  # anything unusual: the schema itself decides
                return self._callback(query, spec, payload, spec.schema.load(payload))
            except ValidationError:
                pass
        data, drift = load_tolerant(spec.schema, payload)
        paths = tuple(dict.fromkeys(path for path, _ in drift))
        self._note_drift(command, drift)
        decisive = [path for path in paths if spec.decides_on(path)]
        if decisive:
            reason = f"unreadable {', '.join(decisive[:3])}{' and more' if len(decisive) > 3 else ''}"
            return self._callback(query, spec, payload, data, drift=paths, undecidable=reason)
        return self._callback(query, spec, payload, data, drift=paths)

    def _callback(self, query: Mapping[str, str], spec: CommandSpec | None, payload: dict, data: dict, *,
                  drift: tuple[str, ...] = (), undecidable: str = "") -> Callback:
        if spec is None:
            event = generic_event(payload)
        elif undecidable:
            event = undecided_event(spec, payload)
        else:
            try:
                event = spec.build_event(data)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                # A shape the loaders let through that the event cannot be built from (say, a nested
                # key named like an attribute): undecidable, never a 500.
                log.debug("cannot build the %s event", spec.name, exc_info=True)
                reason = f"event not readable: {type(exc).__name__}"
                undecidable = reason if spec.is_before else ""
                event = undecided_event(spec, payload) if spec.is_before else generic_event(payload)
        return Callback.of(
            platform=self.name, command=query["CallbackCommand"], is_before=bool(spec and spec.is_before),
            app_id=query["SdkAppid"], event=event, query=dict(query), body=payload, data=data,
            client_ip=query.get("ClientIP", ""), client_platform=query.get("OptPlatform", ""),
            known=spec is not None, drift=drift, undecidable=undecidable,
        )

    def credentials(self, config) -> tuple[str, tuple[str, ...], float]:
        """(SdkAppid, tokens, RequestTime window) from the config: Tencent is always on."""
        return config.app_id, config.tokens, config.auth["window_seconds"]

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
        name = shorten(command)
        with self._lock:
            if name in self._unknown_seen:
                return
            full = len(self._unknown_seen) >= MAX_UNKNOWN_COMMANDS
            if not full:
                self._unknown_seen.add(name)
            elif "" in self._unknown_seen:
                return
            else:
                self._unknown_seen.add("")  # marks the one line below as written
        if full:
            log.warning("over %d distinct unknown CallbackCommand names; new ones are no longer logged",
                        MAX_UNKNOWN_COMMANDS)
        else:
            log.warning("unknown CallbackCommand %r acknowledged as a generic callback", name)

    def _note_drift(self, command: str, drift: list[tuple[str, str]]) -> None:
        """Log each (command, field) once: the metric imhook_schema_drift_total counts every one."""
        new = []
        with self._lock:
            for path, problem in drift:
                key = (command, path)
                if key not in self._drift_logged and len(self._drift_logged) < MAX_DRIFT_LOGGED:
                    self._drift_logged.add(key)
                    new.append((path, problem))
        for path, problem in new:
            log.warning("schema drift in %s: %s: %s; kept as the IM sent it (logged once per field)",
                        command, path, problem[:1].lower() + problem[1:])


class TooDeep(BadRequest):
    """The body nests deeper than MAX_JSON_DEPTH."""


def shorten(name: object, limit: int = MAX_LOGGED_NAME) -> object:
    """A name as a log line or an error message shows it: long ones cut, with their length."""
    if isinstance(name, str) and len(name) > limit:
        return f"{name[:limit]}…({len(name)} chars)"
    return name


def parse_json_object(body: bytes, max_body: int) -> dict[str, Any]:
    """Decode the body as a JSON object whatever the Content-Type (it is not documented)."""
    if len(body) > max_body:
        raise PayloadTooLarge(f"body of {len(body)} bytes is over the limit of {max_body} bytes")
    if not body.strip():
        raise BadRequest("empty body; expected a JSON object")
    payload = fast_json_object(body)
    if payload is not None:
        return payload
    try:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            if "integer string conversion" not in str(exc):
                raise
            payload = json.loads(body, parse_int=wide_int)  # valid JSON: the number is kept, as drift
    except RecursionError:
        raise TooDeep(f"body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"body must be a JSON object, not {type(payload).__name__}")
    # Nesting needs an opening bracket per level: most bodies have too few to be worth measuring.
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and json_depth(payload) > MAX_JSON_DEPTH:
        raise TooDeep(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    return payload


# orjson reads an integer beyond 64 bits as a float, where json.loads keeps it whole: a body with
# 19 digits in a row anywhere (in a string too, harmlessly) is left to json.loads. Found by mapping
# every digit to "0" and looking for 19 of them: two C passes, where a regex took ~10 µs a body.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_RUN = b"0" * 19


def fast_json_object(body: bytes) -> dict[str, Any] | None:
    """The body as json.loads reads it, by orjson (~4 x faster), when that is certain to give the
    same value: a JSON object, no integer too long for 64 bits, nesting within MAX_JSON_DEPTH.
    None: leave it to the standard library's path, which also words every error. orjson refuses
    what json.loads accepts or words differently (a lone surrogate escape, NaN, 1e400, a BOM,
    UTF-16, nesting past its own limit): those all come back None too."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(payload) is not dict or _LONG_RUN in body.translate(_DIGITS_AS_ZERO):
        return None
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and json_depth(payload) > MAX_JSON_DEPTH:
        return None  # json.loads' path raises TooDeep (or hits the recursion limit) as before
    return payload


class WideInt(str):
    """The digits of a JSON integer too long for int(): Python refuses over 4,300 digits (the
    conversion is quadratic, a CPU sink). Kept as sent; no field of the protocol takes such a
    number, so the schema reports it as drift like any other out-of-range value."""


def wide_int(literal: str) -> int | WideInt:
    """json.loads' parse_int for a body that holds an over-long integer: the short ones stay ints."""
    return int(literal) if len(literal.lstrip("-")) <= sys.get_int_max_str_digits() else WideInt(literal)


def json_depth(value: Any, stop_after: int = MAX_JSON_DEPTH) -> int:
    """The nesting depth of a parsed JSON value (a scalar is 0), level by level, not recursively.

    Stops counting once past `stop_after`. A level at a time keeps the per-container work inside
    C iterators: a 1 MB body of 340,000 empty lists is measured in about the time json.loads took.
    """
    depth = 0
    level = [value] if isinstance(value, (dict, list)) else []
    while level and depth <= stop_after:
        depth += 1
        children = chain.from_iterable(node.values() if type(node) is dict else node for node in level)
        level = [child for child in children if isinstance(child, (dict, list))]
    return depth
