"""A scratch PostgreSQL database for a benchmark (benchmarks/stores.py), and the CPU its backends use."""

from __future__ import annotations

import os
from pathlib import Path


class ScratchDatabase:
    """A database of its own on the admin URL's server, at this imhook's schema; dropped on exit."""

    def __init__(self, admin_url: str):
        self.admin_url, self.name = admin_url, f"imhook_bench_{os.getpid()}"
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(sql)

    def __enter__(self) -> "ScratchDatabase":
        import psycopg

        from receiver.recording import pgschema

        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.name}"')
        with psycopg.connect(self.url) as conn:
            pgschema.upgrade(conn)  # what `imhook db upgrade` does
        return self

    def __exit__(self, *exc) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def empty(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("TRUNCATE recordings")

    def bytes(self) -> int:
        """The recordings table on disk: rows, indexes and TOAST."""
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute("SELECT pg_total_relation_size('recordings')").fetchone()[0]

    def count(self) -> int:
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]


def _backends(database: str) -> list[tuple[int, str]]:
    """(pid, /proc/<pid>/stat) of each PostgreSQL backend serving `database` on this machine (their
    process title is `postgres: [cluster: ]user database host(port) state`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            if not title.startswith("postgres:") or f" {database} " not in title:
                continue
            found.append((int(entry.name), (entry / "stat").read_text()))
        except OSError:
            continue
    return found


def backend_seconds(database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving `database`. A lower bound of what
    the database spends: the server's WAL writer and checkpointer are shared with everything else
    on it. 0 when the server is not on this machine (or not visible from it)."""
    total = 0
    for _, stat in _backends(database):
        rest = stat[stat.rindex(")") + 2:].split()
        total += int(rest[11]) + int(rest[12])
    return total / os.sysconf("SC_CLK_TCK")


def renice_backends(database: str, niceness: int) -> int:
    """Set the niceness of the backends serving `database` (only those: the server's other
    processes and other databases' backends are left alone); return how many were changed."""
    changed = 0
    for pid, _ in _backends(database):
        try:
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
            changed += 1
        except OSError:  # ended meanwhile, or not ours to change
            continue
    return changed
