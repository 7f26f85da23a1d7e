"""Time WordMatcher.build of benchmarks/words.py's 100,000-word list, checkouts paired.

    python benchmarks/build_time.py [--rounds N] [--words N] [--tree DIR ...]

The build lines of benchmarks/words.py alone, without its minutes of message runs, so
before/after pairs are cheap enough to repeat, and paired in ONE process: each --tree's
``rules/text`` is copied into a temporary folder as a package of its own (it imports only
itself), so the checkouts' builds alternate build by build under the same load, the order
reversed every round.  Set up as words.py sets up: the normalisation table, the same seeded
100,000 words, a small build per option (reading data, overlay tables), then per round the
build without pinyin and the build with pinyin of each checkout.  CPU seconds
(time.process_time), as words.py reports them; each build's matcher is dropped before the
next, as in words.py.  The report gives each checkout's median and range, and each one's
time over the first checkout's, paired per round.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(1, str(HERE))

from words import make_data  # noqa: E402  (benchmarks/words.py: the same seeded list)

WORDS = 100_000
# The option sets words.py warms up with before it times the pinyin build.
WARM_UP = ({}, {"confusables": True}, {"leet": True}, {"pinyin": True, "homophones": "off"},
           {"pinyin": True}, {"pinyin": True, "homophones": "any_tone"},
           {"pinyin": True, "leet": True, "confusables": True})
RUNS = {"build": {}, "build, pinyin on": {"pinyin": True}}


def load_matchers(trees: list[str], into: Path) -> list:
    """Each tree's WordMatcher, from its rules/text copied as package text_<n>."""
    sys.path.insert(0, str(into))
    matchers = []
    for number, tree in enumerate(trees):
        shutil.copytree(Path(tree) / "rules" / "text", into / f"text_{number}")
        module = importlib.import_module(f"text_{number}.words")
        matcher = module.WordMatcher
        for options in WARM_UP:
            try:
                matcher.build(["诈骗", "scam"], fold_repeats=True, **options)
            except ValueError:  # an older checkout without this option's spelling
                pass
        matchers.append(matcher)
    return matchers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--words", type=int, default=WORDS, help="list size (default 100,000)")
    parser.add_argument("--tree", action="append",
                        help="a checkout whose rules/text to time (repeat: paired checkouts)")
    args = parser.parse_args(argv)
    trees = args.tree or [str(HERE.parent)]
    words, _ = make_data(seed=7, n_words=args.words, n_messages=0)
    times: dict[tuple[str, str], list[float]] = {(t, r): [] for t in trees for r in RUNS}
    with tempfile.TemporaryDirectory() as folder:
        matchers = load_matchers(trees, Path(folder))
        for round_number in range(args.rounds):
            order = list(zip(trees, matchers))
            for tree, matcher in order if round_number % 2 == 0 else order[::-1]:
                line = []
                for run, options in RUNS.items():
                    started = time.process_time()
                    matcher.build(words, fold_repeats=True, **options)
                    times[tree, run].append(time.process_time() - started)
                    line.append(f"{run} {times[tree, run][-1]:.3f} s")
                print(f"round {round_number + 1} {tree}: {', '.join(line)}", flush=True)
    print(f"\n{args.rounds} rounds, {args.words:,} words; CPU s, median (min-max)")
    for run in RUNS:
        print(f"{run}:")
        first = times[trees[0], run]
        for tree in trees:
            line = f"  {tree}: {_summary(times[tree, run])}"
            if tree != trees[0]:
                ratios = [t / f for t, f in zip(times[tree, run], first)]
                line += f"  paired / first: {_summary(ratios)}"
            print(line)
    return 0


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


if __name__ == "__main__":
    sys.exit(main())
