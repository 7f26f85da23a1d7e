"""CPU per hit of the rate limit's in-memory store, in-process, for any checkout.

    python benchmarks/rate_limit_store.py [--tree DIR] [--hits 20000] [--rounds 3]

Two loads on `rules.ratelimit.MemoryStore` with its default bound (MAX_MEMORY_KEYS), each hit
carrying two counters (sender, 10 s; pair, 1 s) as benchmarks/configs/production.yaml does:

- `steady`: 5,000 senders in turn, as the HTTP benchmarks send them, a hit every 100 µs of a
  hand-moved clock (the store's own sweeps run as they would);
- `flood`: the store filled with live counters, then every hit from a sender not seen before
  (an app with more active senders than the bound, or a flood of new accounts): each new key needs
  room.

`--tree DIR` imports `rules` from another checkout (`git archive <commit> | tar -x -C DIR`), so a
before/after pair measures the code alone: run both, alternating.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def steady(store_class, hit_class, hits: int) -> float:
    clock = Clock()
    store = store_class(clock=clock)
    senders = [f"user{i}" for i in range(5000)]
    work = [(hit_class(f"s:{s}", 60, 10.0), hit_class(f"p:{s}:peer", 20, 1.0)) for s in senders]
    started = time.thread_time()
    for i in range(hits):
        clock.now += 0.0001
        store.hit(work[i % len(work)])
    return (time.thread_time() - started) / hits * 1e6


def flood(store_class, hit_class, hits: int, capacity: int) -> float:
    clock = Clock()
    store = store_class(clock=clock)
    for i in range(capacity):  # every counter live: nothing idle to sweep
        store.hit((hit_class(f"s:old{i}", 60, 10.0),))
    work = [(hit_class(f"s:new{i}", 60, 10.0), hit_class(f"p:new{i}:peer", 20, 1.0)) for i in range(hits)]
    started = time.thread_time()
    for pair in work:
        store.hit(pair)
    return (time.thread_time() - started) / hits * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent, help="the checkout whose code to time")
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.tree.resolve()))
    import logging

    logging.getLogger("imhook.rate_limit").disabled = True  # the flood's "store is full" warning
    from rules.ratelimit import Hit, MemoryStore
    from rules.ratelimit.store import MAX_MEMORY_KEYS

    assert Path(sys.modules["rules"].__file__).resolve().is_relative_to(args.tree.resolve()), "wrong tree"
    # The flood's hits are fewer: on a store that scans every key for each new one they take seconds.
    flood_hits = max(1, args.hits // 10)
    results = {"steady": [], "flood": []}
    for _ in range(args.rounds):
        results["steady"].append(steady(MemoryStore, Hit, args.hits))
        results["flood"].append(flood(MemoryStore, Hit, flood_hits, MAX_MEMORY_KEYS))
    for name, values in results.items():
        print(f"{args.tree}: {name}: {min(values):.2f}-{max(values):.2f} us of CPU per hit "
              f"({args.rounds} rounds of {args.hits if name == 'steady' else flood_hits:,} hits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
