"""docs/cli.md documents every option of every command, and nothing that is not one."""

from __future__ import annotations

import re

import click
import pytest

from receiver.cli import main

from .helpers import ROOT

DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def _leaf_commands(group: click.Group, prefix: str = ""):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            if command.invoke_without_command:  # `imhook console` runs alone too: its own options count
                yield f"{prefix}{name}", command
            yield from _leaf_commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def _documented(path: str) -> str:
    """The text that documents one command: its section, or for a subcommand its table row."""
    top, _, sub = path.partition(" ")
    section = DOC.split(f"## `imhook {top}`", 1)[1].split("\n## ", 1)[0]
    if not sub:
        return section
    rows = [line for line in section.splitlines() if line.startswith(f"| `{sub}` |")]
    assert rows, f"docs/cli.md: no row for `imhook {path}`"
    return rows[0]


COMMANDS = list(_leaf_commands(main))


@pytest.mark.parametrize("path, command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_option_is_documented_and_every_documented_option_exists(path, command):
    text = _documented(path)
    options = {opt for param in command.params for opt in param.opts + param.secondary_opts if opt.startswith("-")}
    options -= {"-h", "--help"}
    missing = sorted(opt for opt in options if opt.startswith("--") and f"`{opt}" not in text and f"/{opt}" not in text)
    assert not missing, f"imhook {path}: options missing from docs/cli.md: {missing}"
    table = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    unknown = sorted(set(re.findall(r"`(--[a-z][a-z-]*)", table)) - options)
    assert not unknown, f"imhook {path}: docs/cli.md lists options it does not have: {unknown}"


def test_the_exit_codes_in_the_docs_are_the_codes_in_the_code():
    from receiver import errors

    table = DOC.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = {int(m) for m in re.findall(r"^\| (\d) \|", table, flags=re.M)}
    assert codes == {errors.EXIT_OK, errors.EXIT_CHANGED, errors.EXIT_USAGE, errors.EXIT_UNTESTED} == {0, 1, 2, 3}
