"""`imhook console` (serve the web console) and `imhook console hash-password`."""

from __future__ import annotations

import os
import sys

import click

from ..cli_common import config_option

DEFAULT_BIND = "127.0.0.1:8081"  # loopback: put a TLS proxy in front to open it wider (docs/console.md)
BIND_ENV = "IMHOOK_CONSOLE_BIND"


@click.group("console", invoke_without_command=True)
@config_option()
@click.option("--bind", default=None, metavar="HOST:PORT",
              help=f"Where to listen [default: ${BIND_ENV}, else {DEFAULT_BIND}].")
@click.pass_context
def console(ctx: click.Context, config_file: str | None, bind: str | None) -> None:
    """Serve the web console (live decisions, recordings, rule playground) under gunicorn.

    Needs a password hash in $IMHOOK_CONSOLE_PASSWORD_HASH or console.password_hash_file
    (make one with `imhook console hash-password`).
    """
    if ctx.invoked_subcommand:
        return
    from ..cli import _bind_problem
    from .app import create_console_app
    from .server import serve

    bind = bind or os.environ.get(BIND_ENV) or DEFAULT_BIND
    problem = _bind_problem(bind)
    if problem:
        raise click.UsageError(f"--bind / ${BIND_ENV}: {problem}")
    app = create_console_app(config_file)
    state = app.extensions["imhook.console"]
    click.echo(f"imhook console on http://{bind} over {state.reader.where}", err=True)
    serve(app, bind, replay_seconds=state.settings["replay_max_seconds"])


@console.command("hash-password")
def hash_password_command() -> None:
    """Read a password (prompted without echo, or one line on stdin) and print its hash.

    Put the hash in $IMHOOK_CONSOLE_PASSWORD_HASH or the file named by console.password_hash_file.
    """
    from .auth import hash_password

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("the password is empty")
    click.echo(hash_password(password))


def register(group: click.Group) -> None:
    group.add_command(console)
