"""Where imhook's time goes: each part of one request, in-process, one thread, over the benchmark mix.

    python benchmarks/parts.py [--config default|production|FILE] [--set '{"recording": {"enabled": false}}']

Builds the Flask app exactly as gunicorn does (create_app) from the config, then times, per request
of http.py's mix (µs, averaged over the whole mix): the WSGI app end to end, Receiver.handle, and
inside it parsing, the chain as served, inline and on a thread pool, rendering and each observer
(JSON log line, metrics, recording). `--set` merges a JSON object into the config first, to price
a section by switching it off. Wall-clock figures: a background thread (the recording writer)
running meanwhile is included in whatever it slows down.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import yaml  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

import traffic  # noqa: E402

SEED = 20240601


def write_config(which: str, overrides: dict, workdir: Path) -> Path:
    """The config to time, with `overrides` merged in (sections merged key by key)."""
    source = {"default": ROOT / "receiver" / "default.yaml",
              "production": ROOT / "benchmarks" / "configs" / "production.yaml"}.get(which, Path(which))
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    for rule in doc.get("rules", []):  # word files are named relative to the config they came from
        words_file = rule.get("config", {}).get("words_file")
        if words_file and not Path(words_file).is_absolute() and (source.parent / words_file).exists():
            rule["config"]["words_file"] = str(source.parent / words_file)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def build_app(config: str, overrides: dict, callbacks: int):
    """The app as gunicorn builds it, in a fresh working directory (recordings go there), and the
    benchmark mix: (app, [(path, body)], [(WSGI environ, body)], workdir). `receiver` is imported
    from whatever comes first on sys.path (wsgi_cpu.py --tree puts another checkout there)."""
    workdir = Path(tempfile.mkdtemp(prefix="imhook-bench-app-"))
    os.chdir(workdir)
    words = traffic.make_words(SEED, 20_000)
    traffic.write_word_file(workdir / "bench-words.txt", words)
    shutil.copy(ROOT / "benchmarks" / "configs" / "production.yaml", workdir / "production.yaml")
    which = str(workdir / "production.yaml") if config == "production" else config
    os.environ.update({"IMHOOK_APP_ID": traffic.APP_ID, "IMHOOK_TOKEN": traffic.TOKEN,
                       "IMHOOK_CONFIG": str(write_config(which, overrides, workdir))})

    from receiver.app import create_app

    app = create_app()
    freeze_heap()
    now = int(time.time())
    requests = traffic.Traffic.build(SEED, words, callbacks, now).requests(now)
    environs = []
    for path, body in requests:
        route, _, query = path.partition("?")
        environ = EnvironBuilder(path=route, query_string=query, method="POST", data=body,
                                 content_type="application/json").get_environ()
        environs.append((environ, body))
    return app, requests, environs, workdir


def freeze_heap() -> None:
    """What gunicorn_conf's post_worker_init does in every worker once the app is built: the app's
    long-lived objects (word lists, schemas) leave the garbage collector's sight, so a full
    collection does not walk them (without it, in-process figures carried collections no worker
    makes: ~50 ms each on the production config)."""
    try:
        from receiver.heap import settle  # the tree under test's own, as its workers do it
    except ImportError:  # an older tree: collect and freeze, as its post_worker_init did
        import gc

        gc.collect()
        gc.freeze()
    else:
        settle()


def send(app, item) -> None:
    """One request of the mix through the WSGI app, its reply read."""
    environ, body = item
    out = app({**environ, "wsgi.input": io.BytesIO(body)}, lambda *a: None)
    b"".join(out)
    if hasattr(out, "close"):  # a WSGI iterable need not have one (the Shedder's reply is a list)
        out.close()


def clean_up(app, workdir: Path) -> None:
    """Stop the recorder (it writes until its queue is empty) and remove the working directory."""
    recorder = app.extensions.get("imhook.recorder")
    if recorder is not None:
        recorder.close()
    shutil.rmtree(workdir, ignore_errors=True)


def per_request(fn, items, count: int, rounds: int = 3) -> float:
    """µs per request of the mix: `fn` over `items` `rounds` times, after a short warm-up."""
    for item in items[:200]:
        fn(item)
    started = time.perf_counter()
    for _ in range(rounds):
        for item in items:
            fn(item)
    return (time.perf_counter() - started) / (rounds * count) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="production", help="default, production or a config file")
    parser.add_argument("--set", default="{}", help="JSON object merged into the config")
    parser.add_argument("--callbacks", type=int, default=3000)
    args = parser.parse_args(argv)

    app, requests, environs, workdir = build_app(args.config, json.loads(args.set), args.callbacks)
    from receiver.core import HttpRequest

    receiver = app.extensions["imhook"]
    n = len(requests)

    http_requests = [HttpRequest("POST", dict(parse_qsl(urlsplit(p).query)), b) for p, b in requests]
    config, chain = receiver.config, receiver.chain
    pool = ThreadPoolExecutor(max_workers=config.chain["threads"])  # as Chain.decide's, for blocking rules
    callbacks = [receiver.parse(r, config, time.time()) for r in http_requests]
    decisions = [chain.decide(c) for c in callbacks]
    outcomes = [receiver.handle(r) for r in http_requests]
    figures = {
        "WSGI app, end to end (Flask + imhook)": per_request(lambda item: send(app, item), environs, n),
        "Receiver.handle": per_request(receiver.handle, http_requests, n),
        "  parse: app id, Sign, JSON, marshmallow": per_request(
            lambda r: receiver.parse(r, config, time.time()), http_requests, n),
        "  Chain.decide, as served": per_request(chain.decide, callbacks, n),
        "  Chain.run, the rules inline": per_request(chain.run, callbacks, n),
        "  the rules on a thread pool (a chain with a blocking rule)": per_request(
            lambda c: pool.submit(chain.run, c).result(), callbacks, n),
        "  render the reply": per_request(lambda i: receiver.platform.render(callbacks[i], decisions[i].verdict),
                                          range(n), n),
    }
    observers = list(receiver.observers)
    for observer in observers:
        name = getattr(observer, "__qualname__", type(observer).__qualname__)
        figures[f"  observer {observer.__module__}.{name}"] = per_request(observer, outcomes, n)
    receiver.observers.clear()
    figures["Receiver.handle without observers"] = per_request(receiver.handle, http_requests, n)
    receiver.observers.extend(observers)
    print(f"config {args.config} {args.set}; {n} callbacks; µs per request of the mix, one thread")
    for label, value in figures.items():
        print(f"  {label:<70} {value:8.1f}")
    clean_up(app, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
