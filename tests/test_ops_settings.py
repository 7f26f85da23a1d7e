"""The metrics, logging and forwarding config sections: defaults and errors that name their place."""

from __future__ import annotations

import pytest

from receiver.config import parse_config
from receiver.errors import ConfigError


def load(text: str):
    return parse_config("app_id: '1'\n" + text, "imhook.yaml", env={})


def test_defaults():
    config = load("")
    assert config.metrics == {"enabled": True}
    assert config.logging == {"enabled": True, "level": "info", "callbacks": True}
    assert config.forwarding["targets"] == []
    assert config.forwarding["retry"] == {"base_seconds": 0.5, "cap_seconds": 60.0, "max_attempts": 0}


def test_a_target_gets_its_defaults():
    config = load("forwarding:\n  targets:\n    - url: http://127.0.0.1:9000/events\n")
    (target,) = config.forwarding["targets"]
    assert target == {"kind": "http", "url": "http://127.0.0.1:9000/events", "name": None, "commands": ["*"],
                      "timeout_seconds": 2.0, "secret_env": None}


BAD = [
    ("metrics:\n  enabled: true\n  port: 9\n", "metrics.port", "unknown key"),
    ("logging:\n  level: loud\n", "logging.level", "Must be one of"),
    ("forwarding:\n  targets:\n    - url: ftp://x/y\n", "forwarding.targets[0].url", "Not a valid URL"),
    ("forwarding:\n  targets:\n    - {url: 'http://x/y', commands: []}\n", "forwarding.targets[0].commands",
     "at least one"),
    ("forwarding:\n  targets:\n    - {url: 'http://x/y', commands: ['']}\n", "forwarding.targets[0].commands",
     "empty"),
    ("forwarding:\n  targets:\n    - {url: 'http://x/y', secret_env: 'not a name'}\n",
     "forwarding.targets[0].secret_env", "environment variable"),
    ("forwarding:\n  targets:\n    - {url: 'http://x/y', timeout_seconds: 0}\n",
     "forwarding.targets[0].timeout_seconds", "greater than or equal"),
    ("forwarding:\n  targets:\n    - {url: 'http://x/y', headers: {}}\n", "forwarding.targets[0].headers",
     "unknown key"),
    ("forwarding:\n  retry:\n    base_seconds: 5\n    cap_seconds: 1\n", "forwarding.retry.cap_seconds",
     "base_seconds"),
    ("forwarding:\n  targets:\n    - {url: 'http://a.example/x'}\n    - {url: 'http://a.example/y'}\n",
     "forwarding.targets[1].name", "already used"),
    ("forwarding:\n  concurrency: 0\n", "forwarding.concurrency", "greater than or equal"),
]


@pytest.mark.parametrize("text, path, message", BAD)
def test_bad_values_name_their_place(text, path, message):
    with pytest.raises(ConfigError) as info:
        load(text)
    assert path in str(info.value)
    assert message in str(info.value)
