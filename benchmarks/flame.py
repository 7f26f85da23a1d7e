"""Summarise a py-spy profile: the frames with the largest inclusive share of the samples.

    py-spy record -r 400 -f raw -o prof.raw --pid <worker pid> --duration 20
    python benchmarks/flame.py prof.raw [--within FRAME] [--top 40] [--children FRAME]

`-f raw` writes collapsed stacks ("thread;frame;frame... count"). Inclusive share: the samples in
which a frame appears anywhere on the stack (counted once per sample), over all samples (or over
the samples whose stack holds `--within`, e.g. `wsgi_app`, to leave out idle threads and start-up).
Frames are named "function (file)" without line numbers, so one function is one row.
`--children FRAME` also breaks down the first frame containing FRAME by its direct callees.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

LINE_NUMBER = re.compile(r":\d+\)$")


def frames(stack: str) -> list[str]:
    """The stack's frames without line numbers; the first entry (py-spy's thread label) dropped."""
    parts = stack.split(";")
    return [LINE_NUMBER.sub(")", part) for part in parts[1:]] if parts and parts[0].startswith(("thread", "process")) \
        else [LINE_NUMBER.sub(")", part) for part in parts]


def short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/receiver/", "/rules/", "/benchmarks/", "/lib/python3"):
        if marker in where:
            where = (marker.strip("/") + "/" if marker in ("/receiver/", "/rules/") else "") + where.split(marker, 1)[1]
            break
    return f"{name} ({where})"


def summarise(lines, within: str | None, top: int, children_of: list[str] = ()) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    callees: dict[str, Counter[str]] = {name: Counter() for name in children_of}
    total = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        chain = [short(f) for f in frames(stack)]
        if within and not any(within in f for f in chain):
            continue
        n = int(count)
        total += n
        for frame in set(chain):
            inclusive[frame] += n
        if chain:
            own[chain[-1]] += n
        for name in children_of:
            at = next((i for i, f in enumerate(chain) if name in f), None)
            if at is not None:
                callees[name][chain[at + 1] if at + 1 < len(chain) else "(self)"] += n
    out = [f"{total} samples" + (f" whose stack holds {within!r}" if within else ""),
           f"{'inclusive':>9} {'self':>6}  frame"]
    for frame, n in inclusive.most_common(top):
        out.append(f"{100 * n / total:8.1f}% {100 * own[frame] / total:5.1f}%  {frame}")
    for name, counts in callees.items():
        out.append(f"\ndirect callees of the first frame containing {name!r} (share of all samples above)")
        for frame, n in counts.most_common():
            if n < total / 500:
                break
            out.append(f"{100 * n / total:8.1f}%  {frame}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", help="py-spy's -f raw output (collapsed stacks)")
    parser.add_argument("--within", help="count only samples whose stack holds a frame containing this")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--children", action="append", default=[], metavar="FRAME",
                        help="break this frame down by its direct callees (may be repeated)")
    args = parser.parse_args(argv)
    with open(args.profile, encoding="utf-8", errors="replace") as lines:
        print(summarise(lines, args.within, args.top, args.children))
    return 0


if __name__ == "__main__":
    sys.exit(main())
