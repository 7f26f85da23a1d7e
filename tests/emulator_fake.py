"""A hand-written fake receiver for the emulator tests: records every callback it is sent and
answers from a script (late, non-200 and non-JSON answers included)."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from emulator import Emulator, parse_scenario

APP_ID, TOKEN = "1400000001", "fake-token"
OK = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}


@dataclass
class Answer:
    status: int = 200
    body: dict | bytes = field(default_factory=lambda: dict(OK))
    delay: float = 0.0


@dataclass
class Received:
    query: dict[str, str]
    body: dict
    at: float

    @property
    def command(self) -> str:
        return self.query["CallbackCommand"]


class FakeReceiver:
    """Records every callback and answers from a script keyed by command (OK when unscripted)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: dict[str, list[Answer]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                query = dict(parse_qsl(urlsplit(self.path).query))
                fake.received.append(Received(query, json.loads(raw), time.time()))
                answer = fake.next_answer(query.get("CallbackCommand", ""))
                time.sleep(answer.delay)
                payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the emulator gave up waiting: that is the point of a late answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def answer(self, command: str, *answers: Answer) -> None:
        """Answer `command` with these, in turn; the last one repeats."""
        self.script[command] = list(answers)

    def next_answer(self, command: str) -> Answer:
        answers = self.script.get(command) or [Answer()]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def bodies(self, command: str) -> list[dict]:
        return [r.body for r in self.received if r.command == command]

    @property
    def commands(self) -> list[str]:
        return [r.command for r in self.received]


@pytest.fixture
def fake():
    receiver = FakeReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


REWRITE = {**OK, "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}}]}

HEADER = """\
users: [alice, bob, carol, dave, erin]
groups:
  g1: {type: Public, owner: alice, members: [bob, carol]}
  room: {type: ChatRoom, owner: alice}
settings: {budget_seconds: 0.5}
steps:
"""


def run(fake: FakeReceiver, steps_yaml: str, header: str = HEADER, token: str | None = TOKEN):
    text = header + textwrap.indent(textwrap.dedent(steps_yaml), "  ")
    return Emulator(fake.url, APP_ID, token).run(parse_scenario(text, "fake.yaml"))


def kinds(step, user: str) -> list[str]:
    return [e.kind for e in step.events_of(user)]


def signals(fake: FakeReceiver, command: str) -> list[dict]:
    """The signaling JSON of each message body posted with `command`."""
    return [json.loads(b["MsgBody"][0]["MsgContent"]["Data"]) for b in fake.bodies(command)]


