"""The request-side half of forwarding: write each accepted After* callback to the outbox.

An event that cannot be written there (the outbox locked or broken, or a bug in computing its keys)
is not lost: it is appended to the outbox's quarantine file (outbox.quarantine_path) with its raw
body, counted (`imhook_forward_quarantined_total`) and logged with its request id; `imhook
recordings quarantine --outbox ... --import` puts it in the outbox later.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ...recording.quarantine import Quarantine, describe
from . import events
from .events import Target
from .outbox import Outbox, quarantine_path

log = logging.getLogger("imhook.forward")


class Enqueuer:
    """A Receiver observer: one outbox row per interested target, duplicates ignored.

    Runs before the reply is sent, so an accepted (HTTP 200) callback is on disk before the IM
    hears back; the only cost on the reply path is one local SQLite INSERT, or with a PostgreSQL
    outbox one INSERT bounded by pgoutbox.ENQUEUE_TIMEOUT_SECONDS, else a local one (the spool).
    """

    def __init__(self, outbox: Outbox, targets: Sequence[Target], *, wake=None, stats=None,
                 before_commands: Iterable[str] = ()):
        self.outbox = outbox
        self.targets = tuple(targets)
        self.wake = wake
        self.stats = stats
        self.before_commands = frozenset(before_commands)  # never forwarded, whatever the globs
        self.quarantine = Quarantine(quarantine_path(outbox.path))

    def __call__(self, outcome) -> None:
        callback = outcome.callback
        if outcome.status != 200 or not self._accepted_after(outcome):
            return
        command = outcome.command
        wanted = [t.name for t in self.targets if t.wants(command)]
        if not wanted:
            return
        event = (callback.app_id, callback.body) if callback else self._parse_shed(outcome)
        if event is None:
            return
        app_id, body = event
        try:
            added = self.outbox.add(
                wanted, dedupe=events.dedupe_key(command, body), conversation=events.conversation_key(body),
                command=command, app_id=app_id, body=outcome.request.body)
        except Exception as exc:  # locked past the busy timeout, a broken file, a bug: keep it aside
            if isinstance(exc, sqlite3.Error):
                self._count("enqueue_error", "")
            self._set_aside(outcome, wanted, app_id, exc)
            return
        for name in wanted:
            self._count("enqueued" if name in added else "duplicate", name)
        if added and self.wake is not None:
            self.wake()

    def _set_aside(self, outcome, wanted: list[str], app_id: str, exc: Exception) -> None:
        request = outcome.request
        entry = {"at": time.time(), "where": "enqueue", "error": describe(exc), "request_id": request.request_id,
                 "event": {"targets": wanted, "command": outcome.command, "app_id": app_id,
                           "body_base64": base64.b64encode(request.body).decode("ascii")}}
        try:
            self.quarantine.append(entry)
            fate, kept = f"kept in {self.quarantine.path}", True
        except OSError as error:
            fate, kept = f"LOST: the quarantine cannot be written either ({error})", False
        log.error("cannot write %s (request %s) to the outbox %s: %s; %s", outcome.command,
                  request.request_id or "-", self.outbox.path, describe(exc), fate)
        if not kept:
            if not isinstance(exc, sqlite3.Error):
                self._count("enqueue_error", "")
            return
        for name in wanted:
            self._count("quarantined", name)

    def _accepted_after(self, outcome) -> bool:
        """An After* callback that was parsed, or shed (receiver/worker.py); never a before-callback."""
        if outcome.callback is not None:
            return not outcome.callback.is_before
        return outcome.shed and outcome.command not in self.before_commands

    @staticmethod
    def _parse_shed(outcome) -> tuple[str, dict[str, Any]] | None:
        """(app id, body) of a callback the worker answered unparsed under overload (receiver/worker.py).

        It is forwarded all the same, so nothing is lost downstream; it passed the app-id and Sign
        checks, but no schema ran: a body that is not a JSON object is not forwarded.
        """
        try:
            body = json.loads(outcome.request.body)
        except (ValueError, RecursionError):
            return None
        return (str(outcome.request.query.get("SdkAppid", "")), body) if isinstance(body, dict) else None

    def _count(self, what: str, target: str) -> None:
        if self.stats is not None:
            self.stats.count(what, target)


def requeue(outbox: Outbox, entry: dict) -> list[str]:
    """Put a quarantined event (an entry of the outbox's quarantine file) in the outbox; return the
    targets whose row is new. Raises what the outbox or the body raises: the entry is then kept."""
    event = entry["event"]
    raw = base64.b64decode(event["body_base64"])
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("the body is not a JSON object")
    command = event["command"]
    return outbox.add(event["targets"], dedupe=events.dedupe_key(command, body),
                      conversation=events.conversation_key(body), command=command, app_id=event["app_id"], body=raw)
