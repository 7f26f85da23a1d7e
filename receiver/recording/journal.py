"""The recording journal: each process appends a record to a file before it queues it.

The in-memory queue of writer.py dies with its process. A line written with os.write to an
O_APPEND file is in the kernel once the call returns: if the process is killed the next instant
(SIGKILL, the OOM killer, a crash) the line is still there. So the reply path writes each record's
line first and does not fsync: a machine crash or power loss can still lose the last seconds, as
SQLite in WAL mode with synchronous=NORMAL can.

Files are `<folder>/<token>-<n>.jsonl`, token = `<pid>-<random hex>`; each line is a record's JSON
form (record.py) plus `"key": "<token>:<seq>"`, the store's dedup key, so a line imported twice is
stored once. A process holds an exclusive flock on each of its files until it deletes it; the kernel
drops the lock when the process dies, however it dies. A file whose lock can be taken therefore
belongs to a dead process: anyone may import all of it and delete it (`recover`).

A line is encoded by receiver/jsonout.py, so any text a callback carries (a lone surrogate, NUL,
a long string, a huge integer) is written and read back unchanged. A line that still cannot be read
or stored never stops an import: it goes to the quarantine (quarantine.py) and the import goes on.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..jsonout import storable
from .quarantine import Quarantine, store_or_set_aside
from .record import Problem, Record, RecordError
from .store import Store

log = logging.getLogger("imhook.recording")

SUFFIX = ".jsonl"
CREATING_SUFFIX = ".new"  # not locked yet: recovery must not mistake it for a dead process's file
IMPORT_BATCH = 500
CLOSE_WAIT_SECONDS = 2.0  # at close, for lines still being written by request threads


class JournalClosed(OSError):
    """The journal was closed (the writer has finished); nothing more can be appended."""


@dataclass
class JournalFile:
    """One file of this process's journal, open and locked."""

    path: Path
    fd: int
    last_seq: int = 0  # highest seq given to it; 0: empty
    last_queued: int = 0  # set when retired: highest seq handed to the queue by then
    retired_at: float | None = None  # epoch seconds; the pipeline's age when it stays undeleted
    size: int = 0  # bytes written to it
    writing: set[int] = field(default_factory=set)  # seqs whose line is being written right now


@dataclass
class Imported:
    """What reading a journal file into the store did."""

    lines: int = 0
    inserted: int = 0  # new rows; the others were stored already
    quarantined: int = 0  # lines set aside: unreadable, or refused by the store
    lost: int = 0  # lines that could be neither stored nor set aside (the quarantine is full)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class BadLine(Problem):
    """A journal line that cannot be read, with its bytes (for the quarantine)."""

    raw: bytes = b""


