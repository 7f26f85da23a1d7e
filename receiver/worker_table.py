"""The workers' shared table: one row per worker of a gunicorn master, in memory they all share.

An anonymous shared mapping made when gunicorn's master imports receiver/worker.py, before it forks
any worker, so every worker it forks sees the same cells. A worker's row is `age % SLOTS` (gunicorn
numbers every worker it starts). Two parts of the worker read and write it:

- receiver/handover.py: which workers are booting and which accept (the master writes a row
  `booting` when it creates a worker; the worker writes its pid, when it listens, when it is gone);
- receiver/balance.py: each worker's open connections and when it last said so.

Times are milliseconds of CLOCK_MONOTONIC, plus 1 (0 stays "never"). Standard library only.
"""

from __future__ import annotations

import mmap
import os
import time

SLOTS = 256
AGE, PID, BOOTING, LISTENING, CONNECTIONS, SEEN = range(6)  # the columns of a row
_ROW = 6
_EMPTY_ROW = bytes(_ROW * 8)
_LONG_AGO = -(1 << 62)  # older than any `since`


def ms(now: float) -> int:
    return int(now * 1000) + 1


def _alive(pid: int) -> bool:
    if pid == 0:
        return True  # forked a moment ago and not yet running: the row's age bounds the wait
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerTable:
    def __init__(self) -> None:
        self._map = mmap.mmap(-1, SLOTS * _ROW * 8)  # MAP_SHARED | MAP_ANONYMOUS, zeroed
        self.cells = memoryview(self._map).cast("q")

    def _rows(self):
        cells = self.cells.tolist()
        return (cells[base:base + _ROW] for base in range(0, len(cells), _ROW))

    # --- handover ---------------------------------------------------------------------------------

    def booting(self, age: int, now: float | None = None) -> None:
        """The master, creating worker `age` (before the fork: its pid is not known yet)."""
        base = (age % SLOTS) * _ROW
        self.cells[base:base + _ROW] = memoryview(_EMPTY_ROW).cast("q")
        self.cells[base + AGE] = age
        self.cells[base + BOOTING] = ms(time.monotonic() if now is None else now)

    def started(self, age: int, pid: int) -> None:
        self.cells[(age % SLOTS) * _ROW + PID] = pid

    def listening(self, age: int, now: float | None = None) -> None:
        self.cells[(age % SLOTS) * _ROW + LISTENING] = ms(time.monotonic() if now is None else now)

    def gone(self, age: int) -> None:
        """Worker `age` accepts no more: its row is cleared (unless a later worker has it by now)."""
        base = (age % SLOTS) * _ROW
        if self.cells[base + AGE] == age:
            self.cells[base:base + _ROW] = memoryview(_EMPTY_ROW).cast("q")

    def anyone_listening(self) -> bool:
        """Whether some live worker accepts connections now."""
        return any(row[LISTENING] and row[PID] and _alive(row[PID]) for row in self._rows())

    def successor_booting(self, age: int, now: float, within: float) -> bool:
        """Whether a worker younger than `age`, created `within` seconds before `now` or later, is
        still loading (alive, not listening)."""
        since = ms(now - within)
        return any(row[AGE] > age and row[BOOTING] >= since and not row[LISTENING] and _alive(row[PID])
                   for row in self._rows())

    # --- balance ----------------------------------------------------------------------------------

    def write_connections(self, age: int, connections: int, now: float) -> None:
        base = (age % SLOTS) * _ROW
        self.cells[base + CONNECTIONS] = connections
        self.cells[base + SEEN] = ms(now)

    def forget_connections(self, age: int) -> None:
        self.cells[(age % SLOTS) * _ROW + SEEN] = _LONG_AGO

    def fair_share(self, now: float, within: float) -> tuple[int, int]:
        """(connections over the workers that wrote theirs `within` seconds before `now` or later,
        rounded up; those workers)."""
        since = ms(now - within)
        total = live = 0
        for row in self._rows():
            if row[SEEN] >= since:
                total += row[CONNECTIONS]
                live += 1
        return (-(-total // live) if live else 0), live


TABLE = WorkerTable()
