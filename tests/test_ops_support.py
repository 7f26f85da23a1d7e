"""Support for the ops and survive tests: test-only rules, a downstream HTTP server, app builders.

No tests here. Test-only rules live in tests/rulekit.py (`tests.rulekit:Sleep`, `:Raise`) and here
(`tests.test_ops_support:NotReady`); a gunicorn started by a test has the repository on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from receiver.client import callback_query
from rules.base import Rule

from .helpers import APP_ID, ROOT, sample

# --- test-only rules -------------------------------------------------------------------------------


class NotReady(Rule):
    """Has no opinion, and says its backend is down."""

    def decide(self, callback):
        return None

    def ready(self):
        return "backend unreachable"


# --- callbacks ------------------------------------------------------------------------------------


def c2c_after(n: int, sender: str = "alice", receiver: str = "bob", text: str = "hello") -> dict:
    """A C2C.CallbackAfterSendMsg body with a unique MsgKey per `n`."""
    body = sample("C2C.CallbackAfterSendMsg")
    body.update(From_Account=sender, To_Account=receiver, MsgSeq=n, MsgRandom=1000 + n, MsgTime=1700000000,
                MsgKey=f"{n}_{1000 + n}_1700000000", MsgBody=[{"MsgType": "TIMTextElem",
                                                               "MsgContent": {"Text": text}}])
    return body


def c2c_before(text: str = "hello", sender: str = "alice", receiver: str = "bob") -> dict:
    body = sample("C2C.CallbackBeforeSendMsg")
    body.update(From_Account=sender, To_Account=receiver,
                MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}])
    return body


def post(client, body: dict, *, app_id: str = APP_ID, **headers):
    """POST a callback through a Flask test client, with the query the IM sends (no Sign)."""
    query = callback_query(body["CallbackCommand"], app_id)
    return client.post("/callback", query_string=query, data=json.dumps(body), headers=headers,
                       content_type="application/json")


# --- apps and servers ------------------------------------------------------------------------------


def config_text(tmp_path: Path, extra: str = "", *, rules: str = "rules: []") -> str:
    """A config for tests: recordings inside tmp_path, then `rules`, then `extra` sections."""
    return (f"app_id: '{APP_ID}'\n"
            f"recording:\n  path: {tmp_path / 'recordings.sqlite'}\n"
            f"{rules}\n{extra}\n")


def make_app(tmp_path: Path, text: str, monkeypatch):
    """An in-process app (Flask test client style), no token so bodies reach the parser."""
    from receiver.app import create_app

    monkeypatch.delenv("IMHOOK_TOKEN", raising=False)
    monkeypatch.delenv("IMHOOK_TOKEN_FILE", raising=False)
    monkeypatch.delenv("IMHOOK_APP_ID", raising=False)
    path = tmp_path / "imhook.yaml"
    path.write_text(text, encoding="utf-8")
    return create_app(path)


def server_env(**extra: str) -> dict:
    """Environment for a gunicorn started by a test: the repo importable for `tests.*` rules."""
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p), **extra}


def worker_pids(master_pid: int) -> list[int]:
    """PIDs of a gunicorn master's workers (its children), from /proc."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; return it (or the last falsy value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Downstream:
    """A real HTTP endpoint on a fixed loopback port that records what it receives.

    `stop()` closes the socket (connections are refused, as with a crashed service); `start()` on
    the same port brings it back. `status` is what it answers.
    """

    def __init__(self, port: int, status: int = 200, delay: float = 0.0):
        self.port = port
        self.status = status
        self.delay = delay  # seconds between taking an event and answering: a sender holds it that long
        self.received: list[tuple[dict, bytes]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> "Downstream":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = owner.status
                if status == 200:
                    with owner._lock:
                        owner.received.append((dict(self.headers), body))
                time.sleep(owner.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[tuple[dict, bytes]]:
        with self._lock:
            return list(self.received)
