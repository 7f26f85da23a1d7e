"""What an IM platform adapter provides; the core and the rules depend only on this.

Tencent (`receiver/tencent/`) is the first. NetEase IM comes next (PROTOCOL.md §8): its adapter
checks `AppKey`/`CurTime`/`MD5`/`CheckSum` headers instead of the query, maps numeric `eventType`s
onto the same neutral events (1/2 → MessageSend, 7 → GroupCreate, 9 → GroupInvite, 19 → GroupJoin…)
with a Message over `body`/`attach`/`ext`, and renders verdicts as `{"errCode", "responseCode",
"modifyResponse"}`. Rules written against the neutral values serve both unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .model import Callback
from .verdict import Verdict


class Platform(Protocol):
    name: str
    commands: tuple[str, ...]  # every command (event type) name the adapter knows
    before_commands: tuple[str, ...]  # those whose reply decides something

    def from_http(self, query: Mapping[str, str], body: bytes, *, headers: Mapping[str, str] = ...,
                  app_id: str, tokens: tuple[str, ...], window: float, max_body: int,
                  now: float) -> Callback:
        """Authenticate and parse one request into a Callback, or raise a RequestError."""

    def credentials(self, config: Any) -> tuple[str, tuple[str, ...], float] | None:
        """(app id, secrets, freshness window) for `from_http`; None when the platform is not configured."""

    def authenticate(self, query: Mapping[str, str], headers: Mapping[str, str] | None = None, *,
                     app_id: str, tokens: tuple[str, ...], window: float, now: float) -> None:
        """Raise a RequestError unless the request comes from this app's IM (the checks of `from_http`)."""

    def render(self, callback: Callback, verdict: Verdict) -> dict[str, Any]:
        """The reply body the platform expects for this callback and decision."""

    def render_fail_open(self, query: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
        """The reply that lets this request's event through undecided, as the IM does when a callback
        times out; equal to `render(callback, allow())`, but built without parsing the callback.
        None when it cannot be built cheaply (e.g. an unreadable body): the request is then decided."""

    def render_error(self, status: int, message: str) -> dict[str, Any]:
        """The JSON body of an error reply."""

    def code_range(self, command: str) -> Any:
        """The app's own refusal codes for `command` (supports `in`), or None."""

    def supports_drop(self, command: str) -> bool:
        """Whether `command` can be silently dropped."""

    def commands_for(self, actions: tuple[str, ...]) -> tuple[str, ...]:
        """Before-commands whose neutral action is one of `actions`."""
