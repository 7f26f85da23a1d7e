"""Where recordings come from and go to: the SQLite store, PostgreSQL (a postgresql:// URL), JSON Lines
files, sample folders."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ..errors import ImhookError
from .pgstore import PgStore, is_url, mask
from .record import Problem, Record, RecordError, dumps
from .store import Filters, Store, is_sqlite_file

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now: float | None = None) -> float:
    """Epoch seconds from "1715000000", "2024-05-01", "2024-05-01T12:00:00+08:00" or "2h" ago."""
    text = text.strip()
    now = time.time() if now is None else now
    if match := _RELATIVE.match(text):
        return now - float(match[1]) * _UNIT_SECONDS[match[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        # A time without a zone is local time, as a person at a terminal means it.
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ImhookError(f"cannot read the time {text!r}: give epoch seconds, an ISO 8601 date/time "
                          "(2024-05-01T12:00:00+08:00) or a span back from now (30m, 2h, 7d)") from None


def open_store(spec: str | Path, *, create: bool = False) -> Store | PgStore:
    """The store `spec` names: a postgresql:// URL (at this imhook's schema) or a SQLite file."""
    if is_url(str(spec)):
        return PgStore(str(spec), pooled=False)
    return Store(spec, create=create)


def describe(spec: str | Path) -> str:
    """How to show a store's name: a URL with its password masked."""
    return mask(str(spec))


@dataclass
class Source:
    """Records to replay or export, filtered; `count` is for the progress bar."""

    path: Path
    filters: Filters
    url: str | None = None  # a PostgreSQL store: filters and streaming happen in the database

    @property
    def is_sqlite(self) -> bool:
        return self.url is None and is_sqlite_file(self.path)

    @property
    def is_store(self) -> bool:
        """SQLite or PostgreSQL, not a file of lines."""
        return self.url is not None or self.is_sqlite

    def __str__(self) -> str:
        return describe(self.url or self.path)

    def _store(self) -> Store | PgStore:
        return open_store(self.url or self.path)

    def count(self) -> int:
        if self.is_store:
            store = self._store()
            try:
                return store.count(self.filters)
            finally:
                store.close()
        with open(self.path, "rb") as f:
            return sum(1 for line in f if line.strip())

    def __iter__(self) -> Iterator[Record | Problem]:
        if self.is_store:
            store = self._store()
            try:
                yield from store.records(self.filters)
            finally:
                store.close()
            return
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for record in read_jsonl(f, self.path.name):
                if isinstance(record, Problem) or self.filters.match(record):
                    yield record


def open_source(path: str | Path, filters: Filters = Filters()) -> Source:
    if is_url(str(path)):
        return Source(Path(mask(str(path))), filters, url=str(path))
    path = Path(path)
    if not path.is_file():
        raise ImhookError(f"no recordings at {path}: expected a SQLite recordings file or a .jsonl file")
    return Source(path, filters)


def read_jsonl(lines: TextIO, name: str) -> Iterator[Record | Problem]:
    """One record per line; a line that is not a valid record becomes a Problem naming the line."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            record = Record.from_json(json.loads(line))
        except ValueError as exc:
            yield Problem(where, f"not valid JSON ({exc})")
            continue
        except RecordError as exc:
            yield Problem(where, str(exc))
            continue
        record.origin = where
        yield record


def export_jsonl(source: Source, out: TextIO) -> tuple[int, list[Problem]]:
    """Write each record as one line; return (written, problems)."""
    written, problems = 0, []
    for item in source:
        if isinstance(item, Problem):
            problems.append(item)
            continue
        out.write(dumps(item) + "\n")
        written += 1
    return written, problems


@dataclass
class Imported:
    """What an import did: records added, records skipped as already present, lines not read."""

    imported: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)


def import_key(record: Record) -> str:
    """The store key of an imported record: a hash of its content (everything but its id).

    Importing the same records again finds their keys stored and skips them (the store's UNIQUE
    key and INSERT OR IGNORE). The content is the record's JSON form with sorted keys and ASCII
    escapes, so the key does not depend on key order or on how a text is encoded.
    """
    data = record.to_json()
    data.pop("id", None)
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return "import:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def import_records(items: Iterator[Record | Problem], db: str | Path, *, batch: int = 500) -> Imported:
    """Insert records into a store (new ids), skipping those already there (by `import_key`); `db`
    is a SQLite file (created if missing) or a postgresql:// URL."""
    store = open_store(db, create=True)
    result, pending = Imported(), []

    def flush() -> None:
        inserted = store.insert(pending, [import_key(r) for r in pending])
        result.imported += inserted
        result.skipped += len(pending) - inserted
        pending.clear()

    try:
        for item in items:
            if isinstance(item, Problem):
                result.problems.append(item)
                continue
            item.id = None
            pending.append(item)
            if len(pending) >= batch:
                flush()
        flush()
        while store.index_users():  # a file no server writes is not sorted by anyone else
            pass
    finally:
        store.close()
    return result


def sample_records(folder: str | Path, *, app_id: str = "0", now: float | None = None) -> Iterator[Record | Problem]:
    """Request bodies from a folder of samples (`*.response*.json` are replies and skipped).

    They carry no recorded reply, so replay shows them as "new".
    """
    from ..client import callback_query
    from ..tencent.platform import TencentPlatform

    platform = TencentPlatform()
    now = time.time() if now is None else now
    for path in sorted(Path(folder).glob("*.json")):
        if ".response" in path.name:
            continue
        raw = path.read_bytes()
        try:
            command = json.loads(raw)["CallbackCommand"]
            if not isinstance(command, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            yield Problem(path.name, "not a JSON object with a CallbackCommand string")
            continue
        query = callback_query(command, app_id)
        yield Record(received_at=now, command=command, query=query, body=raw, user=_actor(platform, query, raw),
                     source=f"sample:{path.name}", request_id=path.name)


def _actor(platform, query: dict, raw: bytes) -> str:
    """Who acts in a sample, as the live path would record it ("" if the sample does not parse)."""
    try:
        return platform.from_http(query, raw, app_id=query["SdkAppid"], now=time.time()).event.actor
    except ImhookError:
        return ""


def copy_records(source: Source, target: str | Path) -> Imported:
    """Copy `source`'s records to `target`: a postgresql:// URL, a .jsonl file (written anew) or a
    SQLite file (created if missing). Into a store, a record already there (same content: `import_key`)
    is skipped, so copying twice stores once; a .jsonl target is rewritten, so it holds one copy too."""
    if not is_url(str(target)) and str(target).endswith(".jsonl"):
        partial = Path(str(target) + ".partial")
        with open(partial, "w", encoding="utf-8") as out:
            written, problems = export_jsonl(source, out)
        partial.replace(target)  # a failed copy leaves the previous file whole
        return Imported(imported=written, problems=problems)
    return import_records(iter(source), target)
