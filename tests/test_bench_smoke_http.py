"""Smoke run of the HTTP benchmark: the three servers start and answer correctly at low load.

The figures themselves are not judged here (speed belongs in benchmarks/RESULTS.md); only that the
benchmark runs end to end and prints them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SERVERS = ("bare", "default", "production")


def smoke_run(script: str, *args: str) -> str:
    """Run benchmarks/<script> --smoke; its output, once it has exited 0."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    return output


@pytest.mark.integration
def test_http_benchmark_smoke_run_exits_0_and_prints_figures():
    output = smoke_run("http.py")
    for name in SERVERS:
        # Every callback of the mix got the reply the in-process core gives (bare: the OK envelope).
        assert re.search(rf"^  {name}: checked 200 callbacks, 0 wrong", output, re.MULTILINE), output
        for phase in ("c4", "open"):
            line = re.search(rf"RESULT {name}\s+{phase}\s+.*", output)
            assert line, f"no {phase} figures for {name}:\n{output}"
            assert re.search(r"[\d,]+ req/s\s+p50\s+[\d.]+\s+p99\s+[\d.]+", line.group(0)), line.group(0)
            assert "non-2xx 0  socket errors 0  timeouts 0" in line.group(0), line.group(0)
    assert re.search(r"production throughput\s+[\d.]+x", output), output


@pytest.mark.integration
def test_soak_benchmark_smoke_run_reports_errors_rss_growth_and_disk():
    output = smoke_run("soak.py")
    assert re.search(r"RESULT soak [\d.]+ min, [\d,]+ callbacks at 50/s: errors 0, over 2 s 0", output), output
    growth = re.search(r"RESULT rss growth over the second half .*: (.*)", output)
    assert growth and len(re.findall(r"worker \d+ [+-][\d.]+ MB", growth.group(1))) == 2, output
    assert re.search(r"RESULT disk [\d.]+ MB for [\d,]+ callbacks: [\d.]+ MB per 10,000 callbacks", output), output


@pytest.mark.integration
def test_served_threads_smoke_run_splits_each_servers_cpu_by_thread():
    output = smoke_run("served_threads.py")
    for name in SERVERS:
        line = re.search(rf"^  {name}\s+event loop (\d+) .* requests (\d+) .* recorder (\d+) .* total (\d+) "
                         rf".* kernel (\d+) ", output, re.MULTILINE)
        assert line, f"no median line for {name}:\n{output}"
        loop, requests, recorder, total, kernel = map(int, line.groups())
        assert loop > 0 and requests > 0 and total >= loop + requests + recorder - 2, line.group(0)  # each rounded
        assert 0 < kernel < total, line.group(0)  # a served request makes system calls; user space does most
        # The request threads are found by their OS name: without it their CPU would land in "other".
        assert requests > loop, line.group(0)
        if name == "bare":  # no recording: no writer thread (imhook's may use under a tick in a 1 s run)
            assert recorder == 0, line.group(0)


@pytest.mark.integration
def test_served_threads_prices_a_setting_on_a_prefilled_recording_file():
    # --prefill: the run measures a long-lived recording file (its rows recent enough to survive the
    # recorder's retention pass); --set-b: the same code with recording off, paired round by round.
    output = smoke_run("served_threads.py", "--only", "production", "--prefill", "3000",
                       "--set-b", '{"recording": {"enabled": false}}')
    assert re.search(r"^prefilled bench-recordings.sqlite: 3,000 rows", output, re.MULTILINE), output
    recorders = dict(re.findall(r"^  (production(?:-b)?)\s+event loop .* recorder (\d+) ", output, re.MULTILINE))
    assert set(recorders) == {"production", "production-b"}, output
    assert recorders["production-b"] == "0", output  # no recording, no writer thread at work
    assert re.search(r"^  production-b minus production, paired by round: median [-+]\d+ us", output, re.MULTILINE), output


@pytest.mark.integration
def test_served_threads_counts_the_system_calls_each_server_makes_per_request():
    if shutil.which("strace") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("strace is missing: .ci/run installs it")
        pytest.skip("strace is not installed (Debian: apt-get install strace)")
    output = smoke_run("served_threads.py", "--only", "bare,production", "--syscalls")
    table = output.split("SYSCALLS per answered request", 1)[1]
    rows = {name: (float(bare), float(production))
            for name, bare, production in re.findall(r"^  (\w+)\s+([\d.]+)\s+([\d.]+)$", table, re.MULTILINE)}
    # Both answer each request over its connection; only production journals and stores a record:
    # its write(2) to the journal comes on top of the bare app's writes (gthread's wake-up pipe).
    assert rows["recvmsg"][0] > 0.5 and rows["recvmsg"][1] > 0.5, table
    assert rows["write"][1] >= rows["write"][0] + 0.5, table
    assert "total" not in rows, table


@pytest.mark.integration
def test_restarts_benchmark_smoke_run_reports_errors_and_lateness_through_a_hup_and_a_stop():
    output = smoke_run("restarts.py")
    line = re.search(r"RESULT production\s+round 1: ([\d,]+) callbacks, errors (\d+) .*over 2 s (\d+), "
                     r"p99 [\d.]+ ms, max [\d.]+ ms, shed \d+; workers loaded in (.*) s; HUP at .*SIGTERM worker",
                     output)
    assert line, output
    assert int(line.group(1).replace(",", "")) > 100 and line.group(2) == "0" and line.group(3) == "0", line.group(0)
    assert len(line.group(4).split(", ")) >= 5, line.group(0)  # 2 at the start, 2 after the HUP, 1 after the stop
