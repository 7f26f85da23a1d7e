"""One way to name the config: --config everywhere, paths relative to the config's folder, check = serve."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver import reload
from receiver.cli import DEFAULT_BIND, main, serve_bind
from receiver.config import DEFAULT_CONFIG, load_config
from receiver.errors import ImhookError

from .helpers import APP_ID, ROOT, SAMPLES, TOKEN, sample

CLEAN_ENV = {name: None for name in ("IMHOOK_CONFIG", "IMHOOK_APP_ID", "IMHOOK_TOKEN", "IMHOOK_TOKEN_FILE",
                                     "IMHOOK_BIND", "PORT", "IMHOOK_THREADS", "IMHOOK_WORKERS")}
RULE_MODULE = '''
import rules

class VipOnly(rules.Rule):
    actions = ("group.create",)

    def decide(self, callback):
        return None
'''


def invoke(*args, env=None, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], env={**CLEAN_ENV, **(env or {})}, **kwargs)


# --- check accepts exactly what serve accepts -------------------------------------------------------

PARITY = [  # (id, config text, environment, accepted)
    ("good", "app_id: 1400000000\nrules: []\n", {}, True),
    ("app-id-from-env", "rules: []\n", {"IMHOOK_APP_ID": APP_ID}, True),
    ("quoted-app-id", "app_id: '1400000000'\n", {}, True),
    ("no-app-id", "rules: []\n", {}, False),
    ("empty-file", "", {}, False),
    ("two-app-ids", "app_id: [1400000000, 1400000001]\n", {}, False),
    ("app-id-mapping", "app_id: {id: 1}\n", {}, False),
    ("app-id-float", "app_id: 1.5\n", {}, False),
    ("app-id-bool", "app_id: true\n", {}, False),
    ("app-id-word", "app_id: abc\n", {}, False),
    ("app-id-20-digits", f"app_id: {10 ** 20 - 1}\n", {}, True),  # APP_ID_DIGITS, just under...
    ("app-id-beyond-64-bits", f"app_id: {10 ** 20}\n", {}, False),  # ...and just over
    ("bad-env-app-id", "rules: []\n", {"IMHOOK_APP_ID": "1,2"}, False),
    ("bad-yaml", "app_id: 1\nrules: [\n", {}, False),
    ("unknown-key", "app_id: 1\nchain: {deadline: 5}\n", {}, False),
    ("unknown-rule", "app_id: 1\nrules:\n  - use: nope\n", {}, False),
    ("bad-rule-config", "app_id: 1\nrules:\n  - use: sensitive_words\n    config: {words: [x], action: shout}\n",
     {}, False),
    ("unknown-scope-command", "app_id: 1\nrules:\n  - use: regex\n    scope: {commands: [C2C.Nope]}\n"
                              "    config: {patterns: [x]}\n", {}, False),
    ("words-file-beside-config", "app_id: 1\nrules:\n  - use: sensitive_words\n    config: {words_file: w.txt}\n",
     {}, True),
    ("words-file-missing", "app_id: 1\nrules:\n  - use: sensitive_words\n    config: {words_file: none.txt}\n",
     {}, False),
    ("module-rule-beside-config", "app_id: 1\nrules:\n  - use: {module}:VipOnly\n", {}, True),
    ("module-rule-missing", "app_id: 1\nrules:\n  - use: no_such_module_here:VipOnly\n", {}, False),
    ("recording-under-a-file", "app_id: 1\nrecording: {path: w.txt/rec.sqlite}\n", {}, False),
    ("recording-is-a-folder", "app_id: 1\nrecording: {path: sub}\n", {}, False),
    ("recording-in-a-new-folder", "app_id: 1\nrecording: {path: new/deeper/rec.sqlite}\n", {}, True),
    ("recording-off-bad-path", "app_id: 1\nrecording: {enabled: false, path: w.txt/rec.sqlite}\n", {}, True),
    ("journal-dir-is-a-file", "app_id: 1\nrecording: {journal_dir: w.txt}\n", {}, False),
    ("outbox-under-a-file", "app_id: 1\nforwarding: {outbox: w.txt/o.sqlite3, targets: [{url: 'http://x/'}]}\n",
     {}, False),
    ("outbox-unused", "app_id: 1\nforwarding: {outbox: w.txt/o.sqlite3}\n", {}, True),
]


@pytest.mark.parametrize("text, env, accepted", [p[1:] for p in PARITY], ids=[p[0] for p in PARITY])
def test_check_and_the_server_start_up_give_the_same_verdict(tmp_path, monkeypatch, text, env, accepted):
    folder = tmp_path / "conf"
    folder.mkdir()
    module = f"cli_parity_rules_{abs(hash(str(tmp_path))) % 10 ** 8}"  # a fresh name: imports are cached
    (folder / f"{module}.py").write_text(RULE_MODULE)
    (folder / "w.txt").write_text("red packet\n")
    (folder / "sub").mkdir()
    config = folder / "imhook.yaml"
    config.write_text(text.replace("{module}", module))
    monkeypatch.chdir(tmp_path)  # neither the config's folder nor on sys.path
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    checked = invoke("check", "--config", config, env=env)
    monkeypatch.setattr(reload, "LAST_GOOD", None)  # a fresh master, as at start-up
    try:
        _, chain = reload.check_start_up(config)  # what gunicorn_conf.on_starting runs
        chain.close()
        served, why = True, ""
    except ImhookError as exc:
        served, why = False, str(exc)

    assert (checked.exit_code == 0) is accepted, checked.output
    assert served is accepted, why
    if not accepted:  # the same message, word for word
        assert checked.exit_code == 2 and f"imhook: {why}" in checked.stderr


def test_serve_refuses_a_config_with_exit_2_and_the_message_check_gives(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("app_id: [1, 2]\n")
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    served = subprocess.run([sys.executable, "-m", "receiver.cli", "serve", "--config", str(config), "--bind",
                             "127.0.0.1:0", "--workers", "1"], capture_output=True, text=True, env=env,
                            timeout=60)
    checked = invoke("check", "--config", config)
    assert served.returncode == checked.exit_code == 2
    message = checked.stderr.strip()
    assert message.startswith("imhook: ") and message in served.stderr
    assert "Traceback" not in served.stderr


def test_check_shows_a_widened_scope_as_widened(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(textwrap.dedent("""\
        app_id: 1
        rules:
          - use: sensitive_words
            name: wordings
            scope: {commands: [Sns.CallbackPrevFriendAdd]}
            config: {words: [x]}
          - use: sensitive_words
            name: messages
            config: {words: [x]}
        """))
    out = invoke("check", config).output
    widened, plain = out.split("2. messages")
    assert "widened from message.send because scope.commands is set" in widened
    assert "friend.add" in widened
    assert "(actions message.send)" in plain and "widened" not in plain


# --- every relative path resolves against the config file's folder ------------------------------------

def test_relative_paths_resolve_against_the_config_folder_from_any_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "token.txt").write_text(TOKEN)
    config = folder / "imhook.yaml"
    config.write_text("app_id: 1\nauth: {token_file: token.txt}\n"
                      "recording: {path: data/rec.sqlite, journal_dir: data/journal}\n"
                      "forwarding: {outbox: data/outbox.sqlite3}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_config(config, {})
    assert loaded.recording["path"] == str(folder / "data/rec.sqlite")
    assert loaded.recording["journal_dir"] == str(folder / "data/journal")
    assert loaded.forwarding["outbox"] == str(folder / "data/outbox.sqlite3")
    assert loaded.tokens == (TOKEN,)


def test_absolute_paths_stay_and_a_token_file_named_in_the_environment_is_read_from_the_working_directory(
        tmp_path, monkeypatch):
    config = tmp_path / "conf.yaml"
    config.write_text(f"app_id: 1\nrecording: {{path: {tmp_path / 'abs.sqlite'}}}\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "env-token.txt").write_text("from-env")
    loaded = load_config(config, {"IMHOOK_TOKEN_FILE": "env-token.txt"})
    assert loaded.recording["path"] == str(tmp_path / "abs.sqlite")
    assert loaded.tokens == ("from-env",)


def test_the_bundled_config_records_in_the_working_directory_where_recordings_finds_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loaded = load_config(None, {}, require_app_id=False)
    assert loaded.file == str(DEFAULT_CONFIG)
    assert loaded.recording["path"] == str(tmp_path / "imhook-recordings.sqlite")
    # ...while the bundled word list still comes from the package
    assert invoke("explain", SAMPLES / "tencent" / "C2C.CallbackBeforeSendMsg.json").exit_code == 0
    made = invoke("recordings", "import-samples", SAMPLES / "tencent")
    assert made.exit_code == 0 and (tmp_path / "imhook-recordings.sqlite").is_file()
    stats = invoke("recordings", "stats")
    assert stats.exit_code == 0 and re.search(r"total\s+\d+", stats.output)


@pytest.mark.integration
def test_what_serve_records_is_found_by_recordings_with_the_same_config(serve, tmp_path, monkeypatch):
    """The new user's story: serve --config conf/rules.yaml, then recordings export week.jsonl."""
    folder = tmp_path / "conf"
    folder.mkdir()
    config = folder / "rules.yaml"
    config.write_text(f"app_id: {APP_ID}\nrecording: {{path: rec.sqlite}}\nrules: []\n")
    server = serve("unused: the config below is served\n", env={"IMHOOK_CONFIG": str(config)})
    sent = invoke("send", SAMPLES / "tencent" / "C2C.CallbackBeforeSendMsg.json", "--url", server.callback_url,
                  "--app-id", APP_ID, "--token", TOKEN)
    assert sent.exit_code == 0, sent.output
    server.stop()  # the workers drain their recordings on the way out
    assert (folder / "rec.sqlite").is_file() and not (tmp_path / "rec.sqlite").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    exported = invoke("recordings", "export", "week.jsonl", "--config", config)
    assert exported.exit_code == 0, exported.output
    assert "exported 1 records" in exported.output
    by_env = invoke("recordings", "stats", env={"IMHOOK_CONFIG": str(config)})
    assert by_env.exit_code == 0 and "C2C.CallbackBeforeSendMsg" in by_env.output


