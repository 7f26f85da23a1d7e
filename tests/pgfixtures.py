"""PostgreSQL fixtures: a scratch database per test session, dropped after it.

The server is the machine's shared one (127.0.0.1:5432, trust auth; IMHOOK_TEST_PG_URL names
another). Tests skip with the reason when it cannot be reached, but fail under CI=true, as the Redis
fixture in conftest.py does. Nothing here stops or reconfigures the server: a "database down" is a
scratch database whose connections are refused and terminated (`make_unavailable`).
"""

from __future__ import annotations

import os
import secrets

import pytest

ADMIN_URL = os.environ.get("IMHOOK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _admin():
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)


def url_for(database: str) -> str:
    """The admin URL with another database (postgresql://user@host:port/<database>)."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def create_database(name: str, *, upgrade: bool = True) -> str:
    """A fresh database `name` (dropped first if left over), at this imhook's schema if `upgrade`."""
    import psycopg

    from receiver.recording import pgschema

    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = url_for(name)
    if upgrade:
        with psycopg.connect(url) as conn:
            pgschema.upgrade(conn)
    return url


def drop_database(name: str) -> None:
    with _admin() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_unavailable(name: str) -> None:
    """"Database down" for one scratch database: refuse new connections, end the open ones."""
    with _admin() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def make_available(name: str) -> None:
    with _admin() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.fixture(scope="session")
def pg_server():
    """The admin URL of a reachable PostgreSQL; skip (fail under CI=true) when there is none."""
    try:
        import psycopg

        with _admin():
            pass
    except (ImportError, psycopg.Error) as exc:
        message = (f"no PostgreSQL at {ADMIN_URL} ({str(exc).strip()}); start it or set IMHOOK_TEST_PG_URL")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires PostgreSQL: {message}")
        pytest.skip(message)
    return ADMIN_URL


@pytest.fixture(scope="session")
def pg_database(pg_server):
    """(name, url) of a scratch database for this session, at the current schema."""
    name = f"imhook_test_{os.getpid()}_{secrets.token_hex(3)}"  # unique across sessions sharing the server
    url = create_database(name)
    yield name, url
    drop_database(name)


@pytest.fixture
def pg_url(pg_database):
    """The session's scratch database, emptied before the test."""
    import psycopg

    name, url = pg_database
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE recordings")
    return url
