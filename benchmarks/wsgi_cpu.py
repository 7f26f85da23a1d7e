"""Process CPU per request of imhook's WSGI app over the benchmark mix, in-process, for any checkout.

    python benchmarks/wsgi_cpu.py [--config production|default|FILE] [--set JSON] [--tree DIR] [--bare | --shed]

Builds the app as gunicorn does (create_app, then the heap frozen as post_worker_init does) from
the config, sends the 3,000-callback mix through it once to warm up, then `--passes` (3) more
times, and prints the process CPU per request (the mean, and the least pass): the request
thread plus imhook's own threads (the recording writer, the flushers), waited for until the
recording queue is empty, and how much of it was the recording writer thread's (its own CPU clock).
CPU time, not wall time: steadier than req/s on a shared machine.

`--tree DIR` imports `receiver` and `rules` from another checkout (e.g. an older commit unpacked
with `git archive <commit> | tar -x -C DIR`), with this checkout's traffic and configs, so a
before/after pair measures the code alone: run both, alternating, a few times.

`--bare` times benchmarks/bare_app.py (Flask, parse the JSON body, answer OK) over the same mix
the same way: imhook's own work per callback is the difference between the two.

`--shed` times imhook's own work for a shed callback: every request goes through the worker's
`Shedder` as one that waited too long in the queue (authenticated, answered fail-open, recorded,
logged, counted; receiver/shedding.py). Over HTTP a shed callback costs much more: the difference
is the HTTP layer (the event loop, the thread hop, gunicorn's parse and reply).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="production", help="default, production or a config file")
    parser.add_argument("--set", default="{}", help="JSON object merged into the config")
    parser.add_argument("--tree", type=Path, default=HERE.parent, help="the checkout whose code to time")
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--bare", action="store_true", help="time the bare Flask app over the same mix")
    parser.add_argument("--shed", action="store_true", help="time every callback shed (answered fail-open)")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the mix")
    args = parser.parse_args(argv)
    if args.bare and args.shed:
        parser.error("--shed times imhook's shed path; the bare app has none")

    sys.path.insert(0, str(HERE))
    import parts  # noqa: E402  (this checkout's benchmark helpers, which put it on sys.path too)

    sys.path.insert(0, str(args.tree.resolve()))  # first: the code to time comes from the tree
    app, _, environs, workdir = parts.build_app(args.config, json.loads(args.set), args.callbacks)
    assert Path(sys.modules["receiver"].__file__).resolve().is_relative_to(args.tree.resolve()), "wrong tree"
    if args.bare:  # the same mix, built above with imhook's helpers; imhook's app is then set aside
        from bare_app import app as bare

        parts.clean_up(app, workdir)
        app, workdir = bare, None
        parts.freeze_heap()

    recorder = getattr(app, "extensions", {}).get("imhook.recorder")
    served = app
    if args.shed:
        from receiver.app import CALLBACK_PATHS
        from receiver.shedding import Shedder

        served = Shedder(app, CALLBACK_PATHS)
        served.waits.seconds, served.waits.stale = 0.2, True  # as the worker notes a stale request

    def send_all() -> None:
        for item in environs:
            parts.send(served, item)

    def drain() -> None:
        deadline = time.monotonic() + 30
        while recorder is not None and time.monotonic() < deadline:
            queue = recorder._queue  # queue.Queue in older trees, an Inbox since
            if not (queue.qsize() if hasattr(queue, "qsize") else len(queue)):
                return
            time.sleep(0.05)

    def writer_cpu() -> float:  # the recording writer thread's CPU seconds (0 without recording)
        thread = getattr(recorder, "_thread", None)
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident)) if thread and thread.ident else 0.0

    send_all()
    drain()
    passes, writer = [], []
    for _ in range(args.passes):
        started, writer_started = time.process_time(), writer_cpu()
        send_all()
        drain()
        passes.append((time.process_time() - started) / len(environs) * 1e6)
        writer.append((writer_cpu() - writer_started) / len(environs) * 1e6)
    cpu = sum(passes) / len(passes)
    what = "bare Flask app (benchmarks/bare_app.py)" if args.bare else f"config {args.config} {args.set}"
    if args.shed:  # each send of the mix (warm-up included) must have been shed, or this timed the rules
        what += f", shed: {served.shed_count} of {(args.passes + 1) * len(environs)} callbacks sent"
    # The least of the passes: a process elsewhere on a shared machine slows a pass (cache, memory
    # bandwidth, the other hyperthread) but never speeds one up.
    print(f"{args.tree}: {what}: {cpu:.1f} us of process CPU per request (mean of {args.passes} passes; "
          f"least {min(passes):.1f})" + (f"; the recording writer thread {sum(writer) / len(writer):.1f} of it"
                                         if recorder is not None else ""))
    if workdir is not None:
        parts.clean_up(app, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
