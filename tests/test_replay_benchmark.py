"""The replay benchmark runs end to end (its figures are for people, not asserted here)."""

from __future__ import annotations

import subprocess
import sys

from .helpers import ROOT


def test_replay_benchmark_smoke():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "replay.py"), "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "offline replay: 1,000 callbacks in" in result.stdout and "callbacks/s" in result.stdout
    assert "errors 0" in result.stdout and "recording: observer" in result.stdout
