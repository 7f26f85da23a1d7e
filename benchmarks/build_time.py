"""Time WordMatcher.build of benchmarks/words.py's 100,000-word list, checkouts paired.

    python benchmarks/build_time.py [--rounds N] [--tree DIR ...]

The build lines of benchmarks/words.py alone, without its minutes of message runs, so
before/after pairs are cheap enough to repeat.  Each measurement is a fresh process (the
build's cost depends on what the process already holds: its tables, its heap), set up as
words.py sets it up: the normalisation table, the same seeded 100,000 words, the build
without pinyin, a small build per option (reading data, overlay tables), then the build
with pinyin.  Both are CPU seconds (time.process_time), as words.py reports them.

Every round runs each tree once (default: this checkout), the order reversed every round so
a disturbance on a shared machine falls on all alike; the report gives each tree's median
and range, and each tree's time over the first tree's, paired per round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORDS = 100_000
# The option sets words.py warms up with before it times the pinyin build.
WARM_UP = ({}, {"confusables": True}, {"leet": True}, {"pinyin": True, "homophones": "off"},
           {"pinyin": True}, {"pinyin": True, "homophones": "any_tone"},
           {"pinyin": True, "leet": True, "confusables": True})


def measure(tree: str) -> dict[str, float]:
    """One process's build times (run in a child: ``--child``)."""
    sys.path.insert(0, tree)
    sys.path.insert(1, str(HERE))
    from words import make_data  # noqa: E402  (benchmarks/words.py: same seeded list)

    from rules.text.normalize import get_normalizer
    from rules.text.words import WordMatcher

    started = time.process_time()
    get_normalizer(skip_noise=True, traditional=True, fold_repeats=True)
    table_s = time.process_time() - started
    words, _ = make_data(seed=7, n_words=WORDS, n_messages=0)
    started = time.process_time()
    WordMatcher.build(words, fold_repeats=True)
    build_s = time.process_time() - started
    for options in WARM_UP:
        try:
            WordMatcher.build(words[:10], fold_repeats=True, **options)
        except ValueError:  # an older checkout without this option's spelling
            pass
    started = time.process_time()
    WordMatcher.build(words, fold_repeats=True, pinyin=True)
    pinyin_s = time.process_time() - started
    return {"table": table_s, "build": build_s, "build, pinyin on": pinyin_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tree", action="append",
                        help="a checkout to import rules/ from (repeat: paired trees)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return 0
    trees = args.tree or [str(HERE.parent)]
    results: dict[str, list[dict[str, float]]] = {tree: [] for tree in trees}
    for round_number in range(args.rounds):
        order = trees if round_number % 2 == 0 else trees[::-1]
        for tree in order:
            child = subprocess.run([sys.executable, __file__, "--child", tree], check=True,
                                   capture_output=True, text=True)
            results[tree].append(json.loads(child.stdout))
            print(f"round {round_number + 1} {tree}: "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in results[tree][-1].items()), flush=True)
    print(f"\n{args.rounds} rounds, {WORDS:,} words; CPU s, median (min-max)")
    first = results[trees[0]]
    for name in first[0]:
        print(f"{name}:")
        for tree in trees:
            values = [r[name] for r in results[tree]]
            line = f"  {tree}: {_summary(values)}"
            if tree != trees[0]:
                ratios = [r[name] / f[name] for r, f in zip(results[tree], first)]
                line += f"  paired / {trees[0]}: {_summary(ratios)}"
            print(line)
    return 0


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


if __name__ == "__main__":
    sys.exit(main())
