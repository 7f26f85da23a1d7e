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


def test_build_benchmark_pairs_two_checkouts(tmp_path):
    """build_time.py loads each checkout's rules/text as its own package and pairs them."""
    root = SCRIPT.parent.parent
    other = tmp_path / "other"
    (other / "rules").mkdir(parents=True)
    (other / "rules" / "text").symlink_to(root / "rules" / "text")
    result = subprocess.run([sys.executable, str(root / "benchmarks" / "build_time.py"),
                             "--rounds", "2", "--words", "300", "--tree", str(root),
                             "--tree", str(other)],
                            capture_output=True, text=True, timeout=120, cwd=root)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # each round runs both checkouts, the second round in reverse order
    rounds = re.findall(r"^round (\d) (\S+): build [\d.]+ s, build, pinyin on [\d.]+ s$", out,
                        flags=re.MULTILINE)
    assert rounds == [("1", str(root)), ("1", str(other)), ("2", str(other)), ("2", str(root))]
    number = r"[\d.]+ \([\d.]+-[\d.]+\)"
    assert re.search(r"^  " + re.escape(str(other)) + ": " + number + "  paired / first: "
                     + number + "$", out, flags=re.MULTILINE), out
    assert "2 rounds, 300 words" in out