def test_a_python_rule_beside_the_config_needs_no_pythonpath(tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "beside_config_rules.py").write_text(RULE_MODULE)
    config = folder / "rules.yaml"
    config.write_text("app_id: 1\nrules:\n  - use: beside_config_rules:VipOnly\n")
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV and k != "PYTHONPATH"}
    # A fresh process: nothing imported, the working directory elsewhere, no PYTHONPATH.
    result = subprocess.run([sys.executable, "-m", "receiver.cli", "check", "--config", str(config)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "beside_config_rules:VipOnly" in result.stdout


def test_a_module_beside_the_config_never_shadows_an_installed_one(tmp_path):
    (tmp_path / "json.py").write_text("raise RuntimeError('the wrong json')\n")
    config = tmp_path / "rules.yaml"
    config.write_text("app_id: 1\nrules:\n  - use: json:JSONDecoder\n")
    result = invoke("check", config)
    assert result.exit_code == 2 and "is not a subclass of rules.Rule" in result.output


# --- --config on every command that reads one -------------------------------------------------------------

CONFIG_READERS = [["serve"], ["check"], ["explain", "x.json"], ["replay", "x.jsonl"], ["recordings", "export", "-"],
                  ["recordings", "import", "x.jsonl"], ["recordings", "import-samples", "."],
                  ["recordings", "stats"], ["recordings", "prune", "--days", "1"], ["recordings", "hash-id", "a"]]


@pytest.mark.parametrize("argv", CONFIG_READERS, ids=" ".join)
def test_every_command_that_reads_the_config_takes_config_and_says_its_default(argv):
    result = invoke(*argv[:2] if argv[0] == "recordings" else argv[:1], "--help")
    assert "--config" in result.output and "$IMHOOK_CONFIG" in result.output, result.output


# --- serve: PORT and IMHOOK_BIND, flags win ---------------------------------------------------------------

@pytest.mark.parametrize("flag, env, bind", [
    (None, {}, DEFAULT_BIND),
    (None, {"PORT": "5000"}, "0.0.0.0:5000"),
    (None, {"IMHOOK_BIND": "10.0.0.1:81", "PORT": "5000"}, "10.0.0.1:81"),
    ("127.0.0.1:9000", {"IMHOOK_BIND": "10.0.0.1:81", "PORT": "5000"}, "127.0.0.1:9000"),
])
def test_serve_binds_to_the_flag_else_imhook_bind_else_port(monkeypatch, flag, env, bind):
    started = []
    monkeypatch.setattr("os.execv", lambda exe, argv: started.append(argv))
    result = invoke("serve", *(["--bind", flag] if flag else []), env=env)
    assert result.exit_code == 0, result.output
    argv = started[0]
    assert argv[argv.index("--bind") + 1] == bind == serve_bind(flag, env)


def _real_gunicorn_defaults() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    code = "import json, receiver.gunicorn_conf as g; print(json.dumps([g.threads, g.workers]))"
    threads, workers = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                 env=env, check=True, timeout=60).stdout)
    return {"threads": threads, "workers": workers}