class Journal:
    """This process's journal: the file being appended to, and retired files not deleted yet.

    `lock` is held around reserve + enqueue on the reply path, and by `rotate`, so that a file holds
    exactly the seqs up to its `last_seq`; the line itself is written after the lock is let go
    (`write`). Everything else runs on the writer thread.
    """

    def __init__(self, folder: str | Path, *, remove_folder: bool = False, quarantine: Quarantine | None = None,
                 max_bytes: int | None = None):
        self.folder = Path(folder)
        # Past this many bytes in this process's files the writer stops journaling (`full`): with the
        # database down the journal is all that grows, and it must not fill the disk.
        self.max_bytes = max_bytes
        self.bytes = 0  # written to files not deleted yet (updated without a lock: approximate)
        self.remove_folder = remove_folder  # at close, if empty (ours, not one the operator made)
        self.quarantine = quarantine  # None: a bad line is only logged
        self.quarantined_total = self.lost_total = 0  # set aside / lost by `retire`
        self.token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.lock = threading.Lock()
        self.retired: list[JournalFile] = []
        self._files_opened = 0
        self._seq = self._last_queued = 0
        self._unwritten: set[int] = set()  # seqs only the journal has: spilled, or their batch failed
        self.current: JournalFile | None = self._open_next()

    # --- reply path -------------------------------------------------------------------------------

    def reserve(self) -> tuple[int, str, JournalFile]:
        """With `lock` held: a fresh seq and key, and the file the line must go to (see `write`)."""
        file = self.current
        if file is None:
            raise JournalClosed("the recording journal is closed")
        self._seq += 1  # spent even if the write fails: a partial line must never share a key
        file.last_seq = self._seq
        file.writing.add(self._seq)  # the file is neither closed nor deleted until the write is done
        return self._seq, f"{self.token}:{self._seq}", file

    @property
    def full(self) -> bool:
        return self.max_bytes is not None and self.bytes >= self.max_bytes

    def write(self, file: JournalFile, seq: int, key: str, record_json: bytes) -> None:
        """Without the lock: append a reserved record's JSON object (UTF-8) with its key as one line.

        The write is a system call, which lets go of the GIL: done under `lock`, every other request
        thread wanting the lock would queue behind it, each with a GIL hand-off (a convoy that cost
        ~100 µs per request at 8 threads). One write(2) to an O_APPEND file lands whole, so lines of
        several threads never interleave; their order in the file may differ from seq order.
        """
        # The key is spliced in rather than added to a dict: the JSON is already made, and the key
        # needs no escaping (hex, digits, '-' and ':').
        line = b"".join((b'{"key":"', key.encode("ascii"), b'",', memoryview(record_json)[1:], b"\n"))  # one copy
        file.size += len(line)
        self.bytes += len(line)
        try:
            _write_all(file.fd, line)
        except OSError:
            _write_all_quietly(file.fd, b"\n")  # end a partial line so the next one parses
            raise
        finally:
            file.writing.discard(seq)  # atomic under the GIL: no lock needed

    def append(self, record_json: bytes) -> tuple[int, str]:
        """`reserve` then `write` (call with `lock` held); return (seq, key)."""
        seq, key, file = self.reserve()
        self.write(file, seq, key, record_json)
        return seq, key

    def queued(self, seq: int) -> None:
        self._last_queued = seq

    def spilled(self, seq: int) -> None:
        """The queue was full: this record is only in the journal until its file is retired."""
        self._unwritten.add(seq)

    # --- the writer thread ----------------------------------------------------------------------

    def failed(self, seqs: Collection[int]) -> None:
        """These records' batch could not be stored: write them from the journal when retiring."""
        with self.lock:
            self._unwritten.update(seqs)

    def rotate(self) -> None:
        """Append to a new file from now on; the old one waits in `retired`."""
        if self.current is None or not self.current.last_seq:
            return  # nothing written since the last rotation
        new = self._open_next()
        with self.lock:
            old, self.current = self.current, new
            old.last_queued = self._last_queued
        old.retired_at = time.time()
        self.retired.append(old)

    def retire(self, store: Store, processed: int) -> int:
        """Delete the retired files whose queued records the writer has all processed (seq up to
        `processed`), after storing their records only the journal has; return how many it stored.
        A store error propagates and leaves the files for the next try."""
        stored = 0
        while self.retired and self.retired[0].last_queued <= processed and not self.retired[0].writing:
            file = self.retired[0]
            with self.lock:
                wanted = {seq for seq in self._unwritten if seq <= file.last_seq}
            if wanted:
                result = import_file(file.path, store, only=wanted, quarantine=self.quarantine)
                stored += result.inserted
                self.quarantined_total += result.quarantined
                self.lost_total += result.lost
                _log_problems(file.path, result)
                with self.lock:
                    self._unwritten -= wanted
            _delete(file)
            self.bytes -= file.size
            self.retired.pop(0)
        return stored

    def close(self, store: Store, processed: int) -> int:
        """At the end (everything queued processed): store what only the journal has, delete it all."""
        with self.lock:
            last, self.current = self.current, None
            if last is not None:
                last.last_queued = self._last_queued
                last.retired_at = time.time()
        if last is not None:
            self.retired.append(last)
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS  # lines reserved just before: let them land
        while any(file.writing for file in self.retired) and time.monotonic() < deadline:
            time.sleep(0.005)
        try:
            stored = self.retire(store, processed)
        finally:
            if self.retired:  # not all stored: unlocked, they are imported at the next start
                log.warning("recording: journal files kept for the next start: %s",
                            ", ".join(file.path.name for file in self.retired))
                self.abandon()
        if self.remove_folder:
            try:
                self.folder.rmdir()  # only if empty: the other workers' files keep it
            except OSError:
                pass
        return stored

    def abandon(self) -> None:
        """Stop without importing: close (and so unlock) the files, keeping those with lines for a
        later `recover`."""
        with self.lock:
            files, self.current = self.retired + ([self.current] if self.current else []), None
        self.retired = []
        for file in files:
            if not file.last_seq:
                _unlink_quietly(file.path)
            os.close(file.fd)

    def forget(self) -> None:
        """In a forked child: close the inherited descriptors. Never unlink or unlock: the files and
        their lock are the parent's (closing our copy leaves the parent's lock in place)."""
        for file in self.retired + ([self.current] if self.current else []):
            try:
                os.close(file.fd)
            except OSError:
                pass
        self.retired, self.current = [], None

    def _open_next(self) -> JournalFile:
        self._files_opened += 1
        name = f"{self.token}-{self._files_opened}{SUFFIX}"
        return JournalFile(self.folder / name, _create_locked(self.folder, name))


# --- reading journal files ------------------------------------------------------------------------


