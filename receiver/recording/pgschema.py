"""The PostgreSQL recordings schema: an ordered list of SQL files, applied by `imhook db upgrade`.

Each file of migrations/postgresql/ is `NNNN_name.sql`; its number is the schema version it
brings the database to. `upgrade` applies the missing ones in order, each in its own transaction
together with its row in `imhook_schema_migrations`, under an advisory lock so two instances
upgrading at once do not both try. The code's version (`SCHEMA_VERSION`) is the highest number;
`imhook serve` refuses to start on a database behind it (`check`), and on one ahead of it (a newer
imhook upgraded it: this one may write rows the newer code does not expect).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from ..errors import ImhookError

log = logging.getLogger("imhook.recording")

MIGRATIONS_TABLE = "imhook_schema_migrations"
ADVISORY_LOCK = 0x696D686F6F6B  # "imhook": one upgrade at a time per database
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with this imhook, in order (numbered 1, 2, ... without gaps)."""
    folder = resources.files("receiver.recording") / "migrations" / "postgresql"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise AssertionError(f"PostgreSQL migrations must be numbered 1..n without gaps: {[m.version for m in found]}")
    return found


SCHEMA_VERSION = len(migrations())


def applied_version(conn) -> int:
    """The schema version of the database `conn` is connected to (0: no imhook schema yet)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (MIGRATIONS_TABLE,))
        if cur.fetchone()[0] is None:
            return 0
        cur.execute(f"SELECT COALESCE(MAX(version), 0) FROM {MIGRATIONS_TABLE}")
        return cur.fetchone()[0]


def upgrade(conn) -> list[Migration]:
    """Apply the missing migrations (each in a transaction with its record); return those applied."""
    applied = []
    conn.autocommit = False
    with conn.transaction():
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, "
                        "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    for migration in migrations():
        with conn.transaction():
            with conn.cursor() as cur:
                # Held to the end of the transaction: a second upgrader waits, then sees it done.
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
                cur.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE version = %s", (migration.version,))
                if cur.fetchone():
                    continue
                cur.execute(migration.sql.encode("utf-8"))
                cur.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (%s, %s)",
                            (migration.version, migration.name))
        applied.append(migration)
    return applied


def problem(version: int, where: str) -> str | None:
    """Why a database at schema `version` cannot be used by this imhook (None: it can)."""
    if version < SCHEMA_VERSION:
        state = "has no imhook schema" if version == 0 else f"is at schema version {version}"
        return (f"the recordings database {where} {state}; this imhook needs version {SCHEMA_VERSION}: "
                f"run `imhook db upgrade` (with the same --config)")
    if version > SCHEMA_VERSION:
        return (f"the recordings database {where} is at schema version {version}, newer than this imhook's "
                f"{SCHEMA_VERSION}: upgrade imhook")
    return None


def check(conn, where: str) -> None:
    """Raise ImhookError (exit 2) unless the database is at exactly this imhook's schema version."""
    why = problem(applied_version(conn), where)
    if why:
        raise ImhookError(why)


def check_at_start(recording: dict, env=None) -> None:
    """Before any worker starts (receiver/reload.py check_start_up): a PostgreSQL store must be at
    this imhook's schema version, else ImhookError (exit 2) naming `imhook db upgrade`.

    A database that cannot be reached is no reason to refuse callbacks: the workers start, their
    journals keep every record until it is back (logged here, and /readyz says so if it lasts).
    """
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    from .locations import store_url
    from .pgstore import mask

    if not recording or not recording.get("enabled"):
        return
    url = store_url(recording, env)
    if url is None:
        return

    try:
        conninfo_to_dict(url)  # a malformed URL is a config error, not a database that is away
    except ProgrammingError as exc:
        raise ImhookError(f"the recording store {mask(url)} is not a valid PostgreSQL URL: "
                          f"{mask(str(exc)).strip()}") from None
    check_reachable(url, part="recording", waiting="records wait in the journal")


def check_reachable(url: str, *, part: str, waiting: str) -> None:
    """`check` the database at `url` if it answers now; one that does not is logged, not refused:
    what `part` holds waits locally (`waiting`) until it is back."""
    from .pgstore import connect, mask

    try:
        conn = connect(url)
    except ImhookError as exc:
        log.warning("%s: cannot check the schema of %s now (%s); starting anyway: %s until it can be reached",
                    part, mask(url), exc, waiting)
        return
    try:
        check(conn, mask(url))
    finally:
        conn.close()
