"""Metrics and readiness under real gunicorn with several workers."""

from __future__ import annotations

import os
import signal

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from receiver.client import post_callback
from receiver.ops.metrics import FLUSH_SECONDS

from .helpers import APP_ID, TOKEN
from .test_ops_support import c2c_after, config_text, server_env, wait_until, worker_pids

pytestmark = pytest.mark.integration


def total(url: str, name: str, **labels) -> float:
    text = requests.get(url + "/metrics", timeout=2).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_add_up_over_workers_and_survive_a_dead_worker(serve, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale file from an earlier run")
    server = serve(config_text(tmp_path), workers=3, threads=2,
                   env=server_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)))
    sent = 90
    for n in range(sent):  # one connection per request: gunicorn spreads them over the workers
        assert post_callback(server.callback_url, c2c_after(n), app_id=APP_ID, token=TOKEN).ok
    counters = {p.name for p in metrics_dir.glob("counter_*.db")}
    print(f"\n{sent} callbacks, counter files of {len(counters)} processes")
    assert "counter_99999.db" not in counters  # cleaned at start
    assert len(counters) >= 2  # more than one worker answered
    labels = dict(command="C2C.CallbackAfterSendMsg", outcome="notify")
    # Each worker moves its counts into the shared files at least every FLUSH_SECONDS (metrics.py).
    assert wait_until(lambda: total(server.url, "imhook_callbacks_total", **labels) == sent,
                      timeout=FLUSH_SECONDS * 5)
    for _ in range(6):  # whichever worker answers /metrics, it reports all of them
        assert total(server.url, "imhook_callbacks_total", **labels) == sent

    # A worker that answered callbacks has a live gauge file (the recording queue depth).
    victim = next(pid for pid in worker_pids(server.process.pid)
                  if (metrics_dir / f"gauge_livesum_{pid}.db").exists())
    live_gauges = [metrics_dir / f"gauge_livesum_{victim}.db"]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(worker_pids(server.process.pid)) == 3 and victim not in worker_pids(
        server.process.pid), timeout=10)
    assert wait_until(lambda: not any(p.exists() for p in live_gauges), timeout=5)  # child_exit cleaned
    assert total(server.url, "imhook_callbacks_total", **labels) == sent  # its counts are kept
    assert requests.get(server.url + "/readyz", timeout=2).json()["status"] == "ready"


def test_a_worker_that_stops_writes_its_last_counts_and_log_lines(serve, tmp_path):
    """Counts and callback lines still buffered when the workers stop reach the files and stderr."""
    from prometheus_client import CollectorRegistry, multiprocess

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    server = serve(config_text(tmp_path), workers=2, threads=2,
                   env=server_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)))
    sent = 40
    for n in range(sent):
        assert post_callback(server.callback_url, c2c_after(n), app_id=APP_ID, token=TOKEN).ok
    assert server.stop() == 0  # at once: well within the flush intervals
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
    labels = dict(command="C2C.CallbackAfterSendMsg", outcome="notify")
    assert registry.get_sample_value("imhook_callbacks_total", labels) == sent
    lines = [line for line in server.log().splitlines() if '"logger":"imhook.callback"' in line]
    assert len(lines) == sent


def test_a_worker_freezes_the_built_app_out_of_the_collectors_sight():
    import subprocess
    import sys

    # In a fresh interpreter: freezing is for the life of the process.
    code = ("import gc; from receiver import gunicorn_conf; big = [[i] for i in range(10000)]; "
            "gunicorn_conf.post_worker_init(None); print(gc.get_freeze_count(), gc.get_threshold()[0])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    frozen, young_threshold = map(int, run.stdout.split())
    assert frozen > 10000
    assert young_threshold == 10_000  # receiver/heap.py: GC_THRESHOLD


@pytest.mark.parametrize("reuse_port", ["1", "0"])
def test_the_log_says_where_the_workers_listen(serve, tmp_path, reuse_port):
    server = serve(config_text(tmp_path), env={"IMHOOK_REUSE_PORT": reuse_port})
    address = server.url.removeprefix("http://")
    log = server.log()
    if reuse_port == "1":  # gunicorn's own line names nothing: the workers bind
        assert f"Listening at: {address} (each worker binds it, SO_REUSEPORT)" in log
    else:
        assert f"Listening at: http://{address}" in log
        assert "SO_REUSEPORT" not in log