def recover(folder: str | Path, store: Store, *, quarantine: Quarantine | None = None) -> dict[Path, Imported]:
    """Import into `store` every journal file whose owner is dead, then delete it; a line that
    cannot be read or stored goes to `quarantine` (if given) and the import goes on."""
    done = {}
    folder = Path(folder)
    for path in sorted([*folder.glob("*" + SUFFIX), *folder.glob("*" + CREATING_SUFFIX)]):
        fd = _lock_if_unowned(path)
        if fd is None:
            continue
        try:
            done[path] = result = import_file(path, store, quarantine=quarantine)
            path.unlink()  # still holding the lock: nobody else can be importing it
        finally:
            os.close(fd)
        _log_problems(path, result)
        if result.lines:
            log.warning("recording: journal %s of a process that died: %d records, %d of them not stored "
                        "before, now stored", path.name, result.lines, result.inserted)
    return done


def import_file(path: Path, store: Store, *, only: Collection[int] | None = None,
                quarantine: Quarantine | None = None) -> Imported:
    """Insert a journal file's records (those with a seq in `only`, if given); already stored keys
    are skipped by the store. With a quarantine, unreadable lines and records the store refuses are
    set aside there (an OSError if they cannot be: the file is then kept for a later try)."""
    result, records, keys = Imported(), [], []

    def insert() -> None:
        if quarantine is None:
            result.inserted += store.insert(records, keys)
            return
        inserted, aside = store_or_set_aside(store, records, keys, quarantine, where=path.name,
                                             on_set_aside=_log_set_aside)
        result.inserted += inserted
        result.quarantined += aside.kept
        result.lost += aside.lost

    for item in read_journal(path, only=only):
        if isinstance(item, Problem):
            result.problems.append(item)
            # In our own file (`only` given) a damaged line is one whose write failed: its record
            # was still queued, so it is stored already; only a dead process's lines are set aside.
            if quarantine is not None and only is None and isinstance(item, BadLine):
                if quarantine.add_raw_or_drop(item.raw, item.why, where=item.where):
                    result.quarantined += 1
                else:
                    result.lost += 1
            continue
        result.lines += 1
        keys.append(item[0])
        records.append(item[1])
        if len(records) >= IMPORT_BATCH:
            insert()
            records, keys = [], []
    insert()
    return result


def _log_set_aside(record: Record, exc: BaseException, kept: bool) -> None:
    log.error("recording: a %s record (request %s) cannot be stored; %s: %s: %s", record.command,
              record.request_id or "-", "quarantined" if kept else "LOST, the quarantine is full",
              type(exc).__name__, storable(str(exc)[:200]))


def read_journal(path: Path, *, only: Collection[int] | None = None) -> Iterator[tuple[str, Record] | Problem]:
    """(key, record) per line; a line that cannot be read comes out as a Problem."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            where = f"{path.name}:{number}"
            if not line.endswith(b"\n"):
                # Only the last line can lack its newline: its writer died in the middle of it.
                # Its request was not answered yet (the line is written before the reply).
                yield Problem(where, "truncated: the process died while writing it")
                return
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                key = data.pop("key")
                if only is not None and int(key.rpartition(":")[2]) not in only:
                    continue
                yield key, Record.from_json(data)
            except (ValueError, KeyError, TypeError, AttributeError, RecordError, RecursionError) as exc:
                yield BadLine(where, f"unreadable journal line: {storable(str(exc)[:200])}", line)


def _log_problems(path: Path, result: Imported) -> None:
    for problem in result.problems:
        log.warning("recording journal %s: %s", problem.where, problem.why)


# --- files and locks ------------------------------------------------------------------------------


def _create_locked(folder: Path, name: str, attempts: int = 3) -> int:
    """Create `name` in `folder`, locked, for appending. It is created under a temporary name and
    renamed once locked, so `recover` never sees it unlocked."""
    for attempt in range(attempts):
        creating = folder / (name + CREATING_SUFFIX)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(creating, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except FileNotFoundError:  # another process removed the empty folder meanwhile
            if attempt + 1 == attempts:
                raise
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(creating, folder / name)
            return fd
        except (BlockingIOError, FileNotFoundError):
            # A `recover` took the fresh file between its creation and our lock: start again.
            os.close(fd)
            if attempt + 1 == attempts:
                raise
        except BaseException:
            os.close(fd)
            raise
    raise AssertionError("unreachable")


def _lock_if_unowned(path: Path) -> int | None:
    """Open and lock a journal file nobody holds; None if its owner lives or it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Another process may have imported and deleted it between our open and our lock.
        if os.path.samestat(os.fstat(fd), os.stat(path)):
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(fd)
    return None


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)  # all of it, in practice (a regular file): no view, no loop
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]


def _write_all_quietly(fd: int, data: bytes) -> None:
    try:
        _write_all(fd, data)
    except OSError:
        pass


def _delete(file: JournalFile) -> None:
    _unlink_quietly(file.path)  # before closing: the lock keeps `recover` away until it is gone
    os.close(file.fd)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
