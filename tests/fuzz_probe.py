"""The probe after a storm (tests/test_fuzz_gunicorn.py): known-good callbacks, then every promise checked.

Each check returns the problems it found (short sentences), so one run reports all of them:
decided by the rules (promise 1); every answered request recorded, once, with its status, After*
events in the outbox and delivered, /metrics adding up, a loss never silent (promise 2); /readyz
ready, the same workers, no traceback (promise 3); no Sign or token in a log, worker memory bounded
(promise 4).
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from pathlib import Path

import requests

from .fuzz_storm import (TARGET, Answer, metric_sum, probe_calls, probe_reply_problem, send, server_errors,
                         wait_metrics, wait_recorded)
from .helpers import TOKEN
from .test_ops_support import Downstream, wait_until, worker_pids

MAX_WORKER_RSS_MB = 1000  # loosely: a fresh worker holds ~70 MB
# A Sign as the IM sends it (64 hex digits) after "Sign=" in a query or "Sign": in JSON.
SIGN_IN_TEXT = re.compile(r"""Sign(?:=|\\?"\s*:\s*\\?")([0-9a-fA-F]{64})""")
EDGE_STATUSES = (408, 413, 414, 431)  # answered by the worker before the app (receiver/worker.py)
SILENT_ERRORS = ("imhook_forward_enqueue_errors_total", "imhook_forward_dead_total", "imhook_recording_failed_total")


def probe(server, downstream: Downstream, answers: list[Answer], pids: set[int], *, tag: str,
          before: frozenset[str]) -> list[str]:
    """Send the probe callbacks after `answers`, then run every check; the problems found."""
    calls = probe_calls(tag)
    with requests.Session() as session:
        probes = [send(session, server.url, call.shot, timeout=10) for call in calls]
    problems = [p for p in (probe_reply_problem(c, a) for c, a in zip(calls, probes)) if p]
    answered = [a for a in answers + probes if a.status is not None and a.status < 500]
    db_path = Path(server.env["IMHOOK_CONFIG"]).parent / "recordings.sqlite"
    recording_problems, counted, lost = check_recording(db_path, answered)
    problems += recording_problems
    problems += check_delivered(downstream, [c.marker for c in calls if c.text is None])
    metric_problems, failed_visibly = check_metrics(server.url, answered, counted, before)
    problems += metric_problems
    problems += check_health(server, pids, lost=lost, failed_visibly=failed_visibly)
    problems += secrets_in_logs(server, db_path)
    return problems


def check_recording(db_path: Path, answered: list[Answer]) -> tuple[list[str], int, int]:
    """Every answered request recorded once with its status; how many the core answered, how many lost.

    max_rejected_per_minute is lifted in the storm config, so every request the core answered is
    recorded. The worker answers over-size bodies (413) and over-long heads (431) itself, before the
    app: those are counted in imhook_edge_refusals_total (check_metrics), not recorded.
    """
    must = {a.shot.request_id: a for a in answered if a.status not in EDGE_STATUSES}
    maybe = {a.shot.request_id for a in answered if a.status in EDGE_STATUSES}
    found = wait_recorded(db_path, must, timeout=30)
    problems = []
    missing = [must[i] for i in must if i not in found]
    if missing:
        kinds = Counter(f"{a.shot.request_id.split('-')[0]}:{a.status}" for a in missing)
        problems.append(f"{len(missing)} of {len(must)} answered requests are not in the recording "
                        f"(by kind and status: {dict(kinds)}; e.g. {[a.shot.request_id for a in missing[:5]]})")
    extra = set(found) - set(must) - maybe
    twice = [i for i, rows in found.items() if len(rows) > 1]
    if extra or twice:
        problems.append(f"recording: {len(extra)} records of requests never answered, {len(twice)} twice")
    wrong = [i for i, rows in found.items() if i in must and rows[0][0] != must[i].status]
    if wrong:
        problems.append(f"recording: {len(wrong)} records with another status than the reply, e.g. {wrong[:3]}")
    recorded_413 = len(maybe & set(found))
    print(f"\nprobe: {sum(len(r) for r in found.values())} records for {len(must)} answered "
          f"(+{len(maybe)} answered at the edge, {recorded_413} of them recorded)")
    return problems, len(must) + recorded_413, len(missing)


def check_delivered(downstream: Downstream, markers: list[str]) -> list[str]:
    def all_there():
        bodies = [body for _, body in downstream.events()]
        return all(any(m.encode() in body for body in bodies) for m in markers)

    if wait_until(all_there, timeout=30):
        return []
    return [f"After* probes not delivered downstream in 30 s: {markers}"]


def check_metrics(base_url: str, answered: list[Answer], counted: int,
                  before: frozenset[str]) -> tuple[list[str], bool]:
    """/metrics adds up: callbacks, and one outbox row (or duplicate) per After* answered 200.
    Also whether a loss is visible there (a failure counter above 0)."""
    forwardable = sum(1 for a in answered if a.status == 200 and a.shot.command and a.shot.command not in before)

    def settled(v):
        return (metric_sum(v, "imhook_callbacks_total") >= counted and metric_sum(
            v, "imhook_forward_delivered_total", target=TARGET) >= metric_sum(
            v, "imhook_forward_enqueued_total", target=TARGET))

    values = wait_metrics(base_url, settled, timeout=20)
    callbacks = metric_sum(values, "imhook_callbacks_total")
    enqueued = metric_sum(values, "imhook_forward_enqueued_total", target=TARGET)
    duplicates = metric_sum(values, "imhook_forward_duplicates_total", target=TARGET)
    print(f"metrics: imhook_callbacks_total {callbacks:.0f} for {counted} answered by the core; forwarded "
          f"{enqueued:.0f} + {duplicates:.0f} duplicates for {forwardable} After* answered 200, delivered "
          f"{metric_sum(values, 'imhook_forward_delivered_total', target=TARGET):.0f}; recording written "
          f"{metric_sum(values, 'imhook_recording_written_total'):.0f}, failed "
          f"{metric_sum(values, 'imhook_recording_failed_total'):.0f}")
    problems = []
    edge = sum(1 for a in answered if a.status in EDGE_STATUSES)
    refused = metric_sum(values, "imhook_edge_refusals_total")
    print(f"metrics: imhook_edge_refusals_total {refused:.0f} for {edge} answered {EDGE_STATUSES} "
          f"({len(answered) - edge} others)")
    if refused + (counted - len(answered) + edge) != edge:  # each edge answer is counted or recorded
        problems.append(f"/metrics: imhook_edge_refusals_total is {refused:.0f}, but {edge} requests were answered "
                        f"{EDGE_STATUSES} and {counted - len(answered) + edge} of them recorded")
    if callbacks != counted:
        problems.append(f"/metrics: imhook_callbacks_total is {callbacks:.0f}, {counted} were answered by the core")
    if enqueued + duplicates != forwardable:
        problems.append(f"/metrics: {enqueued:.0f} After* callbacks enqueued + {duplicates:.0f} duplicates, "
                        f"but {forwardable} were answered 200 (missing from the outbox)")
    problems += [f"/metrics: {name} = {metric_sum(values, name):.0f}" for name in SILENT_ERRORS
                 if metric_sum(values, name)]
    return problems, bool(metric_sum(values, "imhook_recording_failed_total"))


def check_health(server, pids: set[int], *, lost: bool, failed_visibly: bool) -> list[str]:
    """/readyz ready, a loss never silent, the same workers, bounded memory, no traceback."""
    problems = []
    ready = requests.get(server.url + "/readyz", timeout=5)
    if ready.status_code != 200:
        problems.append(f"/readyz {ready.status_code}: {ready.text[:300]}")
    if lost and not failed_visibly and ready.status_code == 200:  # promise 2: a failing part is visible
        problems.append("the recording lost callbacks silently: /readyz is 200 and imhook_recording_failed_total is 0")
    now = set(worker_pids(server.process.pid))
    if server.process.poll() is not None or now != pids:
        problems.append(f"workers changed: {sorted(pids)} -> {sorted(now)} "
                        f"(master alive: {server.process.poll() is None})")
    rss = {pid: worker_rss_mb(pid) for pid in now}
    print(f"worker memory after the storm (VmRSS, MB): {rss}")
    if any(mb > MAX_WORKER_RSS_MB for mb in rss.values()):
        problems.append(f"a worker holds over {MAX_WORKER_RSS_MB} MB after the storm: {rss}")
    log = server.log()
    if "Traceback" in log:
        problems.append(f"{log.count('Traceback')} tracebacks in the server log ({server.log_path})")
    for line in server_errors(log):
        print("server log:", line)
    return problems


def secrets_in_logs(server, db_path: Path) -> list[str]:
    """Promise 4: no token and no Sign in the server log, the access log or the recording."""
    access = Path(server.env["IMHOOK_ACCESS_LOG"])
    logs = {"server log": server.log(), "access log": access.read_text(errors="replace") if access.exists() else ""}
    problems = []
    for name, text in logs.items():
        signs = SIGN_IN_TEXT.findall(text)
        if TOKEN in text or signs:
            problems.append(f"secrets in the {name}: the token {text.count(TOKEN)} times, {len(signs)} Sign values "
                            f"(e.g. {signs[:1]})")
    if db_path.exists():
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
            kept = db.execute("""SELECT count(*) FROM recordings WHERE query LIKE '%"Sign"%'""").fetchone()[0]
        if kept:
            problems.append(f"{kept} recorded queries keep the Sign (recording.keep_sign is false)")
    return problems


def worker_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status")
    match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text()) if status.exists() else None
    return round(int(match.group(1)) / 1024, 1) if match else 0.0