def test_every_help_default_is_the_real_default():
    """What --help says a default is, compared with what the code really does."""
    from receiver import cli as cli_module
    from receiver.cli_common import CONFIG_HELP
    from receiver.config import config_path
    from emulator.tencent.transport import BUDGET_SECONDS

    real = _real_gunicorn_defaults()
    stated = {}  # (command, option) -> the default its help states, whitespace-normalised
    for path, command in _commands(main):
        for param in command.params:
            if isinstance(param, type(command.params[0])) and getattr(param, "help", None):
                text = " ".join(param.help.split())
                match = re.search(r"[\[(]default: (.+?)[\])]", text)
                if match:
                    stated[(path, param.opts[0])] = match[1]
                if getattr(param, "show_default", False):
                    assert param.default is not None, (path, param.opts)
    custom = {  # every default stated in words, and the real value it must match
        ("serve", "--bind"): (f"$IMHOOK_BIND, else 0.0.0.0:$PORT if PORT is set, else {DEFAULT_BIND}",
                              serve_bind(None, {}) == DEFAULT_BIND),
        ("serve", "--threads"): ("$IMHOOK_THREADS, else 2", real["threads"] == 2),
        ("serve", "--workers"): ("$IMHOOK_WORKERS, else the number of cores, at least 2",
                                 real["workers"] == max(2, os.cpu_count() or 1)),
        ("emulate", "--budget"): ("the scenario's, else 2", BUDGET_SECONDS == 2),
        ("send", "--token"): ("first of $IMHOOK_TOKEN", True),
        ("send", "--app-id"): ("$IMHOOK_APP_ID", True),
        ("emulate", "--app-id"): ("$IMHOOK_APP_ID", True),
        ("emulate", "--token"): ("first of $IMHOOK_TOKEN; none: unsigned", True),
        ("replay", "--token"): ("$IMHOOK_TOKEN", True),
        ("replay", "--app-id"): ("$IMHOOK_APP_ID, else as recorded", True),
        ("recordings import-samples", "--app-id"): ("$IMHOOK_APP_ID, else 0", True),
        ("explain", "--command"): ("the body's own", True),
        ("sign", "--time"): ("now", True),
        ("db upgrade", "--db"): ("the config's recording store, else its outbox URL", True),
        ("sign", "--body"): ("an empty body", True),
        ("send", "--app-key"): ("$IMHOOK_NETEASE_APP_KEY", True),
    }
    for key, default in stated.items():
        if "$IMHOOK_CONFIG" in default:  # every --config: the variable, else the bundled file
            assert default.startswith("$IMHOOK_CONFIG, else the bundled default"), key
            assert config_path({}) == DEFAULT_CONFIG
        elif "recording.path" in default:  # checked in test_recording_pg.py (the store) and above (the path)
            assert default == "the config's recording.store, else recording.path", key
        else:
            assert key in custom, f"{key}: help states default {default!r}; add it to this test's table"
            words, holds = custom[key]
            assert default == words and holds, (key, default)
    assert cli_module.SEND_TIMEOUT == 2.0 and "default: $IMHOOK_CONFIG" in CONFIG_HELP
    assert ("serve", "--threads") in stated and ("serve", "--bind") in stated


