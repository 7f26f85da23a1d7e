"""Smoke run of the recording-stores benchmark (benchmarks/stores.py): SQLite and PostgreSQL side by side.

The figures themselves are not judged here (they belong in benchmarks/RESULTS.md); only that the
benchmark runs end to end against the real PostgreSQL, prints every figure, loses no record and
drops its scratch database. Skipped without PostgreSQL, failed under CI=true (tests/pgfixtures.py).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

from .pgfixtures import _admin, pg_server  # noqa: F401  (the fixture)

SCRIPT = ROOT / "benchmarks" / "stores.py"
STORES = ("sqlite", "postgresql")
NUMBER = r"[\d,]+(?:\.\d+)?"


def run_stores(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.integration
def test_stores_benchmark_smoke_run_prints_every_figure_and_drops_its_database(pg_server):  # noqa: F811
    run = run_stores("--smoke", "--pg-url", pg_server)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    for store in STORES:
        for writers in (1, 2):
            writer = re.search(rf"RESULT writer {store}\s+writers={writers} .*", output)
            assert writer, output
            for figure in (rf"{NUMBER} records/s \(range {NUMBER}-{NUMBER} over 2 rounds\)",
                           rf"writer CPU {NUMBER} us/record", rf"longest stall beside it {NUMBER} ms \(",
                           rf"disk {NUMBER} bytes/record"):
                assert re.search(figure, writer.group(0)), (figure, writer.group(0))
        # The shipped batch_size (1000), or all of the smoke run's 300 records when it is larger.
        assert re.search(rf"RESULT insert {store}\s+batch of 300: thread CPU {NUMBER} ms \({NUMBER}-{NUMBER}\), "
                         rf"wall {NUMBER} ms", output), output
        assert re.search(rf"^  {store}: checked 200 callbacks, 0 wrong", output, re.MULTILINE), output
        replies = re.search(rf"RESULT replies {store}\s+c=16 .*", output)
        assert replies, output
        for label in ("req/s", "p50", "p99", "max", "server CPU"):
            assert re.search(rf"{label} {NUMBER}( ms| us/req)? \({NUMBER}-{NUMBER}\)", replies.group(0)), \
                replies.group(0)
        assert re.search(rf"database CPU {NUMBER} us/req", replies.group(0)), replies.group(0)
        assert "errors 0  over 2 rounds" in replies.group(0), replies.group(0)
        # Nothing answered is missing from either store once the servers have stopped.
        assert re.search(rf"RESULT stored {store}\s+{NUMBER} records for {NUMBER} replies .*: ok$", output,
                         re.MULTILINE), output
    assert re.search(rf"RESULT paired postgresql/sqlite p99 {NUMBER}x \(range {NUMBER}-{NUMBER}\), "
                     rf"req/s {NUMBER}x", output), output
    name = re.search(r"^scratch database (imhook_bench_\d+)$", output, re.MULTILINE).group(1)
    with _admin() as admin:
        left = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert left is None, f"{name} was not dropped"


def test_stores_benchmark_without_postgresql_says_so_in_one_line_and_exits_2(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = run_stores("--smoke", "--pg-url", f"postgresql://bench:s3cret@127.0.0.1:{port}/postgres", timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith(f"no PostgreSQL at postgresql://bench:***@127.0.0.1:{port}/postgres: "), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "s3cret" not in run.stderr, run.stderr
    assert "RESULT" not in run.stdout, run.stdout
