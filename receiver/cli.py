"""The `imhook` command line: serve, sign, send, check, explain (and more, registered below)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from .errors import ImhookError


class ImhookGroup(click.Group):
    """Turn imhook's own errors into one clear line and exit status 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ImhookError as exc:
            click.echo(f"imhook: {exc}", err=True)
            sys.exit(2)


@click.group(cls=ImhookGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imhook")
def main() -> None:
    """imhook: a receiver for Tencent Cloud IM third-party callbacks, with a YAML rule chain."""


@main.command()
@click.option("--bind", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes (default: cores, at least 2).")
@click.option("--threads", type=int, default=None, help="Threads per worker (default 8).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML config (default: $IMHOOK_CONFIG, else the bundled default).")
def serve(bind: str, workers: int | None, threads: int | None, config_file: str | None) -> None:
    """Start the receiver under gunicorn with imhook's gunicorn settings."""
    if config_file:
        os.environ["IMHOOK_CONFIG"] = str(Path(config_file).resolve())
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:receiver.gunicorn_conf", "--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    if threads:
        argv += ["--threads", str(threads)]
    os.execv(sys.executable, argv)


@main.command("sign")
@click.option("--token", required=True, help="The callback token from the IM console.")
@click.option("--time", "request_time", type=int, default=None, help="RequestTime in seconds (default: now).")
def sign_command(token: str, request_time: int | None) -> None:
    """Print Sign and RequestTime for a token, as the IM computes them."""
    from .signature import sign

    request_time = int(time.time()) if request_time is None else request_time
    click.echo(f"RequestTime={request_time}")
    click.echo(f"Sign={sign(token, request_time)}")


@main.command()
@click.argument("file", type=click.File("rb"))
@click.option("--url", required=True, help="The receiver's callback URL.")
@click.option("--token", default=None, help="Sign with this token (default: first of $IMHOOK_TOKEN).")
@click.option("--app-id", default=None, help="SdkAppid to send (default: $IMHOOK_APP_ID).")
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Seconds to wait for the reply.")
def send(file, url: str, token: str | None, app_id: str | None, timeout: float) -> None:
    """Post a callback body FILE with a correct query string and signature; print the reply."""
    from .client import callback_query, post_callback

    raw = file.read()
    try:
        command = json.loads(raw)["CallbackCommand"]
    except (ValueError, KeyError, TypeError):
        raise click.UsageError(f"{file.name} is not a JSON object with a CallbackCommand") from None
    app_id = app_id or os.environ.get("IMHOOK_APP_ID")
    if not app_id:
        raise click.UsageError("no app id: pass --app-id or set IMHOOK_APP_ID")
    token = token or (os.environ.get("IMHOOK_TOKEN", "").split(",")[0].strip() or None)
    result = post_callback(url, raw, app_id=app_id, timeout=timeout,
                           query=callback_query(command, app_id, token=token))
    click.echo(f"HTTP {result.status} in {result.elapsed_ms:.1f} ms")
    click.echo(json.dumps(result.reply, ensure_ascii=False, indent=2) if result.ok else str(result.reply))
    sys.exit(0 if result.ok else 1)


def _register_more() -> None:
    """Subcommands that live beside what they drive."""
    from . import cli_rules

    cli_rules.register(main)
    for module in ("receiver.recording.cli", "receiver.emulator.cli"):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            if exc.name and not module.startswith(exc.name):
                raise
            continue
        sys.modules[module].register(main)


_register_more()


if __name__ == "__main__":
    main()