def _commands(group, prefix=""):
    import click

    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _commands(command, path + " ")
        else:
            yield path, command


# --- output and messages ---------------------------------------------------------------------------------

def test_explain_names_a_body_without_a_command_and_takes_command(tmp_path):
    body = dict(sample("C2C.CallbackBeforeSendMsg"))
    del body["CallbackCommand"]
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    bare = invoke("explain", path)
    assert bare.exit_code == 2
    assert "the body has no CallbackCommand; pass --command or add it" in bare.output
    assert ": REJECTED" not in bare.output


def test_emulate_allow_unreachable_tests_the_fail_open_default(tmp_path):
    from .helpers import free_port

    scenario = ROOT / "examples" / "scenarios"
    path = tmp_path / "s.yaml"
    path.write_text('users: [alice, bob]\nsteps:\n  - do: alice sends bob "hi"\n    expect: bob receives "hi"\n')
    url = f"http://127.0.0.1:{free_port()}/callback"
    refused = invoke("emulate", path, "--url", url, "--app-id", APP_ID)
    allowed = invoke("emulate", path, "--url", url, "--app-id", APP_ID, "--allow-unreachable")
    assert refused.exit_code == 3 and allowed.exit_code == 0, (refused.output, allowed.output)
    assert "PASS" in allowed.output and scenario.is_dir()


