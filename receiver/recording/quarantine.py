"""Quarantine: what the store cannot take is set aside in a file, so the writer goes on.

A record (or a journal line) that fails to be stored for a reason of its own, not because the
database is busy or the disk full, would otherwise stop the writer thread or be retried forever.
It goes to `<database>.quarantine.jsonl` instead: one JSON line per item, with when, where it came
from, the error, its request id and either the record in its export form (`record`, encoded by
receiver/jsonout.py, so any text survives) or the raw bytes of a journal line that could not be
read (`raw_base64`). `imhook recordings quarantine` lists the file; `--import` stores what can be
stored now (after a fix) and keeps the rest.

Appends are one write(2) under an exclusive flock, from every worker (an append may be on the reply
path: the outbox's quarantine). A re-import takes the lock only to read the file and, after storing
what it can without it, to rewrite it: the lines it stored are dropped, lines appended meanwhile
are kept (a new file renamed over the old one: an appender that opened the old one sees the swap
and opens again). The file is capped at `max_bytes`: past it, items are not kept (counted
as lost by the caller, and logged) rather than filling the disk.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import jsonout
from .record import Record, RecordError

log = logging.getLogger("imhook.recording")

SUFFIX = ".quarantine.jsonl"
MAX_BYTES = 256 * 1024 * 1024  # a systematic failure must not fill the disk: past this, items are lost (counted)
ERROR_CHARS = 500  # an exception's text can carry the whole offending value


class QuarantineFull(OSError):
    """The quarantine file has reached its size limit: the item was not kept."""


def path_for(db: str | Path) -> Path:
    """Where the quarantine of a recordings database lives: beside it."""
    db = Path(db)
    return db.with_name(db.name + SUFFIX)


@dataclass(frozen=True)
class Entry:
    """One quarantined item as read back: its line number and the JSON object of that line."""

    number: int
    data: dict[str, Any]
    line: bytes = b""  # as in the file: how a re-import finds it again

    @property
    def summary(self) -> str:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.data.get("at") or 0))
        what = "record" if "record" in self.data else "raw line"
        request = self.data.get("request_id") or "-"
        return f"#{self.number} {at} {what} from {self.data.get('where', '?')} request {request}: " \
               f"{self.data.get('error', '')}"


class Quarantine:
    """The quarantine file of one database (any number of processes append to it)."""

    def __init__(self, path: str | Path, *, max_bytes: int = MAX_BYTES):
        self.path = Path(path)
        self.max_bytes = max_bytes

    # --- writing ---------------------------------------------------------------------------------

    def add_record(self, record: Record, error: BaseException | str, *, where: str, key: str | None = None) -> None:
        """Keep a record the store refused. Raises OSError (QuarantineFull included) if it cannot be kept."""
        self.append({"at": time.time(), "where": where, "error": describe(error), "request_id": record.request_id,
                     "key": key, "record": record.to_json()})

    def add_raw(self, raw: bytes, error: BaseException | str, *, where: str, request_id: str = "") -> None:
        """Keep bytes that could not even be read as a record (a damaged journal line)."""
        self.append({"at": time.time(), "where": where, "error": describe(error), "request_id": request_id,
                     "raw_base64": base64.b64encode(raw).decode("ascii")})

    def add_raw_or_drop(self, raw: bytes, error: BaseException | str, *, where: str) -> bool:
        """`add_raw`, but False (logged) instead of QuarantineFull when the file is at its limit."""
        try:
            self.add_raw(raw, error, where=where)
        except QuarantineFull as exc:
            log.error("recording: a damaged line of %s is LOST: %s", where, exc)
            return False
        return True

    def append(self, entry: dict) -> None:
        """Add one JSON object as a line (any value jsonout can encode). OSError if it cannot be kept."""
        line = jsonout.dumps(entry) + b"\n"
        fd = self._open_locked(os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            if os.fstat(fd).st_size + len(line) > self.max_bytes:
                raise QuarantineFull(f"the quarantine {self.path} has reached its limit of {self.max_bytes} bytes")
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)  # drops the lock

    def _open_locked(self, flags: int) -> int:
        """Open and flock the file, making sure it is still the file at `path` (see `reimport`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    return fd
            except FileNotFoundError:
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # renamed over by a re-import meanwhile: open the new one

    # --- reading and re-importing ------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every quarantined item, oldest first (a line that is not JSON is shown as raw bytes)."""
        try:
            fd = self._open_locked(os.O_RDONLY)
        except FileNotFoundError:  # nothing quarantined (or all of it just re-imported)
            return []
        try:
            with os.fdopen(os.dup(fd), "rb") as f:
                return list(_parse(f.read()))
        finally:
            os.close(fd)

    def reimport(self, store_one: Callable[[Record, str | None], None], *,
                 read: Callable[[dict], Any] | None = None) -> tuple[int, list[Entry]]:
        """Hand every item to `store_one(record, key)`; drop those it took, keep the rest.

        Returns (stored, kept). An item that still fails stays, with its new error. `read` turns an
        entry into the arguments of `store_one` (default: a record and its journal key).
        """
        read = read or _to_record
        if not self.path.exists():
            return 0, []
        outcome: dict[bytes, Entry | None] = {}  # line -> None: stored; an Entry: kept, new error
        try:
            for entry in self.entries():  # the lock is not held meanwhile: appends go on
                try:
                    store_one(*read(entry.data))
                except sqlite3.OperationalError:
                    raise  # the database itself is unavailable: keep everything, try again later
                except Exception as exc:
                    outcome[entry.line] = Entry(entry.number, {**entry.data, "error": describe(exc)}, entry.line)
                    continue
                outcome[entry.line] = None
        finally:
            stored, kept = sum(v is None for v in outcome.values()), [v for v in outcome.values() if v is not None]
            self._rewrite(outcome)
        return stored, kept

    def _rewrite(self, outcome: dict[bytes, Entry | None]) -> None:
        """Drop the stored lines, update the kept ones, leave any other (appended since) as it is."""
        fd = self._open_locked(os.O_RDWR)
        try:
            with os.fdopen(os.dup(fd), "rb") as f:
                lines = f.read().splitlines()
            rest = []
            outcome = dict(outcome)  # popped as found: two equal lines are two items
            for line in lines:
                if line in outcome:
                    entry = outcome.pop(line)
                    if entry is not None:
                        rest.append(jsonout.dumps(entry.data))
                elif line.strip():
                    rest.append(line)
            if rest:
                fresh = self.path.with_name(self.path.name + ".new")
                fresh.write_bytes(b"".join(line + b"\n" for line in rest))
                os.replace(fresh, self.path)
            else:
                self.path.unlink()
        finally:
            os.close(fd)


def _parse(data: bytes) -> Iterator[Entry]:
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as exc:
            value = {"where": "quarantine file", "error": f"unreadable quarantine line: {describe(exc)}",
                     "raw_base64": base64.b64encode(line).decode("ascii")}
        yield Entry(number, value, line)


def _to_record(data: dict) -> tuple[Record, str | None]:
    """The record of a quarantine entry; a raw line is read as the journal line it was."""
    if "record" in data:
        return Record.from_json(data["record"]), data.get("key")
    raw = base64.b64decode(data.get("raw_base64", ""))
    line = json.loads(raw)
    if not isinstance(line, dict):
        raise RecordError("the raw line is not a JSON object")
    key = line.pop("key", None)
    return Record.from_json(line), key if isinstance(key, str) else None


def describe(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return jsonout.storable(text[:ERROR_CHARS])


@dataclass
class SetAside:
    """Records of a batch the store refused: `kept` in the quarantine, or `lost` (it was full)."""

    kept: int = 0
    lost: int = 0


def store_or_set_aside(store, records: list[Record], keys: list[str | None], quarantine: Quarantine, *,
                       where: str, on_set_aside: Callable[[Record, BaseException, bool], None] | None = None,
                       ) -> tuple[int, SetAside]:
    """Insert a batch; if a record of its own makes it fail, insert one by one and quarantine those
    that fail. Return (inserted, what was set aside); `on_set_aside(record, error, kept)` is called
    for each (kept False: the quarantine is full, the record is lost).

    sqlite3.OperationalError (locked, disk full, I/O) is the database, not a record: it propagates,
    and so does an OSError writing the quarantine (the callers keep the records in the journal).
    """
    aside = SetAside()
    try:
        return store.insert(records, keys), aside
    except sqlite3.OperationalError:
        raise
    except Exception:  # one of them, or several: find which, one insert each
        pass
    inserted = 0
    for record, key in zip(records, keys, strict=True):
        try:
            inserted += store.insert([record], [key])
        except sqlite3.OperationalError:
            raise
        except Exception as exc:
            try:
                quarantine.add_record(record, exc, where=where, key=key)
                kept = True
            except QuarantineFull:
                kept = False
            aside.kept += kept
            aside.lost += not kept
            if on_set_aside is not None:
                on_set_aside(record, exc, kept)
    return inserted, aside
