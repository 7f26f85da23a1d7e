"""Time spent in the garbage collector per callback, in-process, over the benchmark mix (issue 16).

    python benchmarks/gc_time.py [--set JSON] [--threshold 700,10,10] [--callbacks 3000]

Builds the app as a worker does (parts.build_app, then the heap settled as post_worker_init does,
which sets receiver.heap.GC_THRESHOLD), sends the 3,000-callback mix once to warm up and three
times measured, and prints the process CPU per callback, the collections per callback of each
generation and the wall time spent in them (gc.callbacks). `--threshold` overrides the thresholds
after the app is built, to price another setting in the same tree: run both, alternating.
"""
import argparse
import json
import sys
import time
import gc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import parts  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--set", default="{}", help="JSON object merged into the production config")
parser.add_argument("--callbacks", type=int, default=3000, help="distinct callbacks in the mix")
parser.add_argument("--threshold", default="", help="gc thresholds to set after the app is built, e.g. 700,10,10")
args = parser.parse_args()
app, _, environs, workdir = parts.build_app("production", json.loads(args.set), args.callbacks)
if args.threshold:
    gc.set_threshold(*map(int, args.threshold.split(",")))
for it in environs:
    parts.send(app, it)
stats = {"n": [0, 0, 0], "t": [0.0, 0.0, 0.0]}
start = {}


def on_collection(phase, info):
    generation = info["generation"]
    if phase == "start":
        start[generation] = time.perf_counter()
    else:
        stats["n"][generation] += 1
        stats["t"][generation] += time.perf_counter() - start[generation]


gc.callbacks.append(on_collection)
t0 = time.process_time()
for _ in range(3):
    for it in environs:
        parts.send(app, it)
dt = time.process_time() - t0
gc.callbacks.remove(on_collection)
n = 3 * len(environs)
print(f"thresholds {gc.get_threshold()}: {dt / n * 1e6:.1f} us of process CPU per callback; collections per "
      f"callback by generation {[round(x / n, 4) for x in stats['n']]}; us in them per callback "
      f"{[round(x / n * 1e6, 2) for x in stats['t']]} (sum {sum(stats['t']) / n * 1e6:.2f})")
parts.clean_up(app, workdir)