def test_check_skip_paths_leaves_out_only_the_machine_dependent_check(tmp_path):
    config = tmp_path / "c.yaml"
    (tmp_path / "file").write_text("")
    config.write_text("app_id: 1\nrecording: {path: file/rec.sqlite}\n")
    strict = invoke("check", config)
    assert strict.exit_code == 2 and "recording.path" in strict.stderr and "is a file, not a folder" in strict.stderr
    assert invoke("check", "--skip-paths", config).exit_code == 0
    assert not (tmp_path / "file" / "rec.sqlite").exists()


HOSTILE_PATHS = [  # (YAML value, fragment of the message): each refused by check and serve alike
    ('"a\\0b.sqlite"', "NUL"),
    ('"\\ud800.sqlite"', "lone surrogate"),
    ('"' + "a" * 4097 + '"', "longer than the 4096"),
    ('"' + "a/" * 2048 + 'x"', "longer than the 4096"),
    ('"' + "a" * 256 + '.sqlite"', "longer than the 255"),
]


@pytest.mark.parametrize("value, fragment", HOSTILE_PATHS, ids=["nul", "surrogate", "4097", "deep", "name-256"])
@pytest.mark.parametrize("key", ["recording: {path: %s}", "recording: {journal_dir: %s}", "auth: {token_file: %s}",
                                 "forwarding: {outbox: %s}"])
def test_a_path_no_file_system_can_hold_is_a_config_error(tmp_path, monkeypatch, key, value, fragment):
    config = tmp_path / "c.yaml"
    config.write_text("app_id: 1\n" + key % value + "\n", encoding="utf-8")
    result = invoke("check", "--skip-paths", config)
    assert result.exit_code == 2 and fragment in result.stderr, result.output
    monkeypatch.setattr(reload, "LAST_GOOD", None)
    with pytest.raises(ImhookError, match=fragment):
        reload.check_start_up(config)


def test_a_path_just_under_the_limits_is_accepted(tmp_path):
    name = "a" * 255
    config = tmp_path / "c.yaml"
    config.write_text(f"app_id: 1\nrecording: {{path: {name}}}\n")
    loaded = load_config(config, {})
    assert loaded.recording["path"] == str(tmp_path / name)
