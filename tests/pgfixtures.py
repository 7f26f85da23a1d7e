"""PostgreSQL fixtures: a scratch database per test session, dropped after it.

The server is the machine's shared one (127.0.0.1:5432, trust auth; IMHOOK_TEST_PG_URL names
another). Tests skip with the reason when it cannot be reached, but fail under CI=true, as the Redis
fixture in conftest.py does. Nothing here reconfigures the server, and by default nothing stops it:
a "database down" is a scratch database whose connections are refused and terminated
(`make_unavailable`). The one exception is `pg_restart`, a real restart of the machine's cluster,
which breaks every other session on the server for a second: it runs under CI=true (the suite runs
alone there) or when RESTART_OPT_IN=1 is set, and skips otherwise.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

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


RESTART_OPT_IN = "IMHOOK_TEST_PG_RESTART"
CLUSTERS = Path("/etc/postgresql")  # Debian's postgresql-common: /etc/postgresql/<version>/<cluster>
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def local_cluster() -> tuple[str | None, str]:
    """(version, "") of the local `main` cluster serving ADMIN_URL, or (None, why not)."""
    url = urlsplit(ADMIN_URL)
    if url.hostname not in LOCAL_HOSTS and url.hostname is not None:
        return None, f"{url.hostname} is not this machine"
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        return None, "no pg_ctlcluster (Debian's postgresql-common) on this machine"
    versions = sorted((entry.name for entry in CLUSTERS.glob("*") if (entry / "main").is_dir()),
                      key=lambda v: [int(part) for part in v.split(".") if part.isdigit()])
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=30).stdout
    ports = {tuple(line.split()[:2]): line.split()[2] for line in listed.splitlines() if len(line.split()) > 2}
    for version in reversed(versions):
        if ports.get((version, "main")) == str(url.port or 5432):
            return version, ""
    return None, f"no cluster `main` in {CLUSTERS} listens on port {url.port or 5432}"


def _cluster(version: str, action: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                          capture_output=True, text=True, timeout=120)


def _wait_accepting(seconds: float) -> bool:
    import psycopg

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with _admin():
                return True
        except psycopg.Error:
            time.sleep(0.2)
    return False


@pytest.fixture
def pg_restart(pg_server):
    """A callable that really restarts the machine's PostgreSQL cluster (pg_ctlcluster, fast
    shutdown: every session ends, connections are refused until it is back) and returns once it
    accepts connections again. Skips off CI without the opt-in; under CI=true a server it cannot
    restart fails the test. Afterwards the server is started if it is down, even on failure."""
    if os.environ.get("CI") != "true" and os.environ.get(RESTART_OPT_IN) != "1":
        pytest.skip(f"restarting the shared PostgreSQL server breaks other sessions' connections: it runs under "
                    f"CI=true (the suite alone on the machine) or with {RESTART_OPT_IN}=1")
    version, why = local_cluster()
    if version is None:
        message = f"cannot restart the PostgreSQL server of {ADMIN_URL}: {why}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true restarts PostgreSQL for real: {message}")
        pytest.skip(message)

    def restart() -> float:
        """Restart; the seconds it took until connections were accepted again."""
        started = time.monotonic()
        done = _cluster(version, "restart")
        assert done.returncode == 0, f"pg_ctlcluster {version} main restart: {done.stderr.strip()}"
        assert _wait_accepting(60), "PostgreSQL did not accept connections within 60 s of its restart"
        return time.monotonic() - started

    try:
        yield restart
    finally:
        if _cluster(version, "status").returncode != 0:  # down (a restart that failed halfway)
            _cluster(version, "start")
        assert _wait_accepting(60), f"PostgreSQL {version}/main is not accepting connections after the test"
