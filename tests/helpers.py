"""Test helpers: sample files, a real gunicorn server on loopback, a real Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from receiver.handover import ACCEPTING

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"
APP_ID = "1400000000"
TOKEN = "test-token-1"
NETEASE_APP_KEY = "test-netease-key"
NETEASE_SECRET = "test-netease-secret"


def sample(name: str, platform: str = "tencent") -> dict:
    """Load `samples/<platform>/<name>.json`."""
    return json.loads((SAMPLES / platform / f"{name}.json").read_text(encoding="utf-8"))


def request_samples(platform: str = "tencent") -> list[str]:
    """Names of the request bodies (not the replies) among the samples."""
    return sorted(p.stem for p in (SAMPLES / platform).glob("*.json") if ".response" not in p.name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A gunicorn-served imhook on a loopback port."""

    url: str
    process: subprocess.Popen
    log_path: Path
    env: dict = field(default_factory=dict)

    @property
    def callback_url(self) -> str:
        return self.url + "/callback"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(tmp_path: Path, config_text: str, *, workers: int = 2, threads: int = 4,
                 env: dict | None = None, ready_path: str = "/healthz", timeout: float = 30) -> Server:
    """Write the config, start gunicorn exactly as the Procfile does, wait until it answers and every
    worker accepts (each binds once it has loaded the app, receiver/handover.py)."""
    config = tmp_path / "imhook.yaml"
    config.write_text(config_text, encoding="utf-8")
    port = free_port()
    log_path = tmp_path / f"gunicorn-{port}.log"
    full_env = {**os.environ, "IMHOOK_CONFIG": str(config), "IMHOOK_APP_ID": APP_ID, "IMHOOK_TOKEN": TOKEN,
                "IMHOOK_NETEASE_APP_KEY": NETEASE_APP_KEY, "IMHOOK_NETEASE_APP_SECRET": NETEASE_SECRET,
                "IMHOOK_WORKERS": str(workers), "IMHOOK_THREADS": str(threads),
                "IMHOOK_BIND": f"127.0.0.1:{port}", "IMHOOK_ACCESS_LOG": str(tmp_path / "access.log"),
                # so `use: tests.rulekit:...` resolves in the server as it does in the tests
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "python:receiver.gunicorn_conf"],
            cwd=tmp_path, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path, full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{server.log()}")
        try:
            if (requests.get(server.url + ready_path, timeout=1).status_code == 200
                    and server.log().count(ACCEPTING) >= workers):
                return server
        except (requests.ConnectionError, requests.Timeout):  # a worker still booting: not yet
            pass
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"gunicorn did not become ready in {timeout} s:\n{server.log()}")


def redis_url() -> str:
    return os.environ.get("IMHOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def make_receiver(config_text: str, env: dict | None = None):
    """A sans-I/O Receiver built from a YAML text, exactly as the server builds it."""
    from receiver.config import parse_config
    from receiver.core import Receiver
    from receiver.tencent.platform import TencentPlatform
    from rules.loader import build_chain

    config = parse_config(config_text, "test.yaml", {"IMHOOK_APP_ID": APP_ID, **(env or {})}, base_dir=ROOT)
    platform = TencentPlatform()
    return Receiver(config, build_chain(config, platform=platform), platform=platform)


def make_receiver_all(config_text: str, env: dict | None = None):
    """A Receiver over every platform (Tencent and NetEase, receiver.platforms), as the server builds it."""
    from receiver.config import parse_config
    from receiver.core import Receiver
    from receiver.platforms import Platforms
    from rules.loader import build_chain

    full_env = {"IMHOOK_APP_ID": APP_ID, "IMHOOK_NETEASE_APP_KEY": NETEASE_APP_KEY,
                "IMHOOK_NETEASE_APP_SECRET": NETEASE_SECRET, **(env or {})}
    config = parse_config(config_text, "test.yaml", full_env, base_dir=ROOT)
    platform = Platforms()
    return Receiver(config, build_chain(config, platform=platform), platform=platform)


def netease_headers(raw: bytes, *, now: float | None = None, secret: str = NETEASE_SECRET,
                    app_key: str = NETEASE_APP_KEY) -> dict[str, str]:
    from receiver.netease.auth import signed_headers

    return signed_headers(app_key, secret, raw, now=time.time() if now is None else now)


def handle_netease(receiver, body: dict | bytes, *, headers: dict | None = None, feed: str = "netease"):
    """Post a signed NetEase body through the core (no HTTP); `feed` "netease.copy" for the copy feed."""
    from receiver.core import HttpRequest

    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return receiver.handle(HttpRequest("POST", {}, raw, netease_headers(raw) if headers is None else headers,
                                       platform=feed))


def handle(receiver, body: dict | bytes, *, query: dict | None = None, method: str = "POST"):
    """Post a body through the core (no HTTP); the query defaults to a valid unsigned one."""
    from receiver.core import HttpRequest

    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    if query is None:
        command = body.get("CallbackCommand", "") if isinstance(body, dict) else ""
        query = {"SdkAppid": APP_ID, "CallbackCommand": command, "contenttype": "json"}
    return receiver.handle(HttpRequest(method, query, raw))


def rules_yaml(*rules: str, extra: str = "") -> str:
    """A config text with the given rule entries (each a YAML mapping in flow style)."""
    # In-process receivers record nothing unless a test asks: no stray database in the work tree.
    recording = "" if "recording" in extra else "recording: {enabled: false}"
    lines = [f"app_id: {APP_ID}", "\n".join(filter(None, [extra, recording])), "rules:"]
    lines += [f"  - {r}" for r in rules]
    if not rules:
        lines[-1] = "rules: []"
    return "\n".join(lines) + "\n"
