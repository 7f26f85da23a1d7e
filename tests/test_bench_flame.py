"""benchmarks/flame.py: inclusive and self shares of a py-spy collapsed-stack profile."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import flame  # noqa: E402

PROFILE = [
    "thread (0x1);handle (receiver/core.py:10);decide (rules/chain.py:5);find (rules/text/words.py:3) 6\n",
    "thread (0x1);handle (receiver/core.py:11);notify (receiver/core.py:20) 3\n",
    "thread (0x2);run (gunicorn/workers/gthread.py:7) 1\n",
]


def rows(text: str) -> dict[str, tuple[float, float]]:
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith("%") and parts[1].endswith("%"):
            found[" ".join(parts[2:])] = (float(parts[0][:-1]), float(parts[1][:-1]))
    return found


def test_a_frame_counts_once_per_sample_wherever_it_is_on_the_stack():
    shares = rows(flame.summarise(PROFILE, None, 10))
    assert shares["handle (receiver/core.py)"] == (90.0, 0.0)  # two lines of one function: one row
    assert shares["find (rules/text/words.py)"] == (60.0, 60.0)
    assert shares["run (gunicorn/workers/gthread.py)"] == (10.0, 10.0)


def test_within_keeps_only_the_samples_through_a_frame_and_children_break_it_down():
    text = flame.summarise(PROFILE, "handle", 10, ["handle"])
    assert text.startswith("9 samples")
    assert rows(text)["decide (rules/chain.py)"] == (66.7, 0.0)
    callees = text.split("direct callees", 1)[1]
    assert "66.7%  decide (rules/chain.py)" in callees and "33.3%  notify (receiver/core.py)" in callees
