"""Send a storm of requests to a real gunicorn-served imhook, then probe that nothing stopped.

Used by tests/test_fuzz_gunicorn.py. A storm is a list of Shots sent by a few threads, each on its
own keep-alive connection (requests.Session). Every shot carries a unique X-Request-Id, which the
recording stores, so the probe can tell which answered request is missing from the store.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from receiver.client import callback_query
from receiver.signature import sign

from .helpers import APP_ID, TOKEN, sample
from .test_ops_support import c2c_after, c2c_before

ENVELOPE_KEYS = ("ActionStatus", "ErrorCode", "ErrorInfo")
MAX_BODY = 1 << 20  # server.max_body_bytes in the storm config (the default, written out)
TARGET = "downstream"  # the forwarding target's name in the storm config
MASKED = "*******"  # what sensitive_words makes of "badword"
SUFFIX = "!"  # what tests.rulekit:Append adds to every text


def storm_config(tmp_path: Path, downstream_url: str) -> str:
    """Recording (every rejected request too), forwarding of After* callbacks, metrics, two rewrites."""
    return f"""app_id: '{APP_ID}'
server:
  max_body_bytes: {MAX_BODY}
  shed_after_ms: 0          # no fail-open answers: every reply below is the rules' (or the error's)
chain:
  on_error: refuse          # so the on_error reply of an over-deep Before* body is told from an allow
recording:
  path: {tmp_path / 'recordings.sqlite'}
  max_rejected_per_minute: 1000000   # record every rejected request: the probe counts them all
metrics:
  enabled: true
forwarding:
  outbox: {tmp_path / 'outbox.sqlite'}
  poll_seconds: 0.1
  targets:
    - url: {downstream_url}
      name: {TARGET}
rules:
  - use: sensitive_words
    config: {{words: ["badword"], action: mask}}
  - use: tests.rulekit:Append
    config: {{suffix: "{SUFFIX}"}}
"""


@dataclass(frozen=True)
class Shot:
    """One request. `command` None leaves CallbackCommand out of the query; `query` overrides it."""

    request_id: str
    body: bytes
    command: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    path: str = "/callback"
    headers: dict[str, str] = field(default_factory=dict)
    signed: bool = True
    chunked: bool = False


@dataclass
class Answer:
    shot: Shot
    status: int | None  # None: no reply (the connection failed)
    content_type: str = ""
    reply: Any = None  # the parsed JSON, None if it was not JSON
    excerpt: bytes = b""
    seconds: float = 0.0
    error: str = ""
    previous: str = ""  # request id of the request before it on the same connection (keep-alive)


def query_for(shot: Shot) -> dict[str, str]:
    query = callback_query(shot.command or "", APP_ID, token=TOKEN if shot.signed else None)
    if shot.command is None:
        del query["CallbackCommand"]
    query.update(shot.query)
    if "RequestTime" in shot.query and "Sign" not in shot.query:
        query["Sign"] = sign(TOKEN, shot.query["RequestTime"])
    return query


def send(session: requests.Session, base_url: str, shot: Shot, timeout: float = 20) -> Answer:
    headers = {"Content-Type": "application/json", "X-Request-Id": shot.request_id, **shot.headers}
    data: Any = shot.body
    if shot.chunked:  # a generator: requests sends it chunked, without a Content-Length
        data = (shot.body[i:i + 65536] for i in range(0, max(len(shot.body), 1), 65536))
    started = time.perf_counter()
    try:
        response = session.request(shot.method, base_url + shot.path, params=query_for(shot), data=data,
                                   headers=headers, timeout=(5, timeout))
        content = response.content
    except requests.RequestException as exc:
        return Answer(shot, None, seconds=time.perf_counter() - started,
                      error=f"{type(exc).__name__}: {str(exc)[:200]}")
    seconds = time.perf_counter() - started
    try:
        reply = json.loads(content)
    except ValueError:
        reply = None
    return Answer(shot, response.status_code, response.headers.get("Content-Type", ""), reply, content[:300],
                  seconds)


def storm(base_url: str, shots: list[Shot], threads: int = 4) -> tuple[list[Answer], float]:
    """Send every shot from `threads` keep-alive connections; answers in shot order, and the seconds."""
    answers: list[Answer | None] = [None] * len(shots)
    lock, position = threading.Lock(), [0]

    def work():
        session, previous = requests.Session(), ""
        while True:
            with lock:
                index = position[0]
                position[0] += 1
            if index >= len(shots):
                break
            answer = answers[index] = send(session, base_url, shots[index])
            answer.previous, previous = previous, shots[index].request_id
        session.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=work, name=f"storm-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [a for a in answers if a is not None], time.perf_counter() - started


def envelope_problem(answer: Answer) -> str | None:
    """Why this answer breaks promise 3 (a 5xx, no reply, not the JSON envelope), or None."""
    if answer.status is None:
        return f"no reply: {answer.error.split(':')[0]}"
    if answer.status >= 500:
        return f"HTTP {answer.status}"
    if not answer.content_type.startswith("application/json"):
        return f"Content-Type {answer.content_type!r}"
    reply = answer.reply
    if not isinstance(reply, dict) or any(key not in reply for key in ENVELOPE_KEYS):
        return "not the JSON envelope"
    return None


def is_refusal(reply: dict) -> bool:
    """A refusing reply of any Before* shape: a non-zero ErrorCode, or every ResultItem refused."""
    items = reply.get("ResultItem")
    if isinstance(items, list) and items:
        return all(isinstance(i, dict) and i.get("ResultCode") for i in items)
    return reply.get("ErrorCode") not in (0, None)


# --- the probe ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeCall:
    """A known-good callback with a unique marker, and what its reply's first text must be."""

    shot: Shot
    text: str | None  # None: an After* callback (the OK envelope), delivered downstream
    marker: str


