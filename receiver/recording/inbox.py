"""The bounded queue from the reply threads to the recording writer (writer.py)."""

from __future__ import annotations

from collections import deque

from ..core import Outcome
from .record import Record

Queued = tuple[int, str | None, Record | Outcome]  # (journal seq or 0, key, what to store)


class Inbox:
    """The bounded queue from the reply threads to the writer: a put is one deque append.

    queue.Queue takes a lock and signals a condition on every put (~2.5 µs, and a GIL hand-off to
    the writer); here the writer sleeps on an Event that is set only when a batch is full or at
    close. The bound is checked without a lock, so racing threads may overshoot it by a few items.
    """

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: deque[Queued] = deque()

    def put(self, item: Queued) -> bool:
        """Add `item`; False (and not added) when full."""
        if len(self._items) >= self.maxsize:
            return False
        self._items.append(item)  # atomic under the GIL
        return True

    def take(self, limit: int) -> list[Queued]:
        """Up to `limit` items, oldest first."""
        items, popleft = [], self._items.popleft
        try:
            while len(items) < limit:
                items.append(popleft())
        except IndexError:
            pass
        return items

    def peek(self) -> Queued:
        """The oldest item (IndexError when empty)."""
        return self._items[0]

    def __len__(self) -> int:
        return len(self._items)
