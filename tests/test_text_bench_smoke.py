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
    number = r"[\d,.]+ \([\d,.]+-[\d,.]+\)"  # median (min-max)
    signed = r"-?[\d.]+ \(-?[\d.]+--?[\d.]+\)"
    # the baseline and the first wave: msg/s and the ratio to raw, paired per round
    for row in ("raw", "first wave", "first wave, find only", "every option, find only"):
        assert re.search(r"^" + re.escape(row) + r"\s+" + number + r"\s+" + number + r"$", out,
                         flags=re.MULTILINE), out
    # each second-wave option alone and together: msg/s, ratio, µs per message it adds
    for option in ("confusables", "leet", "pinyin, homophones off", "pinyin",
                   "pinyin, any-tone homophones", "every option", "every option, any-tone homophones"):
        assert re.search(r"^" + re.escape(option) + r"\s+" + number + r"\s+" + number + r"\s+"
                         + signed + r"$", out, flags=re.MULTILINE), out
    assert re.search(r"build 5,000 words\s+[\d.]+ s", out), out
    assert re.search(r"build 5,000 words, pinyin on\s+[\d.]+ s", out), out
    assert len(re.findall(r"^target .* (PASS|MISS)$", out, flags=re.MULTILINE)) == 5, out
