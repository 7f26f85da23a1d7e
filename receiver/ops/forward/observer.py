"""The request-side half of forwarding: write each accepted After* callback to the outbox."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from . import events
from .events import Target
from .outbox import Outbox

log = logging.getLogger("imhook.forward")


class Enqueuer:
    """A Receiver observer: one outbox row per interested target, duplicates ignored.

    Runs before the reply is sent, so an accepted (HTTP 200) callback is on disk before the IM
    hears back; the only cost on the reply path is one local SQLite INSERT.
    """

    def __init__(self, outbox: Outbox, targets: Sequence[Target], *, wake=None, stats=None,
                 before_commands: Iterable[str] = ()):
        self.outbox = outbox
        self.targets = tuple(targets)
        self.wake = wake
        self.stats = stats
        self.before_commands = frozenset(before_commands)  # never forwarded, whatever the globs

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
        except sqlite3.Error as exc:
            log.error("cannot write %s to the outbox %s: %s", command, self.outbox.path, exc)
            self._count("enqueue_error", "")
            return
        for name in wanted:
            self._count("enqueued" if name in added else "duplicate", name)
        if added and self.wake is not None:
            self.wake()

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
