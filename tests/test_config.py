"""Config errors name the file, the YAML path and line, and what was expected."""

from __future__ import annotations

import pytest

from receiver.config import load_config, parse_config
from receiver.errors import ConfigError
from rules.loader import build_chain
from receiver.tencent.platform import TencentPlatform

ENV = {"IMHOOK_APP_ID": "1400000000"}


def build(text, env=ENV):
    config = parse_config(text, "rules.yaml", dict(env))
    return build_chain(config, platform=TencentPlatform())


# (config text, expected fragments of the message)
ERRORS = [
    ("rules:\n  - use: no_such_rule\n", ["rules.yaml:2", "rules[0].use", "unknown rule 'no_such_rule'",
                                         "sensitive_words"]),
    ("rules:\n  - use: 'tests.rulekit:Missing'\n", ["rules.yaml:2", "cannot import rule"]),
    ("rules:\n  - use: 'receiver.config:Config'\n", ["not a subclass of rules.Rule"]),
    ("chain:\n  deadline_ms: 5000\n", ["rules.yaml:2", "chain.deadline_ms", "less than or equal to 1900"]),
    ("chain:\n  on_error: maybe\n", ["rules.yaml:2", "chain.on_error", "Must be one of: allow, refuse, drop"]),
    ("colour: blue\n", ["rules.yaml:1", "colour", "unknown key"]),
    ("rules:\n  - use: 'tests.rulekit:Decide'\n    confg: {}\n", ["rules.yaml:3", "rules[0].confg",
                                                                  "unknown key"]),
    ("rules:\n  - use: 'tests.rulekit:Decide'\n    config:\n      outcome: 3\n",
     ["rules.yaml:4", "rules[0].config.outcome", "Not a valid string"]),
    ("rules:\n  - use: 'tests.rulekit:Decide'\n    config:\n      extra: 1\n",
     ["rules.yaml:4", "rules[0].config.extra", "unknown key"]),
    ("rules:\n  - use: 'tests.rulekit:Decide'\n  - use: 'tests.rulekit:Decide'\n",
     ["rules.yaml:3", "already used by rules[0]"]),
    ("rules:\n  - use: 'tests.rulekit:Decide'\n    scope:\n      commands: [C2C.Nope]\n",
     ["rules.yaml:4", "rules[0].scope.commands[0]", "unknown command 'C2C.Nope'"]),
    ("rules:\n  - use: 'tests.rulekit:Decide'\n    scope:\n      conversations: [room]\n",
     ["rules.yaml:4", "scope.conversations", "Must be one of"]),
    ("rules: [\n", ["rules.yaml", "not valid YAML"]),
    ("server:\n  allow_ips: [10.0.0.0/8, bogus]\n", ["rules.yaml:2", "server.allow_ips[1]", "not an IP address"]),
    ("server:\n  shed_target_ms: 150\n", ["rules.yaml:2", "server.shed_target_ms", "below server.shed_after_ms (100)"]),
    ("server:\n  shed_after_ms: 50\n  shed_target_ms: 50\n",
     ["rules.yaml:3", "server.shed_target_ms", "below server.shed_after_ms (50)"]),
    ("- just\n- a list\n", ["rules.yaml:1", "mapping at the top level"]),
]


@pytest.mark.parametrize("text, fragments", ERRORS)
def test_config_errors_name_their_place(text, fragments):
    with pytest.raises(ConfigError) as info:
        build(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_missing_app_id_says_how_to_set_it():
    with pytest.raises(ConfigError, match="IMHOOK_APP_ID"):
        parse_config("rules: []\n", "rules.yaml", {})


def test_environment_overrides_the_file_and_tokens_rotate(tmp_path):
    config = parse_config("app_id: 1\n", "rules.yaml", {"IMHOOK_APP_ID": "2", "IMHOOK_TOKEN": " new , old "})
    assert config.app_id == "2"
    assert config.tokens == ("new", "old")
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    config = parse_config("app_id: 1\n", "rules.yaml", {"IMHOOK_TOKEN_FILE": str(token_file)})
    assert config.tokens == ("from-file",)
    assert "from-file" not in repr(config)


def test_unreadable_token_file_names_the_file_not_the_secret(tmp_path):
    with pytest.raises(ConfigError, match="cannot read token file .*nope"):
        parse_config("app_id: 1\n", "rules.yaml", {"IMHOOK_TOKEN_FILE": str(tmp_path / "nope")})


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nothere.yaml.*cannot read"):
        load_config(tmp_path / "nothere.yaml", ENV)


def test_the_bundled_default_config_loads():
    config = load_config(None, ENV)
    chain = build_chain(config, platform=TencentPlatform())
    assert [e.name for e in chain.entries]  # useful out of the box: it has rules
    chain.close()
