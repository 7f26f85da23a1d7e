"""What the console tests share: a recording made by a real receiver, a console app over it, a login."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from .helpers import APP_ID, make_receiver, rules_yaml

PASSWORD = "correct horse battery staple"
SIGN = "5e1f0c0ffee0ddba11sign"  # a recognisable Sign value: it must never appear on a page
RULES = "{use: sensitive_words, name: bad_words, config: {words: [badword], action: refuse}}"


def config_text(tmp_path: Path, *, console: str = "", recording: str = "") -> str:
    extra = (f"recording: {{path: {tmp_path / 'rec.sqlite'}, journal: false{', ' + recording if recording else ''}}}\n"
             + (f"console: {{{console}}}\n" if console else ""))
    return rules_yaml(RULES, extra=extra)


def message(text: str, user: str = "alice", to: str = "bob") -> dict:
    return {"CallbackCommand": "C2C.CallbackBeforeSendMsg", "From_Account": user, "To_Account": to,
            "MsgRandom": 1, "MsgSeq": 1, "MsgTime": int(time.time()),
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]}


def record_callbacks(path: Path, bodies: list[dict], *, keep_sign: bool = False, store_text: bool = True,
                     when: float | None = None, rules: str = RULES) -> None:
    """Run `bodies` through a real receiver and store them as the recorder would (capture.py)."""
    from receiver.core import HttpRequest
    from receiver.recording.capture import record_from_outcome
    from receiver.recording.privacy import Policy
    from receiver.recording.store import Store

    receiver = make_receiver(rules_yaml(rules))
    policy = Policy(keep_sign=keep_sign, store_text=store_text)
    records = []
    for i, body in enumerate(bodies):
        raw = json.dumps(body, ensure_ascii=False).encode()
        query = {"SdkAppid": APP_ID, "CallbackCommand": body["CallbackCommand"], "contenttype": "json",
                 "RequestTime": str(int(time.time())), "Sign": SIGN}
        outcome = receiver.handle(HttpRequest("POST", query, raw), trusted=True)
        record = record_from_outcome(outcome, policy, max_rejected_body=4096)
        if when is not None:
            record.received_at = when + i
        records.append(record)
    receiver.chain.close()
    store = Store(path)
    store.insert(records)
    store.close()


def console_app(tmp_path: Path, *, console: str = "", recording: str = "", env: dict | None = None):
    from receiver.config import parse_config
    from receiver.console.app import create_console_app
    from receiver.console.auth import hash_password

    text = config_text(tmp_path, console=console, recording=recording)
    file = tmp_path / "imhook.yaml"
    file.write_text(text, encoding="utf-8")
    full_env = {"IMHOOK_APP_ID": APP_ID, "IMHOOK_CONSOLE_PASSWORD_HASH": hash_password(PASSWORD), **(env or {})}
    config = parse_config(text, str(file), full_env, base_dir=tmp_path)
    app = create_console_app(config, env=full_env)
    app.config["TESTING"] = True
    return app


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r'"X-CSRF-Token": "([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def log_in(client, password: str = PASSWORD, **kwargs):
    token = csrf_of(client.get("/login", **kwargs).text)
    return client.post("/login", data={"password": password, "csrf_token": token}, **kwargs)


# Fixtures shared by the console test modules (imported there by name).

@pytest.fixture
def recorded(tmp_path):
    now = time.time()
    record_callbacks(tmp_path / "rec.sqlite", [message("hello there", user="alice"),
                                               message("you badword", user="mallory"),
                                               message("lunch at noon", user="bob")], keep_sign=True, when=now - 30)
    return tmp_path


@pytest.fixture
def client(recorded):
    client = console_app(recorded).test_client()
    assert log_in(client).status_code == 302
    return client
