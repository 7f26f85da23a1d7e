"""A hand-written fake NetEase receiver for the emulator tests: it checks each request's signature
as the NetEase docs say a receiver must, records it, and answers from a script by eventType."""

from __future__ import annotations

import hashlib
import json
import textwrap
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emulator import Emulator, parse_scenario

APP_KEY, APP_SECRET = "0123456789abcdef0123456789abcdef", "fake-secret"
FRESH_MS = 300_000  # how far CurTime may be from the fake's clock


@dataclass
class Reply:
    body: dict | bytes = field(default_factory=lambda: {"errCode": 0})
    status: int = 200
    delay: float = 0.0


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict
    authentic: bool


def authentic(headers, raw: bytes, secret: str = APP_SECRET) -> bool:
    """The receiver's checks, written from the docs, not from the emulator's code."""
    md5 = hashlib.md5(raw).hexdigest()
    expected = hashlib.sha1((secret + md5 + headers.get("CurTime", "")).encode()).hexdigest()
    cur_time = headers.get("CurTime", "")
    return (headers.get("AppKey") == APP_KEY and headers.get("MD5", "").lower() == md5
            and headers.get("CheckSum", "").lower() == expected and cur_time.isdigit()
            and abs(int(cur_time) - time.time() * 1000) < FRESH_MS)


class FakeNetease:
    """Records every request; answers 401 to an unsigned or wrongly signed one, else from the script."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: dict[int, list[Reply]] = {}
        self.decide = None  # or a function body -> reply, ahead of the script
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items()}
                body = json.loads(raw)
                ok = authentic(headers, raw)
                fake.requests.append(Request(self.path, headers, raw, body, ok))
                reply = fake.next_reply(body) if ok else Reply({"error": "bad CheckSum"}, 401)
                time.sleep(reply.delay)
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the emulator gave up waiting: that is the point of a late reply

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def answer(self, event: int, *replies: Reply | dict) -> None:
        """Answer `event` with these, in turn; the last one repeats."""
        self.script[event] = [r if isinstance(r, Reply) else Reply(r) for r in replies]

    def next_reply(self, body: dict) -> Reply:
        if self.decide is not None:
            return Reply(self.decide(body))
        replies = self.script.get(body.get("eventType")) or [Reply()]
        return replies.pop(0) if len(replies) > 1 else replies[0]

    def bodies(self, event: int) -> list[dict]:
        return [r.body for r in self.requests if r.body.get("eventType") == event]


@pytest.fixture
def netease():
    receiver = FakeNetease()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


HEADER = """\
platform: netease
users:
  alice: {devices: [AOS, PC]}
  bob: {devices: [IOS, WEB]}
  carol: {}
  dave: {online: false}
groups:
  team: {owner: alice, members: [bob, carol, dave], id: "6001"}
settings: {budget_seconds: 0.5}
steps:
"""


def run(fake: FakeNetease, steps_yaml: str, header: str = HEADER, secret: str = APP_SECRET, url: str | None = None):
    text = header + textwrap.indent(textwrap.dedent(steps_yaml), "  ")
    emulator = Emulator(url or fake.root + "/callback", app_key=APP_KEY, app_secret=secret)
    return emulator.run(parse_scenario(text, "netease.yaml"))
