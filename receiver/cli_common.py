"""What every `imhook` command shares: naming the config, checking URLs and output files up front.

Each check runs before any work starts, so a typo costs a one-line message and exit status 2
(errors.EXIT_USAGE), not a replay that runs for minutes and then fails to write its report.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

CONFIG_ENV = "IMHOOK_CONFIG"
CONFIG_HELP = "YAML config (default: $IMHOOK_CONFIG, else the bundled default)."


def config_option(*, alias: str | None = None, help: str = CONFIG_HELP):
    """`--config FILE` (plus an older alias such as `--rules`), defaulting to $IMHOOK_CONFIG.

    The value passed on is a path that exists, or None for the bundled default config.
    """
    names = ("--config",) + ((alias,) if alias else ())
    return click.option(*names, "config_file", default=None, metavar="FILE", callback=_existing_config, help=help)


def _existing_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    source = "--config"
    if not value:
        value, source = os.environ.get(CONFIG_ENV) or None, f"${CONFIG_ENV}"
    if value is None:
        return None
    path = Path(value)
    fix = "pass --config FILE" if source == "--config" else f"fix ${CONFIG_ENV} or pass --config FILE"
    if not path.exists():
        raise click.UsageError(f"{source} names {value}, which does not exist; {fix}")
    if not path.is_file():
        raise click.UsageError(f"{source} names {value}, which is not a file; {fix}")
    return value


def checked_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: an http(s) URL with a host, or a usage error saying how to write it."""
    from .client import url_problem

    if value is None:
        return None
    problem = url_problem(value)
    if problem:
        raise click.BadParameter(problem, ctx=ctx, param=param)
    return value


def check_writable(path: str | None, option: str) -> None:
    """Fail now, before any work, if the output file `path` cannot be written ('-' is stdout)."""
    if not path or path == "-":
        return
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise click.UsageError(f"{option} {path} is a folder; name a file inside it")
    if not folder.is_dir():
        raise click.UsageError(f"{option} {path}: the folder {folder} does not exist; create it or choose "
                               "another path")
    if target.exists() and not os.access(target, os.W_OK):
        raise click.UsageError(f"{option} {path} exists and is not writable; choose another path")
    if not target.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise click.UsageError(f"{option} {path}: the folder {folder} is not writable; choose another path")
