"""The request-side half of forwarding: write each accepted After* callback to the outbox."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from . import events
from .events import Target
from .outbox import Outbox

log = logging.getLogger("imhook.forward")


class Enqueuer:
    """A Receiver observer: one outbox row per interested target, duplicates ignored.

    Runs before the reply is sent, so an accepted (HTTP 200) callback is on disk before the IM
    hears back; the only cost on the reply path is one local SQLite INSERT.
    """

    def __init__(self, outbox: Outbox, targets: Sequence[Target], *, wake=None, stats=None):
        self.outbox = outbox
        self.targets = tuple(targets)
        self.wake = wake
        self.stats = stats

    def __call__(self, outcome) -> None:
        callback = outcome.callback
        if outcome.status != 200 or callback is None or callback.is_before:
            return
        wanted = [t.name for t in self.targets if t.wants(callback.command)]
        if not wanted:
            return
        try:
            added = self.outbox.add(
                wanted, dedupe=events.dedupe_key(callback.command, callback.body),
                conversation=events.conversation_key(callback.body), command=callback.command,
                app_id=callback.app_id, body=outcome.request.body)
        except sqlite3.Error as exc:
            log.error("cannot write %s to the outbox %s: %s", callback.command, self.outbox.path, exc)
            self._count("enqueue_error", "")
            return
        for name in wanted:
            self._count("enqueued" if name in added else "duplicate", name)
        if added and self.wake is not None:
            self.wake()

    def _count(self, what: str, target: str) -> None:
        if self.stats is not None:
            self.stats.count(what, target)