def probe_calls(tag: str) -> list[ProbeCall]:
    calls = []
    for n, command in enumerate(("C2C.CallbackBeforeSendMsg", "Group.CallbackBeforeSendMsg")):
        marker = f"probe-{tag}-before-{n}"
        body = c2c_before(text=f"{marker} badword") if command.startswith("C2C") else sample(command)
        body["MsgBody"] = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": f"{marker} badword"}}]
        calls.append(ProbeCall(Shot(marker, json.dumps(body).encode(), command), f"{marker} {MASKED}{SUFFIX}",
                               marker))
    for n, command in enumerate(("C2C.CallbackAfterSendMsg", "Group.CallbackAfterSendMsg")):
        marker = f"probe-{tag}-after-{n}"
        body = c2c_after(900_000 + n, text=marker) if command.startswith("C2C") else sample(command)
        body.update(MsgSeq=900_000 + n, MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": marker}}])
        if "MsgKey" in body:
            body["MsgKey"] = marker
        calls.append(ProbeCall(Shot(marker, json.dumps(body).encode(), command), None, marker))
    return calls


def probe_reply_problem(call: ProbeCall, answer: Answer) -> str | None:
    problem = envelope_problem(answer)
    if problem or answer.status != 200:
        return f"probe {call.marker}: {problem or f'HTTP {answer.status}'} {answer.excerpt[:200]!r}"
    if answer.seconds >= 2.0:
        return f"probe {call.marker}: answered in {answer.seconds:.2f} s, past the IM's 2 s"
    if call.text is None:
        return None if answer.reply["ErrorCode"] == 0 else f"probe {call.marker}: {answer.reply}"
    body = answer.reply.get("MsgBody")
    text = body[0]["MsgContent"]["Text"] if isinstance(body, list) and body else None
    if text != call.text:
        return f"probe {call.marker}: not decided by the rules: text {text!r}, want {call.text!r}"
    return None


def recorded(db_path: Path) -> dict[str, list[tuple[int, str]]]:
    """request_id -> [(status, outcome), ...] of every live record (several: a duplicate)."""
    if not db_path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("SELECT request_id, status, outcome FROM recordings WHERE source = 'live'").fetchall()
    except sqlite3.Error:
        return {}
    found: dict[str, list[tuple[int, str]]] = {}
    for request_id, status, outcome in rows:
        found.setdefault(request_id, []).append((status, outcome))
    return found


def wait_recorded(db_path: Path, wanted: Iterable[str], timeout: float) -> dict[str, list[tuple[int, str]]]:
    """Poll the store until every wanted id is in it, or the deadline passes; the last read."""
    wanted = set(wanted)
    deadline = time.monotonic() + timeout
    while True:
        found = recorded(db_path)
        if wanted <= found.keys() or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def metric_values(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> name -> [(labels, value)]."""
    values: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or line.startswith("#"):
            continue
        name, labels, value = match.groups()
        parsed = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
        values.setdefault(name, []).append((parsed, float(value)))
    return values


def metric_sum(values: dict, name: str, **labels: str) -> float:
    return sum(v for l, v in values.get(name, []) if all(l.get(k) == want for k, want in labels.items()))


def scrape(base_url: str) -> dict:
    response = requests.get(base_url + "/metrics", timeout=5)
    response.raise_for_status()
    return metric_values(response.text)


def wait_metrics(base_url: str, ready, timeout: float) -> dict:
    """Scrape until `ready(values)` holds (other workers flush every second), or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            values = scrape(base_url)
        except requests.RequestException:
            values = {}
        if (values and ready(values)) or time.monotonic() > deadline:
            return values
        time.sleep(0.3)


def server_errors(log: str, limit: int = 12) -> list[str]:
    """The first `limit` distinct error lines of the server log: a JSON line at level error (with the
    last line of its traceback), or the last line of a plain traceback."""
    found: list[str] = []
    seen: set[str] = set()
    lines = log.splitlines()
    for i, line in enumerate(lines):
        text = None
        if line.startswith("{") and re.search(r'"level": ?"(error|critical)"', line):
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"msg": line}
            exc = str(entry.get("exc", "")).strip().splitlines()
            text = f"{entry.get('logger', '')}: {str(entry.get('msg'))[:200]}" + (f" | {exc[-1][:200]}" if exc else "")
        elif line.startswith("Traceback"):
            tail = next((l for l in lines[i + 1:i + 300] if l and not l.startswith((" ", "Traceback"))), "?")
            text = f"Traceback: {tail[:300]}"
        key = re.sub(r"0x[0-9a-f]+|\d+|'[^']*'", "N", text or "")
        if text and key not in seen:
            seen.add(key)
            found.append(text)
        if len(found) >= limit:
            break
    return found
