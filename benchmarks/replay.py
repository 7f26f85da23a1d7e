"""Benchmark offline replay of recorded callbacks through the full chain, and the cost of recording.

    python benchmarks/replay.py [--n N] [--rules FILE] [--smoke] [--strict]

Generates N callbacks from the Tencent samples (seeded: texts and users vary, ~1 in 5 messages
carries a keyword), answers them with one rule set while recording them (Receiver.handle with
the real Recorder and SQLite store), then replays the recordings against other rules (by
default three keyword rules defined below; --rules FILE benches any config, e.g.
receiver/default.yaml) exactly as `imhook replay` does. Prints callbacks/s for the replay and
the per-callback cost the recorder adds to Receiver.handle.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path, and a sibling (http.py) would shadow the
# standard library: import from the repo root instead (this file is then benchmarks.replay).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from marshmallow import fields  # noqa: E402

from receiver.client import callback_query  # noqa: E402
from receiver.core import HttpRequest  # noqa: E402
from receiver.recording import replay as engine  # noqa: E402
from receiver.recording.sources import open_source  # noqa: E402
from receiver.recording.writer import Recorder  # noqa: E402
from rules import Rule, refuse, rewrite  # noqa: E402
from rules.base import RuleConfig  # noqa: E402

TARGET_PER_S = 5_000
APP_ID = "1400000000"
SAMPLES = ROOT / "tests" / "samples" / "tencent"
WORDS = "hello fine thanks where when lunch meeting tomorrow apple banana cherry ok sure great".split()
RECORDED_WITH = [("no_apple", "apple", "refuse")]
REPLAYED_WITH = [("no_banana", "banana", "refuse"), ("mask_cherry", "cherry", "mask"), ("no_kiwi", "kiwi", "refuse")]


class Keyword(Rule):
    """Refuse or mask message texts containing a word (a stand-in for a real text rule)."""

    actions = ("message.send",)

    class Config(RuleConfig):
        word = fields.String(required=True)
        action = fields.String(load_default="refuse")

    def decide(self, callback):
        word = self.config["word"]
        message = callback.event.message
        hits = {f.path: f.text.replace(word, "*" * len(word)) for f in message.text_fields() if word in f.text}
        if not hits:
            return None
        if self.config["action"] == "mask":
            return rewrite(message.replace_texts(hits), reason=f"contains {word}")
        return refuse("blocked", reason=f"contains {word}")


def config_text(rules, db: Path) -> str:
    entries = "".join(f"  - {{use: 'benchmarks.replay:Keyword', name: {name}, config: {{word: {word}, "
                      f"action: {action}}}}}\n" for name, word, action in rules)
    return f"app_id: {APP_ID}\nrecording: {{path: '{db}'}}\nrules:\n{entries}"


def make_requests(n: int, seed: int = 7) -> list[HttpRequest]:
    rng = random.Random(seed)
    bodies = [json.loads(p.read_text("utf-8")) for p in sorted(SAMPLES.glob("*.json")) if ".response" not in p.name]
    requests = []
    for i in range(n):
        body = json.loads(json.dumps(bodies[i % len(bodies)]))
        if "MsgBody" in body and body["CallbackCommand"].endswith("BeforeSendMsg"):
            body["MsgBody"][0]["MsgContent"]["Text"] = " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
            body["From_Account"] = f"user{rng.randint(1, 500)}"
        raw = json.dumps(body, ensure_ascii=False).encode()
        requests.append(HttpRequest("POST", callback_query(body["CallbackCommand"], APP_ID), raw))
    return requests


def time_handle(receiver, requests) -> float:
    started = time.perf_counter()
    for request in requests:
        receiver.handle(request, trusted=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="callbacks to generate (default 20000)")
    parser.add_argument("--rules", default=None, help="config file to replay against (default: keyword rules)")
    parser.add_argument("--smoke", action="store_true", help="a quick run (1,000 callbacks) that checks it works")
    parser.add_argument("--strict", action="store_true", help=f"exit 1 below {TARGET_PER_S:,} callbacks/s")
    args = parser.parse_args()
    n = 1_000 if args.smoke else args.n

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "recordings.sqlite"
        (folder / "recorded.yaml").write_text(config_text(RECORDED_WITH, db), encoding="utf-8")
        (folder / "replayed.yaml").write_text(config_text(REPLAYED_WITH, db), encoding="utf-8")
        requests = make_requests(n)

        # 1. Recording. On the reply path the recorder builds the record, appends it to its journal
        # and enqueues it; the writer thread inserts. Measured apart, then together in a tight
        # handle() loop (sharing the GIL).
        live = engine.build_receiver(str(folder / "recorded.yaml"))
        outcomes = [live.handle(request, trusted=True) for request in requests]
        probe = Recorder(folder / "probe.sqlite", queue_size=n + 1, start=False)
        started = time.perf_counter()
        for outcome in outcomes:
            probe(outcome)
        enqueue = (time.perf_counter() - started) / n
        started = time.perf_counter()
        probe.start().close(timeout=300)
        write = (time.perf_counter() - started) / n
        bare = time_handle(live, requests) / n
        recorder = Recorder.from_settings(live.config.recording)
        live.observers.append(recorder)
        recorded = time_handle(live, requests) / n
        recorder.close(timeout=300)
        live.chain.close()
        records = recorder.stats()["written_total"]
        print(f"recording: observer {enqueue * 1e6:.1f} µs per callback on the reply path; writer thread "
              f"{write * 1e6:.1f} µs per record ({1 / write:,.0f} records/s) off it; handle() in a tight loop "
              f"{bare * 1e6:.1f} µs, {recorded * 1e6:.1f} µs with the writer running beside it")

        # 2. Replay offline against other rules, as `imhook replay` does.
        replay = engine.OfflineReplay(engine.build_receiver(args.rules or str(folder / "replayed.yaml")))
        started = time.perf_counter()
        summary = engine.run(open_source(db), replay)
        elapsed = time.perf_counter() - started
        replay.close()

    per_s = summary.total / elapsed
    c = summary.counts
    verdict = "OK" if per_s >= TARGET_PER_S else "BELOW TARGET"
    print(f"offline replay: {summary.total:,} callbacks in {elapsed:.2f} s = {per_s:,.0f} callbacks/s "
          f"(target ≥ {TARGET_PER_S:,}/s: {verdict}); unchanged {c['unchanged']:,}, changed {c['changed']:,}, "
          f"errors {c['error']}")
    if summary.total != records or c["error"]:
        print("error: not every recorded callback was replayed cleanly", file=sys.stderr)
        return 1
    return 1 if args.strict and per_s < TARGET_PER_S else 0


if __name__ == "__main__":
    sys.exit(main())
