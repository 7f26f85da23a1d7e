"""The word-matching benchmark runs end to end and prints its figures (smoke mode)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "words.py"


def test_benchmark_smoke_prints_figures():
    result = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], capture_output=True,
                            text=True, timeout=120, cwd=SCRIPT.parent.parent)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for row in ("raw ahocorasick_rs find_matches_as_indexes",
                "WordMatcher find+mask, all normalisation",
                "WordMatcher find+mask, fold_repeats off"):
        # name, msg/s, Mchar/s, ratio to raw
        assert re.search(re.escape(row) + r"\s+[\d,]+\s+[\d.]+\s+[\d.]+\n", out), out
    assert re.search(r"build 5,000 words\s+[\d.]+ s", out), out
    assert re.search(r"build 5,000 words, pinyin on\s+[\d.]+ s", out), out
    for option in ("pinyin", "homophones", "leet", "confusables", "every option"):
        # the second-wave options, each alone and together: msg/s and µs added per message
        assert re.search(r"^  " + option + r"\s+[\d,]+\s+-?[\d.]+$", out, flags=re.MULTILINE), out
    assert len(re.findall(r"^target .* (PASS|MISS)$", out, flags=re.MULTILINE)) == 4, out
